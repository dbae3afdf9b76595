import { NotReadyError } from '../core/errors.js';
import {
  hourIso,
  hourStamp,
  INGEST_WATERMARK_KEY,
  ingestRecordKey,
  parseStagingIndexKey,
  planKey,
  type StepRef,
  stagingIndexPrefix,
  stepId,
} from '../core/layout.js';
import { getJson, listAll, putJson, putJsonOnce } from '../core/object-store.js';
import type { PipelineConfig } from '../core/pipeline-config.js';
import type { EngineStores } from '../core/ports.js';
import type { ExportUnit, IngestRecord, PlannedObject, StepPlan, UnitObject } from '../core/records.js';
import { dedupHorizonStart, ingestNeededUntil, ingestStart } from '../core/routing.js';
import { floorHour, HOUR_MS, type Window, ZoneCalendar } from '../core/windows.js';

/** How a step is cut into tasks. */
export interface PlanLimits {
  /** Staged (compressed) bytes one export task aims to read. */
  readonly taskTargetBytes: number;
  /** Most dedup keys one export unit holds in memory (about 100 bytes each). */
  readonly maxKeysPerUnit: number;
  /** Widest fan-out of one step. */
  readonly maxTasks: number;
}

/** Tasks of a few seconds of work, well inside a Lambda; at most ~100 MB of dedup keys per task. */
export const DEFAULT_PLAN_LIMITS: PlanLimits = {
  taskTargetBytes: 64 * 1024 * 1024,
  maxKeysPerUnit: 1_000_000,
  maxTasks: 1000,
};

/** First arrival hour without an ingest record (every earlier hour from the ingest start has one). */
export async function readIngestWatermark(state: EngineStores['state'], start: number): Promise<number> {
  const stored = await getJson<{ next_hour: string }>(state, INGEST_WATERMARK_KEY);
  return stored === undefined ? start : Math.max(start, Date.parse(stored.next_hour));
}

/** Fails step `id` as not ready unless every arrival hour from `start` to `needed` has its ingest record. */
export async function requireIngested(
  state: EngineStores['state'],
  id: string,
  start: number,
  needed: number,
): Promise<void> {
  const watermark = await readIngestWatermark(state, start);
  if (watermark < needed)
    throw new NotReadyError(
      `step ${id} needs every arrival hour before ${hourIso(needed)} ingested; ingested up to ${hourIso(watermark)}`,
    );
}

/** Moves the ingest watermark past every consecutive committed hour and returns it. */
export async function advanceIngestWatermark(state: EngineStores['state'], start: number): Promise<number> {
  const initial = await readIngestWatermark(state, start);
  let next = initial;
  while ((await state.getBytes(ingestRecordKey(next))) !== undefined) next += HOUR_MS;
  if (next !== initial) await putJson(state, INGEST_WATERMARK_KEY, { next_hour: hourIso(next) });
  return next;
}

/**
 * Plans a step from the ingest records alone (never from a listing of staged data): the staged objects
 * whose events it exports (their owners name it), the dedup keys of earlier copies a sync needs, grouped
 * into tasks of about `limits.taskTargetBytes`, and how many events the ingest records routed to it per
 * event day, which its commit must account for. The staging index (a marker per event hour and arrival
 * hour) says which records to read. Persisted once, so every attempt repeats the same tasks and names.
 */
