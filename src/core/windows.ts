/**
 * Export windows (docs/contract.md#windows): calendar hours and days of the project's IANA time zone,
 * DST-correct.
 *
 * - A daily window is a maximal interval of instants with one event day: the local date (23- and
 *   25-hour days exist; a day may start at 01:00 where DST begins at midnight; a date a zone skipped,
 *   Apia 2011-12-30, has no window). Where a clock fell back across midnight (St Johns, Goose Bay and
 *   Moncton until 2006-2010: 00:01 -> 23:01 of the day before; Casey 2010: 02:00 -> 23:00) the time
 *   after midnight counts for the earlier date, which the clock shows again right after: otherwise that
 *   date would have two windows with one id. In general, the event day of t is the earliest local date
 *   shown at t or later.
 * - An hourly window is a maximal interval with one (local date, local hour, UTC offset): the repeated
 *   fall-back hour is two windows, a skipped hour is none, and in zones with 30/45-minute offsets or
 *   30-minute DST shifts windows start at :15/:30/:45 UTC or last 15, 30 or 45 minutes.
 *
 * All instants are epoch milliseconds; luxon's `IANAZone` (the runtime's ICU data) is the only source
 * of zone rules. Assumes a zone changes offset at most once in any day (a scan of every zone, 1900-2100,
 * found no two transitions within 3 days).
 */
import { IANAZone } from 'luxon';
import { ConfigError } from './errors.js';

/** How long a pipeline's export windows are. */
export type Frequency = 'hourly' | 'daily';

/** One hour in milliseconds. */
export const HOUR_MS = 3_600_000;
/** One (UTC, 24-hour) day in milliseconds. */
export const DAY_MS = 86_400_000;

const MINUTE_MS = 60_000;
const SECOND_MS = 1_000;
/** Per-frequency bound of the UTC-hour cache; cleared wholesale when exceeded. */
const CACHE_LIMIT = 100_000;
const OFFSET_CACHE_LIMIT = 1_000;
/** Offsets beyond the `Date` range are taken from its edges (luxon returns NaN there). */
const MAX_INSTANT = 8_640_000_000_000_000;
const MIN_INSTANT = -MAX_INSTANT + 2 * DAY_MS;
/** A window is found in at most a couple of steps; more means rules this module does not support. */
const MAX_STEPS = 8;

/** A calendar hour or day of the project's zone: `[start, end)` in epoch ms. */
export interface Window {
  readonly frequency: Frequency;
  /** Epoch ms, inclusive. */
  readonly start: number;
  /** Epoch ms, exclusive. */
  readonly end: number;
  /**
   * Unique, file-name safe (no ':' or '/'): daily `2024-11-03`; hourly: local wall-clock start
   * `YYYY-MM-DDTHHMM` + UTC offset `+HHMM`/`-HHMM`, e.g. `2024-11-03T0100-0400`, `2024-01-15T1000+0545`.
   * Sorts in time order within a day except across a fall-back: east of UTC the repeated hour sorts
   * second-first (`T0200+0200` is before `T0200+0100` in time, after it as text). Seconds are appended
   * to either part only for historical offsets with seconds (Monrovia -00:44:30 until 1972).
   */
  readonly id: string;
  /**
   * Local date `YYYY-MM-DD` of the window's start: the event-day folder the window writes into. (Its
   * event day, strictly: in a St Johns minute after a midnight the clock then fell back across, the
   * hourly window `1990-10-28T0000-0230` is in day 1990-10-27, like the daily window.)
   */
  readonly day: string;
}

interface WindowCache {
  /** `Math.floor(t / HOUR_MS)` -> the windows intersecting that UTC hour, ascending. */
  readonly byHour: Map<number, readonly Window[]>;
  /** Start -> window: one object per window, whichever hour it was first looked up from. */
  readonly byStart: Map<number, Window>;
  /** The window returned last: events come mostly in time order, so this answers most calls. */
  last: Window | undefined;
}

