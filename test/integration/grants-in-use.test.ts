/**
 * The grants proved by the run itself: a local schedule of events (daily with sync, late objects,
 * quarantined lines, an object set aside), people and identity pipelines runs through the synthesized
 * workflows while every AWS call each activity makes is recorded (S3 objects and listings, DynamoDB
 * items, EventBridge events) with the resource it would touch in a deployment; each call is then checked
 * against the synthesized policy of the function that runs that activity. What AWS would deny fails here.
 */
import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { S3Client } from '@aws-sdk/client-s3';
import { awsStores } from '../../src/adapters/aws-stores.js';
import { rawHourPrefix } from '../../src/core/layout.js';
import type { ObjectStore } from '../../src/core/object-store.js';
import { type PipelineConfig, parsePipelineConfig } from '../../src/core/pipeline-config.js';
import { HOUR_MS, ZoneCalendar } from '../../src/core/windows.js';
import { TASK_STATES } from '../../src/core/workflow.js';
import { DEFAULT_INGEST_LIMITS } from '../../src/engine/arrival-hour.js';
import type { EngineStores } from '../../src/engine/stores.js';
import { startControlPlane } from '../../src/local/control-plane.js';
import { generateLandingZone } from '../../src/local/generate.js';
import { generateProfileLandingZone } from '../../src/local/generate-profiles.js';
import { defaultStateFolder, localStores } from '../../src/local/local-stores.js';
import type { TaskStateName } from '../../src/local/local-workflows.js';
import { type Moto, startMoto } from '../../src/local/moto.js';
import { pipelineId, runPipelines } from '../../src/local/run.js';
import { tempFolder } from '../support/fixtures.js';
import {
  allowedBy,
  logicalIdOf,
  type PipelineFunctionName,
  roleStatements,
  type SynthesizedStack,
  synthesizeStack,
} from '../support/synth.js';

/** The function that runs each Task state's activity (Step Functions integrations run none). */
const FUNCTION_OF: Partial<Record<TaskStateName, PipelineFunctionName>> = {
  [TASK_STATES.findDueProjects]: 'findDueProjects',
  [TASK_STATES.acquireLock]: 'acquireLock',
  [TASK_STATES.pickNextStep]: 'pickNextStep',
  [TASK_STATES.recordFailure]: 'recordFailure',
  [TASK_STATES.releaseLock]: 'releaseLock',
  [TASK_STATES.releaseLockAfterFailure]: 'releaseLock',
  [TASK_STATES.prepareIngest]: 'prepareIngest',
  [TASK_STATES.ingestHour]: 'ingestHour',
  [TASK_STATES.planStep]: 'planStep',
  [TASK_STATES.exportTask]: 'exportTask',
  [TASK_STATES.commitStep]: 'commitStep',
};

/** One AWS call an activity made: the IAM action and the resource (`arn::<logical id>[/<key>]`). */
interface Call {
  readonly fn: PipelineFunctionName;
  readonly action: string;
  readonly resource: string;
}

const calendar = new ZoneCalendar('America/New_York');
const start = calendar.dayStart('2024-11-02');
const common = { project_id: 'acme', time_zone: 'America/New_York', from_date: '2024-11-02' };
const PIPELINES: readonly PipelineConfig[] = [
  parsePipelineConfig({ ...common, name: 'events-daily', frequency: 'daily', sync: true }),
  parsePipelineConfig({ ...common, name: 'events-hourly', frequency: 'hourly', s3_prefix: 'exports/hourly' }),
  parsePipelineConfig({ ...common, name: 'people-daily', data_source: 'people', frequency: 'daily' }),
  parsePipelineConfig({ ...common, name: 'identity-daily', data_source: 'identity', frequency: 'daily' }),
];

