/**
 * Snapshot steps (docs/contract.md#people-and-identity): fold what arrived since the last snapshot into the
 * pipeline's state and write a complete snapshot, replacing the last one atomically for a reader that
 * follows the manifest.
 *
 * State: sorted tables (`<id JSON>\t<value JSON>`, ordered by the id's JSON text): the identity table
 * (id -> canonical id) and, for people, the profile table in `PROFILE_SHARDS` files by the hash of the
 * canonical id. A step streams each table once or twice and holds only what arrived in its run:
 * - plan: the run's identity links and the ids they name, the distinct ids of the run's profile
 *   updates; it writes the new identity table and routes each update to the shard of its canonical id;
 * - tasks: the routed updates of one shard at a time, merged into that shard's sorted table;
 * - commit: manifest, then the old snapshot's files removed, then the state pointer and run record.
 * Every table a step writes is named by the step, so a re-run after a crash reads the same inputs.
 */
import { ConfigError, NotReadyError, ReconciliationError, StagingLostError } from '../core/errors.js';
import { IdentityFold, type IdentityLink } from '../core/identity.js';
import {
  hourIso,
  ingestRecordKey,
  pendingHourPrefix,
  planKey,
  routedUpdatesKey,
  runRecordKey,
  SNAPSHOT_POINTER_KEY,
  SNAPSHOT_TABLES_PREFIX,
  snapshotManifestKey,
  snapshotPartKey,
  snapshotTableKey,
  stepId,
  stepWorkPrefix,
  taskResultKey,
} from '../core/layout.js';
import { getJson, listAll, type ObjectStore, putJson, putJsonOnce } from '../core/object-store.js';
import type { PipelineConfig, SnapshotSource } from '../core/pipeline-config.js';
import type { EngineStores } from '../core/ports.js';
import {
  applyUpdate,
  emptyFoldCounts,
  type FoldCounts,
  mergeProfile,
  type Operation,
  type ProfileUpdate,
  type Properties,
  profileShard,
} from '../core/profiles.js';
import { IDENTITY_RECORD, PROFILE_RECORD } from '../core/record-columns.js';
import type {
  IngestRecord,
  PartRecord,
  RunRecord,
  SnapshotManifest,
  SnapshotPlan,
  SnapshotPointer,
  SnapshotTaskResult,
  TableFile,
} from '../core/records.js';
import { ingestStart, snapshotCut } from '../core/routing.js';
import { symlinkBody, symlinkKey } from '../core/warehouse/glue-tables.js';
import { HOUR_MS, type Window, ZoneCalendar } from '../core/windows.js';
import type { StepTiming } from './commit.js';
import { NdjsonObjectWriter, RollingWriters } from './object-writers.js';
import { type PartWriter, partExtension, partFormatOf, partOpener } from './part-formats.js';
import {
  DEFAULT_PLAN_LIMITS,
  groupIntoTasks,
  type PlanLimits,
  readIngestWatermark,
  readPlan,
  windowRecord,
} from './plan.js';
import { readSourceLines } from './source-lines.js';

/** Files the profile table is split into, by the hash of the canonical id: the unit of a task. */
export const PROFILE_SHARDS = 32;
/** Longest state line read back (a profile is one line; the vendor caps a profile far below this). */
const MAX_TABLE_LINE_BYTES = 64 * 1024 * 1024;
const IDENTITY_TABLE = 'identity';

function sourceOf(config: PipelineConfig): SnapshotSource {
  if (config.data_source === 'events') throw new ConfigError(`${config.name} is an events pipeline`);
  return config.data_source;
}

/** The state pointer of the last committed snapshot, if any. */
export function readSnapshotPointer(state: ObjectStore): Promise<SnapshotPointer | undefined> {
  return getJson<SnapshotPointer>(state, SNAPSHOT_POINTER_KEY);
}

// ---- plan ------------------------------------------------------------------------------------

/**
 * Plans the snapshot of `window`: folds the identity links that arrived since the last snapshot into
 * a new identity table and (people) routes the profile updates to the shards of their canonical ids.
 * Persisted, so a re-run repeats the same tasks.
 */