/** Calendar arithmetic in one IANA zone; cache-friendly, reuse one per zone. */
export class ZoneCalendar {
  /** The zone name as given. */
  readonly timeZone: string;
  private readonly zone: IANAZone;
  private readonly hourly: WindowCache = { byHour: new Map(), byStart: new Map(), last: undefined };
  private readonly daily: WindowCache = { byHour: new Map(), byStart: new Map(), last: undefined };
  /** Recent `offset()` answers: a call costs microseconds, and adjacent windows ask at the same instants. */
  private readonly offsets = new Map<number, number>();

  /** Throws `ConfigError` when `timeZone` is not a zone the runtime knows. */
  constructor(timeZone: string) {
    // `create` caches per name, validity included. Offset names ("+05:00") are valid zones on newer
    // runtimes only: refuse them everywhere.
    const zone = IANAZone.create(timeZone);
    if (/^[+-]/.test(timeZone) || !zone.isValid) {
      throw new ConfigError(
        `unknown time zone ${JSON.stringify(timeZone)}: use an IANA name such as "Europe/Berlin" or "America/New_York"`,
      );
    }
    this.timeZone = timeZone;
    this.zone = zone;
  }

  /** UTC offset in minutes at instant `t` (fractional only for historical offsets with seconds). */
  offsetMinutes(t: number): number {
    return this.offsetMs(t) / MINUTE_MS;
  }

  /** `YYYY-MM-DD` local date (event day) of instant `t`. */
  localDate(t: number): string {
    return this.window('daily', t).day;
  }

  /** First instant whose local date is `date` (for a date the zone skipped: the first one after it). */
  dayStart(date: string): number {
    const n = parseDate(date);
    if (n === undefined) throw new ConfigError(`invalid date ${JSON.stringify(date)}: expected YYYY-MM-DD`);
    return this.dayNumberStart(n);
  }

  /** First instant whose local day number is `n` or later. */
  private dayNumberStart(n: number): number {
    const utcMidnight = n * DAY_MS;
    let w = this.window('daily', utcMidnight - this.offsetMs(utcMidnight));
    while (dayNumber(w) < n) w = this.window('daily', w.end);
    for (;;) {
      const previous = this.window('daily', w.start - 1);
      if (dayNumber(previous) < n) return w.start;
      w = previous;
    }
  }

  /** First instant of the date after `date`. */
  dayEnd(date: string): number {
    return this.dayStart(addDays(date, 1));
  }

  /** The window of `frequency` containing instant `t`. Per call: a field check, else a map lookup. */
  window(frequency: Frequency, t: number): Window {
    const cache = frequency === 'hourly' ? this.hourly : this.daily;
    const last = cache.last;
    if (last !== undefined && t >= last.start && t < last.end) return last;
    const hour = Math.floor(t / HOUR_MS);
    const list = cache.byHour.get(hour) ?? this.fillHour(frequency, cache, hour);
    for (const w of list) {
      if (t < w.end) {
        cache.last = w;
        return w;
      }
    }
    throw new Error(`internal: no ${frequency} window for ${t} in ${this.timeZone}`);
  }

  /** All windows intersecting `[from, to)`, ascending; empty when `to <= from`. */
  windowsBetween(frequency: Frequency, from: number, to: number): Window[] {
    const windows: Window[] = [];
    if (!(from < to)) return windows;
    let w = this.window(frequency, from);
    windows.push(w);
    while (w.end < to) {
      w = this.window(frequency, w.end);
      windows.push(w);
    }
    return windows;
  }

  /** The window whose id is `id`; throws `ConfigError` when `id` names no window in this zone. */
  windowById(frequency: Frequency, id: string): Window {
    const start = frequency === 'daily' ? this.dailyStartOfId(id) : hourlyStartOfId(id);
    const w = start === undefined ? undefined : this.window(frequency, start);
    if (w === undefined || w.start !== start || w.id !== id) {
      throw new ConfigError(
        `${JSON.stringify(id)} names no ${frequency} window in time zone ${JSON.stringify(this.timeZone)}`,
      );
    }
    return w;
  }

  private dailyStartOfId(id: string): number | undefined {
    const n = parseDate(id, true);
    return n === undefined ? undefined : this.dayNumberStart(n);
  }

