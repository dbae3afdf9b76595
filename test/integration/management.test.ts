/**
 * Managing pipelines against DynamoDB on moto: the management rules (docs/contract.md#management-rules) at
 * create, concurrent creates racing for the two-pipeline limit, hand edits reviewed from the config table's
 * stream, trials that end, and pause / unpause / delete through the synthesized workflows.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { GetItemCommand, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import type { StoredPipeline } from '../../src/core/pipeline-rules.js';
import { DAY_MS, HOUR_MS, ZoneCalendar } from '../../src/core/windows.js';
import { TASK_STATES } from '../../src/core/workflow.js';
import { checkStateConfig, committedStepIds, pipelineBacklog } from '../../src/engine/backlog.js';
import { ConfigStreamReader } from '../../src/local/config-stream.js';
import { type ControlPlane, localRuntime, startControlPlane } from '../../src/local/control-plane.js';
import { generateLandingZone } from '../../src/local/generate.js';
import { defaultStateFolder, localStores } from '../../src/local/local-stores.js';
import { LocalWorkflows, type TaskInterceptor } from '../../src/local/local-workflows.js';
import { type Moto, startMoto } from '../../src/local/moto.js';
import { loadWorkflowDefinitions } from '../../src/local/workflow-definitions.js';
import { changeStatus, createPipeline, ManagementError } from '../../src/management/pipelines.js';
import { findDueProjects, reviewConfigChanges } from '../../src/workflow/activities.js';
import type { Runtime } from '../../src/workflow/runtime.js';
import { tempFolder } from '../support/fixtures.js';

const NOW = Date.parse('2024-03-11T03:00:00Z');
const base = {
  project_id: 'acme',
  frequency: 'daily',
  time_zone: 'Europe/Berlin',
  from_date: '2024-03-08',
};

let moto: Moto;
before(async () => {
  moto = await startMoto();
});
after(async () => {
  await moto?.stop();
});

/** Fresh tables and a runtime over them (stores in `out`), clock at `clock.now`. */
async function fresh(out = '/nonexistent'): Promise<{
  control: ControlPlane;
  runtime: Runtime;
  clock: { now: number };
}> {
  const control = await startControlPlane(moto);
  const clock = { now: NOW };
  const runtime = localRuntime({
    control,
    stores: (config) =>
      localStores({
        raw: `${out}/raw`,
        out: `${out}/out`,
        state: defaultStateFolder(`${out}/out`, config.project_id, config.name),
      }),
    clock: () => clock.now,
  });
  return { control, runtime, clock };
}

async function stored(
  control: ControlPlane,
  name: string,
  project = 'acme',
): Promise<Record<string, unknown>> {
  const item = await control.dynamo.send(
    new GetItemCommand({
      TableName: control.configsTable,
      Key: marshall({ project_id: project, name }),
      ConsistentRead: true,
    }),
  );
  return unmarshall(item.Item ?? {});
}

function refusal(kind: ManagementError['kind'], pattern: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof ManagementError, `expected a ManagementError, got ${String(error)}`);
    assert.equal(error.kind, kind);
    assert.match(error.message, pattern);
    return true;
  };
}

