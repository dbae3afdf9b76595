import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parseEventLine, type ValidEvent } from '../../src/core/event-line.js';
import { stepId } from '../../src/core/layout.js';
import { parsePipelineConfig } from '../../src/core/pipeline-config.js';
import { FILTERED, LATE_NOT_SYNCED, OUTSIDE_RANGE } from '../../src/core/records.js';
import {
  ARRIVAL_SETTLE_MS,
  completeArrivalHours,
  dueSteps,
  EventRouter,
  ingestNeededUntil,
  ingestStart,
  pendingSteps,
  snapshotCut,
} from '../../src/core/routing.js';
import { HOUR_MS, ZoneCalendar } from '../../src/core/windows.js';

const ZONES = [
  'UTC',
  'America/New_York',
  'Asia/Kathmandu',
  'Australia/Lord_Howe',
  'Pacific/Chatham',
  'America/Santiago',
];

function config(overrides: Record<string, unknown> = {}) {
  return parsePipelineConfig({
    project_id: 'p1',
    name: 'events',
    frequency: 'daily',
    sync: true,
    time_zone: 'America/New_York',
    from_date: '2024-01-01',
    ...overrides,
  });
}

/** A valid event as the ingest sees it, parsed from a landing-zone line. */
function event(timeMs: number, eventName: string, properties: Record<string, unknown> = {}): ValidEvent {
  const line = JSON.stringify({
    event: eventName,
    properties: { time: timeMs, distinct_id: 'u1', ...properties },
  });
  const parsed = parseEventLine(Buffer.from(line));
  assert.ok(parsed.ok);
  return parsed;
}

describe('EventRouter', () => {
  test('an event is on time when its arrival hour ends no later than window end + 2 h', () => {
    // Arrange: the New York day 2024-01-01 ends at 2024-01-02T05:00Z.
    const router = new EventRouter(config(), new ZoneCalendar('America/New_York'));
    const time = Date.parse('2024-01-01T12:00:00Z');

    // Act
    const lastOnTime = router.route(event(time, 'Purchase'), Date.parse('2024-01-02T06:00:00Z'));
    const firstLate = router.route(event(time, 'Purchase'), Date.parse('2024-01-02T07:00:00Z'));

    // Assert
    assert.equal(lastOnTime.owner, 'daily-2024-01-01');
    assert.equal(lastOnTime.late, false);
    assert.equal(firstLate.owner, 'sync-2024-01-02');
    assert.equal(firstLate.late, true);
  });

  test('data for Jan 1 that arrives on Jan 3 belongs to the sync of Jan 3 (which runs on Jan 4)', () => {
    const calendar = new ZoneCalendar('America/New_York');
    const router = new EventRouter(config(), calendar);
    const route = router.route(
      event(Date.parse('2024-01-01T15:00:00Z'), 'Purchase'),
      Date.parse('2024-01-03T15:00:00Z'),
    );
    assert.equal(route.owner, 'sync-2024-01-03');
    assert.equal(route.window.day, '2024-01-01');
    const due = dueSteps(
      config(),
      calendar,
      calendar.dayEnd('2024-01-03') + 2 * HOUR_MS + ARRIVAL_SETTLE_MS,
    ).find((d) => d.id === route.owner);
    assert.ok(due);
    assert.equal(calendar.localDate(due.dueAt), '2024-01-04');
  });

  test('without sync a late event is counted as late, not synced; range and filter come first', () => {
    const router = new EventRouter(
      config({ sync: false, from_date: '2024-01-02', event_names: ['Purchase'] }),
      new ZoneCalendar('America/New_York'),
    );
    const late = Date.parse('2024-01-05T15:00:00Z');
    assert.equal(
      router.route(event(Date.parse('2024-01-02T15:00:00Z'), 'Purchase'), late).owner,
      LATE_NOT_SYNCED,
    );
    assert.equal(
      router.route(event(Date.parse('2024-01-01T15:00:00Z'), 'Purchase'), late).owner,
      OUTSIDE_RANGE,
    );
    assert.equal(router.route(event(Date.parse('2024-01-02T15:00:00Z'), 'Search'), late).owner, FILTERED);
    assert.equal(router.route(event(Date.parse('2024-01-02T15:00:00Z'), 'Search'), late).staged, false);
  });

  test('a where filter reads the event properties, after the range and the event names', () => {
    const router = new EventRouter(
      config({ event_names: ['Purchase', 'Search'], where: 'properties["plan"] == "pro"' }),
      new ZoneCalendar('UTC'),
    );
    const t = Date.parse('2024-01-02T15:00:00Z');
    assert.equal(router.route(event(t, 'Purchase', { plan: 'pro' }), t).owner, 'daily-2024-01-02');
    assert.equal(router.route(event(t, 'Purchase', { plan: 'free' }), t).owner, FILTERED);
    assert.equal(router.route(event(t, 'Purchase'), t).owner, FILTERED);
    assert.equal(router.route(event(t, 'Login', { plan: 'pro' }), t).owner, FILTERED);
    const before = Date.parse('2023-12-30T15:00:00Z');
    assert.equal(router.route(event(before, 'Purchase', { plan: 'free' }), t).owner, OUTSIDE_RANGE);
  });

  test('to_date ends the range', () => {
    const router = new EventRouter(config({ to_date: '2024-01-03' }), new ZoneCalendar('UTC'));
    const t = Date.parse('2024-01-04T01:00:00Z');
    assert.equal(router.route(event(t, 'x'), t).owner, OUTSIDE_RANGE);
  });
});