export async function planSnapshot(
  stores: EngineStores,
  config: PipelineConfig,
  window: Window,
  limits: PlanLimits = DEFAULT_PLAN_LIMITS,
): Promise<SnapshotPlan> {
  const id = stepId({ kind: 'regular', window });
  const existing = await getJson<SnapshotPlan>(stores.state, planKey(id));
  if (existing !== undefined) return existing;
  const source = sourceOf(config);
  const calendar = new ZoneCalendar(config.time_zone);
  const base = await readSnapshotPointer(stores.state);
  const fromHour = base === undefined ? ingestStart(config, calendar) : Date.parse(base.through_hour);
  const cut = snapshotCut(window);
  if (cut < fromHour)
    throw new ConfigError(`step ${id} is older than the snapshot ${base?.step_id} the state already holds`);
  const watermark = await readIngestWatermark(stores.state, ingestStart(config, calendar));
  if (watermark < cut)
    throw new NotReadyError(
      `step ${id} needs every arrival hour before ${hourIso(cut)} ingested; ingested up to ${hourIso(watermark)}`,
    );
  const pending = await pendingObjects(stores.state, fromHour, cut);

  // Identity first: every update of the run goes to the profile its id resolves to at the run's end.
  const links = await readLinks(stores.state, pending.identity.keys);
  checkRead(id, 'identity links', links.length, pending.identity.records);
  const linked = new Set(links.flatMap((link) => link.ids));
  const current = new Map<string, string>();
  await readTable(stores.state, base?.identity, (key, value) => {
    const idText = JSON.parse(key) as string;
    if (linked.has(idText)) current.set(idText, JSON.parse(value) as string);
  });
  const fold = new IdentityFold(current);
  for (const link of links) fold.apply(link);

  const updated =
    source === 'people' ? await distinctIds(stores.state, pending.people.keys) : new Set<string>();
  const resolvedElsewhere = new Map<string, string>(); // updated id -> its canonical id, when not itself
  const resolve = (idText: string, canonical: string) => {
    if (canonical !== idText && updated.has(idText)) resolvedElsewhere.set(idText, canonical);
  };
  // Without new links the table stays as it is: it is only read, to resolve the updated ids.
  let identity = base?.identity;
  if (links.length > 0 || identity === undefined)
    identity = await rewriteIdentityTable(stores.state, base?.identity, fold, id, resolve);
  else if (updated.size > 0)
    await readTable(stores.state, identity, (key, value) => resolve(JSON.parse(key), JSON.parse(value)));

  const shards = base?.profiles?.length ?? PROFILE_SHARDS;
  let routedUpdates = 0;
  let merged = 0;
  let tasks: number[][] = [[]];
  let routedShards: number[] = [];
  if (source === 'people') {
    const routed = new ShardFiles(stores.state, id, shards);
    // Profiles whose id now resolves to another move there (ids that were their own canonical id).
    const moved = new Map<string, string>();
    for (const [from, to] of fold.remapped()) moved.set(JSON.stringify(from), JSON.stringify(to));
    for (const [from, to] of fold.newIds())
      if (from !== to) moved.set(JSON.stringify(from), JSON.stringify(to));
    merged = await routeMovedProfiles(stores.state, base?.profiles, moved, routed);
    routedUpdates = await routeUpdates(stores.state, pending.people.keys, resolvedElsewhere, routed);
    checkRead(id, 'profile updates', routedUpdates, pending.people.records);
    const routedFiles = await routed.finish();
    routedShards = routedFiles.flatMap((file, shard) => (file === undefined ? [] : [shard]));
    const shardBytes = Array.from({ length: shards }, (_, shard) => ({
      shard,
      bytes: (routedFiles[shard]?.bytes ?? 0) + (base?.profiles?.[shard]?.bytes ?? 0),
    }));
    tasks = groupIntoTasks(shardBytes, limits).map((group) => group.map((s) => s.shard));
  }
  const plan: SnapshotPlan = {
    step_id: id,
    kind: 'snapshot',
    window: windowRecord(window),
    ...(base === undefined ? {} : { base }),
    from_hour: hourIso(fromHour),
    through_hour: hourIso(cut),
    identity,
    links: links.length,
    updates: routedUpdates,
    merged,
    routed: routedShards,
    tasks,
  };
  return putJsonOnce(stores.state, planKey(id), plan);
}

