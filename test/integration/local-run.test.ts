import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type PipelineConfig, parsePipelineConfig } from '../../src/core/pipeline-config.js';
import { addDays, ZoneCalendar } from '../../src/core/windows.js';
import { startControlPlane } from '../../src/local/control-plane.js';
import { generateLandingZone } from '../../src/local/generate.js';
import { defaultStateFolder } from '../../src/local/local-stores.js';
import { type Moto, startMoto } from '../../src/local/moto.js';
import { type LocalRunOptions, type RunResult, runLocalPipeline } from '../../src/local/run.js';
import { LocalTaskPool } from '../../src/local/task-pool.js';
import { assertSameTree, outputRecords, outputTree, tempFolder } from '../support/fixtures.js';
import { expectedOutput } from '../support/oracle.js';

/** One emulator and one worker pool for the whole file; fresh tables for every run, as `local run` has. */
let moto: Moto | undefined;
let pool: LocalTaskPool | undefined;
before(async () => {
  moto = await startMoto();
  pool = new LocalTaskPool(2);
});
after(async () => {
  await pool?.destroy();
  await moto?.stop();
});

async function run(options: Omit<LocalRunOptions, 'control' | 'pool'>): Promise<RunResult> {
  const control = await startControlPlane(moto);
  try {
    return await runLocalPipeline({ ...options, control, ...(pool === undefined ? {} : { pool }) });
  } finally {
    await control.stop();
  }
}

const HOUR = 3_600_000;

interface Scenario {
  readonly name: string;
  readonly config: PipelineConfig;
  /** The config's `where`, as the oracle evaluates it. */
  readonly selects?: (properties: Readonly<Record<string, unknown>>) => boolean;
  readonly firstDay: string;
  readonly days: number;
}

const scenarios: Scenario[] = [
  {
    name: 'daily with sync across the New York fall-back day',
    config: parsePipelineConfig({
      project_id: 'acme',
      name: 'events-daily',
      frequency: 'daily',
      sync: true,
      time_zone: 'America/New_York',
      from_date: '2024-11-02',
    }),
    firstDay: '2024-11-01',
    days: 3,
  },
  {
    name: 'hourly with sync at UTC+05:45',
    config: parsePipelineConfig({
      project_id: 'himalaya',
      name: 'events-hourly',
      frequency: 'hourly',
      sync: true,
      time_zone: 'Asia/Kathmandu',
      from_date: '2024-03-10',
    }),
    firstDay: '2024-03-10',
    days: 2,
  },
  {
    name: 'daily without sync, filtered to two event names',
    config: parsePipelineConfig({
      project_id: 'filtered',
      name: 'events-daily',
      frequency: 'daily',
      sync: false,
      time_zone: 'Europe/Berlin',
      from_date: '2024-03-30',
      event_names: ['Purchase', 'Sign Up'],
    }),
    firstDay: '2024-03-30',
    days: 2,
  },
  {
    name: 'daily with sync, filtered by a where expression',
    config: parsePipelineConfig({
      project_id: 'where',
      name: 'events-daily',
      frequency: 'daily',
      sync: true,
      time_zone: 'Europe/London',
      from_date: '2024-10-26',
      where:
        'properties["plan"] in ["pro", "enterprise"] and not properties["$os"] == "iOS" or properties["price"] >= 90',
    }),
    selects: (p) =>
      (['pro', 'enterprise'].includes(p.plan as string) && p.$os !== 'iOS') || (p.price as number) >= 90,
    firstDay: '2024-10-26',
    days: 2,
  },
];

