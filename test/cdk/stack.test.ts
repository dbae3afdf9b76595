import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { App, type PolicyValidationPluginReport, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import type { CfnTable } from 'aws-cdk-lib/aws-dynamodb';
import type { CfnBucket } from 'aws-cdk-lib/aws-s3';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import { DataPipelinesStack } from '../../lib/data-pipelines-stack.js';
import { PipelineStateBucket } from '../../lib/pipeline-state-bucket.js';
import { PipelineTables } from '../../lib/pipeline-tables.js';
import { ACCEPTED_WILDCARDS } from '../../lib/wildcard-acknowledgements.js';
import {
  CONFIG_TABLE_KEYS,
  STACK_OUTPUTS,
  STATE_TABLE_KEYS,
  STATE_TABLE_TTL_ATTRIBUTE,
} from '../../src/core/tables.js';
import {
  allows,
  CDK_JSON_CONTEXT,
  denyWithoutSsl,
  logicalIdOf,
  PIPELINE_FUNCTION_NAMES,
  pipelineFunctions,
  runApp,
  STACK_VARIANTS,
  type Statement,
  type SynthesizedStack,
  synthesizeStack,
  TEST_KMS_KEY_ARN,
  testApp,
} from '../support/synth.js';

/** The key schema and attribute definitions a table with these string keys must have. */
function keySchemaOf(keys: { readonly partitionKey: string; readonly sortKey: string }) {
  return {
    KeySchema: [
      { AttributeName: keys.partitionKey, KeyType: 'HASH' },
      { AttributeName: keys.sortKey, KeyType: 'RANGE' },
    ],
    AttributeDefinitions: Match.arrayWith([
      { AttributeName: keys.partitionKey, AttributeType: 'S' },
      { AttributeName: keys.sortKey, AttributeType: 'S' },
    ]),
  };
}

/** Logical ids of the stack's main resources. */
function logicalIds(synth: SynthesizedStack) {
  const { stack } = synth;
  return {
    bucket: stack.getLogicalId(stack.state.bucket.node.defaultChild as CfnBucket),
    configs: stack.getLogicalId(stack.tables.configs.node.defaultChild as CfnTable),
    state: stack.getLogicalId(stack.tables.state.node.defaultChild as CfnTable),
  };
}

/** One acknowledged rule: where, which rule (without CDK's `Annotation::` key prefix) and why. */
interface Acknowledged {
  readonly path: string;
  readonly id: string;
  readonly reason: string;
}

/** Every acknowledgment recorded on the constructs of a stack. */
function acknowledgmentsOf(stack: Stack): Acknowledged[] {
  return stack.node.findAll().flatMap((c) =>
    c.node.metadata
      .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((m) =>
        Object.entries(m.data as Record<string, string>).map(([key, reason]) => ({
          path: c.node.path,
          id: key.replace(/^Annotation::/, ''),
          reason,
        })),
      ),
  );
}

/** Every violation of a cdk-nag report, one line each, for assertion messages. */
function describeViolations(report: PolicyValidationPluginReport): string[] {
  return report.violations.flatMap((v) =>
    v.violatingResources.map((r) => `${v.severity} ${v.ruleName} at ${r.constructPath ?? '?'}`),
  );
}

describe('DataPipelinesStack without a KMS key', () => {
  let synth: SynthesizedStack;
  before(() => {
    synth = synthesizeStack();
  });
  after(() => synth.cleanup());

  it('creates exactly two tables and four buckets (state, access logs, raw and destination)', () => {
    // Arrange / Act: synthesized in before()
    // Assert: no bucket name is given, so the stack makes the raw and destination buckets too
    synth.template.resourceCountIs('AWS::DynamoDB::Table', 2);
    synth.template.resourceCountIs('AWS::S3::Bucket', 4);
  });

  it('keys the configs table with CONFIG_TABLE_KEYS and streams new and old images', () => {
    synth.template.hasResourceProperties('AWS::DynamoDB::Table', {
      ...keySchemaOf(CONFIG_TABLE_KEYS),
      StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' },
      TimeToLiveSpecification: Match.absent(),
    });
  });

  it('keys the state table with STATE_TABLE_KEYS, with a TTL and no stream', () => {
    synth.template.hasResourceProperties('AWS::DynamoDB::Table', {
      ...keySchemaOf(STATE_TABLE_KEYS),
      TimeToLiveSpecification: { AttributeName: STATE_TABLE_TTL_ATTRIBUTE, Enabled: true },
      StreamSpecification: Match.absent(),
    });
  });

  it('makes both tables on-demand, point-in-time recoverable, deletion-protected and retained', () => {
    synth.template.resourcePropertiesCountIs(
      'AWS::DynamoDB::Table',
      {
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        DeletionProtectionEnabled: true,
      },
      2,
    );
    synth.template.allResources('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
  });

  it('encrypts both tables with the AWS-managed key', () => {
    synth.template.resourcePropertiesCountIs(
      'AWS::DynamoDB::Table',
      { SSESpecification: { SSEEnabled: true, SSEType: Match.absent(), KMSMasterKeyId: Match.absent() } },
      2,
    );
  });

  it('encrypts the state bucket with SSE-S3, versions it and retains it', () => {
    const { bucket } = logicalIds(synth);
    const resource = synth.template.findResources('AWS::S3::Bucket')[bucket];
    assert.ok(resource, 'state bucket missing');
    assert.equal(resource.DeletionPolicy, 'Retain');
    synth.template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      VersioningConfiguration: { Status: 'Enabled' },
      LoggingConfiguration: Match.objectLike({ DestinationBucketName: Match.anyValue() }),
    });
  });

  it('blocks all public access on every bucket', () => {
    synth.template.allResourcesProperties('AWS::S3::Bucket', {
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
    });
  });

  it('denies every request to the state bucket that does not use SSL', () => {
    const { bucket } = logicalIds(synth);
    synth.template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: bucket },
      ...denyWithoutSsl('s3'),
    });
  });

  it('sweeps staging/ orphans after the default 400 days and nothing else under it', () => {
    synth.template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({ Prefix: 'staging/', ExpirationInDays: 400, Status: 'Enabled' }),
        ]),
      },
    });
  });

  it('outputs the bucket and both table names for the CLI', () => {
    const ids = logicalIds(synth);
    synth.template.hasOutput(STACK_OUTPUTS.stateBucketName, { Value: { Ref: ids.bucket } });
    synth.template.hasOutput(STACK_OUTPUTS.configsTableName, { Value: { Ref: ids.configs } });
    synth.template.hasOutput(STACK_OUTPUTS.stateTableName, { Value: { Ref: ids.state } });
  });
});

