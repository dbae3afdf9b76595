import type { ValidEvent } from './event-line.js';
import { type StepRef, stepId } from './layout.js';
import type { PipelineConfig } from './pipeline-config.js';
import { FILTERED, LATE_NOT_SYNCED, OUTSIDE_RANGE, type Owner } from './records.js';
import { compileWhere, type Properties, type WherePredicate } from './where.js';
import { addDays, floorHour, HOUR_MS, isOnTime, type Window, type ZoneCalendar } from './windows.js';

/** What routing reads of a valid event. */
export type RoutedEvent = Pick<ValidEvent, 'timeMs' | 'eventName' | 'record'>;

/** Where one valid event goes (docs/contract.md#semantics). */
export interface Route {
  /** The step that exports it, or why none does. */
  readonly owner: Owner;
  readonly window: Window;
  /** Kept in staging for its step. */
  readonly staged: boolean;
  /** Late for its window (arrived after the window's end + 2 h). */
  readonly late: boolean;
}

/**
 * Routes events of one pipeline: the window by event time, on time or late by arrival hour, then the
 * owner: the window's regular step, the sync step of the arrival day, or a reason it is not exported.
 * Window and step-id lookups are cached, so routing costs a map lookup per event; a `where` filter
 * adds the parse of the event's record.
 */
export class EventRouter {
  private readonly allowedNames: ReadonlySet<string> | undefined;
  private readonly where: WherePredicate | undefined;
  private readonly stepIds = new Map<Window, string>();

  constructor(
    private readonly config: PipelineConfig,
    readonly calendar: ZoneCalendar,
  ) {
    this.allowedNames = config.event_names === undefined ? undefined : new Set(config.event_names);
    this.where = config.where === undefined ? undefined : compileWhere(config.where);
  }

  /** Routes a valid event that arrived in the hour starting `arrivalHour`. */
  route(event: RoutedEvent, arrivalHour: number): Route {
    const window = this.calendar.window(this.config.frequency, event.timeMs);
    const late = !isOnTime(arrivalHour, window);
    if (!this.inRange(window.day)) return { owner: OUTSIDE_RANGE, window, staged: false, late };
    if (!this.selects(event)) return { owner: FILTERED, window, staged: false, late };
    if (!late) return { owner: this.regularStepId(window), window, staged: true, late };
    if (!this.config.sync) return { owner: LATE_NOT_SYNCED, window, staged: false, late };
    return {
      owner: stepId({ kind: 'sync', arrivalDay: this.calendar.localDate(arrivalHour) }),
      window,
      staged: true,
      late,
    };
  }

  /** True when event day `day` is inside the pipeline's date range. */
  inRange(day: string): boolean {
    return day >= this.config.from_date && (this.config.to_date === undefined || day <= this.config.to_date);
  }

  /** True when the pipeline's filters (event names, then `where`) keep the event. */
  private selects(event: RoutedEvent): boolean {
    if (this.allowedNames !== undefined && !this.allowedNames.has(event.eventName)) return false;
    if (this.where === undefined) return true;
    const record = JSON.parse(event.record.toString('utf8')) as { properties: Properties };
    return this.where(record.properties);
  }

  private regularStepId(window: Window): string {
    let id = this.stepIds.get(window);
    if (id === undefined) {
      id = stepId({ kind: 'regular', window });
      this.stepIds.set(window, id);
    }
    return id;
  }
}

/**
 * Days the dedup keys of a staged copy are read by sync steps: a late copy arriving on day A is dropped
 * as a duplicate of every copy that arrived from 35 days before A on (docs/contract.md#exactly-once).
 * Counted in days of the pipeline's own progress, not of the clock: a pipeline paused for months keeps
 * the keys its next syncs need.
 */
export const DEDUP_HORIZON_DAYS = 35;

/** The first arrival hour whose copies' dedup keys the sync of `arrivalDay` reads. */
export function dedupHorizonStart(calendar: ZoneCalendar, arrivalDay: string): number {
  return floorHour(calendar.dayStart(addDays(arrivalDay, -DEDUP_HORIZON_DAYS)));
}

/** The arrival day of the last sync that reads the dedup keys of copies that arrived in `arrivalHour`. */
export function lastSyncReadingKeys(calendar: ZoneCalendar, arrivalHour: number): string {
  const day = calendar.localDate(arrivalHour);
  const next = addDays(day, 1);
  const bucket = floorHour(calendar.dayStart(next)) <= arrivalHour ? next : day;
  return addDays(bucket, DEDUP_HORIZON_DAYS);
}

/** A step and the instant it becomes due. */
export interface DueStep {
  readonly step: StepRef;
  readonly id: string;
  readonly dueAt: number;
}

/**
 * The first arrival hour a pipeline ingests. Events: one day before `from_date`, so events whose clock
 * ran ahead of their arrival by up to a day are still found. Snapshots fold what arrived from
 * `from_date` on.
 */
export function ingestStart(config: PipelineConfig, calendar: ZoneCalendar): number {
  const first = config.data_source === 'events' ? addDays(config.from_date, -1) : config.from_date;
  return floorHour(calendar.dayStart(first));
}