describe('the grants the functions use, as a local schedule uses them', () => {
  let moto: Moto;
  let synth: SynthesizedStack;
  let raw: { path: string; cleanup: () => Promise<void> };
  let out: { path: string; cleanup: () => Promise<void> };
  before(async () => {
    moto = await startMoto();
    synth = synthesizeStack();
    raw = await tempFolder('grants-raw');
    out = await tempFolder('grants-out');
    await generateLandingZone({
      rawDir: raw.path,
      projectId: 'acme',
      seed: 4,
      start,
      hours: 60,
      eventsPerHour: 20,
    });
    await generateProfileLandingZone({
      rawDir: raw.path,
      projectId: 'acme',
      seed: 4,
      start,
      hours: 60,
      updatesPerHour: 10,
      users: 40,
    });
    // An object written into a folder after it was read (a late object), and one that cannot be read.
    const late = join(raw.path, rawHourPrefix('acme', start + 5 * HOUR_MS), 'retried.json');
    await writeFile(late, '{"event":"Late","properties":{"time":1730541000,"$insert_id":"late-1"}}\n');
    await utimes(late, new Date(start + 30 * HOUR_MS), new Date(start + 30 * HOUR_MS));
    const broken = join(raw.path, rawHourPrefix('acme', start + 7 * HOUR_MS));
    await mkdir(broken, { recursive: true });
    await writeFile(join(broken, 'broken.json.gz'), gzipSync('{"event":"a"}\n'.repeat(300)).subarray(0, 50));
  });
  after(async () => {
    await raw.cleanup();
    await out.cleanup();
    synth.cleanup();
    await moto.stop();
  });

  test('every call an activity makes is allowed to the function that runs it', async () => {
    // Arrange: which Task is running, and every call made under it.
    const task = new AsyncLocalStorage<PipelineFunctionName>();
    const calls: Call[] = [];
    const record = (action: string, resource: string) => {
      const fn = task.getStore();
      if (fn !== undefined) calls.push({ fn, action, resource });
    };
    const { stack } = synth;
    const ids = {
      raw: logicalIdOf(synth, stack.rawBucket),
      destination: logicalIdOf(synth, stack.destinationBucket),
      state: logicalIdOf(synth, stack.state.bucket),
      configs: logicalIdOf(synth, stack.tables.configs),
      stateTable: logicalIdOf(synth, stack.tables.state),
    };
    // The buckets and prefixes of a deployment, from the functions' own store factory.
    const deployed = (config: PipelineConfig) =>
      awsStores(
        new S3Client({ region: 'us-east-1' }),
        { raw: ids.raw, destination: ids.destination, state: ids.state },
        config,
        () => new S3Client({ region: 'us-east-1' }),
      );
    const stores = (config: PipelineConfig, clock: () => number): EngineStores => {
      const local = localStores(
        { raw: raw.path, out: out.path, state: defaultStateFolder(out.path, config.project_id, config.name) },
        clock,
      );
      const aws = deployed(config);
      // The local destination folder is the bucket root: a prefix is the deployment's too.
      const prefix = config.s3_prefix === undefined ? '' : `${config.s3_prefix}/`;
      return {
        raw: recording(local.raw, aws.raw.description, record),
        destination: recording(prefixed(local.destination, prefix), aws.destination.description, record),
        state: recording(local.state, aws.state.description, record),
        staging: recording(local.staging, aws.staging.description, record),
      };
    };
    const control = await startControlPlane(moto);
    const tables: Record<string, string> = {
      [control.configsTable]: ids.configs,
      [control.stateTable]: ids.stateTable,
    };
    control.dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        const table = (args.input as { TableName?: string }).TableName;
        const items = (args.input as { TransactItems?: Record<string, { TableName?: string }>[] })
          .TransactItems;
        const touched =
          table !== undefined
            ? [table]
            : (items ?? []).flatMap((item) => Object.values(item).map((op) => op.TableName ?? ''));
        const action = `dynamodb:${(context.commandName ?? '').replace(/Command$/, '')}`;
        for (const name of touched) record(action, `arn::${tables[name] ?? name}`);
        return next(args);
      },
      { step: 'initialize', name: 'recordCalls' },
    );
    try {
      // Act
      const { results } = await runPipelines({
        configs: PIPELINES,
        stores,
        control,
        now: calendar.dayEnd('2024-11-04') + 3 * HOUR_MS,
        ticks: 'schedule',
        // More reads than one step's tries (1 + 6 retries): the broken object fails a step (the failure is
        // recorded), and the next tick sets it aside.
        ingestLimits: { ...DEFAULT_INGEST_LIMITS, maxAttempts: 8 },
        intercept: (state, _input, run) => {
          const fn = FUNCTION_OF[state];
          return fn === undefined ? run() : task.run(fn, run);
        },
      });

      // Assert: the schedule did all it should (late objects, quarantine, a set-aside object, snapshots)
      for (const config of PIPELINES) {
        const result = results.get(pipelineId(config))!;
        assert.ok(
          result.ok,
          `${config.name}: ${[...result.failures, ...result.reconciliation.problems].join('\n')}`,
        );
      }
      const events = results.get('acme/events-daily')!.reconciliation.arrivalDays;
      assert.ok(events.some((row) => row.quarantined > 0));
      assert.ok(events.some((row) => row.objects_set_aside > 0));
      // ... and everything it called is allowed to the function that called it.
      const denied = new Set<string>();
      const statements = new Map<PipelineFunctionName, ReturnType<typeof roleStatements>>();
      for (const call of calls) {
        let fnStatements = statements.get(call.fn);
        if (fnStatements === undefined) {
          fnStatements = roleStatements(synth, call.fn);
          statements.set(call.fn, fnStatements);
        }
        if (!allowedBy(fnStatements, call.action, call.resource))
          denied.add(
            `${call.fn}: ${call.action} ${call.resource.replace(/\/(\d{10}|[0-9a-f]{8,})\b.*$/, '/...')}`,
          );
      }
      assert.ok(calls.length > 1000, `${calls.length} calls recorded`);
      assert.deepEqual([...denied].sort(), []);
      const used = new Set(calls.map((call) => call.fn));
      for (const fn of Object.values(FUNCTION_OF)) assert.ok(used.has(fn), `${fn} was exercised`);
    } finally {
      await control.stop();
    }
  });
});

