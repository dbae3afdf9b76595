import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError } from '../../src/core/errors.js';
import {
  addDays,
  floorHour,
  HOUR_MS,
  isOnTime,
  isValidDate,
  type Window,
  ZoneCalendar,
} from '../../src/core/windows.js';

const MINUTE_MS = 60_000;
const utc = (iso: string): number => Date.parse(iso);

/** `id start..end minutes` of each window: compact, readable expectations. */
function describeWindows(windows: readonly Window[]): string[] {
  return windows.map(
    (w) =>
      `${w.id} ${new Date(w.start).toISOString().slice(11, 16)}..${new Date(w.end).toISOString().slice(11, 16)} ${(w.end - w.start) / MINUTE_MS}`,
  );
}

describe('daily windows', () => {
  test('New York: 2024-03-10 lasts 23 hours and 2024-11-03 lasts 25 hours', () => {
    // Arrange
    const calendar = new ZoneCalendar('America/New_York');

    // Act
    const spring = calendar.window('daily', utc('2024-03-10T12:00:00Z'));
    const fall = calendar.window('daily', utc('2024-11-03T12:00:00Z'));

    // Assert
    assert.deepEqual(spring, {
      frequency: 'daily',
      start: utc('2024-03-10T05:00:00Z'),
      end: utc('2024-03-11T04:00:00Z'),
      id: '2024-03-10',
      day: '2024-03-10',
    });
    assert.equal(spring.end - spring.start, 23 * HOUR_MS);
    assert.equal(fall.start, utc('2024-11-03T04:00:00Z'));
    assert.equal(fall.end, utc('2024-11-04T05:00:00Z'));
    assert.equal(fall.end - fall.start, 25 * HOUR_MS);
  });

  test('Kathmandu (+05:45): the day starts at 18:15 UTC the day before', () => {
    const calendar = new ZoneCalendar('Asia/Kathmandu');

    const day = calendar.window('daily', utc('2024-01-15T12:00:00Z'));

    assert.equal(day.id, '2024-01-15');
    assert.equal(day.start, utc('2024-01-14T18:15:00Z'));
    assert.equal(day.end, utc('2024-01-15T18:15:00Z'));
    assert.equal(calendar.dayStart('2024-01-15'), day.start);
  });

  test('Santiago: DST starts at midnight, so 2024-09-08 starts at 01:00 local and lasts 23 hours', () => {
    const calendar = new ZoneCalendar('America/Santiago');

    const day = calendar.window('daily', utc('2024-09-08T12:00:00Z'));

    // 2024-09-07 24:00 -04 became 2024-09-08 01:00 -03, both 04:00 UTC.
    assert.equal(day.id, '2024-09-08');
    assert.equal(day.start, utc('2024-09-08T04:00:00Z'));
    assert.equal(day.end, utc('2024-09-09T03:00:00Z'));
    assert.equal(calendar.offsetMinutes(day.start), -180);
    assert.equal(calendar.offsetMinutes(day.start - 1), -240);
    assert.equal(calendar.localDate(day.start - 1), '2024-09-07');
  });

  test('Santiago: DST ends at midnight, so 2024-04-06 lasts 25 hours (its 23:00 happens twice)', () => {
    const calendar = new ZoneCalendar('America/Santiago');

    const day = calendar.window('daily', utc('2024-04-07T03:30:00Z'));

    assert.equal(day.id, '2024-04-06');
    assert.equal(day.start, utc('2024-04-06T03:00:00Z'));
    assert.equal(day.end, utc('2024-04-07T04:00:00Z'));
  });

  test('Havana: DST ends at 01:00 -> 00:00, so 2024-11-03 starts at 00:00 -04 and lasts 25 hours', () => {
    const calendar = new ZoneCalendar('America/Havana');

    // After the transition (05:00 UTC) the local clock shows 00:30 again: the day began an hour earlier.
    const day = calendar.window('daily', utc('2024-11-03T05:30:00Z'));
    const spring = calendar.window('daily', utc('2024-03-10T12:00:00Z'));

    assert.equal(day.id, '2024-11-03');
    assert.equal(day.start, utc('2024-11-03T04:00:00Z'));
    assert.equal(day.end, utc('2024-11-04T05:00:00Z'));
    assert.equal(spring.start, utc('2024-03-10T05:00:00Z'));
    assert.equal(spring.end - spring.start, 23 * HOUR_MS);
  });

  test('Lord Howe: a 30-minute DST shift makes 24.5- and 23.5-hour days', () => {
    const calendar = new ZoneCalendar('Australia/Lord_Howe');

    const april = calendar.window('daily', utc('2024-04-07T00:00:00Z'));
    const october = calendar.window('daily', utc('2024-10-06T00:00:00Z'));

    assert.equal(april.id, '2024-04-07');
    assert.equal(april.start, utc('2024-04-06T13:00:00Z'));
    assert.equal(april.end, utc('2024-04-07T13:30:00Z'));
    assert.equal(october.id, '2024-10-06');
    assert.equal(october.start, utc('2024-10-05T13:30:00Z'));
    assert.equal(october.end, utc('2024-10-06T13:00:00Z'));
  });

  test('Apia skipped 2011-12-30: the date has no window and dayStart = dayEnd = start of 12-31', () => {
    const calendar = new ZoneCalendar('Pacific/Apia');

    const skipped = calendar.dayStart('2011-12-30');

    assert.equal(skipped, calendar.dayEnd('2011-12-30'));
    assert.equal(skipped, calendar.dayStart('2011-12-31'));
    assert.equal(calendar.dayEnd('2011-12-29'), skipped);
    assert.equal(calendar.localDate(skipped - 1), '2011-12-29');
    assert.equal(calendar.localDate(skipped), '2011-12-31');
    assert.throws(() => calendar.windowById('daily', '2011-12-30'), ConfigError);
  });

  test('St Johns 2010-11-07 00:01 NDT -> 11-06 23:01 NST: the minute after midnight stays in 11-06', () => {
    const calendar = new ZoneCalendar('America/St_Johns');

    // The clock shows 11-07 00:00-00:01 (-0230), then 11-06 23:01-24:00 (-0330), then 11-07 again.
    const minute = calendar.window('daily', utc('2010-11-07T02:30:30Z'));
    const hours = calendar.windowsBetween('hourly', utc('2010-11-07T01:30:00Z'), utc('2010-11-07T04:30:00Z'));

    assert.equal(minute.id, '2010-11-06');
    assert.equal(minute.start, utc('2010-11-06T02:30:00Z'));
    assert.equal(minute.end, utc('2010-11-07T03:30:00Z'));
    assert.equal(calendar.dayStart('2010-11-07'), utc('2010-11-07T03:30:00Z'));
    assert.deepEqual(describeWindows(hours), [
      '2010-11-06T2300-0230 01:30..02:30 60',
      '2010-11-07T0000-0230 02:30..02:31 1',
      '2010-11-06T2301-0330 02:31..03:30 59',
      '2010-11-07T0000-0330 03:30..04:30 60',
    ]);
    assert.deepEqual(
      hours.map((w) => w.day),
      ['2010-11-06', '2010-11-06', '2010-11-06', '2010-11-07'],
    );
  });

  test('Casey 2010-03-05 02:00 +11 -> 03-04 23:00 +08: two hours of 03-05 stay in the 27-hour 03-04', () => {
    const calendar = new ZoneCalendar('Antarctica/Casey');

    const day = calendar.window('daily', utc('2010-03-04T14:00:00Z'));
    const hours = calendar.windowsBetween('hourly', utc('2010-03-04T13:00:00Z'), utc('2010-03-04T17:00:00Z'));

    assert.equal(day.id, '2010-03-04');
    assert.equal(day.start, utc('2010-03-03T13:00:00Z'));
    assert.equal(day.end, utc('2010-03-04T16:00:00Z'));
    assert.deepEqual(
      hours.map((w) => `${w.id} ${w.day}`),
      [
        '2010-03-05T0000+1100 2010-03-04',
        '2010-03-05T0100+1100 2010-03-04',
        '2010-03-04T2300+0800 2010-03-04',
        '2010-03-05T0000+0800 2010-03-05',
      ],
    );
  });

  test('dayStart and dayEnd bound the local date; localDate is the date of an instant', () => {
    const calendar = new ZoneCalendar('Europe/Berlin');

    assert.equal(calendar.dayStart('2024-03-31'), utc('2024-03-30T23:00:00Z'));
    assert.equal(calendar.dayEnd('2024-03-31'), utc('2024-03-31T22:00:00Z'));
    assert.equal(calendar.localDate(utc('2024-03-31T21:59:59.999Z')), '2024-03-31');
    assert.equal(calendar.localDate(utc('2024-03-31T22:00:00Z')), '2024-04-01');
    assert.throws(() => calendar.dayStart('2024-02-30'), ConfigError);
  });
});

