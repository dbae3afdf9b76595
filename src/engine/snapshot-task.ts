/** The tasks of a snapshot step; `snapshot-tables.ts` describes the state they rewrite. */
import { routedUpdatesKey, snapshotPartKey, snapshotTableKey, taskResultKey } from '../core/layout.js';
import { getJson, type ObjectStore, putJson } from '../core/object-store.js';
import type { PipelineConfig } from '../core/pipeline-config.js';
import type { EngineStores } from '../core/ports.js';
import {
  applyUpdate,
  emptyFoldCounts,
  type FoldCounts,
  mergeProfile,
  type Operation,
  type Properties,
} from '../core/profiles.js';
import { IDENTITY_RECORD, PROFILE_RECORD } from '../core/record-columns.js';
import type { PartRecord, SnapshotPlan, SnapshotTaskResult, TableFile } from '../core/records.js';
import { NdjsonObjectWriter, RollingWriters } from './object-writers.js';
import { type PartWriter, partExtension, partFormatOf, partOpener } from './part-formats.js';
import {
  byTimeThenArrival,
  compareKeys,
  corruptState,
  MAX_TABLE_LINE_BYTES,
  noWait,
  type Pending,
  ROUTED,
  readTable,
  sourceOf,
  stateLost,
  tableFile,
} from './snapshot-tables.js';
import { readSourceLines } from './source-lines.js';
import { partRecord } from './step-results.js';

/** What a task writes its snapshot lines into. */
type Parts = RollingWriters<'snapshot', PartWriter, PartRecord>;

/**
 * Runs one task of a snapshot step: identity writes the mapping table out; people rewrite their
 * shards, folding each profile's routed merges and updates into it, and write the profiles out.
 * Idempotent like export tasks: a finished task's result is returned as is.
 */
export async function runSnapshotTask(
  stores: EngineStores,
  config: PipelineConfig,
  plan: SnapshotPlan,
  task: number,
): Promise<SnapshotTaskResult> {
  const resultKey = taskResultKey(plan.step_id, task);
  const done = await getJson<SnapshotTaskResult>(stores.state, resultKey);
  if (done !== undefined) return done;
  const shards = plan.tasks[task];
  if (shards === undefined) throw new RangeError(`step ${plan.step_id} has no task ${task}`);
  const source = sourceOf(config);
  const format = partFormatOf(config);
  const openPart = await partOpener(format, source === 'people' ? PROFILE_RECORD : IDENTITY_RECORD);
  const parts: Parts = new RollingWriters({
    maxOpen: 1,
    maxUncompressedBytes: config.part_max_bytes,
    open: (_, seq) =>
      openPart(
        stores.destination,
        snapshotPartKey(
          config.project_id,
          source,
          config.name,
          plan.step_id,
          task,
          seq,
          partExtension(format),
        ),
      ),
    close: async (writer) => partRecord(await writer.close(), plan.window.day),
  });
  const counts = emptyFoldCounts();
  const tables: SnapshotTaskResult['shards'][number][] = [];
  if (source === 'identity') {
    await readTable(
      stores.state,
      plan.identity,
      (key, value) => addLine(parts, `{"distinct_id":${key},"resolved_distinct_id":${value}}`),
      () => parts.settle(),
    );
  } else {
    for (const shard of shards) {
      tables.push({ shard, table: await foldShard(stores.state, plan, shard, parts, counts) });
    }
  }
  const result: SnapshotTaskResult = {
    step_id: plan.step_id,
    task,
    parts: await parts.finish(),
    shards: tables,
    updates: counts.updates,
    created: counts.created,
    deleted: counts.deleted,
    skipped: counts.skipped,
  };
  await putJson(stores.state, resultKey, result);
  return result;
}

function addLine(parts: Parts, text: string): void {
  const line = Buffer.from(text, 'utf8');
  parts.segmentFor('snapshot', line.length + 1).add(line);
}

/** The routed changes of one profile. */
interface ProfileChanges {
  drop: boolean;
  /** Profiles merged into this one: `[from key, properties JSON]`. */
  readonly merges: [string, string][];
  readonly updates: Pending<string>[];
}

/**
 * Rewrites one shard: streams its sorted table, folds the routed changes into the profiles they name
 * (in key order, so new profiles fall into place), and writes each profile to the new table and the
 * snapshot. Untouched profiles are copied as text, never parsed. Memory: the shard's routed changes.
 */
async function foldShard(
  state: ObjectStore,
  plan: SnapshotPlan,
  shard: number,
  parts: Parts,
  counts: FoldCounts,
): Promise<TableFile> {
  const changes = plan.routed.includes(shard)
    ? await readRouted(state, routedUpdatesKey(plan.step_id, shard))
    : new Map<string, ProfileChanges>();
  const keys = [...changes.keys()].sort(compareKeys);
  const table = new NdjsonObjectWriter(state, snapshotTableKey(plan.step_id, `profiles-${shard}`), 'none');
  const emit = (key: string, properties: string) => {
    table.addText(`${key}\t${properties}`);
    addLine(parts, `{"distinct_id":${key},"properties":${properties}}`);
  };
  const fold = (key: string, stored: string | undefined) => {
    const change = changes.get(key) as ProfileChanges;
    if (change.drop) return;
    let profile: Properties | undefined =
      stored === undefined ? undefined : (JSON.parse(stored) as Properties);
    for (const [, properties] of change.merges.sort(([a], [b]) => compareKeys(a, b)))
      profile = mergeProfile(profile, JSON.parse(properties) as Properties);
    const distinctId = JSON.parse(key) as string;
    for (const update of change.updates.sort(byTimeThenArrival)) {
      const operations = JSON.parse(update.value) as Operation[];
      profile = applyUpdate(profile, { distinctId, operations }, counts);
    }
    if (profile !== undefined) emit(key, JSON.stringify(profile));
  };
  let next = 0;
  await readTable(
    state,
    plan.base?.profiles?.[shard],
    (key, value) => {
      for (; next < keys.length && compareKeys(keys[next]!, key) < 0; next += 1) fold(keys[next]!, undefined);
      if (next < keys.length && keys[next] === key) {
        next += 1;
        fold(key, value);
      } else emit(key, value);
    },
    async () => {
      if (table.backpressured) await table.drain();
      await parts.settle();
    },
  );
  for (; next < keys.length; next += 1) fold(keys[next]!, undefined);
  return tableFile(await table.close());
}

async function readRouted(state: ObjectStore, key: string): Promise<Map<string, ProfileChanges>> {
  const changes = new Map<string, ProfileChanges>();
  const of = (profileKey: string): ProfileChanges => {
    let change = changes.get(profileKey);
    if (change === undefined) {
      change = { drop: false, merges: [], updates: [] };
      changes.set(profileKey, change);
    }
    return change;
  };
  await readSourceLines(
    state,
    key,
    {
      line(chunk, start, end) {
        const fields = chunk.toString('utf8', start, end).split('\t');
        const [kind, profileKey] = fields as [string, string];
        if (kind === ROUTED.drop) of(profileKey).drop = true;
        else if (kind === ROUTED.merge) of(profileKey).merges.push([fields[2]!, fields[3]!]);
        else
          of(profileKey).updates.push({
            timeMs: Number(fields[2]),
            order: Number(fields[3]),
            value: fields[4]!,
          });
      },
      overlong: corruptState(key),
    },
    noWait,
    { maxLineBytes: MAX_TABLE_LINE_BYTES, missing: (where) => stateLost(key, where) },
  );
  return changes;
}