describe('pipeline rules at create, on DynamoDB', () => {
  test('a third events pipeline is refused with the reason; a deleted one frees its slot but keeps its name', async () => {
    const { control, runtime } = await fresh();
    try {
      await createPipeline(runtime.configs, { ...base, name: 'one' }, NOW);
      await createPipeline(runtime.configs, { ...base, name: 'two', s3_prefix: 'second' }, NOW);
      await assert.rejects(
        createPipeline(runtime.configs, { ...base, name: 'three', s3_prefix: 'third' }, NOW),
        refusal('rule', /already has 2 events pipelines \("one", "two"\); at most 2/),
      );
      await changeStatus(runtime.configs, 'acme', 'two', 'delete', NOW);
      await createPipeline(runtime.configs, { ...base, name: 'three', s3_prefix: 'third' }, NOW);
      await assert.rejects(
        createPipeline(runtime.configs, { ...base, name: 'two', s3_prefix: 'other' }, NOW),
        refusal('conflict', /already exists \(status deleted\).*choose another name/),
      );
      assert.equal(
        (await stored(control, 'two')).status,
        'deleted',
        'the deleted item stays, with its status',
      );
    } finally {
      await control.stop();
    }
  });

  test('overlapping dates to one destination are refused; disjoint dates or another prefix are not', async () => {
    const { control, runtime } = await fresh();
    try {
      await createPipeline(runtime.configs, { ...base, name: 'spring', to_date: '2024-05-31' }, NOW);
      await assert.rejects(
        createPipeline(runtime.configs, { ...base, name: 'overlap', from_date: '2024-05-31' }, NOW),
        refusal('rule', /overlap "spring" \(2024-03-08\.\.2024-05-31\)/),
      );
      await createPipeline(runtime.configs, { ...base, name: 'summer', from_date: '2024-06-01' }, NOW);
      const listing = await runtime.configs.listActive('acme', NOW);
      assert.deepEqual(
        listing.configs.map((c) => c.name),
        ['spring', 'summer'],
      );
    } finally {
      await control.stop();
    }
  });

  test('concurrent creates racing for the last slot: exactly one wins, every time', async () => {
    const { control, runtime } = await fresh();
    try {
      for (let round = 0; round < 5; round += 1) {
        const project = `race-${round}`;
        await createPipeline(runtime.configs, { ...base, project_id: project, name: 'first' }, NOW);
        const racers = Array.from({ length: 8 }, (_, i) =>
          createPipeline(
            runtime.configs,
            { ...base, project_id: project, name: `racer-${i}`, s3_prefix: `p${i}` },
            NOW,
          ),
        );
        const outcomes = await Promise.allSettled(racers);
        const won = outcomes.filter((o) => o.status === 'fulfilled');
        assert.equal(won.length, 1, `round ${round}: exactly one racer wins`);
        for (const lost of outcomes.filter((o) => o.status === 'rejected')) {
          assert.ok(
            lost.reason instanceof ManagementError && lost.reason.kind === 'rule',
            String(lost.reason),
          );
        }
        const live = (await runtime.configs.readProject(project)).pipelines.filter(
          (p) => p.management.status === 'active',
        );
        assert.equal(live.length, 2, `round ${round}: the project has two pipelines`);
      }
    } finally {
      await control.stop();
    }
  });

  test('concurrent creates to the same destination and dates: one wins', async () => {
    const { control, runtime } = await fresh();
    try {
      const outcomes = await Promise.allSettled(
        ['a', 'b', 'c'].map((name) => createPipeline(runtime.configs, { ...base, name }, NOW)),
      );
      assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1);
    } finally {
      await control.stop();
    }
  });

  test('a status write decided on a stale version does not land', async () => {
    const { control, runtime } = await fresh();
    try {
      await createPipeline(runtime.configs, { ...base, name: 'one' }, NOW);
      const project = await runtime.configs.readProject('acme');
      await changeStatus(runtime.configs, 'acme', 'one', 'pause', NOW);
      const landed = await runtime.configs.write(project, {
        kind: 'update',
        name: 'one',
        expectedVersion: 1,
        set: { status: 'deleted' },
      });
      assert.equal(landed, false);
      assert.equal((await stored(control, 'one')).status, 'paused');
    } finally {
      await control.stop();
    }
  });
});

describe('hand edits in the console, reviewed from the config stream', () => {
  test('an invalid edit goes to error with a readable reason and never runs; a fix makes it active again', async () => {
    const { control, runtime } = await fresh();
    const stream = new ConfigStreamReader(control.dynamo, control.configsTable, moto.endpoint);
    try {
      await createPipeline(runtime.configs, { ...base, name: 'daily' }, NOW);
      assert.deepEqual((await reviewConfigChanges(runtime, await stream.poll())).changed, []);

      // A person edits the item: a frequency the product does not have, and a bad prefix.
      await control.dynamo.send(
        new UpdateItemCommand({
          TableName: control.configsTable,
          Key: marshall({ project_id: 'acme', name: 'daily' }),
          UpdateExpression: 'SET frequency = :f, s3_prefix = :p',
          ExpressionAttributeValues: marshall({ ':f': 'weekly', ':p': '/leading' }),
        }),
      );
      const review = await reviewConfigChanges(runtime, await stream.poll());
      assert.equal(review.changed.length, 1);
      const broken = await stored(control, 'daily');
      assert.equal(broken.status, 'error');
      assert.match(String(broken.status_reason), /frequency: .*"hourly"/);
      assert.match(String(broken.status_reason), /s3_prefix: must be a relative key prefix/);
      assert.deepEqual((await runtime.configs.listActive(undefined, NOW)).configs, [], 'it never runs');
      const dispatch = await findDueProjects(runtime, { time: new Date(NOW).toISOString() });
      assert.deepEqual(dispatch.projects, [], 'the dispatcher does not crash and starts nothing');

      // The validator's own write comes back on the stream and changes nothing.
      assert.deepEqual((await reviewConfigChanges(runtime, await stream.poll())).changed, []);

      await control.dynamo.send(
        new UpdateItemCommand({
          TableName: control.configsTable,
          Key: marshall({ project_id: 'acme', name: 'daily' }),
          UpdateExpression: 'SET frequency = :f REMOVE s3_prefix',
          ExpressionAttributeValues: marshall({ ':f': 'daily' }),
        }),
      );
      await reviewConfigChanges(runtime, await stream.poll());
      const fixed = await stored(control, 'daily');
      assert.equal(fixed.status, 'active');
      assert.equal(fixed.status_reason, undefined);
      assert.deepEqual(
        (await runtime.configs.listActive(undefined, NOW)).configs.map((c) => c.name),
        ['daily'],
      );
    } finally {
      stream.close();
      await control.stop();
    }
  });

  test('an item added by hand that breaks a project rule goes to error; the others keep running', async () => {
    const { control, runtime } = await fresh();
    const stream = new ConfigStreamReader(control.dynamo, control.configsTable, moto.endpoint);
    try {
      await createPipeline(runtime.configs, { ...base, name: 'one' }, NOW);
      await createPipeline(runtime.configs, { ...base, name: 'two', s3_prefix: 'b' }, NOW);
      await control.dynamo.send(
        new PutItemCommand({
          TableName: control.configsTable,
          Item: marshall({ ...base, name: 'three', s3_prefix: 'c', status: 'active' }),
        }),
      );
      await reviewConfigChanges(runtime, await stream.poll());
      const third = await stored(control, 'three');
      assert.equal(third.status, 'error');
      assert.match(String(third.status_reason), /already has 2 events pipelines/);
      assert.deepEqual(
        (await runtime.configs.listActive('acme', NOW)).configs.map((c) => c.name),
        ['one', 'two'],
      );
    } finally {
      stream.close();
      await control.stop();
    }
  });
});