/** The first arrival hour the snapshot of `window` does not fold: it folds every complete hour before. */
export function snapshotCut(window: Window): number {
  return floorHour(window.end);
}

/**
 * How long after an arrival hour ends its folder may still receive objects: Firehose names an object
 * by the arrival of its oldest record and writes it up to one buffering interval (at most 15 minutes)
 * later, plus the write. An hour is read only once settled, so steps run this long after their hours end.
 */
export const ARRIVAL_SETTLE_MS = 20 * 60_000;
/** A step runs this long after the end of its window (regular) or arrival day (sync). */
export const DUE_AFTER_END_MS = 2 * HOUR_MS + ARRIVAL_SETTLE_MS;

/** The arrival hours that are complete at `now` (ended and settled), from the pipeline's ingest start. */
export function completeArrivalHours(config: PipelineConfig, calendar: ZoneCalendar, now: number): number[] {
  const hours: number[] = [];
  for (let h = ingestStart(config, calendar); h + HOUR_MS + ARRIVAL_SETTLE_MS <= now; h += HOUR_MS)
    hours.push(h);
  return hours;
}

/** Every ingest hour before this must be committed before `step` can run. */
export function ingestNeededUntil(config: PipelineConfig, step: StepRef, calendar: ZoneCalendar): number {
  if (config.data_source !== 'events' && step.kind === 'regular') return snapshotCut(step.window);
  if (step.kind === 'regular') return floorHour(step.window.end + HOUR_MS) + HOUR_MS;
  return Math.ceil(calendar.dayEnd(step.arrivalDay) / HOUR_MS) * HOUR_MS;
}

/**
 * Every step due at `now`, oldest due first (regular before sync at the same instant): the regular
 * run of each window from `from_date` once its end + 2 h has passed and the hours it reads settled, and
 * with sync the sync run of each arrival day A from `from_date` likewise after the end of A. Whether a
 * step already ran is the caller's business.
 */
export function dueSteps(config: PipelineConfig, calendar: ZoneCalendar, now: number): DueStep[] {
  return dueStepsAfter(config, calendar, now, Number.NEGATIVE_INFINITY);
}

/**
 * The steps of `dueSteps` due after `after` (`dueAt > after`), in the same order. Only the windows and
 * sync days since `after` are enumerated, so the cost follows the steps returned, not the pipeline's
 * age: a schedule that knows everything due up to a mark is done asks for the steps after it.
 */
export function dueStepsAfter(
  config: PipelineConfig,
  calendar: ZoneCalendar,
  now: number,
  after: number,
): DueStep[] {
  const due: DueStep[] = [];
  // Every step is due at or before `now`.
  if (!(after < now)) return due;
  // A step is due after `after` when the end of its window or arrival day is after this.
  const endsAfter = after - DUE_AFTER_END_MS;
  const lastWindowEnd =
    config.to_date === undefined
      ? now - DUE_AFTER_END_MS
      : Math.min(now - DUE_AFTER_END_MS, calendar.dayEnd(config.to_date));
  const firstStart = calendar.dayStart(config.from_date);
  if (lastWindowEnd > firstStart) {
    // The window containing `endsAfter` is the first to end after it.
    const from = Math.max(firstStart, endsAfter);
    for (const window of calendar.windowsBetween(config.frequency, from, lastWindowEnd)) {
      if (window.end + DUE_AFTER_END_MS > now) break;
      const step: StepRef = { kind: 'regular', window };
      due.push({ step, id: stepId(step), dueAt: window.end + DUE_AFTER_END_MS });
    }
  }
  if (config.sync) {
    // The day containing `endsAfter` is the first to end after it.
    const first = endsAfter < firstStart ? config.from_date : calendar.localDate(endsAfter);
    for (let day = first; calendar.dayEnd(day) + DUE_AFTER_END_MS <= now; day = addDays(day, 1)) {
      const step: StepRef = { kind: 'sync', arrivalDay: day };
      due.push({ step, id: stepId(step), dueAt: calendar.dayEnd(day) + DUE_AFTER_END_MS });
    }
  }
  return due.sort((a, b) => a.dueAt - b.dueAt || kindOrder(a.step) - kindOrder(b.step));
}

/**
 * How many of a snapshot pipeline's due windows (oldest first) its committed snapshots cover: a
 * snapshot folds everything before its window, so all of them up to the latest committed.
 */
export function snapshotCovered(due: readonly DueStep[], committed: ReadonlySet<string>): number {
  return due.findLastIndex((d) => committed.has(d.id)) + 1;
}

/**
 * The due steps still to run, oldest first: every uncommitted one for events; for a snapshot pipeline
 * at most one, its latest due window, folding everything since its last snapshot.
 */
export function pendingSteps(
  config: PipelineConfig,
  due: readonly DueStep[],
  committed: ReadonlySet<string>,
): DueStep[] {
  if (config.data_source === 'events') return due.filter((d) => !committed.has(d.id));
  return snapshotCovered(due, committed) === due.length ? [] : due.slice(-1);
}

function kindOrder(step: StepRef): number {
  return step.kind === 'regular' ? 0 : 1;
}