describe('local run against an independent model of the contract semantics (docs/contract.md#semantics)', () => {
  let raw: { path: string; cleanup: () => Promise<void> };
  before(async () => {
    raw = await tempFolder('raw');
    for (const [index, scenario] of scenarios.entries()) {
      const calendar = new ZoneCalendar(scenario.config.time_zone);
      await generateLandingZone({
        rawDir: raw.path,
        projectId: scenario.config.project_id,
        seed: 100 + index,
        start: calendar.dayStart(scenario.firstDay),
        hours: scenario.days * 24,
        eventsPerHour: 60,
        users: 40,
      });
    }
  });
  after(() => raw.cleanup());

  for (const scenario of scenarios) {
    const { config } = scenario;
    const calendar = new ZoneCalendar(config.time_zone);
    // Mid-way (some steps due, some late data pending) and after every late event has been synced.
    const checkpoints = [
      calendar.dayEnd(addDays(scenario.firstDay, scenario.days)) + 2.5 * HOUR,
      calendar.dayEnd(addDays(scenario.firstDay, scenario.days + 6)) + 3 * HOUR,
    ];

    test(`${scenario.name}: output equals the model at each checkpoint and reconciles`, async () => {
      const out = await tempFolder('out');
      try {
        for (const now of checkpoints) {
          const result = await run({
            folders: foldersFor(raw.path, out.path, config),
            config,
            now,
            workers: 2,
          });

          const expected = expectedOutput(raw.path, {
            projectId: config.project_id,
            timeZone: config.time_zone,
            frequency: config.frequency,
            sync: config.sync,
            fromDate: config.from_date,
            ...(config.event_names === undefined ? {} : { eventNames: config.event_names }),
            ...(scenario.selects === undefined ? {} : { selects: scenario.selects }),
            now,
          });
          assert.deepEqual(result.failures, []);
          assert.deepEqual(result.reconciliation.problems, []);
          assert.deepEqual(await outputRecords(out.path, config.project_id), expected.days);
          const quarantined = result.reconciliation.arrivalDays.reduce((sum, r) => sum + r.quarantined, 0);
          assert.equal(quarantined, expected.quarantined);
          assert.ok(expected.days.size > 0, 'the scenario exports something');
        }
      } finally {
        await out.cleanup();
      }
    });

    test(`${scenario.name}: running day by day gives byte-identical output to one run`, async () => {
      const incremental = await tempFolder('incremental');
      const once = await tempFolder('once');
      try {
        const last = checkpoints[1]!;
        for (let now = calendar.dayEnd(scenario.firstDay); now < last; now += 7 * HOUR) {
          await run({
            folders: foldersFor(raw.path, incremental.path, config),
            config,
            now,
            workers: 2,
          });
        }
        const final = await run({
          folders: foldersFor(raw.path, incremental.path, config),
          config,
          now: last,
          workers: 2,
        });
        const single = await run({
          folders: foldersFor(raw.path, once.path, config),
          config,
          now: last,
          workers: 1,
        });

        assert.ok(final.ok && single.ok);
        assert.ok(
          final.steps.length < single.steps.length,
          'the incremental run did part of the work earlier',
        );
        assertSameTree(await outputTree(incremental.path), await outputTree(once.path));
      } finally {
        await incremental.cleanup();
        await once.cleanup();
      }
    });
  }
});

describe('dedup slices and task fan-out', () => {
  test('cutting every event hour into slices of 20 keys and every unit into its own task exports the same records', async () => {
    // Arrange
    const raw = await tempFolder('slices-raw');
    const sliced = await tempFolder('sliced');
    const whole = await tempFolder('whole');
    const config = scenarios[0]!.config;
    const calendar = new ZoneCalendar(config.time_zone);
    try {
      await generateLandingZone({
        rawDir: raw.path,
        projectId: config.project_id,
        seed: 5,
        start: calendar.dayStart('2024-11-02'),
        hours: 24,
        eventsPerHour: 80,
        users: 10,
      });
      const now = calendar.dayEnd('2024-11-08') + 3 * HOUR;

      // Act
      const a = await run({
        folders: foldersFor(raw.path, sliced.path, config),
        config,
        now,
        workers: 2,
        planLimits: { taskTargetBytes: 1, maxKeysPerUnit: 20, maxTasks: 1000 },
      });
      const b = await run({
        folders: foldersFor(raw.path, whole.path, config),
        config,
        now,
        workers: 2,
      });

      // Assert
      assert.deepEqual([a.failures, a.reconciliation.problems], [[], []]);
      const regular = a.steps.find((s) => s.step_id === 'daily-2024-11-02')!;
      assert.ok(regular.tasks > 20, `the day was cut into ${regular.tasks} tasks`);
      assert.deepEqual(
        await outputRecords(sliced.path, config.project_id),
        await outputRecords(whole.path, config.project_id),
      );
      assert.deepEqual(a.reconciliation.eventDays, b.reconciliation.eventDays);
      assert.ok(
        a.reconciliation.eventDays.some((d) => d.duplicates > 0),
        'duplicates were dropped across slices',
      );
    } finally {
      await raw.cleanup();
      await sliced.cleanup();
      await whole.cleanup();
    }
  });
});

function foldersFor(raw: string, out: string, config: PipelineConfig) {
  return { raw, out, state: defaultStateFolder(out, config.project_id, config.name) };
}