describe('scheduling invariants (property-based)', () => {
  const arbitraryCase = fc.record({
    zone: fc.constantFrom(...ZONES),
    frequency: fc.constantFrom('hourly' as const, 'daily' as const),
    eventTime: fc.integer({
      min: Date.parse('2024-01-02T00:00:00Z'),
      max: Date.parse('2025-12-01T00:00:00Z'),
    }),
    delayHours: fc.integer({ min: -30, max: 24 * 8 }),
  });

  test('every event is owned by exactly one step, which is due only after the event arrived and whose ingest needs cover its arrival', () => {
    fc.assert(
      fc.property(arbitraryCase, ({ zone, frequency, eventTime, delayHours }) => {
        const calendar = new ZoneCalendar(zone);
        const pipeline = config({ time_zone: zone, frequency, from_date: '2024-01-01' });
        const router = new EventRouter(pipeline, calendar);
        const arrivalHour = Math.floor((eventTime + delayHours * HOUR_MS) / HOUR_MS) * HOUR_MS;
        const route = router.route(event(eventTime, 'Purchase'), arrivalHour);
        const step = route.late
          ? ({ kind: 'sync', arrivalDay: calendar.localDate(arrivalHour) } as const)
          : ({ kind: 'regular', window: route.window } as const);
        assert.equal(route.owner, stepId(step));
        const dueAt =
          (step.kind === 'sync' ? calendar.dayEnd(step.arrivalDay) : step.window.end) +
          2 * HOUR_MS +
          ARRIVAL_SETTLE_MS;
        // The step runs no earlier than the end of the hour its event arrived in, settled...
        assert.ok(arrivalHour + HOUR_MS + ARRIVAL_SETTLE_MS <= dueAt);
        // ...and waits for the ingest of that hour, which is complete and settled when the step is due.
        const needed = ingestNeededUntil(pipeline, step, calendar);
        assert.ok(arrivalHour < needed);
        assert.ok(needed + ARRIVAL_SETTLE_MS <= dueAt);
        // The window contains the event.
        assert.ok(route.window.start <= eventTime && eventTime < route.window.end);
      }),
      { seed: 20241125, numRuns: 3000 },
    );
  });

  test('dueSteps lists each window from from_date exactly once, contiguous, due-ordered, each due', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ZONES),
        fc.constantFrom('hourly' as const, 'daily' as const),
        fc.integer({ min: 0, max: 24 * 20 }),
        (zone, frequency, hoursAfter) => {
          const calendar = new ZoneCalendar(zone);
          const pipeline = config({ time_zone: zone, frequency, from_date: '2024-03-01', sync: true });
          const now = calendar.dayStart('2024-03-01') + hoursAfter * HOUR_MS;
          const due = dueSteps(pipeline, calendar, now);
          const regular = due.filter((d) => d.step.kind === 'regular');
          let expectedStart = calendar.dayStart('2024-03-01');
          for (const d of regular) {
            assert.ok(d.step.kind === 'regular');
            assert.equal(d.step.window.start, expectedStart);
            expectedStart = d.step.window.end;
            assert.equal(d.dueAt, d.step.window.end + 2 * HOUR_MS + ARRIVAL_SETTLE_MS);
            assert.ok(d.dueAt <= now);
          }
          // The next window is not due yet.
          assert.ok(calendar.window(frequency, expectedStart).end + 2 * HOUR_MS + ARRIVAL_SETTLE_MS > now);
          for (let i = 1; i < due.length; i += 1) assert.ok(due[i - 1]!.dueAt <= due[i]!.dueAt);
          assert.equal(new Set(due.map((d) => d.id)).size, due.length);
        },
      ),
      { seed: 7, numRuns: 300 },
    );
  });

  test('ingest starts a day before from_date and covers every complete hour', () => {
    const calendar = new ZoneCalendar('Asia/Kathmandu');
    const pipeline = config({ time_zone: 'Asia/Kathmandu', from_date: '2024-03-10' });
    const start = ingestStart(pipeline, calendar);
    const hours = completeArrivalHours(pipeline, calendar, start + 5 * HOUR_MS + ARRIVAL_SETTLE_MS);
    assert.equal(calendar.localDate(start + HOUR_MS), '2024-03-09');
    assert.deepEqual(
      hours,
      [0, 1, 2, 3, 4].map((i) => start + i * HOUR_MS),
    );
  });

  test('a step waits until the last arrival hour it reads has settled, not just ended', () => {
    const calendar = new ZoneCalendar('UTC');
    const pipeline = config({ time_zone: 'UTC', from_date: '2024-03-01', sync: true });
    const ids = (now: string) => dueSteps(pipeline, calendar, Date.parse(now)).map((d) => d.id);
    // Day 03-01 reads arrival hours up to 02:00 on 03-02; Firehose may still write the last one at 02:19.
    assert.deepEqual(ids('2024-03-02T02:19:59.999Z'), []);
    assert.deepEqual(ids('2024-03-02T02:20:00Z'), ['daily-2024-03-01', 'sync-2024-03-01']);
    const lastHour = Date.parse('2024-03-02T01:00:00Z');
    assert.ok(
      !completeArrivalHours(pipeline, calendar, Date.parse('2024-03-02T02:19:59Z')).includes(lastHour),
    );
    assert.ok(
      completeArrivalHours(pipeline, calendar, Date.parse('2024-03-02T02:20:00Z')).includes(lastHour),
    );
  });
});

