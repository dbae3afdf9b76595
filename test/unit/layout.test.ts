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
  partKey,
  partPrefix,
  quarantineKey,
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

describe('state keys', () => {
  test('ingest records are told apart from the watermark beside them', () => {
    assert.ok(isIngestRecordKey(ingestRecordKey(Date.parse('2024-01-02T05:00:00Z'))));
    assert.ok(!isIngestRecordKey(INGEST_WATERMARK_KEY));
    assert.ok(INGEST_WATERMARK_KEY.startsWith(INGEST_RECORDS_PREFIX));
  });
});
