/**
 * No config item can stop another project: attribute values of every kind DynamoDB holds, written by
 * hand into one pipeline item, go through the real store on moto, the review run from the table's
 * stream and the dispatcher. Nothing throws, a bad item is reported invalid and put in error with a
 * reason naming the attribute, and a valid pipeline of another project is still dispatched.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  type AttributeValue,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import fc from 'fast-check';
import { plainItem } from '../../src/adapters/dynamo-config-store.js';
import { MAX_STATUS_REASON_CHARS, type StoredPipeline } from '../../src/core/pipeline-rules.js';
import type { ConfigChangeEvent } from '../../src/core/workflow.js';
import { ConfigStreamReader } from '../../src/local/config-stream.js';
import { type ControlPlane, localRuntime, startControlPlane } from '../../src/local/control-plane.js';
import { defaultStateFolder, localStores } from '../../src/local/local-stores.js';
import { type Moto, startMoto } from '../../src/local/moto.js';
import { changeStatus, createPipeline } from '../../src/management/pipelines.js';
import { findDueProjects, reviewConfigChanges } from '../../src/workflow/activities.js';
import type { Runtime } from '../../src/workflow/runtime.js';
import { attributeOverrides, KNOWN_ATTRIBUTES, surelyBad } from '../support/attribute-values.js';
import { tempFolder } from '../support/fixtures.js';

const NOW = Date.parse('2024-03-11T03:00:00Z');
const TICK = { time: new Date(NOW).toISOString() };
/** The other project: one valid pipeline with a backlog, due on every tick. */
const STEADY = {
  project_id: 'steady',
  name: 'daily',
  frequency: 'daily',
  time_zone: 'Europe/Berlin',
  from_date: '2024-03-08',
};

let moto: Moto;
let folder: { path: string; cleanup: () => Promise<void> };
let control: ControlPlane | undefined;
let runtime: Runtime;
let stream: ConfigStreamReader | undefined;

before(async () => {
  moto = await startMoto();
  folder = await tempFolder('config-items');
});
after(async () => {
  stream?.close();
  await control?.stop();
  await moto?.stop();
  await folder?.cleanup();
});

/** Fresh tables holding the other project's pipeline, reviewed, and a runtime over them. */
async function freshTables(): Promise<void> {
  stream?.close();
  await control?.stop();
  const plane = await startControlPlane(moto);
  control = plane;
  runtime = localRuntime({
    control: plane,
    stores: (config) =>
      localStores({
        raw: `${folder.path}/raw`,
        out: `${folder.path}/out`,
        state: defaultStateFolder(`${folder.path}/out`, config.project_id, config.name),
      }),
    clock: () => NOW,
  });
  stream = new ConfigStreamReader(plane.dynamo, plane.configsTable, moto.endpoint);
  await createPipeline(runtime.configs, STEADY, NOW);
  await reviewConfigChanges(runtime, await poll());
}

function tables(): ControlPlane {
  assert.ok(control !== undefined, 'freshTables() ran');
  return control;
}

/** A valid item as a person would write it in the console, in `project`. */
function validItem(project: string): Record<string, AttributeValue> {
  return {
    project_id: { S: project },
    name: { S: 'edited' },
    frequency: { S: 'daily' },
    time_zone: { S: 'UTC' },
    from_date: { S: '2024-03-08' },
    status: { S: 'active' },
    version: { N: '1' },
    created_at: { S: '2024-03-10T00:00:00Z' },
  };
}

async function put(item: Record<string, AttributeValue>): Promise<void> {
  await tables().dynamo.send(new PutItemCommand({ TableName: tables().configsTable, Item: item }));
}

/** The item's attributes as stored now. */
async function stored(project: string, name = 'edited'): Promise<Record<string, unknown>> {
  const read = await tables().dynamo.send(
    new GetItemCommand({
      TableName: tables().configsTable,
      Key: { project_id: { S: project }, name: { S: name } },
      ConsistentRead: true,
    }),
  );
  return plainItem(read.Item ?? {});
}

async function pipelineOf(project: string): Promise<StoredPipeline> {
  const [pipeline] = (await runtime.configs.readProject(project)).pipelines;
  assert.ok(pipeline !== undefined, `project ${project} has its item`);
  return pipeline;
}

/** Reviews the stream until the review's own writes change nothing more; returns the rounds taken. */
async function reviewUntilSettled(): Promise<number> {
  for (let round = 1; round <= 4; round += 1) {
    if ((await reviewConfigChanges(runtime, await poll())).changed.length === 0) return round;
  }
  assert.fail('the review keeps rewriting items');
}

async function poll(): Promise<ConfigChangeEvent> {
  assert.ok(stream !== undefined, 'freshTables() ran');
  return stream.poll();
}

async function dispatched(): Promise<string[]> {
  return (await findDueProjects(runtime, TICK)).projects.map((p) => p.project_id);
}