/** The lines a plan read must be the lines the ingest records kept: else a pending object was lost. */
function checkRead(id: string, what: string, read: number, recorded: number): void {
  if (read !== recorded)
    throw new ReconciliationError(
      `step ${id} does not balance, nothing committed: the ingest records kept ${recorded} ${what} but ${read} were read`,
    );
}

/** The pending objects of the arrival hours `[from, to)` by source, in arrival order, and their lines. */
async function pendingObjects(
  state: ObjectStore,
  from: number,
  to: number,
): Promise<Record<SnapshotSource, { keys: string[]; records: number }>> {
  const found = {
    people: { keys: [] as string[], records: 0 },
    identity: { keys: [] as string[], records: 0 },
  };
  for (let hour = from; hour < to; hour += HOUR_MS) {
    const record = await getJson<IngestRecord>(state, ingestRecordKey(hour));
    if (record === undefined) throw new NotReadyError(`arrival hour ${hourIso(hour)} is not ingested`);
    for (const object of record.pending ?? []) {
      found[object.source].keys.push(object.key);
      found[object.source].records += object.records;
    }
  }
  return found;
}

/** A pending line: `<time ms>\t<JSON>`, with its place in arrival order. */
interface Pending<T> {
  readonly timeMs: number;
  readonly order: number;
  readonly value: T;
}

/** Reads pending lines (`<time ms>\t<JSON>`) in arrival order. */
async function readPending(
  state: ObjectStore,
  keys: readonly string[],
  onLine: (timeMs: number, json: string) => void,
  afterChunk: () => Promise<void> = noWait,
): Promise<void> {
  for (const key of keys)
    await readTabbed(state, key, (time, json) => onLine(Number(time), json), afterChunk);
}

/** The run's identity links, in the order they apply: by time, then by arrival. */
async function readLinks(state: ObjectStore, keys: readonly string[]): Promise<IdentityLink[]> {
  const links: Pending<IdentityLink>[] = [];
  await readPending(state, keys, (timeMs, json) =>
    links.push({ timeMs, order: links.length, value: JSON.parse(json) as IdentityLink }),
  );
  return links.sort(byTimeThenArrival).map((link) => link.value);
}

function byTimeThenArrival(a: Pending<unknown>, b: Pending<unknown>): number {
  return a.timeMs - b.timeMs || a.order - b.order;
}

async function distinctIds(state: ObjectStore, keys: readonly string[]): Promise<Set<string>> {
  const ids = new Set<string>();
  await readPending(state, keys, (_, json) => ids.add((JSON.parse(json) as ProfileUpdate).distinctId));
  return ids;
}

/**
 * Writes the identity table after `fold`: the old rows with their canonical ids resolved again, and
 * the new ids merged in key order. `onRow` sees every row written.
 */
async function rewriteIdentityTable(
  state: ObjectStore,
  base: TableFile | undefined,
  fold: IdentityFold,
  id: string,
  onRow: (idText: string, canonical: string) => void,
): Promise<TableFile> {
  const added = [...fold.newIds()]
    .map(([idText, canonical]) => ({ key: JSON.stringify(idText), idText, canonical }))
    .sort((a, b) => compareKeys(a.key, b.key));
  const writer = new NdjsonObjectWriter(state, snapshotTableKey(id, IDENTITY_TABLE), 'none');
  const write = (key: string, idText: string, canonical: string) => {
    writer.addText(`${key}\t${JSON.stringify(canonical)}`);
    onRow(idText, canonical);
  };
  let next = 0;
  await readTable(
    state,
    base,
    (key, value) => {
      for (; next < added.length && compareKeys(added[next]!.key, key) < 0; next += 1) {
        const row = added[next]!;
        write(row.key, row.idText, row.canonical);
      }
      const idText = JSON.parse(key) as string;
      write(key, idText, fold.resolve(JSON.parse(value) as string));
    },
    () => writer.drain(),
  );
  for (; next < added.length; next += 1) {
    const row = added[next]!;
    write(row.key, row.idText, row.canonical);
  }
  const written = await writer.close();
  return { key: written.key, records: written.records, bytes: written.bytes };
}

