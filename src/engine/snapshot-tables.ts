/**
 * Snapshot steps (docs/contract.md#people-and-identity): fold what arrived since the last snapshot into the
 * pipeline's state and write a complete snapshot, replacing the last one atomically for a reader that
 * follows the manifest.
 *
 * State: sorted tables (`<id JSON>\t<value JSON>`, ordered by the id's JSON text): the identity table
 * (id -> canonical id) and, for people, the profile table in shard files by the hash of the canonical id
 * (32 or more, fixed by the first snapshot: `firstSnapshotShards`). A step streams each table once or twice and holds only what arrived in its run:
 * - plan (`snapshot-plan.ts`): the run's identity links and the ids they name, a digest of each distinct
 *   id of the run's profile updates; it writes the new identity table and routes each update to the shard of its
 *   canonical id;
 * - tasks (`snapshot-task.ts`): the routed updates of one shard at a time, merged into that shard's
 *   sorted table;
 * - commit (`snapshot-commit.ts`): manifest, then the old snapshot's files removed, then the state
 *   pointer and run record.
 * Every table a step writes is named by the step, so a re-run after a crash reads the same inputs. This
 * module holds what the phases share: reading the state's tables and pending lines, and their formats.
 */
import { ConfigError, StagingLostError } from '../core/errors.js';
import { SNAPSHOT_POINTER_KEY } from '../core/layout.js';
import { getJson, type ObjectStore } from '../core/object-store.js';
import type { PipelineConfig, SnapshotSource } from '../core/pipeline-config.js';
import type { SnapshotPointer, TableFile } from '../core/records.js';
import type { WrittenObject } from './object-writers.js';
import { readSourceLines } from './source-lines.js';

/** Longest state line read back (a profile is one line; the vendor caps a profile far below this). */
export const MAX_TABLE_LINE_BYTES = 64 * 1024 * 1024;

/** Kinds of routed lines: `U\t<key>\t<time>\t<order>\t<operations>`, `M\t<key>\t<from key>\t<properties>`, `D\t<key>`. */
export const ROUTED = { update: 'U', merge: 'M', drop: 'D' } as const;

/** The snapshot source of a pipeline; an events pipeline has none. */
export function sourceOf(config: PipelineConfig): SnapshotSource {
  if (config.data_source === 'events') throw new ConfigError(`${config.name} is an events pipeline`);
  return config.data_source;
}

/** The state pointer of the last committed snapshot, if any. */
export function readSnapshotPointer(state: ObjectStore): Promise<SnapshotPointer | undefined> {
  return getJson<SnapshotPointer>(state, SNAPSHOT_POINTER_KEY);
}

/** A pending line: `<time ms>\t<JSON>`, with its place in arrival order. */
export interface Pending<T> {
  readonly timeMs: number;
  readonly order: number;
  readonly value: T;
}

/** The order updates and links apply in: by time, then by arrival. */
export function byTimeThenArrival(a: Pending<unknown>, b: Pending<unknown>): number {
  return a.timeMs - b.timeMs || a.order - b.order;
}

/** Reads pending lines (`<time ms>\t<JSON>`) in arrival order. */
export async function readPending(
  state: ObjectStore,
  keys: readonly string[],
  onLine: (timeMs: number, json: string) => void,
  afterChunk: () => Promise<void> = noWait,
): Promise<void> {
  for (const key of keys)
    await readTabbed(state, key, (time, json) => onLine(Number(time), json), afterChunk);
}

/** Order of table keys (the ids' JSON text): plain UTF-16 order, the same everywhere. */
export function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Streams a sorted table's rows as key and value text; a missing table (`undefined`) has none. */
export async function readTable(
  state: ObjectStore,
  file: TableFile | undefined,
  onRow: (key: string, value: string) => void,
  afterChunk: () => Promise<void> = noWait,
): Promise<void> {
  if (file !== undefined) await readTabbed(state, file.key, onRow, afterChunk);
}

/** The table file a state writer wrote. */
export function tableFile(written: WrittenObject): TableFile {
  return { key: written.key, records: written.records, bytes: written.bytes };
}

/** Streams the lines of a state object split at their first tab. */
async function readTabbed(
  state: ObjectStore,
  key: string,
  onLine: (head: string, rest: string) => void,
  afterChunk: () => Promise<void>,
): Promise<void> {
  await readSourceLines(
    state,
    key,
    {
      line(chunk, start, end) {
        const text = chunk.toString('utf8', start, end);
        const tab = text.indexOf('\t');
        onLine(text.slice(0, tab), text.slice(tab + 1));
      },
      overlong: corruptState(key),
    },
    afterChunk,
    { maxLineBytes: MAX_TABLE_LINE_BYTES, missing: (where) => stateLost(key, where) },
  );
}

/** State a committed record names is gone: the step fails, naming it, rather than fold less. */
export function stateLost(key: string, where: string): StagingLostError {
  return new StagingLostError(
    `${key} in ${where} is missing, though the pipeline's committed state names it`,
  );
}

/** A state line longer than any the engine writes: the state is corrupt. */
export function corruptState(key: string) {
  return (_head: Buffer, totalBytes: number, lineNumber: number): never => {
    throw new Error(`state line ${lineNumber} of ${key} is ${totalBytes} bytes: the state is corrupt`);
  };
}

/** An `afterChunk` for readers that hold no writer to wait on. */
export async function noWait(): Promise<void> {}
