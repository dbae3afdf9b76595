import { ReconciliationError } from '../core/errors.js';
import {
  manifestKey,
  partPrefix,
  planKey,
  runRecordKey,
  stagingIndexKey,
  stepId,
  stepWorkPrefix,
} from '../core/layout.js';
import { getJson, listAll, putJson, putJsonOnce } from '../core/object-store.js';
import type { PipelineConfig } from '../core/pipeline-config.js';
import type { EngineStores } from '../core/ports.js';
import type {
  DayCounts,
  IngestRecord,
  Manifest,
  PartRecord,
  PlannedObject,
  RunRecord,
  StepPlan,
  TaskResult,
} from '../core/records.js';
import { dedupHorizonStart, lastSyncReadingKeys } from '../core/routing.js';
import { addDays, HOUR_MS, ZoneCalendar } from '../core/windows.js';
import { IngestRecords, readPlan } from './plan.js';
import {
  commitOnce,
  manifestParts,
  partsOf,
  readTaskResults,
  runTiming,
  type StepTiming,
  sum,
} from './step-results.js';
import { mergeStepSchemas } from './warehouse.js';

/**
 * Commits a step after all its tasks. First it proves its balance: per event day, the events it exported
 * plus the duplicates it dropped must equal what the ingest records routed to it (a lost or truncated
 * staged object, a doubled line) — any difference fails the step with a `ReconciliationError` and
 * nothing is committed. Then it writes a manifest into every day folder it touched (a regular step always
 * writes one, even for an empty window: readers wait for it), removes parts a crashed attempt may have
 * left under its own names, merges the properties its tasks saw into the pipeline's warehouse schema
 * (once per step), and writes the run record that marks the step done (once: a racing attempt
 * reads the one that landed). Last, the staged data no uncommitted step needs any more is removed, and
 * the work files. Manifests hold no timestamps, so a re-run writes the same bytes.
 */
export function commitStep(
  stores: EngineStores,
  config: PipelineConfig,
  id: string,
  timing: StepTiming,
): Promise<RunRecord> {
  return commitOnce(stores.state, id, {
    commit: () => commitPlan(stores, config, id, timing),
    release: () => releaseStaging(stores, config, id),
  });
}

/** Balances a step not committed yet, writes its manifests and its run record (see `commitStep`). */
async function commitPlan(
  stores: EngineStores,
  config: PipelineConfig,
  id: string,
  timing: StepTiming,
): Promise<RunRecord> {
  const plan = await readPlan<StepPlan>(stores.state, id);
  const results = await readTaskResults<TaskResult>(stores.state, plan);
  const days = mergeDays(results);
  if (plan.window !== undefined) days[plan.window.day] ??= { exported: 0, duplicates: 0 };
  const parts = partsOf(results);
  const imbalance = [...balanceProblems(plan, days), ...partProblems(days, parts)];
  if (imbalance.length > 0) {
    // Nothing of an unbalanced step stays where a reader or crawler would find it.
    await stores.destination.delete(parts.map((part) => part.key));
    throw new ReconciliationError(
      `step ${plan.step_id} does not balance, nothing committed: ${imbalance.join('; ')}`,
    );
  }

  for (const day of Object.keys(days).sort()) {
    const dayParts = parts.filter((p) => p.day === day);
    await putJson(
      stores.destination,
      manifestKey(config.project_id, day, config.name, plan.step_id),
      manifest(config, plan, day, days[day]!, dayParts),
    );
    await removeStrays(stores, config, plan.step_id, day, dayParts);
  }
  await mergeStepSchemas(stores.state, plan.step_id, results);

  return putJsonOnce<RunRecord>(stores.state, runRecordKey(plan.step_id), {
    step_id: plan.step_id,
    pipeline: config.name,
    kind: plan.kind,
    ...(plan.window === undefined ? {} : { window: plan.window }),
    ...(plan.arrival_day === undefined ? {} : { arrival_day: plan.arrival_day }),
    status: 'succeeded',
    days,
    exported: sum(Object.values(days), (d) => d.exported),
    duplicates: sum(Object.values(days), (d) => d.duplicates),
    parts: parts.length,
    bytes: sum(parts, (p) => p.bytes),
    tasks: plan.tasks.length,
    ...runTiming(timing),
  });
}

/** Where exported plus dropped differs from what ingest routed to the step, day by day. */
function balanceProblems(plan: StepPlan, days: Readonly<Record<string, DayCounts>>): string[] {
  const problems: string[] = [];
  for (const day of [...new Set([...Object.keys(plan.routed), ...Object.keys(days)])].sort()) {
    const routed = plan.routed[day] ?? 0;
    const { exported, duplicates } = days[day] ?? { exported: 0, duplicates: 0 };
    if (exported + duplicates !== routed)
      problems.push(
        `event day ${day}: ingest routed ${routed} events to it, its tasks exported ${exported} and dropped ${duplicates} duplicates`,
      );
  }
  return problems;
}

/** Where the parts' own record counts (their writers') differ from what the tasks exported, day by day. */
function partProblems(days: Readonly<Record<string, DayCounts>>, parts: readonly PartRecord[]): string[] {
  return Object.entries(days).flatMap(([day, { exported }]) => {
    const written = sum(
      parts.filter((p) => p.day === day),
      (p) => p.records,
    );
    return written === exported
      ? []
      : [`event day ${day}: its tasks exported ${exported} events, its parts hold ${written}`];
  });
}