describe('DataPipelinesStack with a KMS key and a 450-day staging sweep', () => {
  let synth: SynthesizedStack;
  before(() => {
    synth = synthesizeStack({ kmsKeyArn: TEST_KMS_KEY_ARN, stagingOrphanDays: 450 });
  });
  after(() => synth.cleanup());

  it('encrypts both tables with the customer key', () => {
    synth.template.resourcePropertiesCountIs(
      'AWS::DynamoDB::Table',
      { SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: TEST_KMS_KEY_ARN } },
      2,
    );
  });

  it('encrypts the state bucket with SSE-KMS and a bucket key', () => {
    synth.template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          {
            ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: TEST_KMS_KEY_ARN },
            BucketKeyEnabled: true,
          },
        ],
      },
      VersioningConfiguration: { Status: 'Enabled' },
    });
  });

  it('keeps the access log bucket on SSE-S3, the only encryption server access logging accepts', () => {
    synth.template.resourcePropertiesCountIs(
      'AWS::S3::Bucket',
      {
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
        },
      },
      1,
    );
  });

  it('sweeps staging/ after the configured days', () => {
    synth.template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: Match.arrayWith([Match.objectLike({ Prefix: 'staging/', ExpirationInDays: 450 })]),
      },
    });
  });
});

/**
 * Resource types that keep no pipeline data (identities, policies, code, rules, alarms): every other
 * type must be one {@link ENCRYPTED_WITH_KEY} checks, so a new kind of store fails the test below until
 * it is encrypted and checked.
 */
const HOLDS_NO_DATA = new Set([
  'AWS::IAM::Role',
  'AWS::IAM::Policy',
  'AWS::S3::BucketPolicy',
  'AWS::SQS::QueuePolicy',
  // Code and the environment (bucket and table names), encrypted with Lambda's own key.
  'AWS::Lambda::Function',
  'AWS::Lambda::EventSourceMapping',
  'AWS::Lambda::Permission',
  'AWS::Events::Rule',
  'AWS::CloudWatch::Alarm',
]);

