import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  CRASH_ERRORS,
  exportTaskInputSchema,
  parseStateInput,
  RETRYABLE_ERRORS,
  type StepInput,
  stepInputSchema,
  THROTTLING_ERRORS,
} from '../../src/core/workflow.js';
import { releaseAbandonedLock } from '../../src/workflow/abandoned-lock.js';
import * as activities from '../../src/workflow/activities.js';
import type { Runtime } from '../../src/workflow/runtime.js';

/** A runtime every use of which fails the test: a rejected input must touch nothing. */
const untouchable = new Proxy({} as Runtime, {
  get(_target, property) {
    throw new Error(`runtime.${String(property)} used for a malformed input`);
  },
});

const validStep: StepInput = {
  project_id: 'acme-web_2',
  pipeline: 'events-daily',
  step_id: 'daily-2024-11-03',
  tick: '2024-11-04T06:15:00.000Z',
  owner: 'acme-web_2-20241104T0615',
  token: 3,
  started_at: '2024-11-04T06:15:02.000Z',
  config: '0123456789abcdef',
};

const steps: fc.Arbitrary<StepInput> = fc.record({
  project_id: fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
  pipeline: fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,62}$/),
  step_id: fc.constantFrom('daily-2024-11-03', 'hourly-2024-11-03T0100-0400', 'sync-2024-11-05'),
  tick: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
  owner: fc.string({ minLength: 1 }),
  token: fc.nat(),
  started_at: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
  config: fc.string({ minLength: 1 }),
});

describe('state inputs', () => {
  test('every well-formed step input parses to itself, extra fields dropped', () => {
    fc.assert(
      fc.property(steps, (step) => {
        assert.deepEqual(parseStateInput('plan-step', stepInputSchema, { ...step, extra: 1 }), { ...step });
      }),
      { seed: 3 },
    );
  });

  test('a field of the wrong type or missing is named, with the activity', () => {
    const fields = Object.keys(validStep) as (keyof StepInput)[];
    fc.assert(
      fc.property(
        fc.constantFrom(...fields),
        fc.constantFrom(undefined, null, true, [], {}),
        (field, value) => {
          const step = { ...validStep, [field]: value };
          assert.throws(() => parseStateInput('export-task', exportTaskInputSchema, { step, task: 0 }), {
            name: 'InvalidInputError',
            message: new RegExp(`^invalid input of export-task: step\\.${field}: expected `),
          });
        },
      ),
      { seed: 3 },
    );
  });

  test('activities reject a malformed input before they touch anything', async () => {
    await assert.rejects(activities.planStep(untouchable, { ...validStep, project_id: 7 }), {
      name: 'InvalidInputError',
      message: 'invalid input of plan-step: project_id: expected string, received number',
    });
    await assert.rejects(activities.ingestHour(untouchable, { step: validStep, arrival_hour: 'noon' }), {
      message: 'invalid input of ingest-hour: arrival_hour: expected an ISO instant',
    });
    await assert.rejects(activities.commitStep(untouchable, { ...validStep, step_id: 'weekly-2024-11-03' }), {
      message: 'invalid input of commit-step: step_id: expected a step id',
    });
    await assert.rejects(activities.exportTask(untouchable, { step: validStep, task: -1 }), {
      name: 'InvalidInputError',
      message: /^invalid input of export-task: task: /,
    });
    await assert.rejects(
      activities.pickNextStep(untouchable, { project_id: 'acme', owner: 'o', tick: 'x' }),
      {
        name: 'InvalidInputError',
      },
    );
    await assert.rejects(activities.recordFailure(untouchable, { step: validStep, error: { Cause: 1 } }), {
      message: /^invalid input of record-failure: error\.Cause: expected string/,
    });
    await assert.rejects(activities.reviewConfigChanges(untouchable, {}), {
      message: /^invalid input of review-config: Records: expected array/,
    });
    await assert.rejects(activities.findDueProjects(untouchable, 'tick'), {
      message: /^invalid input of find-due-projects: \(whole\): expected object/,
    });
    await assert.rejects(releaseAbandonedLock(untouchable, { detail: { status: 'FAILED' } }), {
      message: /^invalid input of release-abandoned-lock: detail\.name: expected string/,
    });
  });

  test('no retrier of the state machines matches the errors retrying cannot help', () => {
    const retried = new Set<string>([...RETRYABLE_ERRORS, ...THROTTLING_ERRORS, ...CRASH_ERRORS]);
    for (const name of ['InvalidInputError', 'CorruptStateError', 'ConfigError'])
      assert.ok(!retried.has(name), name);
  });
});
