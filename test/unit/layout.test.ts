import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  hourStamp,
  INGEST_RECORDS_PREFIX,
  INGEST_WATERMARK_KEY,
  ingestRecordKey,
  isIngestRecordKey,
  manifestKey,
  parseHourStamp,
  parseStagingIndexKey,
  parseStepId,
  partKey,
  partPrefix,
  quarantineKey,
  type StepIdParts,
  stagedKey,
  stagedKeysKey,
  stagingIndexKey,
  stepId,
} from '../../src/core/layout.js';
import { HOUR_MS, ZoneCalendar } from '../../src/core/windows.js';

describe('layout', () => {
  test('part keys are deterministic, in the event-day folder, named by pipeline and step', () => {
    const key = partKey('p1', '2024-11-03', 'events-daily', 'daily-2024-11-03', 2, 11, '.json.gz');
    assert.equal(key, 'p1/mp_master_event/2024/11/03/events-daily.daily-2024-11-03-t002-p011.json.gz');
    assert.equal(key, partKey('p1', '2024-11-03', 'events-daily', 'daily-2024-11-03', 2, 11, '.json.gz'));
    assert.ok(key.startsWith(partPrefix('p1', '2024-11-03', 'events-daily', 'daily-2024-11-03')));
    assert.equal(
      manifestKey('p1', '2024-11-03', 'events-daily', 'sync-2024-11-05'),
      'p1/mp_master_event/2024/11/03/_manifest-events-daily.sync-2024-11-05.json',
    );
  });

  test('no pipeline prefix is a prefix of another pipeline’s parts (two pipelines never share a file)', () => {
    const names = ['events', 'events-daily', 'events-daily-2', 'e', 'events-d'];
    for (const a of names)
      for (const b of names)
        if (a !== b)
          assert.ok(
            !partKey('p', '2024-11-03', b, 'daily-2024-11-03', 0, 0, '.json.gz').startsWith(
              partPrefix('p', '2024-11-03', a, 'daily-2024-11-03'),
            ),
            `${a} vs ${b}`,
          );
  });

  test('no step prefix is a prefix of another step’s parts (stray cleanup never touches a neighbour)', () => {
    const calendar = new ZoneCalendar('America/New_York');
    const windows = calendar.windowsBetween(
      'hourly',
      calendar.dayStart('2024-11-03'),
      calendar.dayEnd('2024-11-03'),
    );
    const ids = [
      ...windows.map((window) => stepId({ kind: 'regular', window })),
      'sync-2024-11-03',
      'daily-2024-11-03',
    ];
    assert.equal(windows.length, 25, 'the fall-back day has 25 hourly windows');
    for (const a of ids) {
      for (const b of ids) {
        if (a !== b)
          assert.ok(
            !partKey('p', '2024-11-03', 'x', b, 0, 0, '.json.gz').startsWith(
              partPrefix('p', '2024-11-03', 'x', a),
            ),
            `${a} vs ${b}`,
          );
      }
    }
  });

  test('staged keys sort in arrival order within an event hour, whatever the piece and sequence numbers', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 200_000 }),
        fc.array(
          fc.tuple(
            fc.integer({ min: 0, max: 200 }),
            fc.integer({ min: 0, max: 999 }),
            fc.integer({ min: 0, max: 999_999 }),
          ),
          {
            minLength: 2,
            maxLength: 20,
          },
        ),
        (h, names) => {
          const keyed = names.map(([lag, piece, seq]) => ({
            order: [lag, piece, seq],
            key: stagedKey({ eventHour: h * HOUR_MS, arrivalHour: (h + lag) * HOUR_MS, piece, seq }),
          }));
          const byKey = [...keyed].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
          const byOrder = [...keyed].sort(
            (a, b) => a.order[0]! - b.order[0]! || a.order[1]! - b.order[1]! || a.order[2]! - b.order[2]!,
          );
          assert.deepEqual(
            byKey.map((k) => k.key),
            byOrder.map((k) => k.key),
          );
          assert.equal(parseHourStamp(hourStamp(h * HOUR_MS)), h * HOUR_MS);
        },
      ),
      { seed: 1, numRuns: 500 },
    );
    const name = { eventHour: 0, arrivalHour: HOUR_MS, piece: 1, seq: 1234 };
    assert.equal(stagedKey(name), 'stage/1970010100/1970010101-001-001234.ndjson');
    assert.equal(stagedKeysKey(name), 'stage/1970010100/1970010101-001-001234.keys');
    assert.equal(parseHourStamp('2024023012'), undefined);
  });

  test('staging index markers name their arrival hour', () => {
    const arrival = Date.parse('2024-01-02T05:00:00Z');
    assert.equal(parseStagingIndexKey(stagingIndexKey('2024010100', arrival)), arrival);
    assert.equal(parseStagingIndexKey('index/2024010100/not-an-hour'), undefined);
  });

  test('quarantine lives outside the data folders, per pipeline, by arrival hour and piece', () => {
    assert.equal(
      quarantineKey('p1', 'events-daily', 'events', Date.parse('2024-01-02T05:00:00Z'), 2, 0),
      'p1/_quarantine/events-daily/events/2024/01/02/05/quarantine-002-000.json.gz',
    );
  });
});

