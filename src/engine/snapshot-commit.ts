/** The commit of a snapshot step; `snapshot-tables.ts` describes the state it moves forward. */
import { ConfigError, ReconciliationError } from '../core/errors.js';
import {
  pendingHourPrefix,
  planKey,
  runRecordKey,
  SNAPSHOT_POINTER_KEY,
  SNAPSHOT_TABLES_PREFIX,
  snapshotManifestKey,
  stepWorkPrefix,
} from '../core/layout.js';
import { getJson, listAll, putJson, putJsonOnce } from '../core/object-store.js';
import type { PipelineConfig } from '../core/pipeline-config.js';
import type { EngineStores } from '../core/ports.js';
import type {
  RunRecord,
  SnapshotManifest,
  SnapshotPlan,
  SnapshotPointer,
  SnapshotTaskResult,
} from '../core/records.js';
import { symlinkBody, symlinkKey } from '../core/warehouse/glue-tables.js';
import { HOUR_MS } from '../core/windows.js';
import { readPlan } from './plan.js';
import { readSnapshotPointer, sourceOf } from './snapshot-tables.js';
import {
  commitOnce,
  manifestParts,
  partsOf,
  readTaskResults,
  runTiming,
  type StepTiming,
  sum,
} from './step-results.js';

/**
 * Commits a snapshot step. It proves its balance first (every routed update applied). Then the manifest
 * replaces the pipeline's last one in one put; then the parts of the snapshot it replaces (and only
 * those: the base snapshot's, as its pointer lists them) are removed; then the state pointer moves to
 * the new tables and the run record marks the step done (once); last, the old tables, the folded
 * pending updates and the work files are dropped. A re-run at any point ends in the same state, and an
 * attempt whose base is no longer the state's snapshot (a newer one committed) changes nothing.
 */
export function commitSnapshot(
  stores: EngineStores,
  config: PipelineConfig,
  id: string,
  timing: StepTiming,
): Promise<RunRecord> {
  return commitOnce(stores.state, id, {
    commit: () => commitPlan(stores, config, id, timing),
    release: () => dropFolded(stores, id),
  });
}

/** Balances a snapshot step not committed yet, swaps its manifest and pointer, writes its run record. */
async function commitPlan(
  stores: EngineStores,
  config: PipelineConfig,
  id: string,
  timing: StepTiming,
): Promise<RunRecord> {
  const plan = await readPlan<SnapshotPlan>(stores.state, id);
  const source = sourceOf(config);
  const pointer = await readSnapshotPointer(stores.state);
  if (pointer !== undefined && pointer.step_id !== plan.base?.step_id && pointer.step_id !== plan.step_id)
    throw new ConfigError(
      `step ${plan.step_id} was planned on snapshot ${plan.base?.step_id ?? '(none)'} but the state is at ${pointer.step_id}`,
    );
  const results = await readTaskResults<SnapshotTaskResult>(stores.state, plan);
  const applied = sum(results, (r) => r.updates);
  if (applied !== plan.updates)
    throw new ReconciliationError(
      `step ${plan.step_id} does not balance, nothing committed: ${plan.updates} profile updates routed, ${applied} applied`,
    );
  const parts = partsOf(results);
  const records = sum(parts, (p) => p.records);
  const manifest: SnapshotManifest = {
    format: 'mp-pipelines/snapshot-manifest@1',
    project_id: config.project_id,
    pipeline: config.name,
    data_source: source,
    step_id: plan.step_id,
    window: plan.window,
    through_hour: plan.through_hour,
    records,
    bytes: sum(parts, (p) => p.bytes),
    uncompressed_bytes: sum(parts, (p) => p.uncompressed_bytes),
    parts: manifestParts(parts),
  };
  await putJson(stores.destination, snapshotManifestKey(config.project_id, source, config.name), manifest);
  // The warehouse's snapshot table reads the parts this file lists: swapped before the old parts go.
  await stores.destination.put(
    symlinkKey(config.project_id, source),
    Buffer.from(
      symlinkBody((key) => stores.destination.uri(key), manifest),
      'utf8',
    ),
  );
  const keep = new Set(parts.map((p) => p.key));
  await stores.destination.delete((plan.base?.parts ?? []).filter((key) => !keep.has(key)));

  const profiles = results.flatMap((r) => r.shards).sort((a, b) => a.shard - b.shard);
  const next: SnapshotPointer = {
    step_id: plan.step_id,
    through_hour: plan.through_hour,
    records,
    identity: plan.identity,
    ...(source === 'people' ? { profiles: profiles.map((s) => s.table) } : {}),
    parts: parts.map((p) => p.key),
  };
  await putJson(stores.state, SNAPSHOT_POINTER_KEY, next);
  return putJsonOnce<RunRecord>(stores.state, runRecordKey(plan.step_id), {
    step_id: plan.step_id,
    pipeline: config.name,
    kind: 'regular',
    window: plan.window,
    status: 'succeeded',
    days: {},
    exported: records,
    duplicates: 0,
    parts: parts.length,
    bytes: manifest.bytes,
    tasks: plan.tasks.length,
    ...runTiming(timing),
    snapshot: {
      updates: applied,
      links: plan.links,
      created: sum(results, (r) => r.created),
      deleted: sum(results, (r) => r.deleted),
      merged: plan.merged,
      skipped: sum(results, (r) => r.skipped),
      through_hour: plan.through_hour,
    },
  });
}

/** Drops what a committed snapshot step no longer needs: tables no pointer names, folded updates, work files. */
async function dropFolded(stores: EngineStores, id: string): Promise<void> {
  const plan = await getJson<SnapshotPlan>(stores.state, planKey(id));
  if (plan === undefined) return; // dropped already, with the work files
  const pointer = await readSnapshotPointer(stores.state);
  const referenced = new Set(
    pointer === undefined
      ? []
      : [pointer.identity.key, ...(pointer.profiles ?? []).map((table) => table.key)],
  );
  const folded: string[] = [];
  for (let hour = Date.parse(plan.from_hour); hour < Date.parse(plan.through_hour); hour += HOUR_MS)
    folded.push(...(await listAll(stores.state, pendingHourPrefix(hour))).map((o) => o.key));
  const stale = [
    ...(await listAll(stores.state, SNAPSHOT_TABLES_PREFIX))
      .map((o) => o.key)
      .filter((k) => !referenced.has(k)),
    ...(await listAll(stores.state, stepWorkPrefix(plan.step_id))).map((o) => o.key),
  ];
  await stores.state.delete([...stale, ...folded]);
}