  /** Computes and caches the windows intersecting UTC hour `hour`. */
  private fillHour(frequency: Frequency, cache: WindowCache, hour: number): readonly Window[] {
    const from = hour * HOUR_MS;
    if (!Number.isFinite(from)) throw new RangeError(`not an instant: ${from}`);
    const to = from + HOUR_MS;
    if (cache.byHour.size >= CACHE_LIMIT) cache.byHour.clear();
    // The window of the previous lookup or hour usually reaches into this hour already.
    const covers = (w: Window | undefined): w is Window => w !== undefined && w.start <= from && from < w.end;
    const before = cache.byHour.get(hour - 1);
    const previous = before?.[before.length - 1];
    let w = covers(cache.last) ? cache.last : covers(previous) ? previous : this.compute(frequency, from);
    const list = [w];
    while (w.end < to) {
      w = cache.byStart.get(w.end) ?? this.compute(frequency, w.end);
      list.push(w);
    }
    cache.byHour.set(hour, list);
    return list;
  }

  /** The window containing `t`, from zone rules (the slow path: a few `offset()` calls). */
  private compute(frequency: Frequency, t: number): Window {
    const offset = this.offsetMs(t);
    if (frequency === 'hourly') {
      // Every wall-clock hour boundary and every transition changes the (date, hour, offset) key.
      const [start] = this.stretchStart(t, offset, HOUR_MS);
      const [end] = this.stretchEnd(t, offset, HOUR_MS);
      const wall = start + offset;
      const dayNum = Math.floor(wall / DAY_MS);
      const id = `${formatDate(dayNum)}T${formatClock(wall - dayNum * DAY_MS)}${formatOffset(offset)}`;
      // The day folder is the daily window's, which differs from the wall date only in a St Johns minute.
      return this.intern(this.hourly, { frequency, start, end, id, day: this.window('daily', start).day });
    }
    const [end, dayNum] = this.dailyEnd(t, offset);
    const day = formatDate(dayNum);
    return this.intern(this.daily, {
      frequency,
      start: this.dailyStart(t, offset, dayNum),
      end,
      id: day,
      day,
    });
  }

  /**
   * End of the daily window containing `t` and its date. An instant belongs to the earliest local date
   * shown at it or at any later instant: where the clock fell back across midnight (St Johns until 2010:
   * 00:01 NDT -> 23:01 NST), the minute after midnight joins the day before instead of being a second
   * window of the next date. Elsewhere that is simply the local date.
   */
  private dailyEnd(t: number, offset: number): [number, number] {
    let day = Math.floor((t + offset) / DAY_MS);
    let x = t;
    let xOffset = offset;
    for (let step = 0; step < MAX_STEPS; step++) {
      const [b, bOffset] = this.stretchEnd(x, xOffset, DAY_MS);
      const bDay = Math.floor((b + bOffset) / DAY_MS);
      if (bDay > day) {
        // A later date starts at b, unless the clock falls back to `day` before that date ends.
        const [c, cOffset] = this.dateEnd(b, bOffset, bDay);
        const cDay = Math.floor((c + cOffset) / DAY_MS);
        if (cDay > day) return [b, day];
        [x, xOffset, day] = [c, cOffset, cDay];
      } else {
        [x, xOffset, day] = [b, bOffset, bDay];
      }
    }
    throw new Error(`unsupported rules of time zone ${this.timeZone} near ${t}`);
  }

  /** Start of the daily window of date `day` containing `t`: back while the clock shows `day` or later. */
  private dailyStart(t: number, offset: number, day: number): number {
    let x = t;
    let xOffset = offset;
    for (let step = 0; step < MAX_STEPS; step++) {
      const [b, beforeOffset] = this.stretchStart(x, xOffset, DAY_MS);
      if (Math.floor((b - 1 + beforeOffset) / DAY_MS) < day) return b;
      [x, xOffset] = [b - 1, beforeOffset];
    }
    throw new Error(`unsupported rules of time zone ${this.timeZone} near ${t}`);
  }