describe('snapshot pipelines', () => {
  const people = config({
    data_source: 'people',
    sync: false,
    frequency: 'daily',
    time_zone: 'Asia/Kathmandu',
  });
  const calendar = new ZoneCalendar('Asia/Kathmandu');
  const due = dueSteps(people, calendar, calendar.dayEnd('2024-01-05') + 2 * HOUR_MS + ARRIVAL_SETTLE_MS);

  test('run only their latest due window, until a snapshot at or after it is committed', () => {
    const ids = due.map((d) => d.id);
    assert.deepEqual(ids, [
      'daily-2024-01-01',
      'daily-2024-01-02',
      'daily-2024-01-03',
      'daily-2024-01-04',
      'daily-2024-01-05',
    ]);
    assert.deepEqual(
      pendingSteps(people, due, new Set()).map((d) => d.id),
      ['daily-2024-01-05'],
    );
    assert.deepEqual(
      pendingSteps(people, due, new Set(['daily-2024-01-02'])).map((d) => d.id),
      ['daily-2024-01-05'],
    );
    assert.deepEqual(pendingSteps(people, due, new Set(['daily-2024-01-05'])), []);
    // Events run every uncommitted window.
    const events = config({ sync: false, time_zone: 'Asia/Kathmandu' });
    assert.equal(pendingSteps(events, due, new Set(['daily-2024-01-02'])).length, 4);
  });

  test('fold arrivals from from_date up to the UTC hour at or before the window end', () => {
    assert.equal(ingestStart(people, calendar), Date.parse('2023-12-31T18:00:00Z'));
    const first = due[0]!;
    assert.equal(first.step.kind, 'regular');
    if (first.step.kind !== 'regular') return;
    // Kathmandu is UTC+05:45: the day ends at 18:15 UTC, so arrivals before 18:00 are in.
    assert.equal(snapshotCut(first.step.window), Date.parse('2024-01-01T18:00:00Z'));
    assert.equal(ingestNeededUntil(people, first.step, calendar), snapshotCut(first.step.window));
  });
});
