import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { reconcile } from '../../src/core/reconcile.js';
import type { RunRecord } from '../../src/core/records.js';
import { ingestRecord as ingest } from '../support/fixtures.js';

function run(step: string, kind: 'regular' | 'sync', days: RunRecord['days']): RunRecord {
  return {
    step_id: step,
    pipeline: 'events',
    kind,
    status: 'succeeded',
    days,
    exported: 0,
    duplicates: 0,
    parts: 0,
    bytes: 0,
    tasks: 1,
    started_at: '',
    finished_at: '',
    duration_ms: 0,
  };
}

describe('reconcile', () => {
  const ingests = [
    ingest({
      source_lines: 12,
      valid: 11,
      quarantined: 1,
      quarantine_parts: [{ key: 'q', records: 1, bytes: 10 }],
      owners: {
        'daily-2024-01-01': { '2024-01-01': 8 },
        'outside-range': { '2023-12-31': 1 },
        filtered: { '2024-01-01': 2 },
      },
    }),
    ingest({
      arrival_hour: '2024-01-03T10:00Z',
      arrival_day: '2024-01-03',
      source_lines: 3,
      valid: 3,
      owners: { 'sync-2024-01-03': { '2024-01-01': 2 }, 'daily-2024-01-03': { '2024-01-03': 1 } },
    }),
  ];

  test('balances when every committed step accounts for what ingest routed to it', () => {
    const result = reconcile(ingests, [
      run('daily-2024-01-01', 'regular', { '2024-01-01': { exported: 7, duplicates: 1 } }),
      run('sync-2024-01-03', 'sync', { '2024-01-01': { exported: 1, duplicates: 1 } }),
    ]);
    assert.deepEqual(result.problems, []);
    const day = result.eventDays.find((r) => r.day === '2024-01-01');
    assert.deepEqual(day, {
      day: '2024-01-01',
      valid: 12,
      on_time: 7,
      synced: 1,
      late_not_synced: 0,
      duplicates: 2,
      filtered: 2,
      outside_range: 0,
      pending: 0,
      balanced: true,
    });
    assert.equal(result.eventDays.find((r) => r.day === '2024-01-03')?.pending, 1);
    assert.deepEqual(
      result.arrivalDays.map((r) => [r.day, r.source_lines, r.valid, r.quarantined, r.balanced]),
      [
        ['2024-01-01', 12, 11, 1, true],
        ['2024-01-03', 3, 3, 0, true],
      ],
    );
  });

  test('a step that lost a line is an error naming the step and the day', () => {
    const result = reconcile(ingests, [
      run('daily-2024-01-01', 'regular', { '2024-01-01': { exported: 6, duplicates: 1 } }),
    ]);
    assert.equal(result.eventDays.find((r) => r.day === '2024-01-01')?.balanced, false);
    assert.match(
      result.problems.join('\n'),
      /daily-2024-01-01, event day 2024-01-01: ingest routed 8 events to it but it exported 6/,
    );
  });

  test('a step that wrote a line twice is an error', () => {
    const result = reconcile(ingests, [
      run('daily-2024-01-01', 'regular', { '2024-01-01': { exported: 9, duplicates: 0 } }),
    ]);
    assert.ok(result.problems.length > 0);
  });

  test('source lines that are neither valid nor quarantined are an error', () => {
    const result = reconcile(
      [
        ingest({
          source_lines: 5,
          valid: 3,
          quarantined: 1,
          owners: { x: { d: 3 } },
          quarantine_parts: [{ key: 'q', records: 1, bytes: 1 }],
        }),
      ],
      [],
    );
    assert.match(result.problems.join('\n'), /5 source lines but 3 valid \+ 1 quarantined/);
  });

  test('quarantine files that hold fewer lines than counted are an error', () => {
    const result = reconcile([ingest({ source_lines: 1, quarantined: 1 })], []);
    assert.match(result.problems.join('\n'), /1 lines quarantined but 0 in quarantine files/);
  });
});
