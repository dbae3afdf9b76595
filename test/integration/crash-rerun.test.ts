import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import {
  manifestKey,
  partKey,
  rawHourPrefix,
  runRecordKey,
  stagedKey,
  taskResultKey,
} from '../../src/core/layout.js';
import { getJson, putJson } from '../../src/core/object-store.js';
import { parsePipelineConfig } from '../../src/core/pipeline-config.js';
import type { EngineStores } from '../../src/core/ports.js';
import type { TaskResult } from '../../src/core/records.js';
import { completeArrivalHours, dueSteps } from '../../src/core/routing.js';
import { HOUR_MS, ZoneCalendar } from '../../src/core/windows.js';
import { commitStep } from '../../src/engine/commit.js';
import { runExportTask } from '../../src/engine/export-task.js';
import { ingestEventsPiece } from '../../src/engine/ingest.js';
import { advanceIngestWatermark, planStep } from '../../src/engine/plan.js';
import { readWarehouseSchema } from '../../src/engine/warehouse.js';
import { generateLandingZone } from '../../src/local/generate.js';
import { defaultStateFolder, localStores } from '../../src/local/local-stores.js';
import { runLocalPipeline } from '../../src/local/run.js';
import { assertSameTree, outputRecords, outputTree, tempFolder } from '../support/fixtures.js';

/** Ingests an arrival hour to its commit, piece by piece. */
async function ingestHour(stores: EngineStores, hour: number): Promise<void> {
  while (!(await ingestEventsPiece(stores, config, hour)).done);
}

const config = parsePipelineConfig({
  project_id: 'crashy',
  name: 'events-daily',
  frequency: 'daily',
  sync: true,
  time_zone: 'America/New_York',
  from_date: '2024-03-09',
  part_max_bytes: 1024 * 1024,
});
const calendar = new ZoneCalendar(config.time_zone);
const now = calendar.dayEnd('2024-03-13') + 3 * HOUR_MS;
/** Three days of events; the clean run and the broken-object run generate the same landing zone. */
const landingZone = {
  projectId: config.project_id,
  seed: 11,
  start: calendar.dayStart('2024-03-09'),
  hours: 72,
  eventsPerHour: 150,
};

function folders(raw: string, out: string) {
  return { raw, out, state: defaultStateFolder(out, config.project_id, config.name) };
}

