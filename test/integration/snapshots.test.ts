import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FsObjectStore } from '../../src/adapters/fs-object-store.js';
import {
  ingestRecordKey,
  planKey,
  rawHourPrefix,
  runRecordKey,
  SNAPSHOT_POINTER_KEY,
  snapshotFolder,
  snapshotManifestKey,
} from '../../src/core/layout.js';
import { getJson, type ObjectStore } from '../../src/core/object-store.js';
import { type PipelineConfig, parsePipelineConfig } from '../../src/core/pipeline-config.js';
import type { EngineStores } from '../../src/core/ports.js';
import type { IngestRecord, SnapshotManifest, SnapshotPlan } from '../../src/core/records.js';
import { ingestStart } from '../../src/core/routing.js';
import { HOUR_MS, ZoneCalendar } from '../../src/core/windows.js';
import { advanceIngestWatermark } from '../../src/engine/plan.js';
import { commitSnapshot } from '../../src/engine/snapshot-commit.js';
import { ingestSnapshotPiece } from '../../src/engine/snapshot-ingest.js';
import { planSnapshot } from '../../src/engine/snapshot-plan.js';
import { runSnapshotTask } from '../../src/engine/snapshot-task.js';
import { generateProfileLandingZone } from '../../src/local/generate-profiles.js';
import { outputTree, readTree, tempFolder } from '../support/fixtures.js';
import { modelSnapshot, readSnapshot } from '../support/snapshot-model.js';

const DAY = '2024-11-01';
const T0 = Date.parse(`${DAY}T00:00:00Z`);
const calendar = new ZoneCalendar('UTC');

function pipeline(
  dataSource: 'people' | 'identity',
  overrides: Record<string, unknown> = {},
): PipelineConfig {
  return parsePipelineConfig({
    project_id: 'acme',
    name: `${dataSource}-daily`,
    data_source: dataSource,
    frequency: 'daily',
    time_zone: 'UTC',
    from_date: DAY,
    ...overrides,
  });
}

/** Small tasks and parts, so a few hundred profiles exercise several shards per task, tasks and parts. */
const SMALL = { taskTargetBytes: 4 * 1024, maxKeysPerUnit: 1_000_000, maxTasks: 1000 };

function stores(root: string): EngineStores {
  const state = new FsObjectStore(join(root, 'state'));
  return {
    raw: new FsObjectStore(join(root, 'raw')),
    destination: new FsObjectStore(join(root, 'out')),
    state,
    staging: state,
  };
}

/** Runs the snapshot step of `day` by hand: ingest what is missing, plan, every task, commit. */
async function runDay(s: EngineStores, config: PipelineConfig, day: string): Promise<SnapshotPlan> {
  await ingestDay(s, config, day);
  return stepDay(s, config, day);
}

async function ingestDay(s: EngineStores, config: PipelineConfig, day: string): Promise<void> {
  const window = calendar.windowById('daily', day);
  const start = ingestStart(config, calendar);
  for (let hour = start; hour < window.end; hour += HOUR_MS)
    if ((await s.state.getBytes(ingestRecordKey(hour))) === undefined)
      while (!(await ingestSnapshotPiece(s, config, hour)).done);
  await advanceIngestWatermark(s.state, start);
}

async function stepDay(s: EngineStores, config: PipelineConfig, day: string): Promise<SnapshotPlan> {
  const window = calendar.windowById('daily', day);
  const plan = await planSnapshot(s, config, window, SMALL);
  for (let task = 0; task < plan.tasks.length; task += 1) await runSnapshotTask(s, config, plan, task);
  await commitSnapshot(s, config, plan.step_id, { startedAt: window.end, finishedAt: window.end + HOUR_MS });
  return plan;
}

async function writeRaw(
  root: string,
  source: 'people' | 'identity',
  hour: number,
  lines: readonly unknown[],
  file = 'part.json',
): Promise<void> {
  const folder = join(root, 'raw', rawHourPrefix('acme', hour, source));
  await mkdir(folder, { recursive: true });
  await writeFile(
    join(folder, file),
    `${lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n')}\n`,
  );
}

const at = (hours: number, minutes = 0) => T0 + hours * HOUR_MS + minutes * 60_000;
const day = (n: number) => `2024-11-0${n}`;

