/**
 * The synthesized workflows run locally against DynamoDB on moto: one project workflow per tick, one
 * running step per project, a dead lock holder replaced after its lease, projects independent, fairness.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { rawHourPrefix } from '../../src/core/layout.js';
import type { LockStore } from '../../src/core/lock.js';
import { type PipelineConfig, parsePipelineConfig } from '../../src/core/pipeline-config.js';
import { dueSteps } from '../../src/core/routing.js';
import { HOUR_MS, ZoneCalendar } from '../../src/core/windows.js';
import { projectExecutionName, STEP_FAILED, STEP_SUCCEEDED, TASK_STATES } from '../../src/core/workflow.js';
import { DEFAULT_INGEST_LIMITS, type IngestLimits } from '../../src/engine/arrival-hour.js';
import { committedStepIds } from '../../src/engine/backlog.js';
import {
  type ControlPlane,
  localRuntime,
  RecordingEventSink,
  startControlPlane,
} from '../../src/local/control-plane.js';
import { generateLandingZone } from '../../src/local/generate.js';
import { defaultStateFolder, localStores } from '../../src/local/local-stores.js';
import { LocalWorkflows, type TaskInterceptor } from '../../src/local/local-workflows.js';
import { type Moto, startMoto } from '../../src/local/moto.js';
import { runLocalPipeline } from '../../src/local/run.js';
import type { JSONValue } from '../../src/local/state-machines.js';
import { loadWorkflowDefinitions } from '../../src/local/workflow-definitions.js';
import type { Runtime } from '../../src/workflow/runtime.js';
import { assertSameTree, outputTree, tempFolder } from '../support/fixtures.js';

const MINUTE = 60_000;
const calendar = new ZoneCalendar('Europe/Berlin');
const FIRST_DAY = '2024-03-08';
const hourly = parsePipelineConfig({
  project_id: 'orbit',
  name: 'events-hourly',
  frequency: 'hourly',
  time_zone: 'Europe/Berlin',
  from_date: FIRST_DAY,
});
const daily = parsePipelineConfig({ ...hourly, name: 'events-daily', frequency: 'daily', sync: true });

/** Local workflows over folders, with a clock the test sets. */
interface Harness {
  readonly workflows: LocalWorkflows;
  readonly events: RecordingEventSink;
  readonly runtime: Runtime;
  now: number;
}

function harness(
  control: ControlPlane,
  raw: string,
  out: string,
  options: {
    intercept?: TaskInterceptor;
    leaseMs?: number;
    locks?: LockStore;
    ingestLimits?: IngestLimits;
  } = {},
): Harness {
  const events = new RecordingEventSink();
  const state: Harness = { now: 0 } as Harness;
  const base = localRuntime({
    control,
    stores: (config) =>
      localStores({ raw, out, state: defaultStateFolder(out, config.project_id, config.name) }),
    clock: () => state.now,
    events,
    ...(options.leaseMs === undefined ? {} : { leaseMs: options.leaseMs }),
    ...(options.ingestLimits === undefined ? {} : { ingestLimits: options.ingestLimits }),
  });
  const runtime = options.locks === undefined ? base : { ...base, locks: options.locks };
  const workflows = new LocalWorkflows({
    definitions: loadWorkflowDefinitions(),
    runtime,
    ...(options.intercept === undefined ? {} : { intercept: options.intercept }),
  });
  return Object.assign(state, { workflows, events, runtime });
}

/** Fires a tick at `time` with the clock there, and waits for every workflow it started. */
async function tickAndSettle(h: Harness, time: number): Promise<void> {
  h.now = time;
  await h.workflows.tick(time);
  await h.workflows.settle();
}

/** Counts Run step calls in flight per project and remembers the most seen at once. */
function concurrencyDetector(): {
  intercept: TaskInterceptor;
  maxInFlight: () => number;
  steps: () => number;
} {
  const inFlight = new Map<string, number>();
  let max = 0;
  let steps = 0;
  const intercept: TaskInterceptor = async (state, input, run) => {
    if (state !== TASK_STATES.runStep) return run();
    const project = (input as { Input: { step: { project_id: string } } }).Input.step.project_id;
    const now = (inFlight.get(project) ?? 0) + 1;
    inFlight.set(project, now);
    max = Math.max(max, now);
    steps += 1;
    try {
      // Yield so that concurrent workflows interleave here if the lock lets them.
      await new Promise((resolve) => setTimeout(resolve, 5));
      return await run();
    } finally {
      inFlight.set(project, (inFlight.get(project) ?? 1) - 1);
    }
  };
  return { intercept, maxInFlight: () => max, steps: () => steps };
}