describe('hourly windows', () => {
  test('New York 2024-11-03: the repeated 01:00 hour is two windows with distinct ids', () => {
    const calendar = new ZoneCalendar('America/New_York');

    const windows = calendar.windowsBetween(
      'hourly',
      utc('2024-11-03T04:00:00Z'),
      utc('2024-11-03T08:00:00Z'),
    );

    assert.deepEqual(describeWindows(windows), [
      '2024-11-03T0000-0400 04:00..05:00 60',
      '2024-11-03T0100-0400 05:00..06:00 60',
      '2024-11-03T0100-0500 06:00..07:00 60',
      '2024-11-03T0200-0500 07:00..08:00 60',
    ]);
    assert.equal(windows[1]?.day, '2024-11-03');
  });

  test('New York 2024-03-10: there is no 02:00 window; the day has 23 hourly windows', () => {
    const calendar = new ZoneCalendar('America/New_York');

    const day = calendar.windowsBetween(
      'hourly',
      calendar.dayStart('2024-03-10'),
      calendar.dayEnd('2024-03-10'),
    );

    assert.equal(day.length, 23);
    assert.deepEqual(describeWindows(day.slice(1, 3)), [
      '2024-03-10T0100-0500 06:00..07:00 60',
      '2024-03-10T0300-0400 07:00..08:00 60',
    ]);
    assert.ok(day.every((w) => !w.id.startsWith('2024-03-10T02')));
    assert.throws(() => calendar.windowById('hourly', '2024-03-10T0200-0500'), ConfigError);
    assert.throws(() => calendar.windowById('hourly', '2024-03-10T0200-0400'), ConfigError);
  });

  test('zones with 30/45-minute offsets have windows starting at :15, :30 or :45 UTC', () => {
    const cases: [string, string, number][] = [
      ['Asia/Kathmandu', '2024-01-15T1000+0545', 15],
      ['Asia/Kolkata', '2024-01-15T1000+0530', 30],
      ['Australia/Adelaide', '2024-01-15T1000+1030', 30],
      ['Australia/Eucla', '2024-01-15T1000+0845', 15],
      ['Pacific/Chatham', '2024-01-15T1000+1345', 15],
      ['America/St_Johns', '2024-01-15T1000-0330', 30],
      ['Asia/Tehran', '2024-01-15T1000+0330', 30],
    ];
    for (const [zone, id, minute] of cases) {
      const calendar = new ZoneCalendar(zone);

      const w = calendar.windowById('hourly', id);

      assert.equal(new Date(w.start).getUTCMinutes(), minute, zone);
      assert.equal(w.end - w.start, HOUR_MS, zone);
      assert.equal(calendar.window('hourly', w.start + 59 * MINUTE_MS), w, zone);
    }
  });

  test('Kathmandu: the window of 10:00 local is 04:15-05:15 UTC', () => {
    const calendar = new ZoneCalendar('Asia/Kathmandu');

    const w = calendar.window('hourly', utc('2024-01-15T05:00:00Z'));

    assert.deepEqual(w, {
      frequency: 'hourly',
      start: utc('2024-01-15T04:15:00Z'),
      end: utc('2024-01-15T05:15:00Z'),
      id: '2024-01-15T1000+0545',
      day: '2024-01-15',
    });
  });

  test('Lord Howe: its 30-minute DST shifts make 30-minute windows (a local hour of 90 or 30 minutes)', () => {
    const calendar = new ZoneCalendar('Australia/Lord_Howe');

    // 2024-04-07 02:00 +11 -> 01:30 +1030: local hour 01 lasts 90 minutes, split by offset.
    const april = calendar.windowsBetween('hourly', utc('2024-04-06T14:00:00Z'), utc('2024-04-06T16:30:00Z'));
    // 2024-10-06 02:00 +1030 -> 02:30 +11: local hour 02 lasts 30 minutes.
    const october = calendar.windowsBetween(
      'hourly',
      utc('2024-10-05T14:30:00Z'),
      utc('2024-10-05T17:00:00Z'),
    );

    assert.deepEqual(describeWindows(april), [
      '2024-04-07T0100+1100 14:00..15:00 60',
      '2024-04-07T0130+1030 15:00..15:30 30',
      '2024-04-07T0200+1030 15:30..16:30 60',
    ]);
    assert.deepEqual(describeWindows(october), [
      '2024-10-06T0100+1030 14:30..15:30 60',
      '2024-10-06T0230+1100 15:30..16:00 30',
      '2024-10-06T0300+1100 16:00..17:00 60',
    ]);
  });

  test('Chatham: DST changes at 02:45 local, so its transition hours last 45 and 15 minutes', () => {
    const calendar = new ZoneCalendar('Pacific/Chatham');

    // 2024-04-07 03:45 +1345 -> 02:45 +1245; 2024-09-29 02:45 +1245 -> 03:45 +1345.
    const april = calendar.windowsBetween('hourly', utc('2024-04-06T13:15:00Z'), utc('2024-04-06T15:15:00Z'));
    const september = calendar.windowsBetween(
      'hourly',
      utc('2024-09-28T13:15:00Z'),
      utc('2024-09-28T15:15:00Z'),
    );

    assert.deepEqual(describeWindows(april), [
      '2024-04-07T0300+1345 13:15..14:00 45',
      '2024-04-07T0245+1245 14:00..14:15 15',
      '2024-04-07T0300+1245 14:15..15:15 60',
    ]);
    assert.deepEqual(describeWindows(september), [
      '2024-09-29T0200+1245 13:15..14:00 45',
      '2024-09-29T0345+1345 14:00..14:15 15',
      '2024-09-29T0400+1345 14:15..15:15 60',
    ]);
  });

  test('Santiago 2024-09-08: the first hourly window of the day is 01:00 -0300', () => {
    const calendar = new ZoneCalendar('America/Santiago');

    const first = calendar.window('hourly', calendar.dayStart('2024-09-08'));

    assert.equal(first.id, '2024-09-08T0100-0300');
    assert.equal(first.start, utc('2024-09-08T04:00:00Z'));
    assert.equal(calendar.window('hourly', first.start - 1).id, '2024-09-07T2300-0400');
  });
});