describe('hand edits of settings a pipeline already exported with', () => {
  test('a valid edit that changes the engine settings goes to error naming them; restoring them makes it active', async () => {
    const folder = await tempFolder('management-settings');
    const { control, runtime } = await fresh(folder.path);
    const stream = new ConfigStreamReader(control.dynamo, control.configsTable, moto.endpoint);
    const edit = async (frequency: string): Promise<void> => {
      await control.dynamo.send(
        new UpdateItemCommand({
          TableName: control.configsTable,
          Key: marshall({ project_id: 'acme', name: 'daily' }),
          UpdateExpression: 'SET frequency = :f',
          ExpressionAttributeValues: marshall({ ':f': frequency }),
        }),
      );
      await reviewConfigChanges(runtime, await stream.poll());
    };
    try {
      const created = await createPipeline(runtime.configs, { ...base, name: 'daily' }, NOW);
      assert.ok(created.config !== undefined);
      await checkStateConfig(runtime.stores(created.config), created.config);

      await edit('hourly');
      const changed = await stored(control, 'daily');
      assert.equal(changed.status, 'error');
      assert.match(String(changed.status_reason), /settings differ .*frequency: "daily" then, "hourly" now/);

      await edit('daily');
      assert.equal((await stored(control, 'daily')).status, 'active');
    } finally {
      stream.close();
      await control.stop();
      await folder.cleanup();
    }
  });

  test('an item written by hand without bookkeeping gets created_at from its first review', async () => {
    const { control, runtime, clock } = await fresh();
    const stream = new ConfigStreamReader(control.dynamo, control.configsTable, moto.endpoint);
    try {
      await control.dynamo.send(
        new PutItemCommand({
          TableName: control.configsTable,
          Item: marshall({ ...base, name: 'manual', trial: true, from_date: '2024-03-10' }),
        }),
      );
      await reviewConfigChanges(runtime, await stream.poll());
      const first = await stored(control, 'manual');
      assert.equal(first.created_at, new Date(NOW).toISOString());
      assert.equal(first.trial_started_at, new Date(NOW).toISOString());
      assert.equal(first.status, 'active');

      // Days later, the backfill limit is still measured from the first review.
      clock.now = NOW + 5 * DAY_MS;
      await control.dynamo.send(
        new UpdateItemCommand({
          TableName: control.configsTable,
          Key: marshall({ project_id: 'acme', name: 'manual' }),
          UpdateExpression: 'SET event_names = :e',
          ExpressionAttributeValues: marshall({ ':e': ['Purchase'] }),
        }),
      );
      await reviewConfigChanges(runtime, await stream.poll());
      assert.equal((await stored(control, 'manual')).status, 'active');
    } finally {
      stream.close();
      await control.stop();
    }
  });
});

