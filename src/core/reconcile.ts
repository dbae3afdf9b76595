import { FILTERED, type IngestRecord, LATE_NOT_SYNCED, OUTSIDE_RANGE, type RunRecord } from './records.js';

/**
 * docs/contract.md#reconciliation: for every arrival day, `source lines = valid + quarantined`, over the
 * objects read; the objects that could not be read are set aside whole and counted apart (never silently
 * skipped).
 */
export interface ArrivalDayRow {
  readonly day: string;
  readonly source_lines: number;
  readonly valid: number;
  readonly quarantined: number;
  readonly objects_set_aside: number;
  readonly bytes_set_aside: number;
  readonly balanced: boolean;
}

/**
 * docs/contract.md#reconciliation: for every event day, `valid = exported on time + exported by sync + late
 * not synced + duplicates dropped + filtered + outside the date range + pending` (pending: owned by a step
 * that is not due or has not run yet).
 */
export interface EventDayRow {
  readonly day: string;
  readonly valid: number;
  readonly on_time: number;
  readonly synced: number;
  readonly late_not_synced: number;
  readonly duplicates: number;
  readonly filtered: number;
  readonly outside_range: number;
  readonly pending: number;
  readonly balanced: boolean;
}

/**
 * Snapshot pipelines: every valid line that arrived before the last snapshot's cut was folded into it
 * (`folded`, counted by the steps that applied them); the rest waits for the next snapshot.
 */
export interface SnapshotRow {
  readonly valid: number;
  readonly folded: number;
  readonly pending: number;
  /** The first arrival hour the last snapshot did not fold. */
  readonly through_hour?: string;
  readonly balanced: boolean;
}

/** The reconciliation table and every mismatch found (empty when everything balances). */
export interface Reconciliation {
  readonly arrivalDays: readonly ArrivalDayRow[];
  readonly eventDays: readonly EventDayRow[];
  /** Snapshot pipelines only. */
  readonly snapshot?: SnapshotRow;
  readonly problems: readonly string[];
}

type MutableEventDay = { -readonly [K in keyof EventDayRow]: EventDayRow[K] };

/** Days (`YYYY-MM-DD`) a reconciliation reports; both ends included, open when absent. */
export interface DayRange {
  readonly from?: string;
  readonly to?: string;
}

/**
 * Balances what ingest saw against what steps committed. The event-day side is a real cross-check:
 * each committed step must account (exported + duplicates) for exactly the events ingest routed to it,
 * day by day; the totals come from the run records, not from ingest, so a lost or doubled line shows.
 * Every record counts; `range` only narrows the rows and problems reported to those days.
 */
