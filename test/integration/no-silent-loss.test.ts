/**
 * Issue 12's ways to lose events without an error, each run through the local pipeline (the synthesized
 * workflows, DynamoDB on moto, the state bucket's expiration rules applied as S3 would): every one
 * must now export everything or fail loudly, naming what is wrong, never commit less.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { ingestRecordKey, rawHourPrefix } from '../../src/core/layout.js';
import { getJson } from '../../src/core/object-store.js';
import { type PipelineConfig, parsePipelineConfig } from '../../src/core/pipeline-config.js';
import type { IngestRecord } from '../../src/core/records.js';
import { DAY_MS, HOUR_MS, ZoneCalendar } from '../../src/core/windows.js';
import { DEFAULT_INGEST_LIMITS } from '../../src/engine/arrival-hour.js';
import { ingestEventsPiece } from '../../src/engine/ingest.js';
import { SCHEMA_HEADER_PREFIX } from '../../src/engine/staging.js';
import { startControlPlane } from '../../src/local/control-plane.js';
import { defaultStateFolder, localStores, stagingFolder } from '../../src/local/local-stores.js';
import { type Moto, startMoto } from '../../src/local/moto.js';
import { pipelineId, runLocalPipeline, runLocalPipelines } from '../../src/local/run.js';
import { outputRecords, outputTree, readTree, tempFolder } from '../support/fixtures.js';

const UTC = new ZoneCalendar('UTC');
const at = (iso: string) => Date.parse(iso);

function pipeline(overrides: Record<string, unknown> = {}): PipelineConfig {
  return parsePipelineConfig({
    project_id: 'shop',
    name: 'events-daily',
    frequency: 'daily',
    sync: true,
    time_zone: 'UTC',
    from_date: '2024-03-01',
    ...overrides,
  });
}

/** An event line with a unique insert id. */
function event(timeMs: number, insertId: string, name = 'Purchase'): string {
  return JSON.stringify({
    event: name,
    properties: { time: timeMs / 1000, distinct_id: 'u1', $insert_id: insertId },
  });
}

/** Lands an object in the folder of arrival hour `hour`, written at `writtenAt` (default: within that hour). */
async function land(
  raw: string,
  hour: number,
  name: string,
  body: string | Buffer,
  writtenAt = hour + 60_000,
) {
  const folder = join(raw, rawHourPrefix('shop', hour));
  await mkdir(folder, { recursive: true });
  const file = join(folder, name);
  await writeFile(file, body);
  await utimes(file, new Date(writtenAt), new Date(writtenAt));
}

function foldersOf(raw: string, out: string, config: PipelineConfig) {
  return { raw, out, state: defaultStateFolder(out, config.project_id, config.name) };
}

/** Every exported insert id, by event day. */
async function exportedIds(out: string): Promise<Map<string, string[]>> {
  const days = new Map<string, string[]>();
  for (const [day, records] of await outputRecords(out, 'shop'))
    days.set(day, records.map((r) => JSON.parse(r).insert_id as string).sort());
  return days;
}

function total(days: Map<string, string[]>): number {
  return [...days.values()].reduce((sum, ids) => sum + ids.length, 0);
}

