/**
 * Window properties over many zones and instants (1990-2060, half of them near DST transitions),
 * checked against an independent oracle: luxon `DateTime` in the zone gives the local date, hour and
 * offset of any instant, so the window contract (maximal intervals of a constant key) is testable
 * without trusting the module's own arithmetic. Fixed seeds keep runs deterministic.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { DateTime, IANAZone } from 'luxon';
import {
  addDays,
  DAY_MS,
  type Frequency,
  HOUR_MS,
  isValidDate,
  ZoneCalendar,
} from '../../src/core/windows.js';

const ZONES = [
  'UTC',
  'America/New_York',
  'Europe/London',
  'Europe/Berlin',
  'Asia/Kathmandu',
  'Asia/Kolkata',
  'Australia/Adelaide',
  'Australia/Eucla',
  'Australia/Lord_Howe',
  'Pacific/Chatham',
  'America/St_Johns',
  'America/Santiago',
  'America/Havana',
  'Asia/Tehran',
  'Africa/Casablanca',
  'Pacific/Apia',
] as const;
type Zone = (typeof ZONES)[number];

/**
 * Zones whose DST shifts are whole hours and whose midnights are never repeated: there luxon's own
 * `startOf('day')` is the day start (at a repeated midnight, Havana's, it keeps the current offset).
 */
const STARTOF_DAY_ZONES = new Set<Zone>(
  ZONES.filter((z) => z !== 'Australia/Lord_Howe' && z !== 'America/Havana'),
);

const MINUTE_MS = 60_000;
const FIRST_YEAR = 1990;
const LAST_YEAR = 2059;
const FREQUENCIES: readonly Frequency[] = ['hourly', 'daily'];

const calendars = new Map<Zone, ZoneCalendar>(ZONES.map((zone) => [zone, new ZoneCalendar(zone)]));
function calendarOf(zone: Zone): ZoneCalendar {
  const calendar = calendars.get(zone);
  assert.ok(calendar);
  return calendar;
}

// ---- oracle ------------------------------------------------------------------------------------

function local(zone: Zone, t: number): DateTime {
  return DateTime.fromMillis(t, { zone });
}

function localDate(zone: Zone, t: number): string {
  return local(zone, t).toFormat('yyyy-MM-dd');
}

/**
 * The event day of instant t: its local date, or an earlier one the clock still shows later on. That
 * only differs where the clock fell back across midnight (St Johns until 2011: 00:01 NDT -> 23:01 NST),
 * shortly after midnight, so only the next 3 hours of such instants are sampled.
 */
function eventDay(zone: Zone, t: number): string {
  let day = localDate(zone, t);
  if (local(zone, t).hour >= 3) return day;
  for (let later = t + 5 * MINUTE_MS; later <= t + 3 * HOUR_MS; later += 5 * MINUTE_MS) {
    const date = localDate(zone, later);
    if (date < day) day = date;
  }
  return day;
}

/** The contract's key: the event day for daily windows; local date, hour and offset for hourly ones. */
function oracleKey(frequency: Frequency, zone: Zone, t: number): string {
  const dt = local(zone, t);
  return frequency === 'daily' ? eventDay(zone, t) : `${dt.toFormat('yyyy-MM-dd HH')} ${dt.offset}`;
}

/** The id the contract prescribes for the window starting at `start`. */
function oracleId(frequency: Frequency, zone: Zone, start: number): string {
  return frequency === 'daily' ? eventDay(zone, start) : local(zone, start).toFormat("yyyy-MM-dd'T'HHmmZZZ");
}

// ---- instants biased toward transitions ---------------------------------------------------------

const transitionsByZoneYear = new Map<string, number[]>();