export function reconcile(
  ingests: readonly IngestRecord[],
  runs: readonly RunRecord[],
  range: DayRange = {},
): Reconciliation {
  const inRange = (day: string) =>
    (range.from === undefined || day >= range.from) && (range.to === undefined || day <= range.to);
  const problems: string[] = [];
  /** A problem of one day, reported when the day is in range. */
  const problem = (day: string, message: string) => {
    if (inRange(day)) problems.push(message);
  };
  const arrival = new Map<
    string,
    {
      source_lines: number;
      valid: number;
      quarantined: number;
      objects_set_aside: number;
      bytes_set_aside: number;
    }
  >();
  const routed = new Map<string, Map<string, number>>(); // owner -> day -> events routed by ingest
  const validByDay = new Map<string, number>();

  for (const ingest of ingests) {
    const row = arrival.get(ingest.arrival_day) ?? {
      source_lines: 0,
      valid: 0,
      quarantined: 0,
      objects_set_aside: 0,
      bytes_set_aside: 0,
    };
    row.source_lines += ingest.source_lines;
    row.valid += ingest.valid;
    row.quarantined += ingest.quarantined;
    row.objects_set_aside += ingest.set_aside.length;
    row.bytes_set_aside += ingest.set_aside.reduce((sum, object) => sum + object.bytes, 0);
    arrival.set(ingest.arrival_day, row);
    let ownedInHour = 0;
    for (const [owner, byDay] of Object.entries(ingest.owners)) {
      const ownerDays = routed.get(owner) ?? new Map<string, number>();
      routed.set(owner, ownerDays);
      for (const [day, n] of Object.entries(byDay)) {
        ownerDays.set(day, (ownerDays.get(day) ?? 0) + n);
        validByDay.set(day, (validByDay.get(day) ?? 0) + n);
        ownedInHour += n;
      }
    }
    if (ingest.pending === undefined && ownedInHour !== ingest.valid) {
      problem(
        ingest.arrival_day,
        `arrival hour ${ingest.arrival_hour}: ${ingest.valid} valid lines but ${ownedInHour} routed`,
      );
    }
    const quarantineRecords = ingest.quarantine_parts.reduce((sum, part) => sum + part.records, 0);
    if (quarantineRecords !== ingest.quarantined) {
      problem(
        ingest.arrival_day,
        `arrival hour ${ingest.arrival_hour}: ${ingest.quarantined} lines quarantined but ${quarantineRecords} in quarantine files`,
      );
    }
  }

  const eventDays = new Map<string, MutableEventDay>();
  const dayRow = (day: string): MutableEventDay => {
    let row = eventDays.get(day);
    if (row === undefined) {
      row = {
        day,
        valid: validByDay.get(day) ?? 0,
        on_time: 0,
        synced: 0,
        late_not_synced: 0,
        duplicates: 0,
        filtered: 0,
        outside_range: 0,
        pending: 0,
        balanced: false,
      };
      eventDays.set(day, row);
    }
    return row;
  };
  for (const day of validByDay.keys()) dayRow(day);

  const runsById = new Map(runs.map((run) => [run.step_id, run]));
  for (const [owner, byDay] of routed) {
    for (const [day, n] of byDay) {
      const row = dayRow(day);
      if (owner === OUTSIDE_RANGE) row.outside_range += n;
      else if (owner === FILTERED) row.filtered += n;
      else if (owner === LATE_NOT_SYNCED) row.late_not_synced += n;
      else if (!runsById.has(owner)) row.pending += n;
    }
  }
  for (const run of runs) {
    const routedDays = routed.get(run.step_id) ?? new Map<string, number>();
    const days = new Set([...routedDays.keys(), ...Object.keys(run.days)]);
    for (const day of days) {
      const counts = run.days[day] ?? { exported: 0, duplicates: 0 };
      const row = dayRow(day);
      if (run.kind === 'regular') row.on_time += counts.exported;
      else row.synced += counts.exported;
      row.duplicates += counts.duplicates;
      const expected = routedDays.get(day) ?? 0;
      if (counts.exported + counts.duplicates !== expected) {
        problem(
          day,
          `${run.step_id}, event day ${day}: ingest routed ${expected} events to it but it exported ` +
            `${counts.exported} and dropped ${counts.duplicates} duplicates`,
        );
      }
    }
  }

  const eventRows = [...eventDays.values()]
    .map((row) => {
      const accounted =
        row.on_time +
        row.synced +
        row.late_not_synced +
        row.duplicates +
        row.filtered +
        row.outside_range +
        row.pending;
      if (accounted !== row.valid)
        problem(row.day, `event day ${row.day}: ${row.valid} valid but ${accounted} accounted for`);
      return { ...row, balanced: accounted === row.valid };
    })
    .filter((row) => inRange(row.day))
    .sort((a, b) => (a.day < b.day ? -1 : 1));
  const arrivalRows = [...arrival]
    .map(([day, row]) => {
      const balanced = row.source_lines === row.valid + row.quarantined;
      if (!balanced) {
        problem(
          day,
          `arrival day ${day}: ${row.source_lines} source lines but ${row.valid} valid + ${row.quarantined} quarantined`,
        );
      }
      return { day, ...row, balanced };
    })
    .filter((row) => inRange(row.day))
    .sort((a, b) => (a.day < b.day ? -1 : 1));
  const snapshot = ingests.some((i) => i.pending !== undefined)
    ? reconcileSnapshots(ingests, runs, problems)
    : undefined;
  return {
    arrivalDays: arrivalRows,
    eventDays: eventRows,
    ...(snapshot === undefined ? {} : { snapshot }),
    problems,
  };
}

function reconcileSnapshots(
  ingests: readonly IngestRecord[],
  runs: readonly RunRecord[],
  problems: string[],
): SnapshotRow {
  let folded = 0;
  let through: string | undefined;
  for (const run of runs) {
    if (run.snapshot === undefined) continue;
    folded += run.snapshot.updates + run.snapshot.links;
    if (through === undefined || run.snapshot.through_hour > through) through = run.snapshot.through_hour;
  }
  const cut = through === undefined ? Number.NEGATIVE_INFINITY : Date.parse(through);
  let valid = 0;
  let before = 0;
  for (const ingest of ingests) {
    valid += ingest.valid;
    if (Date.parse(ingest.arrival_hour) < cut) before += ingest.valid;
  }
  const balanced = folded === before;
  if (!balanced)
    problems.push(`snapshots folded ${folded} updates, but ${before} valid lines arrived before ${through}`);
  return {
    valid,
    folded,
    pending: valid - before,
    ...(through === undefined ? {} : { through_hour: through }),
    balanced,
  };
}