/** Per resource type that keeps data, the properties saying the customer key encrypts it. */
const ENCRYPTED_WITH_KEY: Readonly<Record<string, Record<string, unknown>>> = {
  'AWS::S3::Bucket': {
    BucketEncryption: {
      ServerSideEncryptionConfiguration: [
        {
          ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: TEST_KMS_KEY_ARN },
          BucketKeyEnabled: true,
        },
      ],
    },
  },
  'AWS::DynamoDB::Table': {
    SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: TEST_KMS_KEY_ARN },
  },
  'AWS::Logs::LogGroup': { KmsKeyId: TEST_KMS_KEY_ARN },
  'AWS::SQS::Queue': { KmsMasterKeyId: TEST_KMS_KEY_ARN },
  'AWS::StepFunctions::StateMachine': {
    EncryptionConfiguration: Match.objectLike({
      Type: 'CUSTOMER_MANAGED_KMS_KEY',
      KmsKeyId: TEST_KMS_KEY_ARN,
    }),
  },
};

describe('DataPipelinesStack with a KMS key: every store the stack creates uses it', () => {
  let synth: SynthesizedStack;
  before(() => {
    synth = synthesizeStack({ kmsKeyArn: TEST_KMS_KEY_ARN });
  });
  after(() => synth.cleanup());

  it('keeps data only in resource types it checks', () => {
    // Arrange / Act
    const types = new Set(
      Object.values(synth.template.toJSON().Resources as Record<string, { Type: string }>).map((r) => r.Type),
    );
    // Assert
    assert.deepEqual(
      [...types].filter((type) => !HOLDS_NO_DATA.has(type) && ENCRYPTED_WITH_KEY[type] === undefined),
      [],
    );
  });

  it('encrypts every bucket but the access log bucket, both tables, every log group, queue and state machine with the key', () => {
    // Arrange: the access log bucket is SSE-S3, the only encryption server access logging writes to
    const counts: Record<string, number> = {};
    for (const type of Object.keys(ENCRYPTED_WITH_KEY))
      counts[type] = Object.keys(synth.template.findResources(type)).length;
    // Act / Assert: counted, so one new resource without the key fails
    for (const [type, properties] of Object.entries(ENCRYPTED_WITH_KEY)) {
      const exempt = type === 'AWS::S3::Bucket' ? 1 : 0;
      synth.template.resourcePropertiesCountIs(type, properties, (counts[type] ?? 0) - exempt);
    }
    assert.deepEqual(counts, {
      'AWS::S3::Bucket': 4,
      'AWS::DynamoDB::Table': 2,
      'AWS::Logs::LogGroup': PIPELINE_FUNCTION_NAMES.length + 3,
      'AWS::SQS::Queue': 2,
      'AWS::StepFunctions::StateMachine': 3,
    });
    const accessLogs = logicalIdOf(synth, synth.stack.state.accessLogsBucket);
    assert.deepEqual(
      synth.template.findResources('AWS::S3::Bucket')[accessLogs]?.Properties?.BucketEncryption,
      { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
    );
  });

  it('lets each starter of an encrypted state machine use the key for that state machine only', () => {
    // Arrange: who starts what (the schedule the dispatcher, which starts project workflows, which run steps)
    const { stack } = synth;
    const starters = [
      [stack.dispatcher.scheduleRole, stack.dispatcher.stateMachine],
      [stack.dispatcher.stateMachine.role, stack.projectWorkflow.stateMachine],
      [stack.projectWorkflow.stateMachine.role, stack.stepWorkflow.stateMachine],
    ] as const;
    const policies = Object.values(synth.template.findResources('AWS::IAM::Policy'));
    for (const [role, target] of starters) {
      const roleId = logicalIdOf(synth, role);
      // Act
      const statements = policies
        .filter((p) => JSON.stringify(p.Properties.Roles) === JSON.stringify([{ Ref: roleId }]))
        .flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[]);
      // Assert
      assert.ok(
        statements.some(
          (st) =>
            allows(st, 'kms:GenerateDataKey') &&
            allows(st, 'kms:Decrypt') &&
            JSON.stringify(st).includes(
              JSON.stringify({
                'kms:EncryptionContext:aws:states:stateMachineArn': { Ref: logicalIdOf(synth, target) },
              }),
            ),
        ),
        `${role.node.path} may not use the key of ${target.node.path}`,
      );
    }
  });
});