describe('orchestration through the synthesized workflows', () => {
  let moto: Moto;
  let raw: { path: string; cleanup: () => Promise<void> };
  const start = calendar.dayStart(FIRST_DAY);
  /** The end of the third day plus 3 h: 72 hourly and 3 daily windows are due. */
  const end = calendar.dayEnd('2024-03-10') + 3 * HOUR_MS;

  before(async () => {
    moto = await startMoto();
    raw = await tempFolder('orchestration-raw');
    await generateLandingZone({
      rawDir: raw.path,
      projectId: 'orbit',
      seed: 7,
      start,
      hours: 72,
      eventsPerHour: 12,
    });
    await generateLandingZone({
      rawDir: raw.path,
      projectId: 'nova',
      seed: 8,
      start,
      hours: 72,
      eventsPerHour: 12,
    });
  });
  after(async () => {
    await raw?.cleanup();
    await moto?.stop();
  });

  test('no state payload, run log entry or event carries the config or its external id', async () => {
    const control = await startControlPlane(moto);
    const out = await tempFolder('secrets');
    try {
      // Arrange: a pipeline writing through a role in another account (folders locally)
      const secret = 'external-id-that-must-not-leak';
      const seen: string[] = [];
      const intercept: TaskInterceptor = async (_state, input, run) => {
        seen.push(JSON.stringify(input));
        const output = await run();
        seen.push(JSON.stringify(output));
        return output;
      };
      const h = harness(control, raw.path, out.path, { intercept });
      await h.runtime.configs.put({
        ...daily,
        s3_role: 'arn:aws:iam::123456789012:role/exports',
        s3_external_id: secret,
      });
      // Act
      await tickAndSettle(h, end);
      // Assert
      assert.ok(succeededSteps(h).length > 0);
      assert.ok(seen.length > 20);
      for (const text of [...seen, JSON.stringify(h.events.events)])
        assert.ok(!text.includes(secret) && !text.includes('"time_zone"'), text.slice(0, 300));
      const entries = await h.runtime.ledger.listRuns('orbit', daily.name);
      assert.ok(!JSON.stringify(entries).includes(secret));
    } finally {
      await out.cleanup();
      await control.stop();
    }
  });

  test('two triggers of the same tick start one project workflow', async () => {
    const control = await startControlPlane(moto);
    const out = await tempFolder('double-trigger');
    try {
      // Arrange
      const h = harness(control, raw.path, out.path);
      await h.runtime.configs.put(daily);
      // Act: the schedule fires the same tick twice at once (a retried delivery)
      h.now = end;
      await Promise.all([h.workflows.tick(end), h.workflows.tick(end)]);
      const outcomes = await h.workflows.settle();
      // Assert
      assert.deepEqual(h.workflows.started, [projectExecutionName('orbit', end)]);
      assert.deepEqual(
        outcomes.map((o) => o.status),
        ['succeeded'],
      );
      const committed = succeededSteps(h);
      assert.equal(new Set(committed).size, committed.length, 'no step ran twice');
      assert.deepEqual(
        [...committed].sort(),
        dueSteps(daily, calendar, end)
          .map((d) => d.id)
          .sort(),
      );
    } finally {
      await out.cleanup();
      await control.stop();
    }
  });

  test('workflows of one project started by many ticks never run two steps at once', async () => {
    const control = await startControlPlane(moto);
    const out = await tempFolder('no-overlap');
    try {
      // Arrange: two pipelines, 72 hourly + 6 daily/sync steps due; ticks fired in overlapping waves
      const detector = concurrencyDetector();
      const h = harness(control, raw.path, out.path, { intercept: detector.intercept });
      await h.runtime.configs.put(hourly);
      await h.runtime.configs.put(daily);
      const lastTick = end + 5 * 15 * MINUTE;
      const total = dueSteps(hourly, calendar, lastTick).length + dueSteps(daily, calendar, lastTick).length;
      // Act
      h.now = end;
      const waves: Promise<unknown>[] = [];
      for (let minute = 0; minute < 12; minute += 1) {
        waves.push(h.workflows.tick(end + minute * MINUTE));
        if (minute % 3 === 2) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await Promise.all(waves);
      await h.workflows.settle();
      // Then ticks one after another until nothing is left (each workflow runs a bounded number of steps)
      for (let t = end + 15 * MINUTE; t <= lastTick; t += 15 * MINUTE) await tickAndSettle(h, t);
      // Assert
      assert.ok(h.workflows.started.length >= 12, 'every tick started a workflow');
      assert.equal(detector.maxInFlight(), 1, 'at most one step of the project ran at any time');
      const failed = h.events.events
        .filter((e) => e.detailType === STEP_FAILED)
        .map((e) => `${e.detail.step_id}: ${e.detail.error}: ${e.detail.cause}`);
      assert.deepEqual(failed, [], 'no step failed');
      assert.equal(detector.steps(), total, 'every due step ran exactly once');
      assert.equal((await committed(h, hourly)).size + (await committed(h, daily)).size, total);
    } finally {
      await out.cleanup();
      await control.stop();
    }
  });

  test('the detector sees overlapping steps when the lock is broken (control)', async () => {
    const control = await startControlPlane(moto);
    const out = await tempFolder('broken-lock');
    try {
      // Arrange: a lock that grants everyone, as a broken condition would
      const detector = concurrencyDetector();
      const alwaysGranted: LockStore = {
        acquire: async (projectId, owner, now, leaseMs) => ({
          projectId,
          owner,
          acquiredAt: now,
          expiresAt: now + leaseMs,
          token: 1,
        }),
        renew: async (projectId, owner, now, leaseMs) => ({
          projectId,
          owner,
          acquiredAt: now,
          expiresAt: now + leaseMs,
          token: 1,
        }),
        release: async () => true,
        current: async () => undefined,
        check: async () => undefined,
      };
      const h = harness(control, raw.path, out.path, { intercept: detector.intercept, locks: alwaysGranted });
      await h.runtime.configs.put(hourly);
      // Act
      h.now = end;
      await Promise.all([0, 1, 2].map((minute) => h.workflows.tick(end + minute * MINUTE)));
      await h.workflows.settle();
      // Assert
      assert.ok(
        detector.maxInFlight() > 1,
        `expected overlapping steps, saw at most ${detector.maxInFlight()}`,
      );
    } finally {
      await out.cleanup();
      await control.stop();
    }
  });

  test("a lock holder that dies mid-step is replaced after its lease, and the output is a clean run's", async () => {
    const control = await startControlPlane(moto);
    const out = await tempFolder('dead-holder');
    const clean = await tempFolder('dead-holder-clean');
    // Settled at the end only, so the interpreter's timer for the hung Task ends and the process can exit.
    let endHang = (): void => undefined;
    try {
      // Arrange: the first workflow hangs in an export task of its first step, then its process dies
      const leaseMs = 10 * MINUTE;
      let hung: string | undefined;
      const intercept: TaskInterceptor = async (state, input, run) => {
        if (state === TASK_STATES.exportTask && hung === undefined) {
          hung = (input as { step: { owner: string } }).step.owner;
          return new Promise<JSONValue>((_, reject) => {
            endHang = () => reject(new Error('the process died'));
          });
        }
        return run();
      };
      const h = harness(control, raw.path, out.path, { intercept, leaseMs });
      await h.runtime.configs.put(daily);
      h.now = end;
      const first = h.workflows.tick(end);
      await first;
      while (hung === undefined) await new Promise((resolve) => setTimeout(resolve, 5));
      h.workflows.kill(hung);
      const [dead] = await h.workflows.settle();
      assert.equal(dead?.status, 'aborted');

      // Act 1: a tick inside the lease finds the project busy
      await tickAndSettle(h, end + 5 * MINUTE);
      const busy = (await h.runtime.locks.current('orbit'))?.owner;
      // Act 2: a tick after the lease expired takes over and finishes
      await tickAndSettle(h, end + 15 * MINUTE);

      // Assert
      assert.equal(busy, hung, 'the dead holder kept the lock until its lease ended');
      assert.deepEqual(
        [...(await committed(h, daily))].sort(),
        dueSteps(daily, calendar, end)
          .map((d) => d.id)
          .sort(),
      );
      assert.equal(await h.runtime.locks.current('orbit'), undefined, 'the lock is released at the end');
      const reference = await runLocalPipeline({
        folders: {
          raw: raw.path,
          out: clean.path,
          state: defaultStateFolder(clean.path, 'orbit', daily.name),
        },
        config: daily,
        now: end,
        workers: 1,
        control,
      });
      assert.ok(reference.ok, reference.failures.join('\n'));
      assertSameTree(await outputTree(out.path), await outputTree(clean.path));
    } finally {
      endHang();
      await out.cleanup();
      await clean.cleanup();
      await control.stop();
    }
  });

  test('a project whose steps keep failing does not hold back another project', async () => {
    const control = await startControlPlane(moto);
    const brokenRaw = await tempFolder('broken-project-raw');
    const out = await tempFolder('independent');
    try {
      // Arrange: project orbit has an unreadable object in its first arrival hours; nova is healthy
      await generateLandingZone({
        rawDir: brokenRaw.path,
        projectId: 'nova',
        seed: 8,
        start,
        hours: 72,
        eventsPerHour: 12,
      });
      await generateLandingZone({
        rawDir: brokenRaw.path,
        projectId: 'orbit',
        seed: 7,
        start,
        hours: 72,
        eventsPerHour: 12,
      });
      const folder = join(brokenRaw.path, rawHourPrefix('orbit', start + HOUR_MS));
      await mkdir(folder, { recursive: true });
      await writeFile(
        join(folder, 'truncated.json.gz'),
        gzipSync('{"event":"a","properties":{"time":1}}\n'.repeat(500)).subarray(0, 100),
      );
      const nova = { ...daily, project_id: 'nova' };
      // Never set aside here: the object stays unreadable, as one failing for longer would.
      const h = harness(control, brokenRaw.path, out.path, {
        ingestLimits: { ...DEFAULT_INGEST_LIMITS, maxAttempts: Number.MAX_SAFE_INTEGER },
      });
      await h.runtime.configs.put(daily);
      await h.runtime.configs.put(nova);
      // Act: three ticks
      for (let n = 0; n < 3; n += 1) await tickAndSettle(h, end + n * 15 * MINUTE);
      // Assert: nova is done, orbit failed each time with its error recorded, and nothing of it committed
      assert.deepEqual(
        [...(await committed(h, nova))].sort(),
        dueSteps(nova, calendar, end)
          .map((d) => d.id)
          .sort(),
      );
      assert.equal((await committed(h, daily)).size, 0);
      const failures = (await h.runtime.ledger.listRuns('orbit', daily.name)).filter(
        (r) => r.status === 'failed',
      );
      assert.equal(failures.length, 1, 'one failed step, its latest outcome');
      assert.equal(failures[0]?.error, 'UnreadableSourceError');
      assert.match(failures[0]?.cause ?? '', /truncated\.json\.gz/);
      assert.equal(
        h.events.events.filter((e) => e.detailType === STEP_FAILED).length,
        3,
        'retried at every tick',
      );
      assert.equal(
        await h.runtime.locks.current('orbit'),
        undefined,
        'the lock is released after each failure',
      );
    } finally {
      await brokenRaw.cleanup();
      await out.cleanup();
      await control.stop();
    }
  });

  test('fairness: with a backfill on one pipeline, each hourly window runs within two steps of becoming due', async () => {
    const control = await startControlPlane(moto);
    const out = await tempFolder('fairness');
    try {
      // Arrange: a daily pipeline backfilling from the first day, an hourly one starting on the third day
      const backfill = { ...daily, sync: false };
      const live = { ...hourly, from_date: '2024-03-10' };
      const h = harness(control, raw.path, out.path);
      await h.runtime.configs.put(backfill);
      await h.runtime.configs.put(live);
      // Act: the schedule every 15 minutes through the third day
      const first = calendar.dayStart('2024-03-10') + 2 * HOUR_MS;
      for (let t = first; t <= end; t += 15 * MINUTE) await tickAndSettle(h, t);
      // Assert
      const order = succeededSteps(h);
      const dueAt = new Map(dueSteps(live, calendar, end).map((d) => [d.id, d.dueAt]));
      const ticks = h.events.events
        .filter((e) => e.detailType === STEP_SUCCEEDED)
        .map((e) => Date.parse(e.detail.tick));
      assert.ok(order.filter((id) => id.startsWith('daily-')).length >= 2, 'the backfill ran');
      for (const [index, id] of order.entries()) {
        const due = dueAt.get(id);
        if (due === undefined) continue;
        // Steps that ran after this window became due, before it
        const ahead = order.slice(0, index).filter((_, i) => (ticks[i] ?? 0) >= due).length;
        assert.ok(ahead <= 2, `${id} waited behind ${ahead} steps`);
      }
      assert.equal(
        [...dueAt.keys()].filter((id) => !order.includes(id)).length,
        0,
        'every hourly window ran',
      );
    } finally {
      await out.cleanup();
      await control.stop();
    }
  });
});

function succeededSteps(h: Harness): string[] {
  return h.events.events.filter((e) => e.detailType === STEP_SUCCEEDED).map((e) => e.detail.step_id);
}

async function committed(h: Harness, config: PipelineConfig): Promise<Set<string>> {
  return committedStepIds(h.runtime.stores(config));
}
