import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { stepId } from '../../src/core/layout.js';
import { parsePipelineConfig } from '../../src/core/pipeline-config.js';
import { dueSteps } from '../../src/core/routing.js';
import { ZoneCalendar } from '../../src/core/windows.js';
import { invocationKeys, outputSummary, projectExecutionName, stepFromId } from '../../src/core/workflow.js';
import { stepError } from '../../src/workflow/activities.js';

describe('projectExecutionName', () => {
  test('is the same for two triggers in the same minute and differs between minutes', () => {
    const t = Date.UTC(2024, 2, 10, 2, 15);
    assert.equal(projectExecutionName('acme', t), projectExecutionName('acme', t + 59_000));
    assert.notEqual(projectExecutionName('acme', t), projectExecutionName('acme', t + 60_000));
    assert.equal(projectExecutionName('acme', t), 'acme-20240310T0215');
  });

  test('is a valid Step Functions name for every project id the config allows', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
        fc.integer({ min: 0, max: 4e12 }),
        (project, t) => {
          const name = projectExecutionName(project, t);
          return name.length <= 80 && /^[A-Za-z0-9_-]+$/.test(name);
        },
      ),
    );
  });
});

describe('stepFromId', () => {
  const config = parsePipelineConfig({
    project_id: 'p',
    name: 'events',
    frequency: 'hourly',
    sync: true,
    time_zone: 'America/New_York',
    from_date: '2024-11-02',
  });
  const calendar = new ZoneCalendar(config.time_zone);

  test('gives back every due step from its id, across the fall-back day', () => {
    const due = dueSteps(config, calendar, calendar.dayEnd('2024-11-04'));
    assert.ok(due.length > 70);
    for (const { step, id } of due) assert.deepEqual(stepId(stepFromId(config, calendar, id)), stepId(step));
  });

  test('refuses ids of another frequency, of sync when the pipeline does not sync, and garbage', () => {
    for (const id of ['daily-2024-11-03', 'hourly-2024-11-03T0100', 'nonsense']) {
      assert.throws(() => stepFromId(config, calendar, id), { name: 'ConfigError' }, id);
    }
    assert.throws(() => stepFromId({ ...config, sync: false }, calendar, 'sync-2024-11-03'), {
      name: 'ConfigError',
    });
  });
});

describe('stepError', () => {
  test("unwraps a failed step workflow's description down to the Lambda error", () => {
    const lambdaCause = JSON.stringify({
      errorType: 'UnreadableSourceError',
      errorMessage: 'cannot read x.gz',
    });
    const caught = {
      Error: 'States.TaskFailed',
      Cause: JSON.stringify({ Status: 'FAILED', Error: 'UnreadableSourceError', Cause: lambdaCause }),
    };
    assert.deepEqual(stepError(caught), { error: 'UnreadableSourceError', cause: 'cannot read x.gz' });
  });

  test('keeps a plain cause as the message', () => {
    assert.deepEqual(stepError({ Error: 'States.Timeout', Cause: 'timed out' }), {
      error: 'States.Timeout',
      cause: 'timed out',
    });
  });
});

describe('invocationKeys and outputSummary', () => {
  const step = {
    project_id: 'acme',
    pipeline: 'events-daily',
    step_id: 'daily-2024-11-03',
    tick: '2024-11-04T08:00:00.000Z',
    owner: 'acme-20241104T0800',
    token: 3,
    started_at: '2024-11-04T08:00:01.000Z',
    config: 'fingerprint',
  };

  test('name the project, pipeline, step and hour or task of every kind of state input', () => {
    assert.deepEqual(invocationKeys(step), {
      project_id: 'acme',
      pipeline: 'events-daily',
      step_id: 'daily-2024-11-03',
    });
    assert.deepEqual(invocationKeys({ step, arrival_hour: '2024-11-03T05:00:00.000Z' }), {
      project_id: 'acme',
      pipeline: 'events-daily',
      step_id: 'daily-2024-11-03',
      arrival_hour: '2024-11-03T05:00:00.000Z',
    });
    assert.deepEqual(invocationKeys({ step, task: 7 }).task, 7);
    assert.deepEqual(invocationKeys({ project_id: 'acme', tick: 'x' }), { project_id: 'acme' });
    // Never the owner, the token or the config's fingerprint.
    assert.equal(JSON.stringify(invocationKeys(step)).includes('fingerprint'), false);
    for (const input of [undefined, null, 'text', 3, []]) assert.deepEqual(invocationKeys(input), {});
  });

  test('summarize an output by its numbers and the lengths of its lists', () => {
    assert.deepEqual(
      outputSummary({ tasks: [0, 1, 2], step_id: 's', exported: 10, done: true, nested: { a: 1 } }),
      { tasks: 3, step_id: 's', exported: 10, done: true },
    );
    assert.deepEqual(outputSummary(undefined), {});
  });
});
