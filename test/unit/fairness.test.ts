import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { nextStep, type PipelineBacklog } from '../../src/core/fairness.js';
import { stepId } from '../../src/core/layout.js';
import { parsePipelineConfig } from '../../src/core/pipeline-config.js';
import { type DueStep, dueSteps } from '../../src/core/routing.js';
import { HOUR_MS, ZoneCalendar } from '../../src/core/windows.js';

function due(id: string, dueAt: number): DueStep {
  const window = { frequency: 'daily' as const, start: 0, end: 1, id, day: id };
  return { step: { kind: 'regular', window }, id: stepId({ kind: 'regular', window }), dueAt };
}

describe('nextStep', () => {
  test('takes turns between pipelines in name order, starting after the last one to run', () => {
    const backlogs: PipelineBacklog[] = [
      { pipeline: 'b', due: [due('b1', 1)] },
      { pipeline: 'a', due: [due('a1', 1), due('a2', 2)] },
      { pipeline: 'c', due: [] },
    ];
    assert.equal(nextStep(backlogs, undefined)?.pipeline, 'a');
    assert.equal(nextStep(backlogs, 'a')?.pipeline, 'b');
    assert.equal(nextStep(backlogs, 'b')?.pipeline, 'a', 'c has nothing due, so the turn wraps to a');
    assert.equal(nextStep(backlogs, 'zz')?.pipeline, 'a', 'a deleted last pipeline still wraps');
    assert.equal(nextStep(backlogs, 'a')?.step.id, 'daily-b1');
  });

  test('inside a pipeline the oldest due step goes first', () => {
    assert.equal(nextStep([{ pipeline: 'a', due: [due('a1', 1), due('a2', 2)] }], 'a')?.step.id, 'daily-a1');
  });

  test('nothing due gives undefined', () => {
    assert.equal(nextStep([{ pipeline: 'a', due: [] }], undefined), undefined);
    assert.equal(nextStep([], 'a'), undefined);
  });
});

describe('fairness under a long backfill (simulated schedule)', () => {
  test('with a 60-day backfill on one pipeline, every hourly window of the other runs within two steps of becoming due', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('UTC', 'America/New_York', 'Asia/Kathmandu'),
        fc.integer({ min: 1, max: 20 }),
        (zone, minutesPerStep) => {
          // Arrange: a daily pipeline backfilling 60 days and an hourly one starting today.
          const calendar = new ZoneCalendar(zone);
          const backfill = parsePipelineConfig({
            project_id: 'p',
            name: 'backfill',
            frequency: 'daily',
            time_zone: zone,
            from_date: '2024-01-01',
          });
          const hourly = parsePipelineConfig({
            project_id: 'p',
            name: 'hourly',
            frequency: 'hourly',
            sync: true,
            time_zone: zone,
            from_date: '2024-03-01',
          });
          const done = new Set<string>();
          let now = calendar.dayStart('2024-03-01') + 3 * HOUR_MS;
          let last: string | undefined;
          const stepsSinceDue = new Map<string, number>();

          // Act: one step per tick of `minutesPerStep`, for two simulated days.
          for (; now < calendar.dayStart('2024-03-03'); now += minutesPerStep * 60_000) {
            const backlogs = [backfill, hourly].map((config) => ({
              pipeline: config.name,
              due: dueSteps(config, calendar, now).filter((d) => !done.has(`${config.name}/${d.id}`)),
            }));
            for (const d of backlogs[1]!.due) stepsSinceDue.set(d.id, (stepsSinceDue.get(d.id) ?? 0) + 1);
            const next = nextStep(backlogs, last);
            if (next === undefined) continue;
            done.add(`${next.pipeline}/${next.step.id}`);
            last = next.pipeline;

            // Assert: an hourly window waited at most two steps since it became due (the pipeline's own
            // sync may queue behind its window of the same instant; that is not the backfill's doing).
            if (next.pipeline === 'hourly' && next.step.step.kind === 'regular') {
              const waited = stepsSinceDue.get(next.step.id)!;
              assert.ok(waited <= 2, `${next.step.id} waited ${waited} steps`);
            }
          }
          assert.ok([...done].filter((d) => d.startsWith('backfill/')).length > 0, 'the backfill progressed');
        },
      ),
      { seed: 60, numRuns: 12 },
    );
  });
});