export async function planStep(
  stores: EngineStores,
  config: PipelineConfig,
  step: StepRef,
  limits: PlanLimits = DEFAULT_PLAN_LIMITS,
): Promise<StepPlan> {
  const id = stepId(step);
  const existing = await getJson<StepPlan>(stores.state, planKey(id));
  if (existing !== undefined) return existing;

  const calendar = new ZoneCalendar(config.time_zone);
  const needed = ingestNeededUntil(config, step, calendar);
  await requireIngested(stores.state, id, ingestStart(config, calendar), needed);
  const records = new IngestRecords(stores, needed);
  const { hours, routedFrom } =
    step.kind === 'regular'
      ? await regularReads(id, step.window, records)
      : await syncReads(id, step.arrivalDay, calendar, records);
  const routed: Record<string, number> = {};
  for (const record of routedFrom) {
    for (const [day, n] of Object.entries(record.owners[id] ?? {})) routed[day] = (routed[day] ?? 0) + n;
  }
  const units = hours.flatMap(({ eventHour, reads }) => slicedUnits(eventHour, limits, reads));
  const plan: StepPlan = {
    step_id: id,
    kind: step.kind,
    ...(step.kind === 'regular' ? { window: windowRecord(step.window) } : { arrival_day: step.arrivalDay }),
    tasks: groupIntoTasks(units, limits),
    routed: Object.fromEntries(Object.entries(routed).sort(([a], [b]) => (a < b ? -1 : 1))),
    staged: hours.flatMap(({ reads }) => reads.filter((r) => r.read === 'records').map((r) => r.object)),
  };
  return putJsonOnce(stores.state, planKey(id), plan);
}

/** The persisted plan of step `id`; a step's tasks and commit run only after its plan. */
export async function readPlan<Plan>(state: EngineStores['state'], id: string): Promise<Plan> {
  const plan = await getJson<Plan>(state, planKey(id));
  if (plan === undefined) throw new NotReadyError(`step ${id} has no plan: plan it before its tasks`);
  return plan;
}

/** A window as plans, manifests and run records show it. */
export function windowRecord(window: Window): NonNullable<StepPlan['window']> {
  return {
    id: window.id,
    start: new Date(window.start).toISOString(),
    end: new Date(window.end).toISOString(),
    day: window.day,
  };
}

/** One staged object a step reads, and how. */
interface Read {
  readonly object: PlannedObject;
  readonly read: 'records' | 'keys';
}

/** What a step reads, by event hour (its stamp, ascending; objects in arrival order), and the records routing to it. */
interface StepReads {
  readonly hours: { readonly eventHour: string; readonly reads: Read[] }[];
  readonly routedFrom: readonly IngestRecord[];
}

/** A regular step reads the objects of its window's hours that name it among their owners. */
async function regularReads(id: string, window: Window, records: IngestRecords): Promise<StepReads> {
  const hours: StepReads['hours'] = [];
  const routedFrom = new Map<number, IngestRecord>();
  for (let hour = floorHour(window.start); hour < window.end; hour += HOUR_MS) {
    const eventHour = hourStamp(hour);
    const reads: Read[] = [];
    for (const [arrivalHour, record] of await records.stagedInto(eventHour)) {
      if (record.owners[id] !== undefined) routedFrom.set(arrivalHour, record);
      for (const object of objectsOf(record, eventHour))
        if (object.owners.includes(id)) reads.push({ object, read: 'records' });
    }
    if (reads.length > 0) hours.push({ eventHour, reads });
  }
  return { hours, routedFrom: [...routedFrom.values()] };
}

/**
 * A sync step of arrival day A reads the late events of A (objects of A's hours that name it) and, for
 * their event hours, the dedup keys of every earlier copy that arrived within the dedup horizon.
 */
async function syncReads(
  id: string,
  arrivalDay: string,
  calendar: ZoneCalendar,
  records: IngestRecords,
): Promise<StepReads> {
  const dayEnd = calendar.dayEnd(arrivalDay);
  const routedFrom: IngestRecord[] = [];
  const lateHours = new Set<string>();
  // The arrival hours of day A are the UTC hours whose start falls on A in project time.
  for (let hour = floorHour(calendar.dayStart(arrivalDay)); hour < dayEnd; hour += HOUR_MS) {
    if (calendar.localDate(hour) !== arrivalDay) continue;
    const record = await records.committed(hour);
    routedFrom.push(record);
    for (const object of record.staged) if (object.owners.includes(id)) lateHours.add(object.event_hour);
  }
  const horizon = dedupHorizonStart(calendar, arrivalDay);
  const hours: StepReads['hours'] = [];
  for (const eventHour of [...lateHours].sort(byStamp)) {
    const reads: Read[] = [];
    for (const [arrivalHour, record] of await records.stagedInto(eventHour)) {
      if (arrivalHour < horizon || arrivalHour >= dayEnd || calendar.localDate(arrivalHour) > arrivalDay)
        continue;
      for (const object of objectsOf(record, eventHour)) {
        if (object.owners.includes(id)) reads.push({ object, read: 'records' });
        else if (object.keys_key !== undefined) reads.push({ object, read: 'keys' });
      }
    }
    hours.push({ eventHour, reads });
  }
  return { hours, routedFrom };
}

