import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { synthesizeWorkflows } from '../../bin/write-workflows.js';
import { TASK_STATES } from '../../src/core/workflow.js';
import { allStates, locallyUnsupported, validateDefinition } from '../../src/local/state-machines.js';
import { loadWorkflowDefinitions, workflowDefinitions } from '../../src/local/workflow-definitions.js';

describe('the workflows local runs execute', () => {
  test('are the ones the stack synthesizes now (the built copy is not stale)', () => {
    // Act
    const fresh = workflowDefinitions(synthesizeWorkflows());
    // Assert
    assert.deepEqual(loadWorkflowDefinitions(), fresh);
  });

  test('are valid, use nothing the local interpreter cannot run, and every Task has a local activity', () => {
    // Local runs trust the build's validation and skip it.
    const definitions = loadWorkflowDefinitions();
    const known = new Set<string>(Object.values(TASK_STATES));
    for (const [role, definition] of Object.entries(definitions)) {
      assert.doesNotThrow(() => validateDefinition(definition, role));
      assert.deepEqual(locallyUnsupported(definition), [], `${role} workflow`);
      const tasks = allStates(definition)
        .filter(([, state]) => state.Type === 'Task')
        .map(([name]) => name);
      assert.ok(tasks.length > 0, `${role} workflow has Tasks`);
      for (const name of tasks) assert.ok(known.has(name), `${role} Task "${name}" has a local activity`);
    }
  });
});
