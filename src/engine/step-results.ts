/**
 * What a step's tasks hand to its commit, built and read the same way by every engine: the part a task
 * wrote, the task results a commit reads, the part entries of a manifest, the commit's guard and the
 * run record's timing.
 */
import { NotReadyError } from '../core/errors.js';
import { runRecordKey, taskResultKey } from '../core/layout.js';
import { getJson, type ObjectStore } from '../core/object-store.js';
import type { Manifest, PartRecord, RunRecord } from '../core/records.js';
import type { WrittenObject } from './object-writers.js';

/** When the step started and finished, for its run record (never for its output). */
export interface StepTiming {
  readonly startedAt: number;
  readonly finishedAt: number;
}

/** The record of a part a task closed, in day folder `day`. */
export function partRecord(written: WrittenObject, day: string): PartRecord {
  return {
    key: written.key,
    day,
    records: written.records,
    bytes: written.bytes,
    uncompressed_bytes: written.uncompressedBytes,
  };
}

/** The result of every task of a planned step, in task order; a commit runs only after all its tasks. */
export async function readTaskResults<Result>(
  state: ObjectStore,
  plan: { readonly step_id: string; readonly tasks: readonly unknown[] },
): Promise<Result[]> {
  const results: Result[] = [];
  for (let task = 0; task < plan.tasks.length; task += 1) {
    const result = await getJson<Result>(state, taskResultKey(plan.step_id, task));
    if (result === undefined) throw new NotReadyError(`step ${plan.step_id}: task ${task} has not finished`);
    results.push(result);
  }
  return results;
}

/** Every part the tasks wrote, ordered by key (the order manifests list them in). */
export function partsOf(results: readonly { readonly parts: readonly PartRecord[] }[]): PartRecord[] {
  return results.flatMap((r) => r.parts).sort((a, b) => (a.key < b.key ? -1 : 1));
}

/** The entries a manifest lists for its parts: file names, relative to the manifest's folder. */
export function manifestParts(parts: readonly PartRecord[]): Manifest['parts'] {
  return parts.map((p) => ({
    file: p.key.slice(p.key.lastIndexOf('/') + 1),
    records: p.records,
    bytes: p.bytes,
    uncompressed_bytes: p.uncompressed_bytes,
  }));
}

/**
 * A commit's idempotency guard: the run record an earlier attempt stored, else the one `commit` writes.
 * `release` runs after either, so an attempt that crashed after its run record still drops what the
 * step no longer needs.
 */
export async function commitOnce(
  state: ObjectStore,
  id: string,
  phases: { readonly commit: () => Promise<RunRecord>; readonly release: () => Promise<void> },
): Promise<RunRecord> {
  const record = (await getJson<RunRecord>(state, runRecordKey(id))) ?? (await phases.commit());
  await phases.release();
  return record;
}

/** The run record's timing fields. */
export function runTiming(timing: StepTiming): Pick<RunRecord, 'started_at' | 'finished_at' | 'duration_ms'> {
  return {
    started_at: new Date(timing.startedAt).toISOString(),
    finished_at: new Date(timing.finishedAt).toISOString(),
    duration_ms: timing.finishedAt - timing.startedAt,
  };
}

/** The sum of `value` over `items`. */
export function sum<T>(items: readonly T[], value: (item: T) => number): number {
  return items.reduce((total, item) => total + value(item), 0);
}