describe('trial pipelines', () => {
  test('daily, no sync, one per data source, one day of backfill; paused by the dispatcher when the trial ends', async () => {
    const { control, runtime, clock } = await fresh();
    const created = Date.parse('2024-03-10T12:00:00Z');
    const trial = { ...base, name: 'trial', trial: true };
    try {
      await assert.rejects(
        createPipeline(runtime.configs, { ...trial, from_date: '2024-03-08' }, created),
        refusal('rule', /at most 1 day before its creation \(from 2024-03-09\)/),
      );
      await assert.rejects(
        createPipeline(runtime.configs, { ...trial, from_date: '2024-03-09', frequency: 'hourly' }, created),
        /frequency: must be "daily" for a trial pipeline/,
      );
      const made = await createPipeline(runtime.configs, { ...trial, from_date: '2024-03-09' }, created);
      assert.equal(made.management.trial_started_at, new Date(created).toISOString());
      await assert.rejects(
        createPipeline(
          runtime.configs,
          { ...trial, name: 'trial-2', from_date: '2024-03-10', s3_prefix: 'x' },
          created,
        ),
        refusal('rule', /already has a trial events pipeline \("trial"\)/),
      );

      const lastMoment = created + 30 * DAY_MS - 1;
      clock.now = lastMoment;
      await findDueProjects(runtime, { time: new Date(lastMoment).toISOString() });
      assert.equal((await stored(control, 'trial')).status, 'active', 'still active on the last moment');

      clock.now = created + 30 * DAY_MS;
      await findDueProjects(runtime, { time: new Date(clock.now).toISOString() });
      const ended = await stored(control, 'trial');
      assert.equal(ended.status, 'paused');
      assert.equal(ended.status_reason, 'trial ended');
      await assert.rejects(
        changeStatus(runtime.configs, 'acme', 'trial', 'unpause', clock.now),
        refusal('rule', /trial ended|trial and the project's trial ended/),
      );
    } finally {
      await control.stop();
    }
  });
});

describe('pause, unpause and delete through the workflows', () => {
  const calendar = new ZoneCalendar('Europe/Berlin');
  const hourly = { ...base, name: 'hourly', frequency: 'hourly' };

  test('pause stops new steps at once while the running step commits; unpause resumes the backfill; delete keeps data and runs', async () => {
    const folder = await tempFolder('management-pause');
    const { control, runtime, clock } = await fresh(folder.path);
    let pauseDuringCommit = true;
    const intercept: TaskInterceptor = async (state, _input, run) => {
      if (state === TASK_STATES.commitStep && pauseDuringCommit) {
        pauseDuringCommit = false;
        await changeStatus(runtime.configs, 'acme', 'hourly', 'pause', clock.now);
      }
      return run();
    };
    const workflows = new LocalWorkflows({ definitions: loadWorkflowDefinitions(), runtime, intercept });
    const tick = async (time: number): Promise<void> => {
      clock.now = time;
      await workflows.tick(time);
      await workflows.settle();
    };
    try {
      await generateLandingZone({
        rawDir: `${folder.path}/raw`,
        projectId: 'acme',
        seed: 3,
        start: calendar.dayStart('2024-03-08'),
        hours: 48,
        eventsPerHour: 6,
      });
      const created = await createPipeline(runtime.configs, hourly, NOW);
      const config = created.config;
      assert.ok(config !== undefined);
      const stores = runtime.stores(config);
      const until = calendar.dayEnd('2024-03-09') + 3 * HOUR_MS;

      await tick(until);
      assert.equal(
        (await committedStepIds(stores)).size,
        1,
        'the step running when paused committed, no other',
      );
      await tick(until + 15 * 60_000);
      assert.equal((await committedStepIds(stores)).size, 1, 'a paused pipeline takes no new step');

      await changeStatus(runtime.configs, 'acme', 'hourly', 'unpause', clock.now);
      await tick(until + 30 * 60_000);
      assert.deepEqual(
        await pipelineBacklog(stores, config, until + 30 * 60_000),
        [],
        'the backfill finished',
      );
      const exported = (await committedStepIds(stores)).size;
      assert.ok(exported >= 48, `all 48 windows and more exported, got ${exported}`);

      const runsBefore = await runtime.ledger.listRuns('acme', 'hourly');
      await changeStatus(runtime.configs, 'acme', 'hourly', 'delete', clock.now);
      await tick(until + 6 * HOUR_MS);
      assert.equal((await committedStepIds(stores)).size, exported, 'a deleted pipeline runs nothing more');
      assert.equal((await runtime.ledger.listRuns('acme', 'hourly')).length, runsBefore.length, 'runs stay');
      assert.equal((await stored(control, 'hourly')).status, 'deleted');
      const listed: StoredPipeline[] = await runtime.configs.listAll();
      assert.equal(listed.length, 1, 'the deleted pipeline is still listed');
    } finally {
      await control.stop();
      await folder.cleanup();
    }
  });
});