/**
 * Moves the profiles of ids that now resolve to another id: each is read from its shard and routed to
 * its new canonical id's shard as a merge, and its old row is dropped. Reads only shards holding one.
 */
async function routeMovedProfiles(
  state: ObjectStore,
  tables: readonly TableFile[] | undefined,
  moved: ReadonlyMap<string, string>,
  routed: ShardFiles,
): Promise<number> {
  if (tables === undefined || moved.size === 0) return 0;
  const shards = new Set([...moved.keys()].map((key) => profileShard(key, tables.length)));
  let merged = 0;
  for (const shard of [...shards].sort((a, b) => a - b)) {
    await readTable(
      state,
      tables[shard],
      (key, value) => {
        const to = moved.get(key);
        if (to === undefined) return;
        merged += 1;
        routed.add(shard, `${ROUTED.drop}\t${key}`);
        routed.add(profileShard(to, tables.length), `${ROUTED.merge}\t${to}\t${key}\t${value}`);
      },
      () => routed.settle(),
    );
  }
  return merged;
}

/** Routes every profile update of the run to the shard of its canonical id; returns how many. */
async function routeUpdates(
  state: ObjectStore,
  keys: readonly string[],
  resolvedElsewhere: ReadonlyMap<string, string>,
  routed: ShardFiles,
): Promise<number> {
  let order = 0;
  await readPending(
    state,
    keys,
    (timeMs, json) => {
      const update = JSON.parse(json) as ProfileUpdate;
      const canonical = JSON.stringify(resolvedElsewhere.get(update.distinctId) ?? update.distinctId);
      routed.add(
        profileShard(canonical, routed.shards),
        `${ROUTED.update}\t${canonical}\t${timeMs}\t${order}\t${JSON.stringify(update.operations)}`,
      );
      order += 1;
    },
    () => routed.settle(),
  );
  return order;
}

/** Kinds of routed lines: `U\t<key>\t<time>\t<order>\t<operations>`, `M\t<key>\t<from key>\t<properties>`, `D\t<key>`. */
const ROUTED = { update: 'U', merge: 'M', drop: 'D' } as const;

/** The routed-updates files of a step, one per shard, written as lines arrive. */
class ShardFiles {
  private readonly writers = new Map<number, NdjsonObjectWriter>();

  constructor(
    private readonly state: ObjectStore,
    private readonly id: string,
    readonly shards: number,
  ) {}

  add(shard: number, line: string): void {
    let writer = this.writers.get(shard);
    if (writer === undefined) {
      writer = new NdjsonObjectWriter(this.state, routedUpdatesKey(this.id, shard), 'none');
      this.writers.set(shard, writer);
    }
    writer.addText(line);
  }

  async settle(): Promise<void> {
    for (const writer of this.writers.values()) if (writer.backpressured) await writer.drain();
  }

  /** Closes every file; the result is indexed by shard. */
  async finish(): Promise<(TableFile | undefined)[]> {
    const files: (TableFile | undefined)[] = Array.from({ length: this.shards }, () => undefined);
    for (const [shard, writer] of this.writers) {
      const written = await writer.close();
      files[shard] = { key: written.key, records: written.records, bytes: written.bytes };
    }
    return files;
  }
}

