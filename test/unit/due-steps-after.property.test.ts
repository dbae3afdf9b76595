/**
 * `dueStepsAfter` enumerates only the windows and sync days after a mark; it must list exactly the
 * steps of the full enumeration (`dueSteps`, from `from_date`) due after that mark, in the same order,
 * for every pipeline shape, zone and mark. The spans start near zone transitions so DST shifts,
 * 30/45-minute offsets, a repeated midnight and a skipped date fall inside them.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { type PipelineConfig, parsePipelineConfig } from '../../src/core/pipeline-config.js';
import { dueSteps, dueStepsAfter } from '../../src/core/routing.js';
import { addDays, DAY_MS, HOUR_MS, ZoneCalendar } from '../../src/core/windows.js';

/** Each zone with a first day a few weeks before one of its transitions (or its skipped date). */
const ZONE_DAYS: readonly (readonly [string, string])[] = [
  ['UTC', '2024-02-20'],
  ['America/New_York', '2024-10-20'],
  ['Europe/Berlin', '2024-03-10'],
  ['Asia/Kathmandu', '2024-01-01'],
  ['Asia/Kolkata', '2023-12-20'],
  ['Australia/Adelaide', '2024-03-25'],
  ['Australia/Lord_Howe', '2024-09-20'],
  ['Pacific/Chatham', '2024-03-25'],
  ['America/St_Johns', '2009-10-20'],
  ['America/Havana', '2024-03-01'],
  ['Pacific/Apia', '2011-12-20'],
];

interface Case {
  readonly config: PipelineConfig;
  readonly now: number;
  readonly after: number;
}

const MARKS = ['none', 'anywhere', 'at a due step', 'beside a due step'] as const;

const cases: fc.Arbitrary<Case> = fc
  .record({
    zoneDay: fc.constantFrom(...ZONE_DAYS),
    shiftDays: fc.integer({ min: -10, max: 20 }),
    frequency: fc.constantFrom('hourly' as const, 'daily' as const),
    source: fc.constantFrom('events', 'events', 'people', 'identity'),
    sync: fc.boolean(),
    toDays: fc.option(fc.integer({ min: 0, max: 40 }), { nil: undefined }),
    nowHours: fc.integer({ min: -48, max: 24 * 50 }),
    mark: fc.constantFrom(...MARKS),
    markOffset: fc.integer({ min: -10 * DAY_MS, max: 60 * DAY_MS }),
    pick: fc.nat(),
    side: fc.constantFrom(-1, 1),
  })
  .map((c) => {
    const [zone, day] = c.zoneDay;
    const from = addDays(day, c.shiftDays);
    const events = c.source === 'events';
    const config = parsePipelineConfig({
      project_id: 'p',
      name: 'n',
      data_source: c.source,
      frequency: c.frequency,
      sync: events && c.sync,
      time_zone: zone,
      from_date: from,
      ...(c.toDays === undefined ? {} : { to_date: addDays(from, c.toDays) }),
    });
    const calendar = new ZoneCalendar(zone);
    const firstStart = calendar.dayStart(from);
    const now = firstStart + c.nowHours * HOUR_MS;
    const due = dueSteps(config, calendar, now);
    const picked = due.length === 0 ? undefined : due[c.pick % due.length]!.dueAt;
    const after =
      c.mark === 'none'
        ? Number.NEGATIVE_INFINITY
        : c.mark === 'anywhere' || picked === undefined
          ? firstStart + c.markOffset
          : c.mark === 'at a due step'
            ? picked
            : picked + c.side;
    return { config, now, after };
  });

describe('dueStepsAfter', () => {
  test('lists exactly the steps of the full enumeration due after the mark, in its order', () => {
    fc.assert(
      fc.property(cases, ({ config, now, after }) => {
        // Separate calendars: the partial enumeration must not lean on windows the full one cached.
        const full = dueSteps(config, new ZoneCalendar(config.time_zone), now);
        const partial = dueStepsAfter(config, new ZoneCalendar(config.time_zone), now, after);
        assert.deepEqual(
          partial,
          full.filter((d) => d.dueAt > after),
        );
      }),
      { seed: 13, numRuns: 500 },
    );
  });

  test('a mark after now, or past the last window of a closed range, leaves nothing', () => {
    const config = parsePipelineConfig({
      project_id: 'p',
      name: 'n',
      frequency: 'hourly',
      sync: true,
      time_zone: 'Asia/Kathmandu',
      from_date: '2024-03-01',
      to_date: '2024-03-03',
    });
    const calendar = new ZoneCalendar(config.time_zone);
    const now = calendar.dayStart('2024-03-10');
    const due = dueSteps(config, calendar, now);
    assert.equal(due.filter((d) => d.step.kind === 'regular').length, 3 * 24);

    assert.deepEqual(dueStepsAfter(config, calendar, now, now), []);
    assert.deepEqual(dueStepsAfter(config, calendar, now, Number.MAX_VALUE), []);
    assert.deepEqual(dueStepsAfter(config, calendar, now, due.at(-1)!.dueAt), []);
    // The sync days go on after to_date; the regular windows do not.
    assert.ok(due.at(-1)!.step.kind === 'sync');
    const lastRegular = due.findLast((d) => d.step.kind === 'regular')!;
    assert.ok(dueStepsAfter(config, calendar, now, lastRegular.dueAt).every((d) => d.step.kind === 'sync'));
  });

  test('from a date the zone skipped: a mark at its sync step leaves the steps after it', () => {
    // Apia skipped 2011-12-30: that day ends where it starts, when 2011-12-31 starts.
    const config = parsePipelineConfig({
      project_id: 'p',
      name: 'n',
      frequency: 'daily',
      sync: true,
      time_zone: 'Pacific/Apia',
      from_date: '2011-12-30',
    });
    const calendar = new ZoneCalendar(config.time_zone);
    const now = calendar.dayStart('2012-01-03');
    const due = dueSteps(config, calendar, now);
    assert.deepEqual(
      due.map((d) => d.id),
      ['sync-2011-12-30', 'daily-2011-12-31', 'sync-2011-12-31', 'daily-2012-01-01', 'sync-2012-01-01'],
    );

    for (const mark of due)
      assert.deepEqual(
        dueStepsAfter(config, calendar, now, mark.dueAt),
        due.filter((d) => d.dueAt > mark.dueAt),
      );
  });

  test('a mark three years into an hourly pipeline enumerates only the day after it', () => {
    const config = parsePipelineConfig({
      project_id: 'p',
      name: 'n',
      frequency: 'hourly',
      sync: true,
      time_zone: 'America/New_York',
      from_date: '2022-01-01',
    });
    const calendar = new ZoneCalendar(config.time_zone);
    const now = calendar.dayStart('2025-01-01');
    const after = now - DAY_MS;

    const partial = dueStepsAfter(config, calendar, now, after);

    // 24 hourly windows and one sync day became due in the last 24 hours.
    assert.equal(partial.length, 25);
    assert.ok(partial.every((d) => d.dueAt > after && d.dueAt <= now));
  });
});