describe('ZoneCalendar API', () => {
  test('windowById is the inverse of id, also across transitions', () => {
    const cases: [string, number, number][] = [
      ['America/New_York', utc('2024-11-01T00:00:00Z'), utc('2024-11-06T00:00:00Z')],
      ['Australia/Lord_Howe', utc('2024-04-06T00:00:00Z'), utc('2024-04-08T00:00:00Z')],
      ['Pacific/Chatham', utc('2024-09-28T00:00:00Z'), utc('2024-09-30T00:00:00Z')],
      ['America/Santiago', utc('2024-09-07T00:00:00Z'), utc('2024-09-10T00:00:00Z')],
    ];
    for (const [zone, from, to] of cases) {
      const calendar = new ZoneCalendar(zone);
      for (const frequency of ['hourly', 'daily'] as const) {
        for (const w of calendar.windowsBetween(frequency, from, to)) {
          assert.deepEqual(new ZoneCalendar(zone).windowById(frequency, w.id), w);
        }
      }
    }
  });

  test('an offset with seconds (Monrovia -00:44:30 until 1972) gets seconds in the id', () => {
    const calendar = new ZoneCalendar('Africa/Monrovia');

    const w = calendar.window('hourly', utc('1971-06-01T12:00:00Z'));

    assert.equal(w.id, '1971-06-01T1100-004430');
    assert.equal(w.start, utc('1971-06-01T11:44:30Z'));
    assert.equal(calendar.offsetMinutes(w.start), -44.5);
    assert.deepEqual(calendar.windowById('hourly', w.id), w);
  });

  test('windowById rejects ids that name no window', () => {
    const calendar = new ZoneCalendar('America/New_York');

    for (const id of [
      '2024-11-03T01:00-04:00',
      '2024-11-03T0130-0400',
      '2024-11-03T0100+0000',
      '2024-13-01',
      '',
    ]) {
      assert.throws(() => calendar.windowById('hourly', id), ConfigError, id);
    }
    for (const id of ['2024-02-30', '2024-1-05', '2024-11-03T0100-0400']) {
      assert.throws(() => calendar.windowById('daily', id), ConfigError, id);
    }
    assert.throws(() => calendar.windowById('hourly', '2024-11-03T0100-0600'), {
      name: 'ConfigError',
      message: '"2024-11-03T0100-0600" names no hourly window in time zone "America/New_York"',
    });
  });

  test('an unknown time zone is a ConfigError that names it', () => {
    assert.throws(() => new ZoneCalendar('Europe/Berln'), {
      name: 'ConfigError',
      message:
        'unknown time zone "Europe/Berln": use an IANA name such as "Europe/Berlin" or "America/New_York"',
    });
    for (const zone of ['', '+05:00', 'Mars/Olympus_Mons']) {
      assert.throws(() => new ZoneCalendar(zone), ConfigError, zone);
    }
    assert.equal(new ZoneCalendar('UTC').timeZone, 'UTC');
  });

  test('windowsBetween returns every window intersecting [from, to), and none for an empty range', () => {
    const calendar = new ZoneCalendar('UTC');

    const partial = calendar.windowsBetween(
      'hourly',
      utc('2024-01-01T00:30:00Z'),
      utc('2024-01-01T02:00:00Z'),
    );
    const touching = calendar.windowsBetween(
      'hourly',
      utc('2024-01-01T00:30:00Z'),
      utc('2024-01-01T02:00:00.001Z'),
    );

    assert.deepEqual(
      partial.map((w) => w.id),
      ['2024-01-01T0000+0000', '2024-01-01T0100+0000'],
    );
    assert.equal(touching.length, 3);
    assert.deepEqual(calendar.windowsBetween('daily', 5, 5), []);
    assert.deepEqual(calendar.windowsBetween('daily', 6, 5), []);
  });

  test('window returns one shared, frozen object per window (callers key maps by it)', () => {
    const calendar = new ZoneCalendar('Asia/Kathmandu');

    const a = calendar.window('daily', utc('2024-01-14T18:15:00Z'));
    calendar.window('hourly', utc('2030-01-01T00:00:00Z'));
    const b = calendar.window('daily', utc('2024-01-15T18:14:59.999Z'));

    assert.equal(a, b);
    assert.ok(Object.isFrozen(a));
  });

  test('offsets come from the zone rules, in minutes', () => {
    assert.equal(new ZoneCalendar('Asia/Kathmandu').offsetMinutes(utc('2024-01-15T00:00:00Z')), 345);
    assert.equal(new ZoneCalendar('Australia/Eucla').offsetMinutes(utc('2024-01-15T00:00:00Z')), 525);
    assert.equal(new ZoneCalendar('Pacific/Chatham').offsetMinutes(utc('2024-01-15T00:00:00Z')), 825);
    assert.equal(new ZoneCalendar('Pacific/Chatham').offsetMinutes(utc('2024-07-15T00:00:00Z')), 765);
    assert.equal(new ZoneCalendar('America/St_Johns').offsetMinutes(utc('2024-01-15T00:00:00Z')), -210);
  });

  test('every event time the parser accepts has a window, up to the end of the Date range', () => {
    const calendar = new ZoneCalendar('America/New_York');

    const first = calendar.window('daily', 0);
    const last = calendar.window('hourly', 8_640_000_000_000_000);

    assert.equal(first.id, '1969-12-31');
    assert.equal(last.start, 8_640_000_000_000_000);
    assert.deepEqual(calendar.windowById('hourly', last.id), last);
    assert.throws(() => calendar.window('hourly', Number.NaN), RangeError);
  });
});