  /** First instant after `x` (offset `offset`) whose local date is not `day`, and its offset. */
  private dateEnd(x: number, offset: number, day: number): [number, number] {
    let [b, bOffset] = [x, offset];
    for (let step = 0; step < MAX_STEPS; step++) {
      [b, bOffset] = this.stretchEnd(b, bOffset, DAY_MS);
      if (Math.floor((b + bOffset) / DAY_MS) !== day) return [b, bOffset];
    }
    throw new Error(`unsupported rules of time zone ${this.timeZone} near ${x}`);
  }

  /**
   * A stretch is a maximal interval with one offset and one wall-clock unit (hour or day). Returns the
   * first instant of the stretch containing `t` (offset `offset`) and the offset just before it. The
   * naive start is the wall-clock unit boundary; if the offset there differs, a transition lies in
   * between and is found by binary search.
   */
  private stretchStart(t: number, offset: number, unit: number): [number, number] {
    const boundary = t - mod(t + offset, unit);
    const boundaryOffset = this.offsetMs(boundary);
    if (boundaryOffset === offset) return [boundary, this.offsetMs(boundary - 1)];
    return [this.firstChange(boundary, t, boundaryOffset), boundaryOffset];
  }

  /** First instant after the stretch containing `t` (offset `offset`), and the offset there. */
  private stretchEnd(t: number, offset: number, unit: number): [number, number] {
    const boundary = t - mod(t + offset, unit) + unit;
    if (this.offsetMs(boundary - 1) === offset) return [boundary, this.offsetMs(boundary)];
    const end = this.firstChange(t, boundary - 1, offset);
    return [end, this.offsetMs(end)];
  }

  /** The cached object for this window if there is one: one window, one object (callers key maps by it). */
  private intern(cache: WindowCache, w: Window): Window {
    const known = cache.byStart.get(w.start);
    if (known !== undefined && known.end === w.end) return known;
    if (cache.byStart.size >= CACHE_LIMIT) cache.byStart.clear();
    const frozen = Object.freeze(w);
    cache.byStart.set(w.start, frozen);
    return frozen;
  }

  /**
   * The first instant in `(lo, hi]` whose offset differs from `loOffset` (the offset at `lo`; the one at
   * `hi` differs). Binary search over whole seconds: tz transitions happen on whole seconds.
   */
  private firstChange(lo: number, hi: number, loOffset: number): number {
    let a = Math.floor(lo / SECOND_MS);
    let b = Math.floor(hi / SECOND_MS);
    while (b - a > 1) {
      const m = Math.floor((a + b) / 2);
      if (this.offsetMs(m * SECOND_MS) === loOffset) a = m;
      else b = m;
    }
    return b * SECOND_MS;
  }

  /** UTC offset in ms at `t`; luxon gives minutes, whole seconds apart from rounding noise. */
  private offsetMs(t: number): number {
    const known = this.offsets.get(t);
    if (known !== undefined) return known;
    const minutes = this.zone.offset(Math.min(Math.max(t, MIN_INSTANT), MAX_INSTANT));
    if (!Number.isFinite(minutes)) throw new RangeError(`not an instant: ${t}`);
    const offset = Math.round((minutes * MINUTE_MS) / SECOND_MS) * SECOND_MS;
    if (this.offsets.size >= OFFSET_CACHE_LIMIT) this.offsets.clear();
    this.offsets.set(t, offset);
    return offset;
  }
}

/** `date` (`YYYY-MM-DD`) plus `days` calendar days. Throws `ConfigError` on an invalid date. */
export function addDays(date: string, days: number): string {
  const n = parseDate(date);
  if (n === undefined) throw new ConfigError(`invalid date ${JSON.stringify(date)}: expected YYYY-MM-DD`);
  if (!Number.isSafeInteger(days)) throw new RangeError(`not a whole number of days: ${days}`);
  return formatDate(n + days);
}

/** True for a strict `YYYY-MM-DD` that exists in the (proleptic Gregorian) calendar. */
export function isValidDate(date: string): boolean {
  return parseDate(date) !== undefined;
}

/**
 * True when `id` is shaped like a window id of `frequency` (daily: a date; hourly: local start and
 * offset), whatever the zone: `windowById` tells whether a zone has that window.
 */
export function isWindowIdShape(frequency: Frequency, id: string): boolean {
  return (frequency === 'daily' ? parseDate(id, true) : hourlyStartOfId(id)) !== undefined;
}