describe('people snapshots', () => {
  test('each operation through the pipeline, and updates of one run applied in $time order', async () => {
    const dir = await tempFolder('people-ops');
    try {
      const config = pipeline('people');
      // Arrival hour 1: lines out of time order; the same time keeps line order.
      await writeRaw(dir.path, 'people', at(1), [
        { $distinct_id: 'ann', $time: at(1, 30) / 1000, $set: { plan: 'pro' } },
        { $distinct_id: 'ann', $time: at(1, 10) / 1000, $set: { plan: 'free', city: 'Oslo' } },
        { $distinct_id: 'ann', $time: at(1, 40), $set_once: { plan: 'never', first: 'x' } },
        { $distinct_id: 'ann', $time: at(1, 40), $set_once: { first: 'y' } },
        { $distinct_id: 'ann', $time: at(1, 41), $add: { logins: 2 } },
        { $distinct_id: 'ann', $time: at(1, 42), $add: { logins: 3, city: 1 } },
        { $distinct_id: 'ann', $time: at(1, 43), $union: { tags: ['a', 'b', 'a'] } },
        { $distinct_id: 'ann', $time: at(1, 44), $union: { tags: ['b', 'c'] }, $remove: { tags: 'a' } },
        { $distinct_id: 'ann', $time: at(1, 45), $append: { pages: '/x' } },
        { $distinct_id: 'ann', $time: at(1, 46), $append: { pages: '/x' } },
        { $distinct_id: 'ann', $time: at(1, 47), $unset: ['city'] },
        { $distinct_id: 'bob', $time: at(1, 1), $set: { plan: 'team' } },
        { $distinct_id: 'bob', $time: at(1, 2), $delete: '' },
        { $distinct_id: 'cy', $time: at(1, 3), $set: { a: 1 } },
        { $distinct_id: 'cy', $time: at(1, 4), $delete: '' },
        { $distinct_id: 'cy', $time: at(1, 5), $set_once: { b: 2 } },
        { $distinct_id: 'ghost', $time: at(1, 6), $unset: ['a'] },
        { $distinct_id: 42, $set: { numeric: true } },
      ]);
      const s = stores(dir.path);
      await runDay(s, config, day(1));
      const snapshot = await readSnapshot(s.destination, 'acme', 'people');
      assert.deepEqual(
        snapshot,
        new Map<string, unknown>([
          ['42', { numeric: true }],
          ['ann', { plan: 'pro', first: 'x', logins: 5, tags: ['b', 'c'], pages: ['/x', '/x'] }],
          ['cy', { b: 2 }],
        ]),
      );
    } finally {
      await dir.cleanup();
    }
  });

  test('across runs, a run folds into the last snapshot; an update that arrives later applies later', async () => {
    const dir = await tempFolder('people-runs');
    try {
      const config = pipeline('people');
      const s = stores(dir.path);
      await writeRaw(dir.path, 'people', at(2), [
        { $distinct_id: 'ann', $time: at(2) / 1000, $set: { plan: 'pro' }, $add: { n: 1 } },
      ]);
      await runDay(s, config, day(1));
      // Day 2 brings an update stamped before the one already folded: it still applies, on top.
      await writeRaw(dir.path, 'people', at(26), [
        { $distinct_id: 'ann', $time: at(1) / 1000, $set: { plan: 'free' }, $add: { n: 1 } },
        { $distinct_id: 'dee', $set: { plan: 'team' } },
      ]);
      await runDay(s, config, day(2));
      assert.deepEqual(
        await readSnapshot(s.destination, 'acme', 'people'),
        new Map<string, unknown>([
          ['ann', { plan: 'free', n: 2 }],
          ['dee', { plan: 'team' }],
        ]),
      );
      // Only the new snapshot's files are left in the folder.
      const files = (await readdir(join(dir.path, 'out', snapshotFolder('acme', 'people')))).sort();
      assert.deepEqual(files, [
        '_manifest-people-daily.json',
        'people-daily.daily-2024-11-02-t000-p000.json.gz',
      ]);
    } finally {
      await dir.cleanup();
    }
  });

  test('updates of a merged identity go to the resolved profile, and merged profiles move there', async () => {
    const dir = await tempFolder('people-merge');
    try {
      const config = pipeline('people');
      const s = stores(dir.path);
      await writeRaw(dir.path, 'people', at(1), [
        { $distinct_id: 'device-1', $set: { a: 1, b: 'device' } },
        { $distinct_id: 'user-1', $set: { b: 'user' } },
        { $distinct_id: 'device-2', $set: { d: 2 } },
      ]);
      await runDay(s, config, day(1));
      await writeRaw(dir.path, 'identity', at(25), [
        {
          event: '$identify',
          properties: { $anon_id: 'device-1', $identified_id: 'user-1', time: at(25) / 1000 },
        },
        { event: '$create_alias', properties: { alias: 'device-2', distinct_id: 'user-2' } },
      ]);
      await writeRaw(dir.path, 'people', at(25), [
        { $distinct_id: 'device-1', $time: at(25, 30) / 1000, $set: { c: 3 } },
        { $distinct_id: 'user-2', $add: { n: 1 } },
      ]);
      await runDay(s, config, day(2));
      assert.deepEqual(
        await readSnapshot(s.destination, 'acme', 'people'),
        new Map<string, unknown>([
          ['user-1', { b: 'user', a: 1, c: 3 }],
          ['user-2', { d: 2, n: 1 }],
        ]),
      );
      // A chain: user-2 -> user-1 merged by $merge, the smallest canonical id wins.
      await writeRaw(dir.path, 'identity', at(49), [
        { event: '$merge', properties: { $distinct_ids: ['user-2', 'user-1'] } },
      ]);
      await writeRaw(dir.path, 'people', at(49), [{ $distinct_id: 'device-2', $add: { n: 1 } }]);
      await runDay(s, config, day(3));
      assert.deepEqual(
        await readSnapshot(s.destination, 'acme', 'people'),
        new Map<string, unknown>([['user-1', { b: 'user', a: 1, c: 3, d: 2, n: 2 }]]),
      );
      // A day without links keeps the identity table and still resolves updates through it.
      await writeRaw(dir.path, 'people', at(73), [{ $distinct_id: 'device-1', $add: { n: 1 } }]);
      const plan = await runDay(s, config, day(4));
      assert.equal(plan.links, 0);
      assert.equal(plan.identity.key, plan.base?.identity.key);
      assert.deepEqual(
        await readSnapshot(s.destination, 'acme', 'people'),
        new Map<string, unknown>([['user-1', { b: 'user', a: 1, c: 3, d: 2, n: 3 }]]),
      );
      const tables = [...(await readTree(join(dir.path, 'state', 'snapshot', 'tables'))).keys()].sort();
      assert.deepEqual(tables, [
        'daily-2024-11-03/identity.ndjson',
        ...Array.from({ length: 32 }, (_, shard) => `daily-2024-11-04/profiles-${shard}.ndjson`).sort(),
      ]);
    } finally {
      await dir.cleanup();
    }
  });

  test('bad lines are quarantined with their reasons and counted; the rest is folded', async () => {
    const dir = await tempFolder('people-bad');
    try {
      const config = pipeline('people');
      const s = stores(dir.path);
      await writeRaw(dir.path, 'people', at(3), [
        '{"$distinct_id": "ann", "$set": ',
        { $set: { a: 1 } },
        { $distinct_id: 'ann' },
        { $distinct_id: 'ann', $add: { n: 'one' } },
        { $distinct_id: 'ann', $time: 'yesterday', $set: { a: 1 } },
        { $distinct_id: 'ann', $set: { a: 1 } },
      ]);
      await writeRaw(dir.path, 'identity', at(3), [{ event: 'Purchase', properties: {} }]);
      await runDay(s, config, day(1));
      const record = await getJson<IngestRecord>(s.state, ingestRecordKey(at(3)));
      assert.equal(record?.source_lines, 7);
      assert.equal(record?.valid, 1);
      assert.deepEqual(record?.quarantine_reasons, {
        invalid_json: 1,
        missing_distinct_id: 1,
        no_operation: 1,
        invalid_operation: 1,
        invalid_time: 1,
        not_an_identity_event: 1,
      });
      const quarantined = [...(await outputTree(join(dir.path, 'out'))).keys()].filter((k) =>
        k.includes('_quarantine'),
      );
      assert.deepEqual(quarantined.sort(), [
        'acme/_quarantine/people-daily/identity/2024/11/01/03/quarantine-000-000.json.gz',
        'acme/_quarantine/people-daily/people/2024/11/01/03/quarantine-000-000.json.gz',
      ]);
      assert.deepEqual(await readSnapshot(s.destination, 'acme', 'people'), new Map([['ann', { a: 1 }]]));
    } finally {
      await dir.cleanup();
    }
  });
});

