import assert from 'node:assert/strict';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { manifestKey, partKey, rawHourPrefix, runRecordKey, stagedKey } from '../../src/core/layout.js';
import { parsePipelineConfig } from '../../src/core/pipeline-config.js';
import { completeArrivalHours, dueSteps } from '../../src/core/routing.js';
import { HOUR_MS, ZoneCalendar } from '../../src/core/windows.js';
import { commitStep } from '../../src/engine/commit.js';
import { runExportTask } from '../../src/engine/export-task.js';
import { ingestArrivalHour } from '../../src/engine/ingest.js';
import { advanceIngestWatermark, planStep } from '../../src/engine/plan.js';
import { generateLandingZone } from '../../src/local/generate.js';
import { defaultStateFolder, localStores } from '../../src/local/local-stores.js';
import { runLocalPipeline } from '../../src/local/run.js';
import { assertSameTree, outputTree, tempFolder } from '../support/fixtures.js';

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
      for (const hour of hours.slice(0, 40)) await ingestArrivalHour(stores, config, hour);
      // An ingest that died before its record: garbage staged objects of an uncommitted hour.
      const crashedHour = hours[40]!;
      await stores.staging.put(
        stagedKey({ eventHour: crashedHour, arrivalHour: crashedHour, seq: 7 }),
        gzipSync('1\tkey\t{"garbage":true}\n'),
      );
      for (const hour of hours.slice(40)) await ingestArrivalHour(stores, config, hour);
      await advanceIngestWatermark(stores.state, hours[0]!);

      const [first, second] = dueSteps(config, calendar, now);
      assert.ok(first && second);
      // Step 1: one task done, then a crash; an earlier attempt also left a part under a name the final plan does not use.
      const plan = await planStep(stores, config, first.step);
      await runExportTask(stores, config, plan, 0);
      const day = plan.window!.day;
      await stores.destination.put(
        partKey(config.project_id, day, plan.step_id, 0, 99),
        gzipSync('{"stray":true}\n'),
      );
      // Step 2: everything written, manifest included, but the crash came before the run record.
      const plan2 = await planStep(stores, config, second.step);
      for (let task = 0; task < plan2.tasks.length; task += 1)
        await runExportTask(stores, config, plan2, task);
      await commitStep(stores, config, plan2, { startedAt: 0, finishedAt: 1 });
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
      for (const hour of hours) await ingestArrivalHour(stores, config, hour);
      await advanceIngestWatermark(stores.state, hours[0]!);
      const [first] = dueSteps(config, calendar, now);
      const plan = await planStep(stores, config, first!.step);

      // Act / Assert
      await assert.rejects(commitStep(stores, config, plan, { startedAt: 0, finishedAt: 1 }), {
        name: 'NotReadyError',
      });
      assert.equal(
        await stores.destination.getBytes(manifestKey(config.project_id, plan.window!.day, plan.step_id)),
        undefined,
      );
      assert.equal(await stores.state.getBytes(runRecordKey(plan.step_id)), undefined);
    } finally {
      await out.cleanup();
    }
  });

  test('an unreadable source object fails its step with a clear error, commits nothing, and a retry completes it', async () => {
    const brokenRaw = await tempFolder('broken-raw');
    const out = await tempFolder('broken-out');
    try {
      // Arrange: the same landing zone plus a truncated gzip object in one arrival hour.
      await generateLandingZone({ rawDir: brokenRaw.path, ...landingZone });
      const brokenHour = calendar.dayStart('2024-03-11') + 5 * HOUR_MS;
      const folder = join(brokenRaw.path, rawHourPrefix(config.project_id, brokenHour));
      const broken = join(folder, 'zz-broken.json.gz');
      await mkdir(folder, { recursive: true });
      const whole = gzipSync('{"event":"x","properties":{"time":1}}\n'.repeat(1000));
      await writeFile(broken, whole.subarray(0, whole.length / 2));

      // Act
      const failed = await runLocalPipeline({
        folders: folders(brokenRaw.path, out.path),
        config,
        now,
        workers: 2,
      });

      // Assert: the failure names the object; the window that needs that hour has no output.
      assert.equal(failed.ok, false);
      assert.match(failed.failures.join('\n'), /zz-broken\.json\.gz/);
      const committed = failed.steps.map((s) => s.step_id);
      assert.ok(committed.includes('daily-2024-03-09'));
      assert.ok(!committed.includes('daily-2024-03-11'));
      const dayFolder = join(out.path, config.project_id, 'mp_master_event', '2024', '03', '11');
      const files = await readdir(dayFolder).catch(() => []);
      assert.ok(!files.some((f) => f.startsWith('daily-2024-03-11')), 'no partial window');

      // Act: the object is fixed and the schedule retries.
      await rm(broken);
      const retried = await runLocalPipeline({
        folders: folders(brokenRaw.path, out.path),
        config,
        now,
        workers: 2,
      });

      // Assert
      assert.ok(retried.ok, [...retried.failures, ...retried.reconciliation.problems].join('\n'));
      assertSameTree(await outputTree(out.path), await outputTree(clean.path));
    } finally {
      await brokenRaw.cleanup();
      await out.cleanup();
    }
  });
});
