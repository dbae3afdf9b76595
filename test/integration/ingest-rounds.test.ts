/**
 * A step missing more arrival hours than one step execution's history can hold (25,000 events) ends
 * after MAX_INGEST_ROUNDS rounds and is picked again: the synthesized step workflow counts its rounds,
 * and a first people snapshot over five weeks of hours commits in two step executions.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parsePipelineConfig } from '../../src/core/pipeline-config.js';
import { DAY_MS, HOUR_MS, ZoneCalendar } from '../../src/core/windows.js';
import { INGEST_BATCH_HOURS, MAX_INGEST_ROUNDS, TASK_STATES } from '../../src/core/workflow.js';
import { generateProfileLandingZone } from '../../src/local/generate-profiles.js';
import { defaultStateFolder, localStores } from '../../src/local/local-stores.js';
import { type Moto, startMoto } from '../../src/local/moto.js';
import { pipelineId, runPipelines } from '../../src/local/run.js';
import type { JSONValue } from '../../src/local/state-machines.js';
import { runStateMachine } from '../../src/local/state-machines.js';
import { loadWorkflowDefinitions } from '../../src/local/workflow-definitions.js';
import { tempFolder } from '../support/fixtures.js';

const STEP = { project_id: 'acme', pipeline: 'people-daily', step_id: 'daily-2024-01-01', config: 'f' };

describe('ingest rounds of one step execution', () => {
  const { step } = loadWorkflowDefinitions();

  test(`the step workflow ends after ${MAX_INGEST_ROUNDS} rounds while hours are missing, without planning`, async () => {
    // Arrange: every round finds more hours missing.
    const called: string[] = [];
    const handlers = {
      [TASK_STATES.prepareIngest]: async () => {
        called.push('prepare');
        return { hours: ['2024-01-01T00:00:00.000Z'], more: true };
      },
      [TASK_STATES.ingestHour]: async (input: JSONValue) => ({
        arrival_hour: (input as { arrival_hour: string }).arrival_hour,
        done: true,
        pieces: 1,
      }),
      [TASK_STATES.planStep]: async () => {
        called.push('plan');
        return { tasks: [] };
      },
      [TASK_STATES.exportTask]: async () => ({}),
      [TASK_STATES.commitStep]: async () => {
        called.push('commit');
        return {};
      },
    };

    // Act
    await runStateMachine(step, { step: STEP }, handlers);

    // Assert
    assert.deepEqual(called, Array(MAX_INGEST_ROUNDS).fill('prepare'));
  });

  test('the step workflow plans and commits once a round finds nothing more missing', async () => {
    const called: string[] = [];
    let rounds = 0;
    const handlers = {
      [TASK_STATES.prepareIngest]: async () => {
        rounds += 1;
        called.push('prepare');
        return { hours: [], more: rounds < 3 };
      },
      [TASK_STATES.ingestHour]: async () => ({ done: true }),
      [TASK_STATES.planStep]: async () => {
        called.push('plan');
        return { tasks: [0] };
      },
      [TASK_STATES.exportTask]: async () => ({}),
      [TASK_STATES.commitStep]: async () => {
        called.push('commit');
        return {};
      },
    };
    await runStateMachine(step, { step: STEP }, handlers);
    assert.deepEqual(called, ['prepare', 'prepare', 'prepare', 'plan', 'commit']);
  });
});

describe('a first snapshot over more hours than one step execution ingests', () => {
  let moto: Moto;
  let work: { path: string; cleanup: () => Promise<void> };
  const calendar = new ZoneCalendar('UTC');
  const from = calendar.dayStart('2024-01-01');
  // Five weeks of hours before the first snapshot's cut: more than the rounds of one execution hold.
  const days = Math.ceil((MAX_INGEST_ROUNDS * INGEST_BATCH_HOURS) / 24) + 3;
  before(async () => {
    moto = await startMoto();
    work = await tempFolder('ingest-rounds');
    await generateProfileLandingZone({
      rawDir: `${work.path}/raw`,
      projectId: 'acme',
      seed: 7,
      start: from,
      hours: days * 24,
      updatesPerHour: 1,
      users: 30,
    });
  });
  after(async () => {
    await moto.stop();
    await work.cleanup();
  });

  test('commits in two step executions, every hour folded', async () => {
    // Arrange
    const config = parsePipelineConfig({
      project_id: 'acme',
      name: 'people-daily',
      data_source: 'people',
      frequency: 'daily',
      time_zone: 'UTC',
      from_date: '2024-01-01',
    });
    const runs = new Map<string, number>();

    // Act: the run starts when the last day is due, so its first step folds every hour before.
    const { results } = await runPipelines({
      configs: [config],
      stores: (c, clock) =>
        localStores(
          {
            raw: `${work.path}/raw`,
            out: `${work.path}/out`,
            state: defaultStateFolder(`${work.path}/out`, c.project_id, c.name),
          },
          clock,
        ),
      now: from + days * DAY_MS + 3 * HOUR_MS,
      ticks: 'catch-up',
      intercept: (state, input, run) => {
        if (state === TASK_STATES.runStep) {
          const id = (input as { Input: { step: { step_id: string } } }).Input.step.step_id;
          runs.set(id, (runs.get(id) ?? 0) + 1);
        }
        return run();
      },
    });

    // Assert
    const result = results.get(pipelineId(config))!;
    assert.ok(result.ok, result.failures.join('\n'));
    const [first] = result.steps;
    assert.ok(first !== undefined, 'a snapshot committed');
    assert.equal(runs.get(first.step_id), 2, `runs of ${first.step_id}`);
    assert.ok(result.ingestedHours > MAX_INGEST_ROUNDS * INGEST_BATCH_HOURS, `${result.ingestedHours} hours`);
  });
});
