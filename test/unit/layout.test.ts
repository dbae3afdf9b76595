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
  parseStagedKey,
  partKey,
  partPrefix,
  quarantineKey,
  stagedKey,
  stepId,
} from '../../src/core/layout.js';
import { HOUR_MS, ZoneCalendar } from '../../src/core/windows.js';

describe('layout', () => {
  test('part keys are deterministic, in the event-day folder, and start with their step prefix', () => {
    const key = partKey('p1', '2024-11-03', 'daily-2024-11-03', 2, 11);
    assert.equal(key, 'p1/mp_master_event/2024/11/03/daily-2024-11-03-t002-p011.json.gz');
    assert.equal(key, partKey('p1', '2024-11-03', 'daily-2024-11-03', 2, 11));
    assert.ok(key.startsWith(partPrefix('p1', '2024-11-03', 'daily-2024-11-03')));
    assert.equal(
      manifestKey('p1', '2024-11-03', 'sync-2024-11-05'),
      'p1/mp_master_event/2024/11/03/_manifest-sync-2024-11-05.json',
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
            !partKey('p', '2024-11-03', b, 0, 0).startsWith(partPrefix('p', '2024-11-03', a)),
            `${a} vs ${b}`,
          );
      }
    }
  });

  test('staged keys and hour stamps round-trip', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 200_000 }),
        fc.integer({ min: 0, max: 200 }),
        fc.integer({ min: 0, max: 999 }),
        (h, lag, seq) => {
          const name = { eventHour: h * HOUR_MS, arrivalHour: (h + lag) * HOUR_MS, seq };
          assert.deepEqual(parseStagedKey(stagedKey(name)), name);
          assert.equal(parseHourStamp(hourStamp(name.eventHour)), name.eventHour);
        },
      ),
      { seed: 1, numRuns: 500 },
    );
    assert.equal(parseStagedKey('stage/2024010100/2024010100.000.keys'), undefined);
    assert.equal(parseHourStamp('2024023012'), undefined);
  });

  test('quarantine lives outside the data folders, by arrival hour', () => {
    assert.equal(
      quarantineKey('p1', Date.parse('2024-01-02T05:00:00Z'), 0),
      'p1/_quarantine/events/2024/01/02/05/quarantine-p000.json.gz',
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