describe('a step that crashes halfway and runs again ends exactly as a clean run', () => {
  let raw: { path: string; cleanup: () => Promise<void> };
  let clean: { path: string; cleanup: () => Promise<void> };
  before(async () => {
    raw = await tempFolder('raw');
    clean = await tempFolder('clean');
    await generateLandingZone({ rawDir: raw.path, ...landingZone });
    const result = await runLocalPipeline({
      folders: folders(raw.path, clean.path),
      config,
      now,
      workers: 2,
    });
    assert.ok(result.ok, result.failures.join('\n'));
  });
  after(async () => {
    await raw.cleanup();
    await clean.cleanup();
  });

  test('crashes in ingest, in export tasks and in commit leave no trace in the final output', async () => {
    const out = await tempFolder('crashed');
    try {
      // Arrange: replay the run by hand with crashes in between.
      const stores = localStores(folders(raw.path, out.path));
      await runLocalPipeline({
        folders: folders(raw.path, out.path),
        config,
        now: calendar.dayStart('2024-03-10'),
        workers: 1,
      });
      const hours = completeArrivalHours(config, calendar, now);
      for (const hour of hours.slice(0, 40)) await ingestHour(stores, hour);
      // An ingest that died before its record: garbage staged objects of an uncommitted hour.
      const crashedHour = hours[40]!;
      await stores.staging.put(
        stagedKey({ eventHour: crashedHour, arrivalHour: crashedHour, piece: 0, seq: 7 }),
        gzipSync('1\tkey\t{"garbage":true}\n'),
      );
      for (const hour of hours.slice(40)) await ingestHour(stores, hour);
      await advanceIngestWatermark(stores.state, hours[0]!);

      const [first, second] = dueSteps(config, calendar, now);
      assert.ok(first && second);
      // Step 1: one task done, then a crash; an earlier attempt also left a part under a name the final plan does not use.
      const plan = await planStep(stores, config, first.step);
      await runExportTask(stores, config, plan, 0);
      const day = plan.window!.day;
      await stores.destination.put(
        partKey(config.project_id, day, config.name, plan.step_id, 0, 99, '.json.gz'),
        gzipSync('{"stray":true}\n'),
      );
      // Step 2: everything written, manifest included, but the crash came before the run record.
      const plan2 = await planStep(stores, config, second.step);
      for (let task = 0; task < plan2.tasks.length; task += 1)
        await runExportTask(stores, config, plan2, task);
      await commitStep(stores, config, plan2.step_id, { startedAt: 0, finishedAt: 1 });
      await stores.state.delete([runRecordKey(plan2.step_id)]);

      // Act: the schedule runs again.
      const result = await runLocalPipeline({
        folders: folders(raw.path, out.path),
        config,
        now,
        workers: 2,
      });

      // Assert
      assert.ok(result.ok, [...result.failures, ...result.reconciliation.problems].join('\n'));
      const actual = await outputTree(out.path);
      assertSameTree(actual, await outputTree(clean.path));
      assert.ok(
        [...actual.keys()].filter((k) => k.includes(`${plan.step_id}-t`)).length >= 2,
        'the step wrote several parts',
      );
      // The step committed twice merged its properties into the warehouse schema once.
      const schema = await readWarehouseSchema(stores.state);
      const cleanSchema = await readWarehouseSchema(localStores(folders(raw.path, clean.path)).state);
      assert.ok(schema !== undefined && cleanSchema !== undefined);
      assert.deepEqual(schema.schema, cleanSchema.schema);
      assert.equal(
        schema.schema.records,
        [...(await outputRecords(out.path, config.project_id)).values()].flat().length,
        'one schema record per exported event',
      );
    } finally {
      await out.cleanup();
    }
  });

  test('a step does not commit (no manifest, no run record) while one of its tasks has not finished', async () => {
    const out = await tempFolder('uncommitted');
    try {
      // Arrange: everything ingested, the first step planned, its tasks not run.
      const stores = localStores(folders(raw.path, out.path));
      const hours = completeArrivalHours(config, calendar, now);
      for (const hour of hours) await ingestHour(stores, hour);
      await advanceIngestWatermark(stores.state, hours[0]!);
      const [first] = dueSteps(config, calendar, now);
      const plan = await planStep(stores, config, first!.step);

      // Act / Assert
      await assert.rejects(commitStep(stores, config, plan.step_id, { startedAt: 0, finishedAt: 1 }), {
        name: 'NotReadyError',
      });
      assert.equal(
        await stores.destination.getBytes(
          manifestKey(config.project_id, plan.window!.day, config.name, plan.step_id),
        ),
        undefined,
      );
      assert.equal(await stores.state.getBytes(runRecordKey(plan.step_id)), undefined);
    } finally {
      await out.cleanup();
    }
  });

  test('a step whose parts hold other counts than its tasks exported does not commit, and its parts go', async () => {
    const out = await tempFolder('miscounted');
    try {
      // Arrange: the first step's tasks done, then one part's count made one short (a writer that lost a record).
      const stores = localStores(folders(raw.path, out.path));
      const hours = completeArrivalHours(config, calendar, now);
      for (const hour of hours) await ingestHour(stores, hour);
      await advanceIngestWatermark(stores.state, hours[0]!);
      const [first] = dueSteps(config, calendar, now);
      const plan = await planStep(stores, config, first!.step);
      for (let task = 0; task < plan.tasks.length; task += 1) await runExportTask(stores, config, plan, task);
      const result = await getJson<TaskResult>(stores.state, taskResultKey(plan.step_id, 0));
      const [part, ...rest] = result!.parts;
      await putJson(stores.state, taskResultKey(plan.step_id, 0), {
        ...result,
        parts: [{ ...part!, records: part!.records - 1 }, ...rest],
      });

      // Act / Assert
      await assert.rejects(
        commitStep(stores, config, plan.step_id, { startedAt: 0, finishedAt: 1 }),
        new RegExp(
          `does not balance, nothing committed: event day ${part!.day}: its tasks exported \\d+ events, its parts hold \\d+`,
        ),
      );
      assert.equal(await stores.destination.getBytes(part!.key), undefined);
      assert.equal(
        await stores.destination.getBytes(
          manifestKey(config.project_id, part!.day, config.name, plan.step_id),
        ),
        undefined,
      );
      assert.equal(await stores.state.getBytes(runRecordKey(plan.step_id)), undefined);
    } finally {
      await out.cleanup();
    }
  });

  test('an unreadable object is read again, then set aside whole with its reason; nothing else is lost, and putting it back exports it once', async () => {
    const brokenRaw = await tempFolder('broken-raw');
    const out = await tempFolder('broken-out');
    try {
      // Arrange: the same landing zone plus a truncated gzip object in one arrival hour.
      await generateLandingZone({ rawDir: brokenRaw.path, ...landingZone });
      const brokenHour = calendar.dayStart('2024-03-11') + 5 * HOUR_MS;
      const folder = join(brokenRaw.path, rawHourPrefix(config.project_id, brokenHour));
      const brokenKey = `${rawHourPrefix(config.project_id, brokenHour)}zz-broken.json.gz`;
      await mkdir(folder, { recursive: true });
      const lines = Array.from({ length: 1000 }, (_, i) =>
        JSON.stringify({
          event: 'Broken',
          properties: { time: (brokenHour + i * 1000) / 1000, distinct_id: 'b', $insert_id: `broken-${i}` },
        }),
      );
      const whole = gzipSync(`${lines.join('\n')}\n`);
      const truncated = whole.subarray(0, whole.length / 2);
      await writeFile(join(folder, 'zz-broken.json.gz'), truncated);

      // Act: three reads fail (Step Functions retries the ingest), the fourth sets it aside.
      const result = await runLocalPipeline({
        folders: folders(brokenRaw.path, out.path),
        config,
        now,
        workers: 2,
      });

      // Assert: every step committed; the output is the clean run's; the object is set aside with why.
      assert.ok(result.ok, [...result.failures, ...result.reconciliation.problems].join('\n'));
      const exported = await outputTree(out.path);
      const quarantine = `${config.project_id}/_quarantine/${config.name}/objects/`;
      const withoutSetAside = new Map([...exported].filter(([path]) => !path.startsWith(quarantine)));
      assertSameTree(withoutSetAside, await outputTree(clean.path));
      assert.ok(
        exported.get(`${quarantine}${brokenKey}`)?.equals(truncated),
        'the copy is the object as stored',
      );
      const reason = JSON.parse(exported.get(`${quarantine}${brokenKey}.reason.json`)!.toString('utf8'));
      assert.equal(reason.reason, 'unreadable');
      assert.equal(reason.attempts, 3);
      assert.match(reason.error, /zz-broken\.json\.gz.*unexpected end of file/);
      const day = result.reconciliation.arrivalDays.find((row) => row.day === '2024-03-11');
      assert.equal(day?.objects_set_aside, 1);
      assert.equal(day?.bytes_set_aside, truncated.length);

      // Act: put back as the README says: the whole object, into a folder of a later arrival hour.
      const later = calendar.dayStart('2024-03-14') + 10 * HOUR_MS;
      const laterFolder = join(brokenRaw.path, rawHourPrefix(config.project_id, later));
      await mkdir(laterFolder, { recursive: true });
      await writeFile(join(laterFolder, 'put-back.json.gz'), whole);
      const again = await runLocalPipeline({
        folders: folders(brokenRaw.path, out.path),
        config,
        now: calendar.dayEnd('2024-03-14') + 3 * HOUR_MS,
        workers: 2,
      });

      // Assert: its events arrive late and the sync of that day exports each once into their day.
      assert.ok(again.ok, [...again.failures, ...again.reconciliation.problems].join('\n'));
      const ids = ((await outputRecords(out.path, config.project_id)).get('2024-03-11') ?? [])
        .map((r) => JSON.parse(r).insert_id as string | null)
        .filter((id) => id?.startsWith('broken-'));
      assert.equal(ids.length, 1000);
      assert.equal(new Set(ids).size, 1000);
      assert.ok(again.steps.some((s) => s.step_id === 'sync-2024-03-14' && s.exported >= 1000));
    } finally {
      await brokenRaw.cleanup();
      await out.cleanup();
    }
  });
});
