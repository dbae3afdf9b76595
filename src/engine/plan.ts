import { NotReadyError } from '../core/errors.js';
import {
  hourIso,
  hourStamp,
  INGEST_WATERMARK_KEY,
  ingestRecordKey,
  parseStagedKey,
  planKey,
  type StagedName,
  type StepRef,
  stagedKeysKey,
  stageHourPrefix,
  stepId,
} from '../core/layout.js';
import { getJson, listAll, putJson } from '../core/object-store.js';
import type { PipelineConfig } from '../core/pipeline-config.js';
import type { ExportUnit, IngestRecord, StepPlan, UnitObject } from '../core/records.js';
import { ingestNeededUntil, ingestStart } from '../core/routing.js';
import { floorHour, HOUR_MS, isOnTime, type Window, ZoneCalendar } from '../core/windows.js';
import type { EngineStores } from './stores.js';

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

/** Moves the ingest watermark past every consecutive committed hour and returns it. */
export async function advanceIngestWatermark(state: EngineStores['state'], start: number): Promise<number> {
  const initial = await readIngestWatermark(state, start);
  let next = initial;
  while ((await state.getBytes(ingestRecordKey(next))) !== undefined) next += HOUR_MS;
  if (next !== initial) await putJson(state, INGEST_WATERMARK_KEY, { next_hour: hourIso(next) });
  return next;
}

/**
 * Plans a step: which staged objects each export task reads, grouped into tasks of about
 * `limits.taskTargetBytes`. Depends only on committed ingests, so it is the same whenever it runs; it is
 * persisted anyway so a re-run after a crash repeats exactly the same tasks and part names.
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
  const start = ingestStart(config, calendar);
  const watermark = await readIngestWatermark(stores.state, start);
  const needed = ingestNeededUntil(config, step, calendar);
  if (watermark < needed) {
    throw new NotReadyError(
      `step ${id} needs every arrival hour before ${hourIso(needed)} ingested; ingested up to ${hourIso(watermark)}`,
    );
  }
  const committed = new CommittedStaging(stores, start);
  const units =
    step.kind === 'regular'
      ? await regularUnits(step.window, committed, limits)
      : await syncUnits(step.arrivalDay, calendar, committed, limits);
  const plan: StepPlan = {
    step_id: id,
    kind: step.kind,
    ...(step.kind === 'regular' ? { window: windowRecord(step.window) } : { arrival_day: step.arrivalDay }),
    tasks: groupIntoTasks(units, limits),
  };
  await putJson(stores.state, planKey(id), plan);
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

async function regularUnits(
  window: Window,
  committed: CommittedStaging,
  limits: PlanLimits,
): Promise<ExportUnit[]> {
  const units: ExportUnit[] = [];
  for (let hour = floorHour(window.start); hour < window.end; hour += HOUR_MS) {
    const objects = (await committed.ofHour(hour)).filter((s) => isOnTime(s.name.arrivalHour, window));
    if (objects.length > 0)
      units.push(
        ...slicedUnits(
          hour,
          limits,
          objects.map((object) => ({ object, read: 'records' as const })),
        ),
      );
  }
  return units;
}

async function syncUnits(
  arrivalDay: string,
  calendar: ZoneCalendar,
  committed: CommittedStaging,
  limits: PlanLimits,
): Promise<ExportUnit[]> {
  // The arrival hours of day A are the UTC hours whose start falls on A in project time.
  const dayEnd = calendar.dayEnd(arrivalDay);
  const firstLate = new Map<number, number>(); // event hour -> first arrival hour of A with late events of it
  for (let hour = floorHour(calendar.dayStart(arrivalDay)); hour < dayEnd; hour += HOUR_MS) {
    if (calendar.localDate(hour) !== arrivalDay) continue;
    for (const staged of (await committed.ingestRecord(hour)).staged) {
      const name = parseStagedKey(staged.key);
      if (staged.late > 0 && name !== undefined && !firstLate.has(name.eventHour))
        firstLate.set(name.eventHour, hour);
    }
  }
  const units: ExportUnit[] = [];
  for (const [eventHour, firstLateHour] of [...firstLate].sort(([a], [b]) => a - b)) {
    const objects = (await committed.ofHour(eventHour)).filter(
      (s) => s.name.arrivalHour < dayEnd && calendar.localDate(s.name.arrivalHour) <= arrivalDay,
    );
    units.push(
      ...slicedUnits(
        eventHour,
        limits,
        objects.map((object) => ({
          object,
          // Earlier copies only contribute their dedup keys; late-bearing objects of day A are exported.
          read:
            object.name.arrivalHour >= firstLateHour && object.late > 0
              ? ('records' as const)
              : ('keys' as const),
        })),
      ),
    );
  }
  return units;
}

interface CommittedObject {
  readonly key: string;
  readonly name: StagedName;
  readonly bytes: number;
  readonly records: number;
  readonly late: number;
}

/**
 * The units of one event hour: one, or several slices by dedup-key hash when the hour holds more
 * records than one task should keep keys of. Every slice reads all the hour's objects.
 */
function slicedUnits(
  eventHour: number,
  limits: PlanLimits,
  reads: { object: CommittedObject; read: 'records' | 'keys' }[],
): ExportUnit[] {
  const objects: UnitObject[] = reads.map(({ object, read }) => ({
    key: read === 'records' ? object.key : stagedKeysKey(object.name),
    read,
  }));
  const bytes = reads.reduce((sum, r) => sum + r.object.bytes, 0);
  const records = reads.reduce((sum, r) => sum + r.object.records, 0);
  const slices = Math.max(1, Math.ceil(records / limits.maxKeysPerUnit));
  return Array.from({ length: slices }, (_, slice) => ({
    event_hour: hourStamp(eventHour),
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

/**
 * Staged objects that belong to committed ingests. Listing a staging hour can also show leftovers of
 * an ingest that crashed; only objects named in their hour's ingest record count.
 */
class CommittedStaging {
  private readonly records = new Map<number, Promise<IngestRecord | undefined>>();

  constructor(
    private readonly stores: EngineStores,
    private readonly start: number,
  ) {}

  /** The ingest record of an hour the step needs; missing means the step ran too early. */
  async ingestRecord(hour: number): Promise<IngestRecord> {
    const record = await this.committedRecord(hour);
    if (record === undefined) throw new NotReadyError(`arrival hour ${hourIso(hour)} is not ingested`);
    return record;
  }

  private committedRecord(hour: number): Promise<IngestRecord | undefined> {
    let record = this.records.get(hour);
    if (record === undefined) {
      record = getJson<IngestRecord>(this.stores.state, ingestRecordKey(hour));
      this.records.set(hour, record);
    }
    return record;
  }

  async ofHour(eventHour: number): Promise<CommittedObject[]> {
    const found: CommittedObject[] = [];
    for (const info of await listAll(this.stores.staging, stageHourPrefix(eventHour))) {
      const name = parseStagedKey(info.key);
      if (name === undefined || name.arrivalHour < this.start) continue;
      // An hour still being ingested (or never committed) has no record yet: its objects do not exist.
      const record = await this.committedRecord(name.arrivalHour);
      const staged = record?.staged.find((s) => s.key === info.key);
      if (staged !== undefined) {
        found.push({ key: info.key, name, bytes: staged.bytes, records: staged.records, late: staged.late });
      }
    }
    return found;
  }
}