/** The lifecycle rules of every bucket the stack creates, by logical id. */
function lifecycleRules(synth: SynthesizedStack): Map<string, Record<string, unknown>[]> {
  return new Map(
    Object.entries(synth.template.findResources('AWS::S3::Bucket')).map(([id, bucket]) => [
      id,
      (bucket.Properties?.LifecycleConfiguration?.Rules ?? []) as Record<string, unknown>[],
    ]),
  );
}

describe('DataPipelinesStack retention', () => {
  const days = (synth: SynthesizedStack) =>
    [...lifecycleRules(synth)].map(([id, rules]) => {
      const versioned =
        synth.template.findResources('AWS::S3::Bucket')[id]?.Properties?.VersioningConfiguration?.Status ===
        'Enabled';
      // Rules that apply to the whole bucket (no prefix, no filter).
      const whole = rules.filter(
        (r) => r.Prefix === undefined && r.Filter === undefined && r.Status === 'Enabled',
      );
      return {
        versioned,
        noncurrent: whole
          .map((r) => (r.NoncurrentVersionExpiration as { NoncurrentDays?: number })?.NoncurrentDays)
          .find((d) => d !== undefined),
        deleteMarkers: whole.some((r) => r.ExpiredObjectDeleteMarker === true),
        abortUploads: whole
          .map(
            (r) =>
              (r.AbortIncompleteMultipartUpload as { DaysAfterInitiation?: number })?.DaysAfterInitiation,
          )
          .find((d) => d !== undefined),
      };
    });

  it('expires old versions after 7 days and aborts incomplete uploads after 3 days in every bucket it creates', () => {
    // Arrange
    const synth = synthesizeStack();
    try {
      // Act
      const buckets = days(synth);
      // Assert: state, raw and destination are versioned; the access log bucket is not
      assert.equal(buckets.length, 4);
      assert.deepEqual(
        buckets.filter((b) => b.versioned),
        Array(3).fill({ versioned: true, noncurrent: 7, deleteMarkers: true, abortUploads: 3 }),
      );
      assert.deepEqual(
        buckets.filter((b) => !b.versioned).map((b) => b.abortUploads),
        [3],
      );
    } finally {
      synth.cleanup();
    }
  });

  it('keeps old versions for the noncurrentVersionDays given, in the raw and destination buckets too', () => {
    const synth = synthesizeStack({ noncurrentVersionDays: 30 });
    try {
      const versioned = days(synth).filter((b) => b.versioned);
      assert.deepEqual(
        versioned.map((b) => b.noncurrent),
        [30, 30, 30],
      );
      // The raw and destination buckets by name: the rules are theirs, not only the state bucket's
      for (const bucket of [synth.stack.rawBucket, synth.stack.destinationBucket]) {
        const rules = lifecycleRules(synth).get(logicalIdOf(synth, bucket)) ?? [];
        assert.ok(
          rules.some((r) => JSON.stringify(r.NoncurrentVersionExpiration) === '{"NoncurrentDays":30}'),
          bucket.node.path,
        );
      }
    } finally {
      synth.cleanup();
    }
  });

  for (const noncurrentVersionDays of [0, 2.5, -1]) {
    it(`refuses noncurrentVersionDays ${noncurrentVersionDays}`, () => {
      assert.throws(
        () => new DataPipelinesStack(testApp(), 'Pipelines', { noncurrentVersionDays }),
        /noncurrentVersionDays must be a whole number of days, at least 1/,
      );
    });
  }
});

describe('PipelineTables', () => {
  it('applies the given removal policy, keeping deletion protection on', () => {
    // Arrange
    const stack = new Stack(testApp(), 'Tables');
    // Act
    new PipelineTables(stack, 'Tables', { removalPolicy: RemovalPolicy.DESTROY });
    const template = Template.fromStack(stack);
    // Assert
    template.allResources('AWS::DynamoDB::Table', { DeletionPolicy: 'Delete' });
    template.allResourcesProperties('AWS::DynamoDB::Table', { DeletionProtectionEnabled: true });
  });
});

