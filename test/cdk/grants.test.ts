/**
 * The object keys each function's statements allow, checked with keys the engine's own code makes
 * (the store factory of the functions, the layout module): every key a function's activity reads,
 * writes or deletes is allowed for exactly that, and every other key and action is denied.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { S3Client } from '@aws-sdk/client-s3';
import { awsStores } from '../../src/adapters/aws-stores.js';
import {
  adoptionKey,
  ingestPieceKey,
  ingestRecordKey,
  manifestKey,
  partKey,
  pendingUpdatesKey,
  planKey,
  quarantineKey,
  rawHourPrefix,
  runRecordKey,
  SNAPSHOT_POINTER_KEY,
  setAsideKey,
  snapshotManifestKey,
  snapshotPartKey,
  stagedKey,
  stagingIndexKey,
  taskResultKey,
} from '../../src/core/layout.js';
import { DATA_SOURCES, parsePipelineConfig } from '../../src/core/pipeline-config.js';
import {
  allowedBy,
  asList,
  logicalIdOf,
  PIPELINE_FUNCTION_NAMES,
  type PipelineFunctionName,
  roleStatements,
  type Statement,
  type SynthesizedStack,
  synthesizeStack,
  TEST_KMS_KEY_ARN,
} from '../support/synth.js';

/** Whether the statements allow `action` on the object or bucket `resource` (`<bucket id>[/<key>]`). */
function allowed(statements: readonly Statement[], action: string, resource: string): boolean {
  return allowedBy(statements, action, resource);
}

const HOUR = Date.UTC(2024, 10, 3, 5);
const DAY = '2024-11-03';
const STEP = `daily-${DAY}`;
const PIPELINE = 'exports-daily';

/** The kinds of objects the functions touch, with keys the engine makes for each (no prefix and under one). */
function keysByKind(buckets: { raw: string; destination: string; state: string }) {
  const client = new S3Client({ region: 'us-east-1' });
  const stores = (fields: Record<string, unknown>) =>
    awsStores(
      client,
      buckets,
      parsePipelineConfig({
        project_id: 'acme',
        name: 'exports-daily',
        frequency: 'daily',
        time_zone: 'UTC',
        from_date: DAY,
        ...fields,
      }),
      () => client,
    );
  // A store's keys as the bucket sees them: its description is `s3://<bucket>/<prefix>`.
  const full = (store: { description: string }, key: string) =>
    `${store.description.slice('s3://'.length)}${key}`;
  const plain = stores({});
  const prefixed = stores({ s3_prefix: 'exports/analytics', data_source: 'people' });
  const destination = (key: string) => [full(plain.destination, key), full(prefixed.destination, key)];
  return {
    raw: DATA_SOURCES.map((source) =>
      full(plain.raw, `${rawHourPrefix('acme', HOUR, source)}part-0.json.gz`),
    ),
    state: [
      ingestRecordKey(HOUR),
      planKey(STEP),
      taskResultKey(STEP, 0),
      runRecordKey(STEP),
      SNAPSHOT_POINTER_KEY,
      pendingUpdatesKey(HOUR, 'people', 0),
      ingestPieceKey(HOUR, 0),
      stagingIndexKey('2024110305', HOUR),
      adoptionKey(HOUR),
    ].flatMap((key) => [full(plain.state, key), full(prefixed.state, key)]),
    staging: [full(plain.staging, stagedKey({ eventHour: HOUR, arrivalHour: HOUR, piece: 0, seq: 0 }))],
    quarantine: DATA_SOURCES.flatMap((source) => [
      ...destination(quarantineKey('acme', PIPELINE, source, HOUR, 0, 0)),
      ...destination(setAsideKey('acme', PIPELINE, rawHourPrefix('acme', HOUR, source))),
    ]),
    events: [
      partKey('acme', DAY, PIPELINE, STEP, 0, 0, '.parquet'),
      manifestKey('acme', DAY, PIPELINE, STEP),
    ].flatMap(destination),
    snapshots: (['people', 'identity'] as const).flatMap((source) =>
      [
        snapshotPartKey('acme', source, PIPELINE, STEP, 0, 0, '.json.zst'),
        snapshotManifestKey('acme', source, PIPELINE),
      ].flatMap(destination),
    ),
  };
}