/** The staged objects of one event hour an ingest record names, with their arrival hour. */
function objectsOf(record: IngestRecord, eventHour: string): PlannedObject[] {
  return record.staged
    .filter((object) => object.event_hour === eventHour)
    .map((object) => ({ ...object, arrival_hour: record.arrival_hour }));
}

/** Time order of hour stamps (years past 9999 have more digits). */
function byStamp(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

/**
 * The units of one event hour: one, or several slices by dedup-key hash when the hour holds more
 * records than one task should keep keys of. Every slice reads all the hour's objects.
 */
function slicedUnits(eventHour: string, limits: PlanLimits, reads: readonly Read[]): ExportUnit[] {
  const objects: UnitObject[] = reads.map(({ object, read }) => ({
    key: read === 'records' ? object.key : object.keys_key!,
    read,
    arrival_hour: object.arrival_hour,
  }));
  const bytes = reads.reduce((sum, r) => sum + r.object.bytes, 0);
  const records = reads.reduce((sum, r) => sum + r.object.records, 0);
  const slices = Math.max(1, Math.ceil(records / limits.maxKeysPerUnit));
  return Array.from({ length: slices }, (_, slice) => ({
    event_hour: eventHour,
    slice,
    slices,
    objects,
    bytes,
  }));
}

/** Splits units (kept whole: dedup needs all of a unit) into tasks of about `taskTargetBytes`. */
export function groupIntoTasks<Unit extends { readonly bytes: number }>(
  units: readonly Unit[],
  limits: PlanLimits,
): Unit[][] {
  const total = units.reduce((sum, u) => sum + u.bytes, 0);
  const target = Math.max(limits.taskTargetBytes, Math.ceil(total / limits.maxTasks));
  const tasks: Unit[][] = [];
  let current: Unit[] = [];
  let currentBytes = 0;
  for (const u of units) {
    if (current.length > 0 && currentBytes + u.bytes > target) {
      tasks.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(u);
    currentBytes += u.bytes;
  }
  if (current.length > 0 || tasks.length === 0) tasks.push(current);
  return tasks;
}

/** Ingest records as a step reads them (each once), and which arrival hours staged into an event hour. */
export class IngestRecords {
  private readonly records = new Map<number, Promise<IngestRecord | undefined>>();

  /** @param needed every arrival hour before it is ingested (the step checked) */
  constructor(
    private readonly stores: EngineStores,
    private readonly needed: number,
  ) {}

  /** The record of an hour the step needs; a missing one is a state that lost a commit. */
  async committed(hour: number): Promise<IngestRecord> {
    const record = await this.get(hour);
    if (record === undefined) throw new NotReadyError(`arrival hour ${hourIso(hour)} is not ingested`);
    return record;
  }

  get(hour: number): Promise<IngestRecord | undefined> {
    let record = this.records.get(hour);
    if (record === undefined) {
      record = getJson<IngestRecord>(this.stores.state, ingestRecordKey(hour));
      this.records.set(hour, record);
    }
    return record;
  }

  /**
   * The committed ingest records that staged events of `eventHour`, by arrival hour (ascending). A
   * marker of an hour not committed yet (its ingest is under way) is skipped when the step does not
   * need that hour; one the step needs must have its record.
   */
  async stagedInto(eventHour: string): Promise<[number, IngestRecord][]> {
    const found: [number, IngestRecord][] = [];
    for (const { key } of await listAll(this.stores.state, stagingIndexPrefix(eventHour))) {
      const arrivalHour = parseStagingIndexKey(key);
      if (arrivalHour === undefined) continue;
      const record =
        arrivalHour < this.needed ? await this.committed(arrivalHour) : await this.get(arrivalHour);
      if (record !== undefined) found.push([arrivalHour, record]);
    }
    return found.sort(([a], [b]) => a - b);
  }
}
