import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { FsObjectStore } from '../../src/adapters/fs-object-store.js';
import { ingestRecordKey, runRecordKey, SNAPSHOT_POINTER_KEY } from '../../src/core/layout.js';
import { getJson, putJson } from '../../src/core/object-store.js';
import type { IngestRecord, RunRecord, SnapshotPointer } from '../../src/core/records.js';

const folder = mkdtempSync(join(tmpdir(), 'mp-stored-state-'));
after(() => rmSync(folder, { recursive: true, force: true }));
const state = new FsObjectStore(folder);

const run: RunRecord = {
  step_id: 'daily-2024-11-03',
  pipeline: 'events',
  kind: 'regular',
  window: {
    id: '2024-11-03',
    start: '2024-11-03T04:00:00.000Z',
    end: '2024-11-04T05:00:00.000Z',
    day: '2024-11-03',
  },
  status: 'succeeded',
  days: { '2024-11-03': { exported: 10, duplicates: 1 } },
  exported: 10,
  duplicates: 1,
  parts: 1,
  bytes: 300,
  tasks: 1,
  started_at: '2024-11-04T06:15:00.000Z',
  finished_at: '2024-11-04T06:16:00.000Z',
  duration_ms: 60_000,
};

const hour = Date.UTC(2024, 10, 3, 5);
const ingest: IngestRecord = {
  arrival_hour: '2024-11-03T05:00Z',
  arrival_day: '2024-11-03',
  sources: [{ key: 'p/events/2024/11/03/05/a.gz', bytes: 100, lines: 3 }],
  source_lines: 3,
  valid: 3,
  quarantined: 0,
  quarantine_reasons: {},
  quarantine_parts: [],
  staged: [
    {
      key: 'stage/2024110305/x.ndjson',
      event_hour: '2024110305',
      records: 3,
      bytes: 90,
      late: 0,
      owners: ['daily-2024-11-03'],
    },
  ],
  owners: { 'daily-2024-11-03': { '2024-11-03': 3 } },
  set_aside: [],
  pieces: 1,
};

const pointer: SnapshotPointer = {
  step_id: 'daily-2024-11-03',
  through_hour: '2024-11-04T05:00Z',
  records: 4,
  identity: { key: 'snapshot/tables/daily-2024-11-03/identity.ndjson', records: 4, bytes: 200 },
  parts: ['p/mp_identity_mappings_data/identity.daily-2024-11-03-t000-p000.json.gz'],
};

/** Stores `value` under `key` with `path` replaced by `replacement`. */
async function putWith(
  key: string,
  value: object,
  path: readonly string[],
  replacement: unknown,
): Promise<void> {
  const copy = structuredClone(value) as Record<string, unknown>;
  let target = copy;
  for (const step of path.slice(0, -1)) target = target[step] as Record<string, unknown>;
  const last = path.at(-1)!;
  if (replacement === undefined) delete target[last];
  else target[last] = replacement;
  await putJson(state, key, copy);
}

describe('stored state read back', () => {
  test('records this version wrote read back as written', async () => {
    for (const [key, value] of [
      [runRecordKey(run.step_id), run],
      [ingestRecordKey(hour), ingest],
      [SNAPSHOT_POINTER_KEY, pointer],
    ] as const) {
      await putJson(state, key, value);
      assert.deepEqual(await getJson(state, key), value, key);
    }
  });

  test('a field of the wrong type or missing fails the read with CorruptStateError naming the object and the field', async () => {
    const cases = [
      {
        key: runRecordKey(run.step_id),
        value: run,
        paths: [['exported'], ['status'], ['days', '2024-11-03', 'duplicates'], ['window', 'end']],
      },
      {
        key: ingestRecordKey(hour),
        value: ingest,
        paths: [['staged'], ['pieces'], ['sources', '0', 'lines']],
      },
      {
        key: SNAPSHOT_POINTER_KEY,
        value: pointer,
        paths: [['identity', 'records'], ['parts'], ['through_hour']],
      },
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...cases).chain((c) => fc.tuple(fc.constant(c), fc.constantFrom(...c.paths))),
        // Each is wrong for every field chosen (an empty list would be a valid `staged` or `parts`).
        fc.constantFrom(undefined, null, 'text', true, {}),
        async ([{ key, value }, path], replacement) => {
          await putWith(key, value, path, replacement);
          const field = path.join('.');
          await assert.rejects(
            getJson(state, key),
            (error: Error & { location?: string; field?: string }) => {
              assert.equal(error.name, 'CorruptStateError');
              assert.equal(error.location, state.uri(key));
              assert.equal(error.field, field);
              assert.ok(
                error.message.startsWith(`corrupt state in ${state.uri(key)}: ${field}: `),
                error.message,
              );
              return true;
            },
          );
        },
      ),
      { seed: 5, numRuns: 60 },
    );
  });

  test('bytes that are not JSON name the object', async () => {
    const key = runRecordKey('daily-2024-11-04');
    await state.put(key, Buffer.from('{"step_id": "daily-2024-11-04", '));
    await assert.rejects(getJson(state, key), {
      name: 'CorruptStateError',
      message: new RegExp(
        `^corrupt state in ${state.uri(key).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: \\(document\\): not JSON`,
      ),
    });
  });

  test('work files other than records are not checked against a record schema', async () => {
    await putJson(state, 'steps/daily-2024-11-03/plan.json', { anything: true });
    assert.deepEqual(await getJson(state, 'steps/daily-2024-11-03/plan.json'), { anything: true });
  });
});