/** A store whose keys get `prefix` (the local destination root stands for the bucket root). */
function prefixed(store: ObjectStore, prefix: string): ObjectStore {
  if (prefix === '') return store;
  const strip = (key: string) => key.slice(prefix.length);
  return {
    description: `${store.description}/${prefix}`,
    get: (key, from) => store.get(`${prefix}${key}`, from),
    getBytes: (key) => store.getBytes(`${prefix}${key}`),
    put: (key, body) => store.put(`${prefix}${key}`, body),
    putIfAbsent: (key, body) => store.putIfAbsent(`${prefix}${key}`, body),
    delete: (keys) => store.delete(keys.map((key) => `${prefix}${key}`)),
    async *list(listed) {
      for await (const object of store.list(`${prefix}${listed}`))
        yield { ...object, key: strip(object.key) };
    },
  };
}

/**
 * A store that records each call as the S3 request a deployment's store would make: `deployed` is the
 * description of that store (`s3://<bucket id>/<prefix>`), so keys map to `arn::<bucket id>/<prefix><key>`.
 */
function recording(
  store: ObjectStore,
  deployed: string,
  record: (action: string, resource: string) => void,
): ObjectStore {
  const [bucket = '', ...rest] = deployed.slice('s3://'.length).split('/');
  const prefix = rest.join('/');
  const object = (key: string) => `arn::${bucket}/${prefix}${key}`;
  return {
    description: store.description,
    get(key, from) {
      record('s3:GetObject', object(key));
      return store.get(key, from);
    },
    getBytes(key) {
      record('s3:GetObject', object(key));
      return store.getBytes(key);
    },
    put(key, body) {
      record('s3:PutObject', object(key));
      return store.put(key, body);
    },
    putIfAbsent(key, body) {
      record('s3:PutObject', object(key));
      return store.putIfAbsent(key, body);
    },
    delete(keys) {
      for (const key of keys) record('s3:DeleteObject', object(key));
      return store.delete(keys);
    },
    list(listed) {
      record('s3:ListBucket', `arn::${bucket}`);
      return store.list(listed);
    },
  };
}