describe('isOnTime', () => {
  test('on time when the arrival hour ends no later than window end + 2 h', () => {
    const w = new ZoneCalendar('America/New_York').window('daily', utc('2024-01-01T12:00:00Z'));
    const lastOnTime = w.end + HOUR_MS; // that hour ends exactly at end + 2 h

    assert.equal(w.end, utc('2024-01-02T05:00:00Z'));
    assert.equal(isOnTime(lastOnTime, w), true);
    assert.equal(isOnTime(lastOnTime + HOUR_MS, w), false);
    assert.equal(isOnTime(w.start - HOUR_MS, w), true);
  });

  test('in a +05:45 zone the window end is mid-hour: the hour ending after end + 2 h is late', () => {
    const w = new ZoneCalendar('Asia/Kathmandu').windowById('hourly', '2024-01-15T1000+0545');

    // end + 2 h = 07:15 UTC: the arrival hour 06:00-07:00 is on time, 07:00-08:00 is late.
    assert.equal(isOnTime(utc('2024-01-15T06:00:00Z'), w), true);
    assert.equal(isOnTime(utc('2024-01-15T07:00:00Z'), w), false);
  });
});

describe('calendar dates', () => {
  test('addDays crosses months, years and leap days', () => {
    const cases: [string, number, string][] = [
      ['2024-01-31', 1, '2024-02-01'],
      ['2024-02-28', 1, '2024-02-29'],
      ['2024-02-29', 1, '2024-03-01'],
      ['2023-02-28', 1, '2023-03-01'],
      ['2024-03-01', -1, '2024-02-29'],
      ['2024-12-31', 1, '2025-01-01'],
      ['2025-01-01', -1, '2024-12-31'],
      ['2000-02-28', 1, '2000-02-29'],
      ['1900-02-28', 1, '1900-03-01'],
      ['2024-01-01', 366, '2025-01-01'],
      ['2024-05-17', 0, '2024-05-17'],
      ['1970-01-01', -1, '1969-12-31'],
    ];
    for (const [date, days, expected] of cases) {
      assert.equal(addDays(date, days), expected, `${date} + ${days}`);
    }
    assert.throws(() => addDays('2024-02-30', 1), ConfigError);
    assert.throws(() => addDays('2024-01-01', 1.5), RangeError);
  });

  test('isValidDate accepts only strict YYYY-MM-DD dates that exist', () => {
    for (const date of ['2024-02-29', '2000-02-29', '1999-12-31', '2024-01-05']) {
      assert.equal(isValidDate(date), true, date);
    }
    const invalid = [
      '2023-02-29',
      '1900-02-29',
      '2024-1-05',
      '2024-01-5',
      '24-01-05',
      '2024-00-10',
      '2024-13-01',
      '2024-04-31',
      '2024-01-00',
      '2024/01/05',
      '2024-01-05T00:00',
      ' 2024-01-05',
      '2024-01-05\n',
      '+2024-01-05',
      '',
    ];
    for (const date of invalid) {
      assert.equal(isValidDate(date), false, JSON.stringify(date));
    }
  });

  test('floorHour is the start of the UTC hour', () => {
    assert.equal(floorHour(utc('2024-01-15T05:59:59.999Z')), utc('2024-01-15T05:00:00Z'));
    assert.equal(floorHour(utc('2024-01-15T05:00:00Z')), utc('2024-01-15T05:00:00Z'));
    assert.equal(floorHour(-1), -HOUR_MS);
  });
});
