/**
 * What a deployment watches besides its steps: the dispatcher's pending-lag metrics (a pipeline that
 * stopped committing alarms although no step succeeds to report a lag) and the daily reconciliation
 * of every pipeline from its records.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { rawHourPrefix, runRecordKey } from '../../src/core/layout.js';
import { parsePipelineConfig } from '../../src/core/pipeline-config.js';
import type { MetricsSink } from '../../src/core/ports.js';
import { DAY_MS, HOUR_MS, ZoneCalendar } from '../../src/core/windows.js';
import { METRICS } from '../../src/core/workflow.js';
import { DEFAULT_INGEST_LIMITS } from '../../src/engine/arrival-hour.js';
import { localRuntime, startControlPlane } from '../../src/local/control-plane.js';
import { generateLandingZone } from '../../src/local/generate.js';
import { defaultStateFolder, localStores } from '../../src/local/local-stores.js';
import { LocalWorkflows } from '../../src/local/local-workflows.js';
import { type Moto, startMoto } from '../../src/local/moto.js';
import { loadWorkflowDefinitions } from '../../src/local/workflow-definitions.js';
import { reconcileDeployment } from '../../src/workflow/activities.js';
import { tempFolder } from '../support/fixtures.js';

const calendar = new ZoneCalendar('UTC');
const start = calendar.dayStart('2024-03-08');
const healthy = parsePipelineConfig({
  project_id: 'nova',
  name: 'events-daily',
  frequency: 'daily',
  sync: true,
  time_zone: 'UTC',
  from_date: '2024-03-08',
});
const stuck = { ...healthy, project_id: 'orbit' };

/** Metric values by pipeline, the last one recorded of each name. */
class LastMetrics implements MetricsSink {
  readonly values = new Map<string, Record<string, number>>();
  record(
    dimensions: { project_id: string; pipeline: string },
    values: Readonly<Record<string, number>>,
  ): void {
    const key = `${dimensions.project_id}/${dimensions.pipeline}`;
    this.values.set(key, { ...this.values.get(key), ...values });
  }
}

describe('deployment checks', () => {
  let moto: Moto;
  let raw: { path: string; cleanup: () => Promise<void> };
  let out: { path: string; cleanup: () => Promise<void> };
  before(async () => {
    moto = await startMoto();
    raw = await tempFolder('checks-raw');
    out = await tempFolder('checks-out');
    for (const projectId of ['nova', 'orbit'])
      await generateLandingZone({
        rawDir: raw.path,
        projectId,
        seed: 5,
        start,
        hours: 72,
        eventsPerHour: 10,
      });
    // orbit's second hour holds an object that cannot be read: its steps fail every tick.
    const folder = join(raw.path, rawHourPrefix('orbit', start + HOUR_MS));
    await mkdir(folder, { recursive: true });
    await writeFile(
      join(folder, 'truncated.json.gz'),
      gzipSync('{"event":"a"}\n'.repeat(500)).subarray(0, 60),
    );
  });
  after(async () => {
    await raw.cleanup();
    await out.cleanup();
    await moto.stop();
  });

  test('a pipeline that stopped committing shows its pending lag past the SLA; a healthy one shows none; reconciliation names a planted difference', async () => {
    const control = await startControlPlane(moto);
    try {
      const metrics = new LastMetrics();
      let now = 0;
      const runtime = localRuntime({
        control,
        stores: (config) =>
          localStores({
            raw: raw.path,
            out: out.path,
            state: defaultStateFolder(out.path, config.project_id, config.name),
          }),
        clock: () => now,
        metrics,
        ingestLimits: { ...DEFAULT_INGEST_LIMITS, maxAttempts: Number.MAX_SAFE_INTEGER },
      });
      const workflows = new LocalWorkflows({ definitions: loadWorkflowDefinitions(), runtime });
      await runtime.configs.put(healthy);
      await runtime.configs.put(stuck);

      // Act: a tick every six hours for two days and a half.
      for (
        let tick = calendar.dayEnd('2024-03-08') + 3 * HOUR_MS;
        tick <= start + 3.5 * DAY_MS;
        tick += 6 * HOUR_MS
      ) {
        now = tick;
        await workflows.tick(tick);
        await workflows.settle();
      }

      // Assert: the stuck pipeline's first window ended more than a day ago and is still pending.
      const stuckLag = metrics.values.get('orbit/events-daily')?.[METRICS.pendingExportLag] ?? 0;
      assert.ok(stuckLag > 24 * 3600, `pending export lag ${stuckLag} s`);
      assert.ok((metrics.values.get('orbit/events-daily')?.[METRICS.pendingSyncLag] ?? 0) > 24 * 3600);
      assert.equal(metrics.values.get('nova/events-daily')?.[METRICS.pendingExportLag], 0);

      // The daily reconciliation: balanced, then a run record tampered with is named.
      const balanced = await reconcileDeployment(runtime, { time: new Date(now).toISOString() });
      assert.deepEqual(balanced, { pipelines: 2, imbalanced: [] });
      const file = join(
        defaultStateFolder(out.path, 'nova', 'events-daily'),
        runRecordKey('daily-2024-03-09'),
      );
      const record = JSON.parse(await readFile(file, 'utf8')) as {
        days: Record<string, { duplicates: number }>;
      };
      record.days['2024-03-09']!.duplicates += 2;
      await writeFile(file, JSON.stringify(record));
      const found = await reconcileDeployment(runtime, { time: new Date(now).toISOString() });
      assert.equal(found.imbalanced.length, 1);
      assert.equal(found.imbalanced[0]?.project_id, 'nova');
      assert.match(found.imbalanced[0]?.problems.join('\n') ?? '', /daily-2024-03-09, event day 2024-03-09/);
      assert.ok((metrics.values.get('nova/events-daily')?.[METRICS.imbalances] ?? 0) >= 1);
    } finally {
      await control.stop();
    }
  });
});