describe('a snapshot step waits for what it needs', () => {
  test('no plan before its arrival hours are ingested, no commit before its tasks finish', async () => {
    const dir = await tempFolder('snapshot-not-ready');
    try {
      // Arrange: one update, nothing ingested yet.
      const config = pipeline('people');
      const s = stores(dir.path);
      await writeRaw(dir.path, 'people', at(1), [{ $distinct_id: 'ann', $set: { a: 1 } }]);
      const window = calendar.windowById('daily', day(1));

      // Act / Assert: the plan names the hour it needs and the hour ingest reached.
      await assert.rejects(planSnapshot(s, config, window, SMALL), {
        name: 'NotReadyError',
        message: /before 2024-11-02T00:00Z ingested; ingested up to 2024-11-01T00:00Z/,
      });
      await ingestDay(s, config, day(1));
      const plan = await planSnapshot(s, config, window, SMALL);
      const timing = { startedAt: window.end, finishedAt: window.end + HOUR_MS };
      await assert.rejects(commitSnapshot(s, config, plan.step_id, timing), {
        name: 'NotReadyError',
        message: new RegExp(`step ${plan.step_id}: task 0 has not finished`),
      });
      assert.equal(
        await s.destination.getBytes(snapshotManifestKey('acme', 'people', config.name)),
        undefined,
      );
      assert.equal(await s.state.getBytes(runRecordKey(plan.step_id)), undefined);

      // The same step completes once its tasks have run.
      for (let task = 0; task < plan.tasks.length; task += 1) await runSnapshotTask(s, config, plan, task);
      await commitSnapshot(s, config, plan.step_id, timing);
      assert.deepEqual(await readSnapshot(s.destination, 'acme', 'people'), new Map([['ann', { a: 1 }]]));
    } finally {
      await dir.cleanup();
    }
  });
});