/** Start of the UTC hour containing `t`. */
export function floorHour(t: number): number {
  return Math.floor(t / HOUR_MS) * HOUR_MS;
}

/**
 * docs/contract.md#on-time-vs-late: an event of window `w` that arrived in the UTC hour starting at
 * `arrivalHourStart` is on time when that hour ended no later than 2 hours after the window's end.
 */
export function isOnTime(arrivalHourStart: number, w: Window): boolean {
  return arrivalHourStart + HOUR_MS <= w.end + 2 * HOUR_MS;
}

// ---- helpers -----------------------------------------------------------------------------------

/** Epoch ms of the hourly window start an id names (`undefined` when it is not shaped like one). */
function hourlyStartOfId(id: string): number | undefined {
  const m = /^(-?\d{4,6}-\d{2}-\d{2})T(\d{2})(\d{2})(\d{2})?([+-])(\d{2})(\d{2})(\d{2})?$/.exec(id);
  const n = m?.[1] === undefined ? undefined : parseDate(m[1], true);
  if (m === null || n === undefined) return undefined;
  const num = (i: number): number => Number(m[i] ?? 0);
  const wall = n * DAY_MS + num(2) * HOUR_MS + num(3) * MINUTE_MS + num(4) * SECOND_MS;
  const offset = (m[5] === '-' ? -1 : 1) * (num(6) * HOUR_MS + num(7) * MINUTE_MS + num(8) * SECOND_MS);
  return wall - offset;
}

/** Local day number (days since 1970-01-01) of a window's `day`. */
function dayNumber(w: Window): number {
  return parseDate(w.day, true) ?? Number.NaN;
}

function mod(a: number, n: number): number {
  const r = a % n;
  return r < 0 ? r + n : r;
}

/** `HHMM` (`HHMMSS` when seconds are not zero) of ms since local midnight. */
function formatClock(msOfDay: number): string {
  const seconds = Math.floor(msOfDay / SECOND_MS);
  const hhmm = pad2(Math.floor(seconds / 3600)) + pad2(Math.floor(seconds / 60) % 60);
  return seconds % 60 === 0 ? hhmm : hhmm + pad2(seconds % 60);
}

/** `+HHMM`/`-HHMM` (seconds appended only for local mean time offsets). */
function formatOffset(offsetMs: number): string {
  const seconds = Math.abs(offsetMs) / SECOND_MS;
  const hhmm = pad2(Math.floor(seconds / 3600)) + pad2(Math.floor(seconds / 60) % 60);
  return (offsetMs < 0 ? '-' : '+') + (seconds % 60 === 0 ? hhmm : hhmm + pad2(seconds % 60));
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/**
 * Days since 1970-01-01 of a strict, existing `YYYY-MM-DD`, else `undefined`. `anyYear` also accepts the
 * wider years `formatDate` writes (events may be stamped up to year 275760).
 */
function parseDate(date: string, anyYear = false): number | undefined {
  const m = (anyYear ? /^(-?\d{4,6})-(\d{2})-(\d{2})$/ : /^(\d{4})-(\d{2})-(\d{2})$/).exec(date);
  if (m === null) return undefined;
  const y = Number(m[1]);
  const mo = Number(m[2]);
  const d = Number(m[3]);
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo)) return undefined;
  return daysFromCivil(y, mo, d);
}

function daysInMonth(y: number, m: number): number {
  if (m === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
  return m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31;
}

/** `YYYY-MM-DD` of a day number (days since 1970-01-01). */
function formatDate(days: number): string {
  const [y, m, d] = civilFromDays(days);
  const year = y < 0 ? `-${String(-y).padStart(4, '0')}` : String(y).padStart(4, '0');
  return `${year}-${pad2(m)}-${pad2(d)}`;
}

// Proleptic Gregorian day numbers (H. Hinnant's algorithms): exact for any year, no `Date` quirks.
function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * ((m + 9) % 12) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

function civilFromDays(days: number): [number, number, number] {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return [yoe + era * 400 + (m <= 2 ? 1 : 0), m, d];
}