type Kind = keyof ReturnType<typeof keysByKind>;
type Verb = 'read' | 'write' | 'delete';
const ACTIONS: Record<Verb, readonly string[]> = {
  read: ['s3:GetObject'],
  write: ['s3:PutObject', 's3:AbortMultipartUpload'],
  delete: ['s3:DeleteObject'],
};

/** What each function's activity does with each kind of object (src/workflow/activities.ts); nothing else. */
const EXPECTED: Readonly<Record<PipelineFunctionName, Partial<Record<Kind, readonly Verb[]>>>> = {
  findDueProjects: { state: ['read'] },
  acquireLock: {},
  releaseLock: {},
  pickNextStep: { state: ['read'] },
  prepareIngest: { state: ['read', 'write'] },
  ingestHour: {
    raw: ['read'],
    state: ['read', 'write', 'delete'],
    staging: ['write'],
    quarantine: ['write', 'delete'],
  },
  planStep: { state: ['read', 'write'] },
  exportTask: { state: ['read', 'write'], staging: ['read'], events: ['write'], snapshots: ['write'] },
  commitStep: {
    state: ['read', 'write', 'delete'],
    staging: ['delete'],
    events: ['write', 'delete'],
    snapshots: ['write', 'delete'],
  },
  recordFailure: { state: ['read'] },
  releaseAbandonedLock: {},
  reviewConfig: { state: ['read'] },
  reconcilePipelines: { state: ['read'] },
};

/** The buckets each function lists (the landing zone's hours, its state, the destination's folders). */
const LISTS: Readonly<Partial<Record<PipelineFunctionName, readonly ('raw' | 'state' | 'destination')[]>>> = {
  findDueProjects: ['state'],
  pickNextStep: ['state'],
  prepareIngest: ['raw', 'state'],
  ingestHour: ['raw', 'state', 'destination'],
  planStep: ['state'],
  exportTask: ['state'],
  commitStep: ['state', 'destination'],
  recordFailure: ['state'],
  reviewConfig: ['state'],
  reconcilePipelines: ['state'],
};

/** Actions no function needs on any object: old versions stay with versioning, ACLs are disabled. */
const NEVER = ['s3:DeleteObjectVersion', 's3:GetObjectVersion', 's3:PutObjectAcl', 's3:PutObjectVersionAcl'];