/** Offset transitions of `zone` in `year` (weekly samples, then bisection): only to bias inputs. */
function transitions(zone: Zone, year: number): number[] {
  const key = `${zone} ${year}`;
  const known = transitionsByZoneYear.get(key);
  if (known !== undefined) return known;
  const rules = IANAZone.create(zone);
  const found: number[] = [];
  const end = Date.UTC(year + 1, 0, 1);
  for (let a = Date.UTC(year, 0, 1); a < end; a += 7 * DAY_MS) {
    let lo = a;
    let hi = Math.min(a + 7 * DAY_MS, end);
    if (rules.offset(lo) === rules.offset(hi)) continue;
    while (hi - lo > 1000) {
      const mid = Math.floor((lo + hi) / 2000) * 1000;
      if (rules.offset(mid) === rules.offset(lo)) lo = mid;
      else hi = mid;
    }
    found.push(hi);
  }
  transitionsByZoneYear.set(key, found);
  return found;
}

/** A zone and an instant: uniform over a year, or within 36 h of one of its transitions. */
const zonedInstant = fc
  .record({
    zone: fc.constantFrom(...ZONES),
    year: fc.integer({ min: FIRST_YEAR, max: LAST_YEAR }),
    nearTransition: fc.boolean(),
    pick: fc.nat(),
    delta: fc.oneof(
      fc.integer({ min: -2_000, max: 2_000 }),
      fc.integer({ min: -36 * HOUR_MS, max: 36 * HOUR_MS }),
    ),
    inYear: fc.integer({ min: 0, max: 365 * DAY_MS - 1 }),
  })
  .map(({ zone, year, nearTransition, pick, delta, inYear }) => {
    const near = transitions(zone, year);
    const anchor = near[pick % Math.max(near.length, 1)];
    const t = nearTransition && anchor !== undefined ? anchor + delta : Date.UTC(year, 0, 1) + inYear;
    return { zone, t };
  });

const frequency = fc.constantFrom(...FREQUENCIES);
const runs = (seed: number, numRuns: number) => ({ seed, numRuns, includeErrorInReport: true });

// ---- properties --------------------------------------------------------------------------------

