import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { pipelineSchema } from '../../src/core/pipeline-config.js';
import { projectExecutionName, projectOfExecution } from '../../src/core/workflow.js';

/** Every project id a pipeline config accepts. */
const projectIds = fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/);
/** Ticks from 1970 to 9999 (the execution name keeps minutes). */
const ticks = fc.integer({ min: 0, max: Date.UTC(9999, 11, 31, 23, 59) });

describe('projectOfExecution', () => {
  test('finds the project of every name projectExecutionName gives, for every valid project id', () => {
    fc.assert(
      fc.property(projectIds, ticks, (projectId, tick) => {
        assert.ok(pipelineSchema.in.shape.project_id.safeParse(projectId).success);
        assert.equal(projectOfExecution(projectExecutionName(projectId, tick)), projectId);
      }),
    );
  });

  test('finds no project in names the dispatcher never gives', () => {
    for (const name of [
      'acme',
      'acme-2024',
      'acme-20240101T00',
      'acme-20240101T0000-retry',
      '-20240101T0000',
      '',
    ]) {
      assert.equal(projectOfExecution(name), undefined, name);
    }
  });
});