/**
 * Removes what no uncommitted step needs any more: the staged objects whose owners have all committed,
 * the dedup keys past the horizon of the syncs still to come (a sync's commit passes it over one day of
 * arrival hours), and the index markers of event hours whose objects are all gone. Then the step's work
 * files. Idempotent: a re-run after a crash removes the rest.
 */
async function releaseStaging(stores: EngineStores, config: PipelineConfig, id: string): Promise<void> {
  const plan = await getJson<StepPlan>(stores.state, planKey(id));
  if (plan === undefined) return; // released already: the plan goes last
  const calendar = new ZoneCalendar(config.time_zone);
  const committed = new CommittedSteps(stores, plan.step_id);
  const records = new IngestRecords(stores, Number.NEGATIVE_INFINITY);
  const staged: string[] = [];
  const markers: string[] = [];
  const consumed = async (object: PlannedObject | IngestRecord['staged'][number]) =>
    (await Promise.all(object.owners.map((owner) => committed.has(owner)))).every(Boolean);
  /** Whether the keys of copies that arrived in `hour` are past every sync still to come. */
  const keysDone = async (hour: number) =>
    !config.sync || committed.has(stepId({ kind: 'sync', arrivalDay: lastSyncReadingKeys(calendar, hour) }));
  /** The marker of (event hour, arrival hour) goes once all its objects are consumed and their keys done. */
  const releaseHour = async (eventHour: string, arrivalHour: number) => {
    const record = await records.get(arrivalHour);
    const objects = record?.staged.filter((object) => object.event_hour === eventHour) ?? [];
    if (!(await keysDone(arrivalHour))) return;
    for (const object of objects) if (!(await consumed(object))) return;
    markers.push(stagingIndexKey(eventHour, arrivalHour));
    staged.push(
      ...objects.flatMap((object) => [
        object.key,
        ...(object.keys_key === undefined ? [] : [object.keys_key]),
      ]),
    );
  };

  const pairs = new Map<string, [string, number]>();
  for (const object of plan.staged) {
    if (await consumed(object)) staged.push(object.key);
    const arrivalHour = Date.parse(object.arrival_hour);
    pairs.set(`${object.event_hour}/${arrivalHour}`, [object.event_hour, arrivalHour]);
  }
  if (plan.arrival_day !== undefined) {
    // This sync is the last to read the keys of one more day of arrival hours.
    const from = dedupHorizonStart(calendar, plan.arrival_day);
    const to = dedupHorizonStart(calendar, addDays(plan.arrival_day, 1));
    for (let hour = from; hour < to; hour += HOUR_MS) {
      const record = await records.get(hour);
      for (const object of record?.staged ?? []) {
        if (object.keys_key !== undefined) staged.push(object.keys_key);
        pairs.set(`${object.event_hour}/${hour}`, [object.event_hour, hour]);
      }
    }
  }
  for (const [eventHour, arrivalHour] of pairs.values()) await releaseHour(eventHour, arrivalHour);
  await stores.staging.delete([...new Set(staged)]);
  await stores.state.delete(markers);
  const work = (await listAll(stores.state, stepWorkPrefix(plan.step_id))).map((o) => o.key);
  // The plan last: while it is there, a re-run knows what to release.
  await stores.state.delete(work.filter((key) => key !== planKey(plan.step_id)));
  await stores.state.delete([planKey(plan.step_id)]);
}

/** Which steps have committed (their run record exists), each looked up once. */
class CommittedSteps {
  private readonly known = new Map<string, Promise<boolean>>();

  constructor(
    private readonly stores: EngineStores,
    committing: string,
  ) {
    this.known.set(committing, Promise.resolve(true));
  }

  has(id: string): Promise<boolean> {
    let found = this.known.get(id);
    if (found === undefined) {
      found = this.stores.state.getBytes(runRecordKey(id)).then((bytes) => bytes !== undefined);
      this.known.set(id, found);
    }
    return found;
  }
}

function manifest(
  config: PipelineConfig,
  plan: StepPlan,
  day: string,
  counts: DayCounts,
  parts: PartRecord[],
): Manifest {
  return {
    format: 'mp-pipelines/manifest@1',
    project_id: config.project_id,
    pipeline: config.name,
    step_id: plan.step_id,
    kind: plan.kind,
    ...(plan.window === undefined ? {} : { window: plan.window }),
    ...(plan.arrival_day === undefined ? {} : { arrival_day: plan.arrival_day }),
    day,
    records: counts.exported,
    bytes: sum(parts, (p) => p.bytes),
    uncompressed_bytes: sum(parts, (p) => p.uncompressed_bytes),
    duplicates_dropped: counts.duplicates,
    parts: manifestParts(parts),
  };
}

/** Deletes objects under the step's own part names in a day folder that the manifest does not list. */
async function removeStrays(
  stores: EngineStores,
  config: PipelineConfig,
  id: string,
  day: string,
  kept: PartRecord[],
): Promise<void> {
  const keep = new Set(kept.map((p) => p.key));
  const strays = (await listAll(stores.destination, partPrefix(config.project_id, day, config.name, id)))
    .map((o) => o.key)
    .filter((key) => !keep.has(key));
  await stores.destination.delete(strays);
}

function mergeDays(results: TaskResult[]): Record<string, DayCounts> {
  const days: Record<string, DayCounts> = {};
  for (const result of results) {
    for (const [day, counts] of Object.entries(result.days)) {
      const merged = days[day] ?? { exported: 0, duplicates: 0 };
      merged.exported += counts.exported;
      merged.duplicates += counts.duplicates;
      days[day] = merged;
    }
  }
  return Object.fromEntries(Object.entries(days).sort(([a], [b]) => (a < b ? -1 : 1)));
}