describe('the numbers of the issue, by hand in one item', () => {
  before(freshTables);

  test('12345678901234567.5 in part_max_bytes: invalid and in error, the other project runs; a fix makes it active', async () => {
    await put({ ...validItem('acme'), part_max_bytes: { N: '12345678901234567.5' } });
    assert.deepEqual(await dispatched(), ['steady'], 'the dispatcher runs the other project');
    const listing = await runtime.configs.listActive(undefined, NOW);
    assert.deepEqual(listing.invalid, [
      {
        project_id: 'acme',
        name: 'edited',
        problem:
          'part_max_bytes: the number 12345678901234567.5 cannot be read exactly: it has more significant digits than a JavaScript number holds (it would read as 12345678901234568)',
      },
    ]);

    await reviewUntilSettled();
    const broken = await stored('acme');
    assert.equal(broken.status, 'error');
    assert.equal(broken.status_reason, listing.invalid[0]?.problem);

    await tables().dynamo.send(
      new UpdateItemCommand({
        TableName: tables().configsTable,
        Key: { project_id: { S: 'acme' }, name: { S: 'edited' } },
        UpdateExpression: 'SET part_max_bytes = :p',
        ExpressionAttributeValues: { ':p': { N: '2097152' } },
      }),
    );
    await reviewUntilSettled();
    assert.equal((await stored('acme')).status, 'active');
    assert.deepEqual(await dispatched(), ['acme', 'steady']);
  });

  test('1E+125 in an unknown attribute and in event_names: invalid, each named', async () => {
    await put({
      ...validItem('bravo'),
      event_names: { L: [{ S: 'Purchase' }, { N: '1E+125' }] },
      limit: { N: '1E+125' },
    });
    assert.deepEqual(await dispatched(), ['acme', 'steady']);
    await reviewUntilSettled();
    const broken = await stored('bravo');
    assert.equal(broken.status, 'error');
    assert.equal(
      broken.status_reason,
      'event_names.1: Invalid input: expected string, received number; (config): Unrecognized key: "limit"',
    );
  });

  test('a version of 12345678901234567.5: in error naming version, written on that value, counted again from 1', async () => {
    await put({ ...validItem('charlie'), version: { N: '12345678901234567.5' } });
    assert.deepEqual(await dispatched(), ['acme', 'steady'], 'it does not run while its version is bad');
    await reviewConfigChanges(runtime, await poll());
    const first = await stored('charlie');
    assert.equal(first.status, 'error');
    assert.match(
      String(first.status_reason),
      /^version: the number 12345678901234567\.5 cannot be read exactly/,
    );
    assert.equal(first.version, 1, 'the write replaced the bad version');
    // The review's own write comes back: the item is whole again.
    await reviewUntilSettled();
    assert.equal((await stored('charlie')).status, 'active');

    await put({ ...validItem('charlie'), version: { SS: ['x'] } });
    await reviewUntilSettled();
    await changeStatus(runtime.configs, 'charlie', 'edited', 'delete', NOW);
    assert.equal((await stored('charlie')).status, 'deleted', 'a pipeline with a bad version can be deleted');
    await reviewUntilSettled();
  });

  test('a status of 1E+125 pauses the pipeline until a person sets it', async () => {
    await put({ ...validItem('delta'), status: { N: '1E+125' } });
    await reviewUntilSettled();
    const paused = await stored('delta');
    assert.equal(paused.status, 'paused');
    assert.match(
      String(paused.status_reason),
      /^status 1e\+125 is not one of active, paused, error, deleted/,
    );
  });
});

describe('any attribute values in one item', () => {
  before(freshTables);

  test('nothing throws; a bad item is invalid, in error with the attribute named; the other project is dispatched', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(attributeOverrides, async (changes) => {
        run += 1;
        const project = `item-${run}`;
        const item = { ...validItem(project), ...Object.fromEntries(changes) };
        try {
          await put(item);

          const listing = await runtime.configs.listActive(undefined, NOW);
          const pipeline = await pipelineOf(project);
          const problems = pipeline.problems ?? [];
          const { project_id: _project, name: _name, ...attributes } = item;
          for (const [name, value] of Object.entries(attributes)) {
            if (!surelyBad(name, value)) continue;
            if (name === 'status')
              assert.notEqual(pipeline.invalidStatus, undefined, 'a bad status is invalid');
            else if (KNOWN_ATTRIBUTES.includes(name))
              assert.ok(
                problems.some((p) => p.startsWith(`${name}:`) || p.startsWith(`${name}.`)),
                `${name} named in ${JSON.stringify(problems)}`,
              );
            else
              assert.ok(
                problems.some((p) => p.includes(`"${name}"`)),
                `unknown ${name} is named`,
              );
          }
          if (problems.length > 0)
            assert.ok(
              !listing.configs.some((config) => config.project_id === project),
              'an invalid item never runs',
            );

          await reviewConfigChanges(runtime, await poll());
          const reviewed = await stored(project);
          const status = pipeline.management.status;
          if (problems.length > 0 && status !== 'deleted') {
            assert.equal(reviewed.status, 'error');
            const reason = String(reviewed.status_reason);
            assert.ok(Array.from(reason).length <= MAX_STATUS_REASON_CHARS);
            assert.ok(problems.join('; ').startsWith(reason.slice(0, MAX_STATUS_REASON_CHARS / 2)), reason);
          } else if (pipeline.invalidStatus !== undefined) {
            assert.equal(reviewed.status, 'paused');
          }
          await reviewUntilSettled();

          const settled = await pipelineOf(project);
          if (settled.problems !== undefined)
            assert.ok(['error', 'deleted'].includes(settled.management.status), 'a bad item stays out');
          const projects = await dispatched();
          assert.ok(projects.includes('steady'), 'the other project is dispatched');
          if (settled.problems !== undefined) assert.ok(!projects.includes(project), 'the bad item is not');
        } finally {
          // Removed, so that runs stay independent (the stream ignores removals).
          await tables().dynamo.send(
            new DeleteItemCommand({
              TableName: tables().configsTable,
              Key: { project_id: { S: project }, name: { S: 'edited' } },
            }),
          );
        }
      }),
      { seed: 13, numRuns: 40, includeErrorInReport: true },
    );
  });
});
