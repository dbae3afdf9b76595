/**
 * A holder that lost its project's lock (a Lambda still running after its workflow timed out and the
 * next tick took over) changes nothing: its data tasks cannot write parts, its commit cannot land, and
 * the output is a clean run's. For events and for people snapshots.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { rawHourPrefix } from '../../src/core/layout.js';
import { parsePipelineConfig } from '../../src/core/pipeline-config.js';
import { STATE_TABLE_KEYS } from '../../src/core/tables.js';
import { HOUR_MS, ZoneCalendar } from '../../src/core/windows.js';
import { projectExecutionName, TASK_STATES } from '../../src/core/workflow.js';
import { type ControlPlane, localRuntime, startControlPlane } from '../../src/local/control-plane.js';
import { generateLandingZone } from '../../src/local/generate.js';
import { defaultStateFolder, localStores } from '../../src/local/local-stores.js';
import { LocalWorkflows, type TaskInterceptor } from '../../src/local/local-workflows.js';
import { type Moto, startMoto } from '../../src/local/moto.js';
import { runLocalPipeline } from '../../src/local/run.js';
import type { JSONValue } from '../../src/local/state-machines.js';
import { loadWorkflowDefinitions } from '../../src/local/workflow-definitions.js';
import { assertSameTree, outputTree, readTree, tempFolder } from '../support/fixtures.js';

const MINUTE = 60_000;
const LEASE_MS = 10 * MINUTE;
const calendar = new ZoneCalendar('UTC');
const start = calendar.dayStart('2024-03-08');
const end = calendar.dayEnd('2024-03-09') + 3 * HOUR_MS;

const events = parsePipelineConfig({
  project_id: 'orbit',
  name: 'events-daily',
  frequency: 'daily',
  sync: true,
  time_zone: 'UTC',
  from_date: '2024-03-08',
  part_max_bytes: 1024 * 1024,
});
const people = parsePipelineConfig({
  project_id: 'orbit',
  name: 'people-daily',
  data_source: 'people',
  frequency: 'daily',
  time_zone: 'UTC',
  from_date: '2024-03-08',
});

/** Owner of a Task's input: step activities carry the step, lock activities the owner. */
function ownerOf(input: JSONValue): string | undefined {
  const value = input as { step?: { owner?: string }; owner?: string };
  return value.step?.owner ?? value.owner;
}

/** Ends a project's lease now, as when its holder outlived it. */
async function expireLease(control: ControlPlane, projectId: string): Promise<void> {
  await control.dynamo.send(
    new UpdateItemCommand({
      TableName: control.stateTable,
      Key: {
        [STATE_TABLE_KEYS.partitionKey]: { S: `project#${projectId}` },
        [STATE_TABLE_KEYS.sortKey]: { S: 'lock' },
      },
      UpdateExpression: 'SET expires_at = :past',
      ExpressionAttributeValues: { ':past': { N: '0' } },
    }),
  );
}

describe('fenced writes', () => {
  let moto: Moto;
  let raw: { path: string; cleanup: () => Promise<void> };
  before(async () => {
    moto = await startMoto();
    raw = await tempFolder('fencing-raw');
    await generateLandingZone({
      rawDir: raw.path,
      projectId: 'orbit',
      seed: 3,
      start,
      hours: 48,
      eventsPerHour: 200,
    });
    for (let hour = start; hour < start + 48 * HOUR_MS; hour += 3 * HOUR_MS) {
      const folder = join(raw.path, rawHourPrefix('orbit', hour, 'people'));
      await mkdir(folder, { recursive: true });
      const lines = Array.from(
        { length: 50 },
        (_, i) =>
          `{"$distinct_id":"u${i}","$time":${hour / 1000 + i},"$add":{"visits":1},"$set":{"h":${hour}}}`,
      );
      await writeFile(join(folder, 'p.json'), `${lines.join('\n')}\n`);
    }
  });
  after(async () => {
    await raw?.cleanup();
    await moto?.stop();
  });

  for (const config of [events, people]) {
    for (const where of [TASK_STATES.exportTask, TASK_STATES.commitStep] as const) {
      test(`${config.data_source}: a holder that lost the lock at "${where}" writes nothing; the new holder's output is a clean run's`, async () => {
        const control = await startControlPlane(moto);
        const out = await tempFolder('fenced');
        const clean = await tempFolder('fenced-clean');
        try {
          let now = end;
          const runtime = localRuntime({
            control,
            stores: (c) =>
              localStores({
                raw: raw.path,
                out: out.path,
                state: defaultStateFolder(out.path, c.project_id, c.name),
              }),
            clock: () => now,
            leaseMs: LEASE_MS,
          });
          let workflows: LocalWorkflows | undefined;
          const zombie = projectExecutionName('orbit', end);
          const taker = projectExecutionName('orbit', end + 15 * MINUTE);
          let tookOver = false;
          let frozen: Map<string, Buffer> | undefined;
          const zombieTasks: [string, string][] = [];
          // The taker waits at its first data task until the zombie has tried its own.
          let zombieTried = (): void => undefined;
          const zombieDone = new Promise<void>((resolve) => {
            zombieTried = resolve;
          });
          const intercept: TaskInterceptor = async (state, input, run) => {
            const owner = ownerOf(input);
            if (owner === zombie && state === where && !tookOver) {
              tookOver = true;
              await expireLease(control, 'orbit');
              now = end + 15 * MINUTE;
              await workflows!.tick(now);
              if (where === TASK_STATES.commitStep) await workflows!.outcome(taker);
              frozen = await readTree(out.path);
            }
            if (where === TASK_STATES.exportTask && owner === taker && state === TASK_STATES.exportTask)
              await zombieDone;
            if (owner !== zombie || !tookOver) return run();
            try {
              const output = await run();
              zombieTasks.push([state, 'ok']);
              return output;
            } catch (error) {
              zombieTasks.push([state, (error as Error).name]);
              throw error;
            } finally {
              if (state === where) {
                assert.ok(frozen !== undefined);
                assertSameTree(await readTree(out.path), frozen);
                zombieTried();
              }
            }
          };
          workflows = new LocalWorkflows({ definitions: loadWorkflowDefinitions(), runtime, intercept });
          await runtime.configs.put(config);

          // Act
          await workflows.tick(end);
          const outcomes = await workflows.settle();

          // Assert: the zombie's Task at the takeover failed for want of the lock, and its workflow failed.
          assert.ok(tookOver, 'the takeover happened');
          assert.deepEqual(zombieTasks[0], [where, 'LockLostError']);
          const byName = new Map(outcomes.map((o) => [o.name, o.status]));
          assert.equal(byName.get(zombie), 'failed');
          assert.equal(byName.get(taker), 'succeeded');
          const reference = await runLocalPipeline({
            folders: {
              raw: raw.path,
              out: clean.path,
              state: defaultStateFolder(clean.path, 'orbit', config.name),
            },
            config,
            now: end + 15 * MINUTE,
            workers: 1,
            control: await startControlPlane(moto),
          });
          assert.ok(reference.ok, reference.failures.join('\n'));
          assertSameTree(await outputTree(out.path), await outputTree(clean.path));
          const entries = await runtime.ledger.listRuns('orbit', config.name);
          assert.ok(
            entries.every((e) => e.status === 'succeeded'),
            'no committed step shows as failed',
          );
        } finally {
          await out.cleanup();
          await clean.cleanup();
          await control.stop();
        }
      });
    }
  }
});