describe('window properties (fast-check)', () => {
  test('the window of t contains t, is maximal with a constant key, and is found from any of its instants', () => {
    fc.assert(
      fc.property(zonedInstant, frequency, ({ zone, t }, f) => {
        // Arrange
        const calendar = calendarOf(zone);

        // Act
        const w = calendar.window(f, t);

        // Assert: contains t.
        assert.ok(w.start <= t && t < w.end, `${w.id} should contain ${t}`);
        assert.equal(w.frequency, f);
        // Same window from its first and last instants; the next one starts where it ends.
        assert.equal(calendar.window(f, w.start), w);
        assert.equal(calendar.window(f, w.end - 1), w);
        assert.equal(calendar.window(f, w.end).start, w.end);
        assert.equal(calendar.window(f, w.start - 1).end, w.start);
        // Constant key inside, another key just outside (the oracle, not the module, decides).
        const key = oracleKey(f, zone, w.start);
        assert.equal(oracleKey(f, zone, t), key);
        assert.equal(oracleKey(f, zone, w.end - 1), key);
        assert.notEqual(oracleKey(f, zone, w.start - 1), key);
        assert.notEqual(oracleKey(f, zone, w.end), key);
        // Id and day follow the contract; neighbours have other ids; the id names this window.
        assert.equal(w.id, oracleId(f, zone, w.start));
        assert.equal(w.day, eventDay(zone, w.start));
        assert.notEqual(calendar.window(f, w.end).id, w.id);
        assert.notEqual(calendar.window(f, w.start - 1).id, w.id);
        assert.equal(calendar.windowById(f, w.id), w);
        // A fresh calendar (empty caches) agrees with the warmed-up one.
        assert.deepEqual(new ZoneCalendar(zone).window(f, t), w);
      }),
      runs(20240310, 1000),
    );
  });

  test('windowsBetween tiles [from, to) exactly, ascending, with unique ids', () => {
    fc.assert(
      fc.property(
        zonedInstant,
        frequency,
        fc.integer({ min: 1, max: 4 * DAY_MS }),
        ({ zone, t }, f, span) => {
          const calendar = calendarOf(zone);

          const windows = calendar.windowsBetween(f, t, t + span);

          const first = windows[0];
          const last = windows[windows.length - 1];
          assert.ok(first !== undefined && last !== undefined);
          assert.ok(first.start <= t && t < first.end);
          assert.ok(last.start < t + span && t + span <= last.end);
          for (let i = 1; i < windows.length; i++) {
            assert.equal(windows[i]?.start, windows[i - 1]?.end);
          }
          assert.equal(new Set(windows.map((w) => w.id)).size, windows.length);
        },
      ),
      runs(20241103, 400),
    );
  });

  test('ids are unique over a year of windows and, between transitions, sort in time order', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ZONES),
        fc.integer({ min: FIRST_YEAR, max: LAST_YEAR }),
        (zone, year) => {
          const calendar = calendarOf(zone);
          const from = Date.UTC(year, 0, 1);

          const windows = FREQUENCIES.flatMap((f) => calendar.windowsBetween(f, from, from + 366 * DAY_MS));

          assert.equal(new Set(windows.map((w) => `${w.frequency} ${w.id}`)).size, windows.length);
          assert.ok(!windows.some((w) => /[:/]/.test(w.id)));
          // Ids are wall clock + offset: across a fall-back (Berlin: T0200+0200, then T0200+0100) they
          // need not sort in time order; between transitions they do.
          const hourly = windows.filter((w) => w.frequency === 'hourly');
          for (let i = 1; i < hourly.length; i++) {
            const [a, b] = [hourly[i - 1], hourly[i]];
            assert.ok(a !== undefined && b !== undefined);
            assert.ok(a.day <= b.day);
            if (a.day === b.day && a.id.slice(-5) === b.id.slice(-5))
              assert.ok(a.id < b.id, `${a.id} < ${b.id}`);
          }
        },
      ),
      runs(20240407, 4),
    );
  });

  test('dayStart is the first instant of a date and dayEnd the first of the next', () => {
    const zonedDate = zonedInstant.chain(({ zone, t }) =>
      fc
        .integer({ min: -1, max: 1 })
        .map((shift) => ({ zone, date: addDays(local(zone, t).toFormat('yyyy-MM-dd'), shift) })),
    );
    fc.assert(
      fc.property(zonedDate, ({ zone, date }) => {
        const calendar = calendarOf(zone);

        const start = calendar.dayStart(date);
        const end = calendar.dayEnd(date);

        assert.ok(isValidDate(date));
        assert.equal(end, calendar.dayStart(addDays(date, 1)));
        assert.ok(eventDay(zone, start - 1) < date);
        if (start < end) {
          assert.equal(calendar.localDate(start), date);
          assert.equal(eventDay(zone, start), date);
          assert.equal(eventDay(zone, end - 1), date);
          assert.deepEqual(calendar.windowById('daily', date), calendar.window('daily', start));
          assert.equal(calendar.window('daily', start).end, end);
        } else {
          // A date the zone skipped (Apia 2011-12-30): empty, and the next date starts right there.
          assert.equal(start, end);
          assert.ok(eventDay(zone, start) > date);
        }
      }),
      runs(20240908, 600),
    );
  });

  test('daily bounds match luxon startOf("day") in zones with whole-hour DST shifts', () => {
    // Not where the event day differs from the local date (there luxon keeps the local date).
    const instants = zonedInstant.filter(
      ({ zone, t }) => STARTOF_DAY_ZONES.has(zone) && eventDay(zone, t) === localDate(zone, t),
    );
    fc.assert(
      fc.property(instants, ({ zone, t }) => {
        const w = calendarOf(zone).window('daily', t);

        const day = local(zone, t).startOf('day');
        const next = day.plus({ days: 1 }).startOf('day').toMillis();

        assert.equal(w.start, day.toMillis());
        // luxon picks either of two midnights (St Johns 1990-10-28 00:00 -0230 and -0330); the event day
        // starts at the last one.
        if (eventDay(zone, next) === localDate(zone, next)) assert.equal(w.end, next);
      }),
      runs(20110101, 600),
    );
  });
});
