/**
 * People and identity pipelines run like events pipelines: started by the schedule through the
 * synthesized workflows, one step at a time per project (sharing the lock with the project's events
 * pipeline), with run records in the ledger and a standing in `status`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parsePipelineConfig } from '../../src/core/pipeline-config.js';
import { readStoredPipeline } from '../../src/core/pipeline-rules.js';
import { HOUR_MS, ZoneCalendar } from '../../src/core/windows.js';
import { TASK_STATES } from '../../src/core/workflow.js';
import { localRuntime, startControlPlane } from '../../src/local/control-plane.js';
import { generateLandingZone } from '../../src/local/generate.js';
import { generateProfileLandingZone } from '../../src/local/generate-profiles.js';
import { defaultStateFolder, localStores } from '../../src/local/local-stores.js';
import type { TaskInterceptor } from '../../src/local/local-workflows.js';
import { type Moto, startMoto } from '../../src/local/moto.js';
import { pipelineId, runLocalPipelines } from '../../src/local/run.js';
import { pipelineStanding } from '../../src/management/status.js';
import { tempFolder } from '../support/fixtures.js';
import { modelSnapshot, readSnapshot } from '../support/snapshot-model.js';

const ZONE = 'Asia/Kathmandu';
const calendar = new ZoneCalendar(ZONE);
const FIRST_DAY = '2024-11-01';
const common = { project_id: 'orbit', time_zone: ZONE, from_date: FIRST_DAY };
const events = parsePipelineConfig({ ...common, name: 'events-daily', frequency: 'daily' });
const people = parsePipelineConfig({
  ...common,
  name: 'people-daily',
  data_source: 'people',
  frequency: 'daily',
});
const identity = parsePipelineConfig({
  ...common,
  name: 'identity-hourly',
  data_source: 'identity',
  frequency: 'hourly',
});

describe('people and identity pipelines on the schedule', () => {
  let moto: Moto;
  let raw: { path: string; cleanup: () => Promise<void> };
  let out: { path: string; cleanup: () => Promise<void> };
  const start = calendar.dayStart(FIRST_DAY);

  before(async () => {
    moto = await startMoto();
    raw = await tempFolder('snapshot-orchestration-raw');
    out = await tempFolder('snapshot-orchestration-out');
    await generateLandingZone({
      rawDir: raw.path,
      projectId: 'orbit',
      seed: 3,
      start,
      hours: 48,
      eventsPerHour: 10,
    });
    await generateProfileLandingZone({
      rawDir: raw.path,
      projectId: 'orbit',
      seed: 4,
      start,
      hours: 48,
      updatesPerHour: 30,
      users: 60,
    });
  });
  after(async () => {
    await out?.cleanup();
    await raw?.cleanup();
    await moto?.stop();
  });

  test('every tick runs one step of the project at a time; each snapshot replaces the last', async () => {
    // Arrange: count Run step calls in flight for the project.
    let inFlight = 0;
    let most = 0;
    const stepsBy = new Map<string, number>();
    const intercept: TaskInterceptor = async (state, input, run) => {
      if (state !== TASK_STATES.runStep) return run();
      const { pipeline } = (input as { Input: { step: { pipeline: string } } }).Input.step;
      stepsBy.set(pipeline, (stepsBy.get(pipeline) ?? 0) + 1);
      inFlight += 1;
      most = Math.max(most, inFlight);
      try {
        await new Promise((resolve) => setTimeout(resolve, 2));
        return await run();
      } finally {
        inFlight -= 1;
      }
    };
    const control = await startControlPlane(moto);
    const folders = (config: { project_id: string; name: string }) => ({
      raw: raw.path,
      out: out.path,
      state: defaultStateFolder(out.path, config.project_id, config.name),
    });
    const now = calendar.dayEnd('2024-11-02') + 3 * HOUR_MS;
    try {
      // Act: the schedule, every 15 minutes, for two days.
      const { results } = await runLocalPipelines({
        configs: [events, people, identity],
        folders,
        now,
        control,
        ticks: 'schedule',
        intercept,
        workers: 2,
      });

      // Assert
      for (const config of [events, people, identity]) {
        const result = results.get(pipelineId(config));
        assert.ok(
          result?.ok,
          `${config.name}: ${result?.failures.join('; ')} ${result?.reconciliation.problems.join('; ')}`,
        );
      }
      assert.equal(most, 1, 'one step of the project at a time');
      // The hourly identity pipeline snapshots once per tick that finds its latest window due, never
      // once per window of a backlog; the daily people pipeline once per day.
      assert.equal(stepsBy.get(people.name), 2);
      assert.equal(stepsBy.get(events.name), 2);
      assert.ok((stepsBy.get(identity.name) ?? 0) >= 40);
      const peopleSteps = results.get(pipelineId(people))?.steps ?? [];
      assert.deepEqual(
        peopleSteps.map((s) => s.step_id),
        ['daily-2024-11-01', 'daily-2024-11-02'],
      );
      const folded = peopleSteps.reduce(
        (n, s) => n + (s.snapshot?.updates ?? 0) + (s.snapshot?.links ?? 0),
        0,
      );
      assert.equal(folded, results.get(pipelineId(people))?.reconciliation.snapshot?.folded);

      // The people snapshot is the documented semantics of these two runs.
      const destination = localStores(folders(people)).destination;
      const cuts = ['2024-11-01', '2024-11-02'].map(
        (day) => Math.floor(calendar.dayEnd(day) / HOUR_MS) * HOUR_MS,
      );
      assert.deepEqual(
        await readSnapshot(destination, 'orbit', 'people'),
        await modelSnapshot(raw.path, 'orbit', start, cuts),
      );
      const mappings = await readSnapshot(destination, 'orbit', 'identity', 'identity-hourly');
      assert.ok(mappings.size > 10);
      for (const [id, canonical] of mappings) assert.equal(mappings.get(canonical as string), canonical, id);

      // Recorded like events: the ledger has the runs, and the standing is up to date.
      const runtimeLedger = localRuntime({
        control,
        stores: (config) => localStores(folders(config)),
        clock: () => now,
      }).ledger;
      const runs = await runtimeLedger.listRuns('orbit', people.name);
      assert.deepEqual(
        runs.map((r) => [r.step_id, r.status]),
        [
          ['daily-2024-11-01', 'succeeded'],
          ['daily-2024-11-02', 'succeeded'],
        ],
      );
      const standing = await pipelineStanding(
        readStoredPipeline({ ...people }),
        localStores(folders(people)),
        runtimeLedger,
        now,
      );
      assert.equal(standing.sla, 'ok');
      assert.equal(standing.pending_steps, 0);
      assert.deepEqual(standing.windows, { exported: 2, due: 2 });
      assert.equal(standing.last_exported?.step_id, 'daily-2024-11-02');
    } finally {
      await control.stop();
    }
  });
});