describe('identity snapshots', () => {
  test('chains and merges resolve to one canonical id per cluster', async () => {
    const dir = await tempFolder('identity');
    try {
      const config = pipeline('identity');
      const s = stores(dir.path);
      await writeRaw(dir.path, 'identity', at(1), [
        { event: '$identify', properties: { $anon_id: 'd1', $identified_id: 'u1', time: at(1, 5) / 1000 } },
        { event: '$create_alias', properties: { alias: 'd2', distinct_id: 'd1', time: at(1, 6) / 1000 } },
        { distinct_id: 'd3', resolved_distinct_id: 'u3' },
        { event: '$merge', properties: { $distinct_ids: ['u9', 'u3'], time: at(1, 1) / 1000 } },
      ]);
      await runDay(s, config, day(1));
      assert.deepEqual(
        await readSnapshot(s.destination, 'acme', 'identity'),
        new Map([
          ['d1', 'u1'],
          ['d2', 'u1'],
          ['d3', 'u3'],
          ['u1', 'u1'],
          ['u3', 'u3'],
          ['u9', 'u3'],
        ]),
      );
      await writeRaw(dir.path, 'identity', at(30), [{ distinct_id: 'u1', resolved_distinct_id: 'd3' }]);
      await runDay(s, config, day(2));
      const after2 = await readSnapshot(s.destination, 'acme', 'identity');
      assert.deepEqual([...new Set(after2.values())], ['u3']);
      assert.equal(after2.size, 6);
    } finally {
      await dir.cleanup();
    }
  });
});

describe('snapshots match the documented semantics computed naively', () => {
  let raw: { path: string; cleanup: () => Promise<void> };
  before(async () => {
    raw = await tempFolder('model-raw');
    await generateProfileLandingZone({
      rawDir: join(raw.path, 'raw'),
      projectId: 'acme',
      seed: 5,
      start: T0,
      hours: 72,
      updatesPerHour: 60,
      users: 150,
    });
  });
  after(() => raw.cleanup());

  for (const schedule of [[1, 2, 3], [3]]) {
    test(`snapshots after days ${schedule.join(', ')}`, async () => {
      const dir = await tempFolder('model');
      try {
        const config = pipeline('people', { part_max_bytes: 1024 * 1024 });
        const s = { ...stores(dir.path), raw: new FsObjectStore(join(raw.path, 'raw')) };
        let plan: SnapshotPlan | undefined;
        for (const n of schedule) plan = await runDay(s, config, day(n));
        assert.ok((plan?.tasks.length ?? 0) > 1, 'several tasks');
        assert.ok((plan?.merged ?? 0) > 0 || schedule.length === 1, 'profiles merged');
        const expected = await modelSnapshot(
          join(raw.path, 'raw'),
          'acme',
          T0,
          schedule.map((n) => T0 + n * 24 * HOUR_MS),
        );
        assert.ok(expected.size > 50);
        assert.deepEqual(await readSnapshot(s.destination, 'acme', 'people'), expected);
      } finally {
        await dir.cleanup();
      }
    });
  }
});