// ---- tasks -----------------------------------------------------------------------------------

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
    close: async (writer) => {
      const written = await writer.close();
      return {
        key: written.key,
        day: plan.window.day,
        records: written.records,
        bytes: written.bytes,
        uncompressed_bytes: written.uncompressedBytes,
      };
    },
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
  const written = await table.close();
  return { key: written.key, records: written.records, bytes: written.bytes };
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
      line(bytes) {
        const fields = bytes.toString('utf8').split('\t');
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

// ---- commit ----------------------------------------------------------------------------------

/**
 * Commits a snapshot step. It proves its balance first (every routed update applied). Then the manifest
 * replaces the pipeline's last one in one put; then the parts of the snapshot it replaces (and only
 * those: the base snapshot's, as its pointer lists them) are removed; then the state pointer moves to
 * the new tables and the run record marks the step done (once); last, the old tables, the folded
 * pending updates and the work files are dropped. A re-run at any point ends in the same state, and an
 * attempt whose base is no longer the state's snapshot (a newer one committed) changes nothing.
 */
export async function commitSnapshot(
  stores: EngineStores,
  config: PipelineConfig,
  id: string,
  timing: StepTiming,
): Promise<RunRecord> {
  const done = await getJson<RunRecord>(stores.state, runRecordKey(id));
  if (done !== undefined) {
    const plan = await getJson<SnapshotPlan>(stores.state, planKey(id));
    if (plan !== undefined) await dropFolded(stores, plan);
    return done;
  }
  const plan = await readPlan<SnapshotPlan>(stores.state, id);
  const source = sourceOf(config);
  const pointer = await readSnapshotPointer(stores.state);
  if (pointer !== undefined && pointer.step_id !== plan.base?.step_id && pointer.step_id !== plan.step_id)
    throw new ConfigError(
      `step ${plan.step_id} was planned on snapshot ${plan.base?.step_id ?? '(none)'} but the state is at ${pointer.step_id}`,
    );
  const results: SnapshotTaskResult[] = [];
  for (let task = 0; task < plan.tasks.length; task += 1) {
    const result = await getJson<SnapshotTaskResult>(stores.state, taskResultKey(plan.step_id, task));
    if (result === undefined) throw new NotReadyError(`step ${plan.step_id}: task ${task} has not finished`);
    results.push(result);
  }
  const applied = sum(results, (r) => r.updates);
  if (applied !== plan.updates)
    throw new ReconciliationError(
      `step ${plan.step_id} does not balance, nothing committed: ${plan.updates} profile updates routed, ${applied} applied`,
    );
  const parts = results.flatMap((r) => r.parts).sort((a, b) => (a.key < b.key ? -1 : 1));
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
    parts: parts.map((p) => ({
      file: p.key.slice(p.key.lastIndexOf('/') + 1),
      records: p.records,
      bytes: p.bytes,
      uncompressed_bytes: p.uncompressed_bytes,
    })),
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
  const record = await putJsonOnce<RunRecord>(stores.state, runRecordKey(plan.step_id), {
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
    started_at: new Date(timing.startedAt).toISOString(),
    finished_at: new Date(timing.finishedAt).toISOString(),
    duration_ms: timing.finishedAt - timing.startedAt,
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
  await dropFolded(stores, plan);
  return record;
}

/** Drops what a committed snapshot step no longer needs: tables no pointer names, folded updates, work files. */
async function dropFolded(stores: EngineStores, plan: SnapshotPlan): Promise<void> {
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

// ---- tables ----------------------------------------------------------------------------------

/** Order of table keys (the ids' JSON text): plain UTF-16 order, the same everywhere. */
function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Streams a sorted table's rows as key and value text; a missing table (`undefined`) has none. */
async function readTable(
  state: ObjectStore,
  file: TableFile | undefined,
  onRow: (key: string, value: string) => void,
  afterChunk: () => Promise<void> = noWait,
): Promise<void> {
  if (file !== undefined) await readTabbed(state, file.key, onRow, afterChunk);
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
      line(bytes) {
        const text = bytes.toString('utf8');
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
function stateLost(key: string, where: string): StagingLostError {
  return new StagingLostError(
    `${key} in ${where} is missing, though the pipeline's committed state names it`,
  );
}

function corruptState(key: string) {
  return (_head: Buffer, totalBytes: number, lineNumber: number): never => {
    throw new Error(`state line ${lineNumber} of ${key} is ${totalBytes} bytes: the state is corrupt`);
  };
}

async function noWait(): Promise<void> {}

function sum<T>(items: readonly T[], value: (item: T) => number): number {
  return items.reduce((total, item) => total + value(item), 0);
}
