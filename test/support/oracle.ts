/**
 * An independent, deliberately naive model of the semantics in docs/contract.md#semantics, used to check the
 * engine end to end: it reads every raw file whole with JSON.parse, computes windows with luxon's DateTime
 * (valid for zones whose DST shifts are whole hours), orders copies by arrival, and says which record each
 * day folder must contain. It shares no code with the engine.
 */

import { isUtf8 } from 'node:buffer';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DateTime } from 'luxon';

const HOUR = 3_600_000;

/** What the oracle needs of a pipeline. */
export interface OracleConfig {
  readonly projectId: string;
  readonly timeZone: string;
  readonly frequency: 'hourly' | 'daily';
  readonly sync: boolean;
  readonly fromDate: string;
  readonly eventNames?: readonly string[];
  /** The pipeline's `where` filter, written independently as a function of the line's properties. */
  readonly selects?: (properties: Readonly<Record<string, unknown>>) => boolean;
  readonly now: number;
}

/** The oracle's verdict. */
export interface Expected {
  /** Day folder -> sorted canonical records expected in it. */
  readonly days: Map<string, string[]>;
  readonly quarantined: number;
  readonly valid: number;
  readonly duplicatesDropped: number;
}

interface Copy {
  readonly record: string;
  readonly day: string;
  readonly late: boolean;
  readonly arrivalHour: number;
  readonly key: string | undefined;
  readonly eventName: string;
  readonly selected: boolean;
  readonly windowEnd: number;
}

/** Computes the expected output of a pipeline over a raw landing zone at `now`. */
export function expectedOutput(rawDir: string, config: OracleConfig): Expected {
  const projectRoot = join(rawDir, config.projectId, 'events');
  const files = walk(projectRoot).sort();
  const firstArrival = DateTime.fromISO(config.fromDate, { zone: config.timeZone })
    .minus({ days: 1 })
    .toMillis();
  const copies: Copy[] = [];
  let quarantined = 0;
  for (const file of files) {
    const [y, m, d, h] = relative(projectRoot, file).split('/').map(Number) as [
      number,
      number,
      number,
      number,
    ];
    const arrivalHour = Date.UTC(y, m - 1, d, h);
    if (arrivalHour < Math.floor(firstArrival / HOUR) * HOUR || arrivalHour + HOUR > config.now) continue;
    let bytes = readFileSync(file);
    if (bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = gunzipSync(bytes);
    const lines = splitLines(bytes);
    for (const line of lines) {
      const copy = parse(line, arrivalHour, config);
      if (copy === undefined) quarantined += 1;
      else copies.push(copy);
    }
  }
  const seen = new Set<string>();
  const days = new Map<string, string[]>();
  let duplicatesDropped = 0;
  for (const copy of copies) {
    if (copy.day < config.fromDate) continue;
    if (config.eventNames !== undefined && !config.eventNames.includes(copy.eventName)) continue;
    if (!copy.selected) continue;
    if (copy.late && !config.sync) continue;
    const due = copy.late
      ? DateTime.fromMillis(copy.arrivalHour, { zone: config.timeZone })
          .startOf('day')
          .plus({ days: 1 })
          .toMillis() +
        2 * HOUR
      : copy.windowEnd + 2 * HOUR;
    if (due > config.now) continue;
    if (copy.key !== undefined) {
      if (seen.has(copy.key)) {
        duplicatesDropped += 1;
        continue;
      }
      seen.add(copy.key);
    }
    const list = days.get(copy.day) ?? [];
    list.push(copy.record);
    days.set(copy.day, list);
  }
  for (const list of days.values()) list.sort();
  return { days, quarantined, valid: copies.length, duplicatesDropped };
}

/** Canonical form of an output record, for comparing with `expectedOutput`. */
export function canonicalRecord(line: string): string {
  return JSON.stringify(JSON.parse(line));
}

function splitLines(bytes: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  let start = 0;
  for (let i = bytes.indexOf(10); i !== -1; i = bytes.indexOf(10, start)) {
    lines.push(bytes.subarray(start, i));
    start = i + 1;
  }
  if (start < bytes.length) lines.push(bytes.subarray(start));
  return lines;
}

function parse(line: Buffer, arrivalHour: number, config: OracleConfig): Copy | undefined {
  if (!isUtf8(line)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(line.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const { event, properties } = value as { event?: unknown; properties?: unknown };
  if (typeof event !== 'string' || event.length === 0) return undefined;
  if (typeof properties !== 'object' || properties === null || Array.isArray(properties)) return undefined;
  const props = properties as Record<string, unknown>;
  const time = props.time;
  if (typeof time !== 'number' || !Number.isFinite(time) || time < 0) return undefined;
  const timeMs = time >= 1e11 ? Math.floor(time) : Math.floor(Math.round(time * 1e6) / 1e3);
  const id = (v: unknown) => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : null);
  const local = DateTime.fromMillis(timeMs, { zone: config.timeZone });
  const windowStart =
    config.frequency === 'daily' ? local.startOf('day') : local.set({ minute: 0, second: 0, millisecond: 0 });
  const windowEnd =
    config.frequency === 'daily'
      ? windowStart.plus({ days: 1 }).startOf('day')
      : windowStart.plus({ hours: 1 });
  const insertId = id(props.$insert_id);
  const distinctId = id(props.distinct_id);
  return {
    record: JSON.stringify({
      event_name: event,
      time: timeMs,
      distinct_id: distinctId,
      device_id: id(props.$device_id),
      user_id: id(props.$user_id),
      insert_id: insertId,
      properties: props,
    }),
    day: local.toISODate()!,
    late: arrivalHour + HOUR > windowEnd.toMillis() + 2 * HOUR,
    arrivalHour,
    key:
      insertId === null
        ? undefined
        : JSON.stringify([insertId, distinctId, event, Math.floor(timeMs / 1000)]),
    eventName: event,
    selected: config.selects?.(props) ?? true,
    windowEnd: windowEnd.toMillis(),
  };
}

function walk(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries.flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}
