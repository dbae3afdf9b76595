/** The plan of a snapshot step; `snapshot-tables.ts` describes the state it folds into. */
import { ConfigError, ReconciliationError } from '../core/errors.js';
import { IdentityFold, type IdentityLink } from '../core/identity.js';
import { hourIso, planKey, routedUpdatesKey, snapshotTableKey, stepId } from '../core/layout.js';
import { getJson, type ObjectStore, putJsonOnce } from '../core/object-store.js';
import type { PipelineConfig, SnapshotSource } from '../core/pipeline-config.js';
import type { EngineStores } from '../core/ports.js';
import { idDigest, type ProfileUpdate, profileShard } from '../core/profiles.js';
import type { SnapshotPlan, TableFile } from '../core/records.js';
import { ingestStart, snapshotCut } from '../core/routing.js';
import { HOUR_MS, type Window, ZoneCalendar } from '../core/windows.js';
import { NdjsonObjectWriter } from './object-writers.js';
import {
  DEFAULT_PLAN_LIMITS,
  groupIntoTasks,
  IngestRecords,
  type PlanLimits,
  requireIngested,
  windowRecord,
} from './plan.js';
import {
  byTimeThenArrival,
  compareKeys,
  type Pending,
  ROUTED,
  readPending,
  readSnapshotPointer,
  readTable,
  sourceOf,
  tableFile,
} from './snapshot-tables.js';

/** Files the profile table is split into, by the hash of the canonical id: the unit of a task. */
export const PROFILE_SHARDS = 32;
/** Profile updates per shard a first snapshot aims at: a task holds one shard's changes in memory. */
const UPDATES_PER_SHARD = 8192;
const MAX_PROFILE_SHARDS = 1024;

/**
 * The shard count of a first snapshot: 32, doubled while its shards would hold more than
 * `UPDATES_PER_SHARD` updates each (a million new profiles: 128 shards, about 20 MB per fold instead of
 * 80). Later snapshots keep the count of the table they rewrite.
 */
export function firstSnapshotShards(updates: number): number {
  let shards = PROFILE_SHARDS;
  while (shards * UPDATES_PER_SHARD < updates && shards < MAX_PROFILE_SHARDS) shards *= 2;
  return shards;
}
const IDENTITY_TABLE = 'identity';

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
  await requireIngested(stores.state, id, ingestStart(config, calendar), cut);
  const pending = await pendingObjects(new IngestRecords(stores, cut), fromHour, cut);

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

  // Digests, not ids: an id that only shares an updated id's digest adds an entry no update looks up.
  const updated =
    source === 'people' ? await updatedIdDigests(stores.state, pending.people.keys) : new Set<number>();
  const resolvedElsewhere = new Map<string, string>(); // updated id -> its canonical id, when not itself
  const resolve = (idText: string, canonical: string) => {
    if (canonical !== idText && updated.has(idDigest(idText))) resolvedElsewhere.set(idText, canonical);
  };
  // Without new links the table stays as it is: it is only read, to resolve the updated ids.
  let identity = base?.identity;
  if (links.length > 0 || identity === undefined)
    identity = await rewriteIdentityTable(stores.state, base?.identity, fold, id, resolve);
  else if (updated.size > 0)
    await readTable(stores.state, identity, (key, value) => resolve(JSON.parse(key), JSON.parse(value)));

  const shards = base?.profiles?.length ?? firstSnapshotShards(pending.people.records);
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
  records: IngestRecords,
  from: number,
  to: number,
): Promise<Record<SnapshotSource, { keys: string[]; records: number }>> {
  const found = {
    people: { keys: [] as string[], records: 0 },
    identity: { keys: [] as string[], records: 0 },
  };
  for (let hour = from; hour < to; hour += HOUR_MS) {
    const record = await records.committed(hour);
    for (const object of record.pending ?? []) {
      found[object.source].keys.push(object.key);
      found[object.source].records += object.records;
    }
  }
  return found;
}

/** The run's identity links, in the order they apply: by time, then by arrival. */
async function readLinks(state: ObjectStore, keys: readonly string[]): Promise<IdentityLink[]> {
  const links: Pending<IdentityLink>[] = [];
  await readPending(state, keys, (timeMs, json) =>
    links.push({ timeMs, order: links.length, value: JSON.parse(json) as IdentityLink }),
  );
  return links.sort(byTimeThenArrival).map((link) => link.value);
}

async function updatedIdDigests(state: ObjectStore, keys: readonly string[]): Promise<Set<number>> {
  const digests = new Set<number>();
  await readPending(state, keys, (_, json) =>
    digests.add(idDigest((JSON.parse(json) as ProfileUpdate).distinctId)),
  );
  return digests;
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
  return tableFile(await writer.close());
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
    for (const [shard, writer] of this.writers) files[shard] = tableFile(await writer.close());
    return files;
  }
}