describe('step ids', () => {
  /** Zones with DST, 30/45-minute offsets and (Monrovia until 1972) offsets with seconds. */
  const calendars = ['UTC', 'America/New_York', 'Asia/Kathmandu', 'Pacific/Chatham', 'Africa/Monrovia'].map(
    (zone) => new ZoneCalendar(zone),
  );
  /** Every kind of step of windows from 1900 to 2200, and sync days of any year a calendar writes. */
  const steps: fc.Arbitrary<StepIdParts> = fc.oneof(
    fc
      .tuple(
        fc.constantFrom(...calendars),
        fc.constantFrom('hourly' as const, 'daily' as const),
        fc.integer({ min: Date.UTC(1900, 0, 1), max: Date.UTC(2200, 0, 1) }),
      )
      .map(([calendar, frequency, t]) => {
        const { id } = calendar.window(frequency, t);
        return { kind: 'regular' as const, window: { frequency, id } };
      }),
    fc
      .integer({ min: -8e15, max: 8e15 })
      .map((t) => ({ kind: 'sync' as const, arrivalDay: calendars[0]!.window('daily', t).day })),
  );

  test('parseStepId gives back the parts of every id stepId makes', () => {
    fc.assert(
      fc.property(steps, (parts) => assert.deepEqual(parseStepId(stepId(parts)), parts)),
      { seed: 7, numRuns: 2000 },
    );
  });

  test('every text parseStepId accepts is the id its parts make (ids edited a character, and noise)', () => {
    const edited = fc
      .tuple(steps, fc.nat(), fc.constantFrom('', '-', '0', '9', 'T', '+', 'x'))
      .map(([parts, at, character]) => {
        const id = stepId(parts);
        const i = at % (id.length + 1);
        return `${id.slice(0, i)}${character}${id.slice(i + 1)}`;
      });
    fc.assert(
      fc.property(fc.oneof(edited, fc.string()), (text) => {
        const parts = parseStepId(text);
        if (parts !== undefined) assert.equal(stepId(parts), text);
      }),
      { seed: 7, numRuns: 2000 },
    );
  });

  test('parseStepId refuses what no step is named', () => {
    for (const text of [
      '',
      'daily',
      'sync-',
      'weekly-2024-01-15',
      'daily-2024-13-01',
      'daily-2024-02-30',
      'hourly-2024-11-03',
      'hourly-2024-11-03T0100',
      'sync-2024-11-03T0100-0400',
      'Daily-2024-01-15',
    ]) {
      assert.equal(parseStepId(text), undefined, text);
    }
    assert.deepEqual(parseStepId('hourly-2024-01-15T1000+0545'), {
      kind: 'regular',
      window: { frequency: 'hourly', id: '2024-01-15T1000+0545' },
    });
  });
});

describe('state keys', () => {
  test('ingest records are told apart from the watermark beside them', () => {
    assert.ok(isIngestRecordKey(ingestRecordKey(Date.parse('2024-01-02T05:00:00Z'))));
    assert.ok(!isIngestRecordKey(INGEST_WATERMARK_KEY));
    assert.ok(INGEST_WATERMARK_KEY.startsWith(INGEST_RECORDS_PREFIX));
  });
});
