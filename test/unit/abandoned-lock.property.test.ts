import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { pipelineSchema } from '../../src/core/pipeline-config.js';
import { parseProjectExecutionName, projectExecutionName } from '../../src/core/workflow.js';

/** Every project id a pipeline config accepts (dashes, underscores and digits included). */
const projectIds = fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/);
/** Ticks of years 0 to 9999 (the execution name keeps minutes). */
const ticks = fc.integer({ min: new Date(0).setUTCFullYear(0, 0, 1), max: Date.UTC(9999, 11, 31, 23, 59) });
const MINUTE_MS = 60_000;

describe('parseProjectExecutionName', () => {
  test('gives back the project and the minute of every name projectExecutionName gives', () => {
    fc.assert(
      fc.property(projectIds, ticks, (projectId, tick) => {
        assert.ok(pipelineSchema.in.shape.project_id.safeParse(projectId).success);
        assert.deepEqual(parseProjectExecutionName(projectExecutionName(projectId, tick)), {
          projectId,
          tick: Math.floor(tick / MINUTE_MS) * MINUTE_MS,
        });
      }),
    );
  });

  test('every name it parses is the name its parts format to', () => {
    const shaped = fc
      .tuple(projectIds, fc.stringMatching(/^\d{8}T\d{4}$/))
      .map(([projectId, stamp]) => `${projectId}-${stamp}`);
    fc.assert(
      fc.property(fc.oneof(shaped, fc.string()), (name) => {
        const parsed = parseProjectExecutionName(name);
        if (parsed !== undefined) assert.equal(projectExecutionName(parsed.projectId, parsed.tick), name);
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
      'acme-20241301T0000',
      'acme-20240230T0000',
      'acme-20240101T2400',
      '',
    ]) {
      assert.equal(parseProjectExecutionName(name), undefined, name);
    }
  });
});