describe('object keys each function may read, write and delete', () => {
  let synth: SynthesizedStack;
  let buckets: { raw: string; destination: string; state: string };
  let keys: ReturnType<typeof keysByKind>;
  before(() => {
    synth = synthesizeStack();
    const { stack } = synth;
    buckets = {
      raw: logicalIdOf(synth, stack.rawBucket),
      destination: logicalIdOf(synth, stack.destinationBucket),
      state: logicalIdOf(synth, stack.state.bucket),
    };
    keys = keysByKind(buckets);
  });
  after(() => synth.cleanup());

  for (const name of PIPELINE_FUNCTION_NAMES) {
    it(`allows ${name} exactly the keys and actions of its work`, () => {
      // Arrange
      const statements = roleStatements(synth, name);
      const unexpected: string[] = [];
      // Act: every action on every key of every kind, allowed or not
      for (const kind of Object.keys(keys) as Kind[]) {
        for (const verb of Object.keys(ACTIONS) as Verb[]) {
          const expected = EXPECTED[name][kind]?.includes(verb) ?? false;
          for (const action of ACTIONS[verb])
            for (const key of keys[kind])
              if (allowed(statements, action, `arn::${key}`) !== expected)
                unexpected.push(`${expected ? 'denied' : 'allowed'} ${action} ${key}`);
        }
        for (const action of NEVER)
          for (const key of keys[kind])
            if (allowed(statements, action, `arn::${key}`)) unexpected.push(`allowed ${action} ${key}`);
      }
      for (const which of ['raw', 'state', 'destination'] as const) {
        const expected = LISTS[name]?.includes(which) ?? false;
        if (allowed(statements, 's3:ListBucket', `arn::${buckets[which]}`) !== expected)
          unexpected.push(`${expected ? 'cannot' : 'can'} list the ${which} bucket`);
      }
      // Assert
      assert.deepEqual(unexpected, []);
    });
  }

  it('makes keys of every kind, some under a destination prefix (the checks above see real keys)', () => {
    for (const [kind, list] of Object.entries(keys)) assert.ok(list.length > 0, kind);
    assert.ok(keys.snapshots.some((key) => key.includes('/exports/analytics/acme/mp_people_data/')));
    assert.ok(keys.state.every((key) => key.startsWith(`${buckets.state}/state/acme/exports-daily/`)));
  });

  it('puts no condition on an S3 statement (the key checks above read actions and resources only)', () => {
    for (const name of PIPELINE_FUNCTION_NAMES)
      for (const statement of roleStatements(synth, name))
        if (asList(statement.Action).some((a) => a.startsWith('s3:')))
          assert.equal((statement as { Condition?: unknown }).Condition, undefined, name);
  });
});

describe('customer key use of each function', () => {
  let synth: SynthesizedStack;
  before(() => {
    synth = synthesizeStack({ kmsKeyArn: TEST_KMS_KEY_ARN });
  });
  after(() => synth.cleanup());

  /** The key actions a function may take through one service (`kms:ViaService`). */
  const via = (name: PipelineFunctionName, service: 's3' | 'dynamodb') =>
    roleStatements(synth, name)
      .filter((s) => JSON.stringify(s).includes(`"kms:ViaService":{"Fn::Join":["",["${service}.",`))
      .flatMap((s) => [...asList(s.Action)])
      .sort();

  it('limits every function to its key through S3, DynamoDB or SQS (the config stream aside), without wildcards', () => {
    for (const name of PIPELINE_FUNCTION_NAMES) {
      const onKey = roleStatements(synth, name).filter((s) =>
        asList(s.Action).some((a) => a.startsWith('kms:')),
      );
      for (const statement of onKey) {
        // CDK's stream event source grants the reviewer decryption of its records, as DynamoDB Streams reads them.
        const streamRead =
          name === 'reviewConfig' &&
          JSON.stringify(asList(statement.Action)) === '["kms:Decrypt","kms:DescribeKey"]';
        if (!streamRead)
          assert.match(
            JSON.stringify(statement),
            /"kms:ViaService"/,
            `${name}: ${JSON.stringify(statement)}`,
          );
        assert.equal(
          asList(statement.Action).some((a) => a.includes('*')),
          false,
          `${name}: a key action wildcard`,
        );
      }
    }
  });

  it('lets writers of the stack buckets make data keys, and readers only decrypt', () => {
    for (const name of PIPELINE_FUNCTION_NAMES) {
      const writes = Object.values(EXPECTED[name]).some((verbs) => verbs.includes('write'));
      const reads = Object.values(EXPECTED[name]).some((verbs) => verbs.length > 0);
      const expected = [
        ...new Set([...(reads ? ['kms:Decrypt'] : []), ...(writes ? ['kms:GenerateDataKey'] : [])]),
      ];
      assert.deepEqual([...new Set(via(name, 's3'))].sort(), expected.sort(), name);
    }
  });

  it('lets the lock functions use the table key through DynamoDB', () => {
    for (const name of ['acquireLock', 'releaseLock', 'releaseAbandonedLock', 'recordFailure'] as const)
      assert.ok(via(name, 'dynamodb').includes('kms:Decrypt'), name);
  });
});