describe('PipelineStateBucket', () => {
  for (const days of [89, 90.5, 0]) {
    it(`refuses a staging sweep after ${days} days (the dedup keys of the horizon must outlive it)`, () => {
      // Arrange
      const stack = new Stack(testApp(), 'Bucket');
      // Act / Assert
      assert.throws(
        () => new PipelineStateBucket(stack, 'State', { stagingOrphanDays: days }),
        /stagingOrphanDays must be a whole number of days, at least 90/,
      );
    });
  }

  it('logs to a given access log bucket instead of making one', () => {
    // Arrange
    const stack = new Stack(testApp(), 'Bucket');
    const logs = s3.Bucket.fromBucketName(stack, 'Logs', 'central-access-logs');
    // Act
    new PipelineStateBucket(stack, 'State', { accessLogsBucket: logs });
    const template = Template.fromStack(stack);
    // Assert
    template.resourceCountIs('AWS::S3::Bucket', 1);
    template.hasResourceProperties('AWS::S3::Bucket', {
      LoggingConfiguration: { DestinationBucketName: 'central-access-logs', LogFilePrefix: 'state/' },
    });
  });
});

describe('cdk-nag AwsSolutions', () => {
  const variants = STACK_VARIANTS;
  const synths = new Map<string, SynthesizedStack>();
  before(() => {
    // Synthesis itself fails on any error finding, since the checks are registered as in bin/app.ts.
    for (const variant of variants) synths.set(variant.name, synthesizeStack(variant.props, { nag: true }));
  });
  after(() => {
    for (const synth of synths.values()) synth.cleanup();
  });

  for (const variant of variants) {
    it(`finds no error and no warning ${variant.name}`, () => {
      // Arrange
      const synth = synths.get(variant.name);
      assert.ok(synth);
      // Act
      const report = new AwsSolutionsChecks(synth.app).validateScope(synth.app);
      // Assert
      assert.deepEqual(describeViolations(report), []);
      assert.equal(report.success, true);
    });

    it(`writes an empty validation report (cdk-nag and CloudFormation checks) ${variant.name}`, () => {
      // Arrange
      const synth = synths.get(variant.name);
      assert.ok(synth);
      // Act
      const report = JSON.parse(
        readFileSync(join(synth.assembly.directory, 'validation-report.json'), 'utf8'),
      ) as { pluginReports: unknown[] };
      // Assert
      assert.deepEqual(report.pluginReports, []);
    });

    it(`leaves no error or warning annotation on the stack ${variant.name}`, () => {
      const synth = synths.get(variant.name);
      assert.ok(synth);
      const annotations = Annotations.fromStack(synth.stack);
      assert.deepEqual(annotations.findError('*', Match.anyValue()), []);
      assert.deepEqual(annotations.findWarning('*', Match.anyValue()), []);
    });
  }

  for (const variant of variants) {
    it(`acknowledges only accepted wildcards, S1 on the access log bucket, L1 on the functions, SQS3 on the two dead-letter queues ${variant.name}`, () => {
      // Arrange
      const synth = synths.get(variant.name);
      assert.ok(synth);
      const { stack } = synth;
      const accessLogsPath = stack.state.accessLogsBucket.node.path;
      const functionPaths = pipelineFunctions(stack).map(([, fn]) => fn.node.path);
      const deadLetterPaths = [
        stack.functions.reviewConfigFailures.node.path,
        stack.dispatcher.scheduleDeadLetters.node.path,
      ].sort();
      // Act
      const acknowledged = acknowledgmentsOf(stack);
      // Assert: every acknowledgment is justified and one of the four kinds the stack means to make
      assert.ok(acknowledged.length > 0, 'no acknowledgment found: the metadata format may have changed');
      const unexpected: string[] = [];
      for (const { path, id, reason } of acknowledged) {
        const where = `${id} at ${path}`;
        assert.ok(reason.trim().length > 0, `${where} has no reason`);
        if (/^AwsSolutions-IAM[45]\[/.test(id)) {
          const accepted = ACCEPTED_WILDCARDS.find((a) => a.pattern.test(id));
          if (accepted === undefined) unexpected.push(`${where}: matches no ACCEPTED_WILDCARDS pattern`);
          else assert.equal(reason, accepted.reason, where);
        } else if (id === 'AwsSolutions-S1') {
          if (path !== accessLogsPath) unexpected.push(`${where}: S1 belongs on ${accessLogsPath} only`);
        } else if (id === 'AwsSolutions-L1') {
          if (!functionPaths.includes(path)) unexpected.push(`${where}: L1 belongs on the functions only`);
        } else if (id === 'AwsSolutions-SQS3') {
          if (!deadLetterPaths.includes(path))
            unexpected.push(`${where}: SQS3 belongs on the dead-letter queues only`);
        } else {
          unexpected.push(`${where}: not a rule the stack acknowledges`);
        }
      }
      assert.deepEqual(unexpected, []);
      // The access logs bucket cannot log to itself (S1); every function keeps Node 22 (L1); the review
      // failure queue and the schedule's are dead-letter queues cdk-nag does not recognise (SQS3).
      const pathsOf = (id: string) => acknowledged.filter((a) => a.id === id).map((a) => a.path);
      assert.deepEqual(pathsOf('AwsSolutions-S1'), [accessLogsPath]);
      assert.deepEqual(pathsOf('AwsSolutions-L1').sort(), [...functionPaths].sort());
      assert.deepEqual(pathsOf('AwsSolutions-SQS3').sort(), deadLetterPaths);
    });
  }

  it('catches a non-compliant bucket (the check is live)', () => {
    // Arrange
    const app = new App({
      outdir: mkdtempSync(join(tmpdir(), 'mp-cdk-nag-')),
      context: { ...CDK_JSON_CONTEXT },
    });
    const stack = new Stack(app, 'Bad');
    new s3.Bucket(stack, 'Plain');
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    try {
      // Act
      const report = new AwsSolutionsChecks(app).validateScope(app);
      // Assert
      const rules = report.violations.map((v) => v.ruleName);
      assert.ok(rules.includes('AwsSolutions-S1'), rules.join(', '));
      assert.ok(rules.includes('AwsSolutions-S10'), rules.join(', '));
      assert.throws(() => app.synth(), /Validation failed/);
      const written = readFileSync(join(app.outdir, 'validation-report.json'), 'utf8');
      assert.match(written, /AwsSolutions-S1/);
    } finally {
      rmSync(app.outdir, { recursive: true, force: true });
    }
  });
});

describe('bin/app.ts', () => {
  it('builds the stack named by context, with its KMS key and retention', () => {
    // Arrange / Act
    const { run, outdir } = runApp({
      stackName: 'PipelinesTest',
      kmsKeyArn: TEST_KMS_KEY_ARN,
      stagingOrphanDays: '420',
      noncurrentVersionDays: '14',
      dataFunctionConcurrency: '120',
    });
    try {
      // Assert
      assert.equal(run.status, 0, run.stderr);
      const template = Template.fromJSON(
        JSON.parse(readFileSync(join(outdir, 'PipelinesTest.template.json'), 'utf8')) as Record<
          string,
          unknown
        >,
      );
      template.hasResourceProperties('AWS::S3::Bucket', {
        LifecycleConfiguration: {
          Rules: Match.arrayWith([Match.objectLike({ Prefix: 'staging/', ExpirationInDays: 420 })]),
        },
      });
      template.resourcePropertiesCountIs(
        'AWS::DynamoDB::Table',
        { SSESpecification: Match.objectLike({ KMSMasterKeyId: TEST_KMS_KEY_ARN }) },
        2,
      );
      template.resourcePropertiesCountIs(
        'AWS::S3::Bucket',
        {
          LifecycleConfiguration: {
            Rules: Match.arrayWith([
              Match.objectLike({ NoncurrentVersionExpiration: { NoncurrentDays: 14 } }),
            ]),
          },
        },
        3,
      );
      template.resourcePropertiesCountIs('AWS::Lambda::Function', { ReservedConcurrentExecutions: 120 }, 2);
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  });

  for (const [context, message] of [
    [{ stagingOrphanDays: 'forty' }, /stagingOrphanDays must be a whole number/],
    [{ noncurrentVersionDays: '0' }, /noncurrentVersionDays must be a whole number of days, at least 1/],
    [{ kmsKeyArn: 'arn:aws:kms:eu-west-1:111122223333:alias/mine' }, /kmsKeyArn must be a KMS key ARN/],
  ] as const) {
    it(`refuses bad context ${JSON.stringify(context)} with a readable message`, () => {
      // Arrange / Act
      const { run, outdir } = runApp(context);
      rmSync(outdir, { recursive: true, force: true });
      // Assert
      assert.notEqual(run.status, 0);
      assert.match(run.stderr, message);
    });
  }
});