/** A store whose `put` (either kind) or `delete` of a key matching `pattern` throws, once: a crash at that point. */
function crashing(
  store: ObjectStore,
  operation: 'put' | 'delete',
  pattern: RegExp,
): ObjectStore & { crashed: boolean } {
  const wrapped = Object.create(store) as ObjectStore & { crashed: boolean };
  wrapped.crashed = false;
  const methods = operation === 'put' ? (['put', 'putIfAbsent'] as const) : (['delete'] as const);
  for (const method of methods) {
    const original = store[method].bind(store) as (keys: unknown, body?: unknown) => Promise<unknown>;
    (wrapped as unknown as Record<string, unknown>)[method] = async (
      keys: string | string[],
      body?: unknown,
    ) => {
      const named = typeof keys === 'string' ? [keys] : keys;
      if (!wrapped.crashed && named.some((key) => pattern.test(key))) {
        wrapped.crashed = true;
        throw new Error(`crash at ${operation} of ${pattern}`);
      }
      return original(keys, body);
    };
  }
  return wrapped;
}

describe('a snapshot step that crashes anywhere and runs again ends exactly as a clean run', () => {
  let raw: { path: string; cleanup: () => Promise<void> };
  let clean: { path: string; cleanup: () => Promise<void> };
  const config = pipeline('people');
  before(async () => {
    raw = await tempFolder('crash-raw');
    clean = await tempFolder('crash-clean');
    await generateProfileLandingZone({
      rawDir: join(raw.path, 'raw'),
      projectId: 'acme',
      seed: 9,
      start: T0,
      hours: 48,
      updatesPerHour: 40,
      users: 100,
    });
    const s = { ...stores(clean.path), raw: new FsObjectStore(join(raw.path, 'raw')) };
    await runDay(s, config, day(1));
    await runDay(s, config, day(2));
  });
  after(async () => {
    await raw.cleanup();
    await clean.cleanup();
  });

  for (const [where, operation, store, pattern] of [
    ['the plan, while routing updates', 'put', 'state', /shard-010\.ndjson$/],
    ['the plan, before its plan is saved', 'put', 'state', /plan\.json$/],
    ['a task, while writing parts', 'put', 'destination', /-t001-p000/],
    ['a task, after its parts', 'put', 'state', /task-000\.json$/],
    ['the commit, after the manifest', 'delete', 'destination', /./],
    ['the commit, after the pointer', 'put', 'state', /^runs\//],
    ['the commit, after the run record', 'delete', 'state', /./],
  ] as const) {
    test(`a crash in ${where} of the second step`, async () => {
      const dir = await tempFolder('crash');
      try {
        const s = { ...stores(dir.path), raw: new FsObjectStore(join(raw.path, 'raw')) };
        await runDay(s, config, day(1));
        await ingestDay(s, config, day(2));
        const broken = crashing(s[store], operation, pattern);
        await assert.rejects(stepDay({ ...s, [store]: broken }, config, day(2)), /crash at/);
        assert.ok(broken.crashed);
        if (!where.startsWith('the commit')) {
          // New files come first: until the manifest is replaced, readers see the last snapshot whole.
          const manifest = await getJson<SnapshotManifest>(
            s.destination,
            snapshotManifestKey('acme', 'people', 'people-daily'),
          );
          assert.equal(manifest?.step_id, 'daily-2024-11-01');
          await readSnapshot(s.destination, 'acme', 'people');
        }
        if (where === 'the commit, after the manifest') {
          // A reader following the manifest already sees the whole new snapshot.
          const manifest = await getJson<SnapshotManifest>(
            s.destination,
            snapshotManifestKey('acme', 'people', 'people-daily'),
          );
          assert.equal(manifest?.step_id, 'daily-2024-11-02');
          await readSnapshot(s.destination, 'acme', 'people');
        }
        await runDay(s, config, day(2));
        const expected = await outputTree(join(clean.path, 'out'));
        const actual = await outputTree(join(dir.path, 'out'));
        assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
        for (const [key, bytes] of expected) assert.ok(actual.get(key)?.equals(bytes), `${key} is the same`);
        assert.equal(await s.state.getBytes(planKey('daily-2024-11-02')), undefined, 'work files dropped');
        assert.equal(
          (await getJson<{ step_id: string }>(s.state, SNAPSHOT_POINTER_KEY))?.step_id,
          'daily-2024-11-02',
        );
      } finally {
        await dir.cleanup();
      }
    });
  }
});