describe('no silent loss', () => {
  let moto: Moto;
  before(async () => {
    moto = await startMoto();
  });
  after(async () => {
    await moto?.stop();
  });

  /** Runs one pipeline until `now` on the shared emulator (tables of its own). */
  async function run(
    raw: string,
    out: string,
    config: PipelineConfig,
    now: number,
    options: Partial<Parameters<typeof runLocalPipeline>[0]> = {},
  ) {
    const control = await startControlPlane(moto);
    try {
      return await runLocalPipeline({
        folders: foldersOf(raw, out, config),
        config,
        now,
        control,
        workers: 2,
        ...options,
      });
    } finally {
      await control.stop();
    }
  }

  test('an arrival hour interleaving 500 event hours stages a few objects per event hour and exports every event', async () => {
    const raw = await tempFolder('interleave-raw');
    const out = await tempFolder('interleave-out');
    try {
      // Arrange: an offline queue flushes three weeks of events, round-robin over 500 event hours, in one hour.
      const arrival = at('2024-03-22T10:00:00Z');
      const first = arrival - 500 * HOUR_MS;
      const lines = Array.from({ length: 100_000 }, (_, i) =>
        event(first + (i % 500) * HOUR_MS + i, `q${i}`),
      );
      await land(raw.path, arrival, 'queue.json.gz', gzipSync(`${lines.join('\n')}\n`));
      const config = pipeline({ from_date: UTC.localDate(first) });

      // Act
      const result = await run(raw.path, out.path, config, UTC.dayEnd('2024-03-22') + 3 * HOUR_MS);

      // Assert
      assert.ok(result.ok, [...result.failures, ...result.reconciliation.problems].join('\n'));
      const ids = await exportedIds(out.path);
      assert.equal(total(ids), 100_000);
      assert.equal(new Set([...ids.values()].flat()).size, 100_000);
      const record = await getJson<IngestRecord>(
        localStores(foldersOf(raw.path, out.path, config)).state,
        ingestRecordKey(arrival),
      );
      assert.equal(new Set(record?.staged.map((o) => o.event_hour)).size, 500);
      assert.ok((record?.staged.length ?? 0) <= 3 * 500, `${record?.staged.length} staged objects`);
    } finally {
      await raw.cleanup();
      await out.cleanup();
    }
  });

  describe('staging lives until it is used', () => {
    const config = pipeline();
    const early = at('2024-03-01T10:00:00Z');

    /** Day 1 exported; events of day 2 staged by then (they arrived in its first hours); an event stamped 60 days ahead. */
    async function landDays(raw: string): Promise<void> {
      await land(
        raw,
        early,
        'a.json',
        `${event(early + 60_000, 'd1')}\n${event(at('2024-04-30T12:00:00Z'), 'ahead-60')}\n`,
      );
      // Arrived at 00:xx on 03-02: on time for 03-02, read by day 1's step (it needs hours to 02:00).
      const night = at('2024-03-02T00:00:00Z');
      await land(raw, night, 'b.json', `${event(night + 60_000, 'd2')}\n`);
    }

    test('a pipeline paused 90 days exports everything when it resumes; an event stamped 60 days ahead is exported when its window comes', async () => {
      const raw = await tempFolder('pause-raw');
      const out = await tempFolder('pause-out');
      try {
        await landDays(raw.path);
        const first = await run(raw.path, out.path, config, at('2024-03-02T02:30:00Z'));
        assert.ok(first.ok, first.failures.join('\n'));
        assert.deepEqual([...(await exportedIds(out.path)).keys()], ['2024-03-01']);

        // Act: nothing runs for 90 days (the state bucket's expiration rules apply meanwhile).
        const resumed = await run(raw.path, out.path, config, at('2024-03-02T02:30:00Z') + 90 * DAY_MS);

        // Assert
        assert.ok(resumed.ok, [...resumed.failures, ...resumed.reconciliation.problems].join('\n'));
        const ids = await exportedIds(out.path);
        assert.deepEqual(ids.get('2024-03-02'), ['d2']);
        assert.deepEqual(ids.get('2024-04-30'), ['ahead-60']);
        assert.equal(total(ids), 3);
        // Staging holds nothing any step still needs: what was exported, and the keys past the syncs' horizon, are gone.
        const state = foldersOf(raw.path, out.path, config).state;
        assert.deepEqual([...(await readTree(stagingFolder(state))).keys()], []);
        assert.deepEqual([...(await readTree(join(state, 'index'))).keys()], []);
      } finally {
        await raw.cleanup();
        await out.cleanup();
      }
    });

    test('with the 35-day expiry the stack used to have, the same pause fails its step naming the lost object, and commits nothing', async () => {
      const raw = await tempFolder('expired-raw');
      const out = await tempFolder('expired-out');
      try {
        await landDays(raw.path);
        const expiration = [{ prefix: 'staging/', days: 35 }];
        await run(raw.path, out.path, config, at('2024-03-02T02:30:00Z'), { expiration });

        const resumed = await run(raw.path, out.path, config, at('2024-03-02T02:30:00Z') + 90 * DAY_MS, {
          expiration,
        });

        assert.equal(resumed.ok, false);
        assert.match(
          resumed.failures.join('\n'),
          /daily-2024-03-02 failed: StagingLostError: staged object stage\/2024030200\//,
        );
        assert.ok(!resumed.steps.some((s) => s.step_id === 'daily-2024-03-02'), 'nothing committed');
        const folder = join(out.path, 'shop/mp_master_event/2024/03/02');
        assert.deepEqual(await readdir(folder).catch(() => []), [], 'no manifest, no part');
      } finally {
        await raw.cleanup();
        await out.cleanup();
      }
    });
  });

  describe("nobody else's files", () => {
    test('two pipelines of a project quarantine the same arrival hours into their own files', async () => {
      const raw = await tempFolder('shared-raw');
      const out = await tempFolder('shared-out');
      try {
        // Arrange: two events pipelines to one destination, one day apart: both read 03-02's hours.
        const hour = at('2024-03-02T06:00:00Z');
        await land(raw.path, hour, 'a.json', `${event(hour, 'x1')}\nnot json\n{"event":""}\n`);
        const early = pipeline({ name: 'events-early', to_date: '2024-03-02' });
        const late = pipeline({ name: 'events-late', from_date: '2024-03-03' });
        const control = await startControlPlane(moto);
        try {
          // Act
          const { results } = await runLocalPipelines({
            configs: [early, late],
            folders: (config) => foldersOf(raw.path, out.path, config),
            now: at('2024-03-04T03:00:00Z'),
            control,
            workers: 2,
          });
          // Assert
          for (const config of [early, late]) {
            const result = results.get(pipelineId(config))!;
            assert.ok(result.ok, [...result.failures, ...result.reconciliation.problems].join('\n'));
            const folder = `shop/_quarantine/${config.name}/events/2024/03/02/06/`;
            const files = [...(await outputTree(out.path)).keys()].filter((key) => key.startsWith(folder));
            assert.equal(files.length, 1, `${config.name}: ${files.join(', ')}`);
            const quarantined = result.reconciliation.arrivalDays.reduce(
              (sum, row) => sum + row.quarantined,
              0,
            );
            assert.equal(quarantined, 2);
          }
        } finally {
          await control.stop();
        }
      } finally {
        await raw.cleanup();
        await out.cleanup();
      }
    });

    test("a new pipeline to a deleted one's destination and dates writes beside its exports, never over them", async () => {
      const raw = await tempFolder('deleted-raw');
      const out = await tempFolder('deleted-out');
      try {
        const hour = at('2024-03-01T06:00:00Z');
        await land(raw.path, hour, 'a.json', `${event(hour, 'x1')}\n${event(hour + 1, 'x2')}\nbad\n`);
        const first = pipeline({ name: 'events-old' });
        await run(raw.path, out.path, first, at('2024-03-02T03:00:00Z'));
        const before = await outputTree(out.path);

        // Act: another pipeline, same destination and dates (the first one was deleted).
        const second = pipeline({ name: 'events-new' });
        const result = await run(raw.path, out.path, second, at('2024-03-02T03:00:00Z'));

        // Assert: every file the first wrote is still there, byte for byte; the second's are its own.
        assert.ok(result.ok, result.failures.join('\n'));
        const after = await outputTree(out.path);
        for (const [path, bytes] of before) {
          if (path.startsWith('_state/')) continue;
          assert.ok(after.get(path)?.equals(bytes), `${path} kept`);
        }
        const added = [...after.keys()].filter((path) => !before.has(path) && !path.startsWith('_state/'));
        assert.ok(added.length > 0);
        for (const path of added) assert.match(path, /events-new/);
      } finally {
        await raw.cleanup();
        await out.cleanup();
      }
    });

    test('a snapshot commit removes only the parts of its own earlier snapshot, not a customer file beside them', async () => {
      const raw = await tempFolder('snapshot-raw');
      const out = await tempFolder('snapshot-out');
      try {
        const config = pipeline({ name: 'people-daily', data_source: 'people', sync: false });
        const folder = join(raw.path, rawHourPrefix('shop', at('2024-03-01T06:00:00Z'), 'people'));
        await mkdir(folder, { recursive: true });
        await writeFile(join(folder, 'p.json'), '{"$distinct_id":"u1","$set":{"a":1}}\n');
        const customer = join(out.path, 'shop/mp_people_data/notes/readme.txt');
        await mkdir(join(out.path, 'shop/mp_people_data/notes'), { recursive: true });
        await writeFile(customer, 'ours');
        const foreign = join(
          out.path,
          'shop/mp_people_data/other-pipeline.daily-2024-03-01-t000-p000.json.gz',
        );
        await writeFile(foreign, 'not ours either');

        for (const day of ['2024-03-02', '2024-03-03', '2024-03-04']) {
          const result = await run(raw.path, out.path, config, UTC.dayEnd(day) + 3 * HOUR_MS);
          assert.ok(result.ok, result.failures.join('\n'));
        }

        const files = (await readdir(join(out.path, 'shop/mp_people_data'))).sort();
        assert.deepEqual(files, [
          '_manifest-people-daily.json',
          'notes',
          'other-pipeline.daily-2024-03-01-t000-p000.json.gz',
          'people-daily.daily-2024-03-04-t000-p000.json.gz',
        ]);
        assert.equal(await readFile(customer, 'utf8'), 'ours');
      } finally {
        await raw.cleanup();
        await out.cleanup();
      }
    });

    test('an object whose upload completed two hours after it began is adopted by the first hour that can see it', async () => {
      const raw = await tempFolder('multipart-raw');
      const out = await tempFolder('multipart-out');
      try {
        // Hourly: at 12:30 the window of 09:00 is due, and its step reads arrival hours 10 and 11.
        const config = pipeline({ name: 'events-hourly', frequency: 'hourly' });
        const hour = at('2024-03-01T10:00:00Z');
        await land(raw.path, hour, 'a.json', `${event(hour, 'a1')}\n`);
        const first = await run(raw.path, out.path, config, at('2024-03-01T12:30:00Z'));
        assert.ok(first.ok, first.failures.join('\n'));
        // S3 stamps an upload's start (10:10) as its Last-Modified; it became visible at 12:40, after hours
        // 10 and 11 were read.
        await land(raw.path, hour, 'slow.json', `${event(hour + 600_000, 'slow-1')}\n`, hour + 600_000);

        const result = await run(raw.path, out.path, config, at('2024-03-02T03:00:00Z'));

        assert.ok(result.ok, [...result.failures, ...result.reconciliation.problems].join('\n'));
        assert.deepEqual((await exportedIds(out.path)).get('2024-03-01'), ['a1', 'slow-1']);
        const adopter = await getJson<IngestRecord>(
          localStores(foldersOf(raw.path, out.path, config)).state,
          ingestRecordKey(at('2024-03-01T12:00:00Z')),
        );
        assert.deepEqual(
          adopter?.sources.map((source) => [source.key, source.folder_hour]),
          [['shop/events/2024/03/01/10/slow.json', '2024-03-01T10:00Z']],
        );
      } finally {
        await raw.cleanup();
        await out.cleanup();
      }
    });
  });

  describe('poison input never blocks and is never dropped silently', () => {
    test('an hour of 10,000 small objects is read in pieces across invocations and exported whole', async () => {
      const raw = await tempFolder('many-raw');
      const out = await tempFolder('many-out');
      try {
        const hour = at('2024-03-01T10:00:00Z');
        const folder = join(raw.path, rawHourPrefix('shop', hour));
        await mkdir(folder, { recursive: true });
        for (let i = 0; i < 10_000; i += 1)
          await writeFile(
            join(folder, `o-${String(i).padStart(5, '0')}.json`),
            `${event(hour + i, `m${i}`)}\n`,
          );
        const config = pipeline();

        const result = await run(raw.path, out.path, config, at('2024-03-02T03:00:00Z'), {
          ingestLimits: { ...DEFAULT_INGEST_LIMITS, pieceObjects: 1000 },
        });

        assert.ok(result.ok, [...result.failures, ...result.reconciliation.problems].join('\n'));
        assert.equal(total(await exportedIds(out.path)), 10_000);
        const record = await getJson<IngestRecord>(
          localStores(foldersOf(raw.path, out.path, config)).state,
          ingestRecordKey(hour),
        );
        assert.equal(record?.pieces, 10);
        assert.equal(record?.sources.length, 10_000);
      } finally {
        await raw.cleanup();
        await out.cleanup();
      }
    });

    test('a large object is read in pieces of its own and gives what one read gives', async () => {
      const raw = await tempFolder('large-raw');
      const whole = await tempFolder('large-whole');
      const pieces = await tempFolder('large-pieces');
      try {
        const hour = at('2024-03-01T10:00:00Z');
        const lines = Array.from({ length: 20_000 }, (_, i) => event(hour + i, `l${i}`));
        lines.splice(5000, 0, 'not json');
        await land(raw.path, hour, 'a-small.json', `${event(hour, 'small')}\n`);
        await land(raw.path, hour, 'b-large.json.gz', gzipSync(`${lines.join('\n')}\n`));
        await land(raw.path, hour, 'c-small.json', `${event(hour, 'small2')}\n`);
        const config = pipeline();
        const now = at('2024-03-02T03:00:00Z');

        const one = await run(raw.path, whole.path, config, now);
        const split = await run(raw.path, pieces.path, config, now, {
          ingestLimits: { ...DEFAULT_INGEST_LIMITS, pieceBytes: 256 * 1024, largeObjectBytes: 64 * 1024 },
        });

        assert.ok(one.ok && split.ok, [...one.failures, ...split.failures].join('\n'));
        const outputOf = async (dir: string) =>
          new Map([...(await outputTree(dir))].filter(([path]) => !path.includes('_quarantine')));
        assert.deepEqual(await outputOf(pieces.path), await outputOf(whole.path));
        assert.deepEqual(split.reconciliation.arrivalDays, one.reconciliation.arrivalDays);
        const record = await getJson<IngestRecord>(
          localStores(foldersOf(raw.path, pieces.path, config)).state,
          ingestRecordKey(hour),
        );
        assert.ok((record?.pieces ?? 0) > 3, `${record?.pieces} pieces`);
      } finally {
        await raw.cleanup();
        await whole.cleanup();
        await pieces.cleanup();
      }
    });

    test('a gzip bomb is set aside with its reason at once; the hour and the pipeline go on', async () => {
      const raw = await tempFolder('bomb-raw');
      const out = await tempFolder('bomb-out');
      try {
        const hour = at('2024-03-01T10:00:00Z');
        await land(raw.path, hour, 'a.json', `${event(hour, 'fine')}\n`);
        const line = `${event(hour, 'bomb')}\n`;
        await land(raw.path, hour, 'bomb.json.gz', gzipSync(line.repeat(200_000), { level: 9 }));
        const config = pipeline();

        const result = await run(raw.path, out.path, config, at('2024-03-02T03:00:00Z'), {
          ingestLimits: {
            ...DEFAULT_INGEST_LIMITS,
            object: { maxBytes: 1e12, maxRatio: 100, ratioAfterBytes: 1024 * 1024 },
          },
        });

        assert.ok(result.ok, [...result.failures, ...result.reconciliation.problems].join('\n'));
        assert.deepEqual((await exportedIds(out.path)).get('2024-03-01'), ['fine']);
        const reason = JSON.parse(
          await readFile(
            join(
              out.path,
              'shop/_quarantine/events-daily/objects/shop/events/2024/03/01/10/bomb.json.gz.reason.json',
            ),
            'utf8',
          ),
        );
        assert.equal(reason.reason, 'compression_ratio');
        assert.equal(reason.attempts, 1);
        const day = result.reconciliation.arrivalDays.find((row) => row.day === '2024-03-01');
        assert.equal(day?.objects_set_aside, 1);
      } finally {
        await raw.cleanup();
        await out.cleanup();
      }
    });
  });

  describe('every commit proves its balance', () => {
    /** Ingests and plans day 1 through the schedule up to its tasks, then plants a loss and runs on. */
    async function plantedLoss(plant: (stagingDir: string, key: string) => Promise<void>) {
      const raw = await tempFolder('planted-raw');
      const out = await tempFolder('planted-out');
      const hour = at('2024-03-01T10:00:00Z');
      await land(
        raw.path,
        hour,
        'a.json',
        `${Array.from({ length: 50 }, (_, i) => event(hour + i, `p${i}`)).join('\n')}\n`,
      );
      const config = pipeline({ sync: false });
      // Ingest hour 10 only (a step of an earlier window runs it), leaving its staged object in place.
      const day = at('2024-03-02T03:00:00Z');
      const folders = foldersOf(raw.path, out.path, config);
      const stores = localStores(folders);
      await stores.state.put('pipeline.json', Buffer.from(JSON.stringify(config)));
      while (!(await ingestEventsPiece(stores, config, hour)).done);
      const record = await getJson<IngestRecord>(stores.state, ingestRecordKey(hour));
      const key = record!.staged[0]!.key;
      await plant(stagingFolder(folders.state), key);
      const result = await run(raw.path, out.path, config, day);
      return { result, out, raw, key };
    }

    test('a staged object removed by hand fails its step, naming it, and nothing is committed', async () => {
      const { result, out, raw, key } = await plantedLoss((dir, key) => rm(join(dir, key)));
      try {
        assert.equal(result.ok, false);
        assert.match(
          result.failures.join('\n'),
          new RegExp(`StagingLostError: staged object ${key.replaceAll('.', '\\.')}`),
        );
        assert.deepEqual(
          await readdir(join(out.path, 'shop/mp_master_event/2024/03/01')).catch(() => []),
          [],
        );
      } finally {
        await raw.cleanup();
        await out.cleanup();
      }
    });

    test('a staged object cut short by hand fails its step with the days and counts that do not balance', async () => {
      const { result, out, raw } = await plantedLoss(async (dir, key) => {
        // Its schema header and its first 10 records.
        const [header, ...records] = (await readFile(join(dir, key), 'utf8')).split('\n');
        assert.ok(header!.startsWith(SCHEMA_HEADER_PREFIX), 'a staged object starts with its schema');
        await writeFile(join(dir, key), `${[header, ...records.slice(0, 10)].join('\n')}\n`);
      });
      try {
        assert.equal(result.ok, false);
        assert.match(
          result.failures.join('\n'),
          /ReconciliationError: step daily-2024-03-01 does not balance, nothing committed: event day 2024-03-01: ingest routed 50 events to it, its tasks exported 10/,
        );
        assert.deepEqual(
          await readdir(join(out.path, 'shop/mp_master_event/2024/03/01')).catch(() => []),
          [],
        );
      } finally {
        await raw.cleanup();
        await out.cleanup();
      }
    });
  });
});
