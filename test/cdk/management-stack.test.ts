import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { DataPipelinesStack } from '../../lib/data-pipelines-stack.js';
import { CONFIG_REVIEW_STREAM, FUNCTION_TIMEOUTS } from '../../lib/pipeline-functions.js';
import {
  allows,
  allowsService,
  asList,
  denyWithoutSsl,
  logicalIdOf,
  mentions,
  PIPELINE_FUNCTION_NAMES,
  type PipelineFunctionName,
  roleStatements,
  runApp,
  type Statement,
  type SynthesizedStack,
  synthesizeStack,
  TEST_KMS_KEY_ARN,
  testApp,
} from '../support/synth.js';

/** Two roles in other accounts that pipelines write their destinations through. */
const ROLE_ARNS = [
  'arn:aws:iam::444455556666:role/mp-pipelines-destination',
  'arn:aws:iam::777788889999:role/exports/mp-writer',
] as const;

/** The functions that write destinations (`stores(config).destination` in the activities). */
const DESTINATION_WRITERS: readonly PipelineFunctionName[] = ['ingestHour', 'exportTask', 'commitStep'];

/** The resources a function may `sts:AssumeRole`, sorted (none: an empty list). */
function assumableRoles(synth: SynthesizedStack, name: PipelineFunctionName): string[] {
  return roleStatements(synth, name)
    .filter((s) => allowsService(s, 'sts'))
    .flatMap((s) => {
      assert.deepEqual(asList(s.Action), ['sts:AssumeRole'], `${name}: unexpected STS actions`);
      return asList(s.Resource as string | string[] | undefined);
    })
    .sort();
}

/** The logical ids the checks look for in policy resources, quoted so one never matches a prefix of another. */
function quotedIds(synth: SynthesizedStack) {
  const { stack } = synth;
  const quoted = (construct: IConstruct) => `"${logicalIdOf(synth, construct)}"`;
  return {
    configs: quoted(stack.tables.configs),
    state: quoted(stack.tables.state),
    stateBucket: quoted(stack.state.bucket),
    raw: quoted(stack.rawBucket),
    destination: quoted(stack.destinationBucket),
    failureQueue: quoted(stack.functions.reviewConfigFailures),
  };
}

describe('DataPipelinesStack config reviewer (console-edit validator)', () => {
  let synth: SynthesizedStack;
  let ids: ReturnType<typeof quotedIds>;
  before(() => {
    synth = synthesizeStack();
    ids = quotedIds(synth);
  });
  after(() => synth.cleanup());

  it('runs as a control function like the others: Node.js 22, arm64, 2 minutes, the same environment', () => {
    // Arrange
    const functions = synth.template.findResources('AWS::Lambda::Function');
    const props = (name: PipelineFunctionName) => {
      const resource = functions[logicalIdOf(synth, synth.stack.functions[name])];
      assert.ok(resource, `function ${name} missing`);
      return resource.Properties as Record<string, unknown>;
    };
    // Act
    const review = props('reviewConfig');
    const dispatcher = props('findDueProjects');
    // Assert
    assert.equal(review.Runtime, 'nodejs22.x');
    assert.deepEqual(review.Architectures, ['arm64']);
    assert.equal(review.Timeout, FUNCTION_TIMEOUTS.control.toSeconds());
    assert.equal(review.MemorySize, dispatcher.MemorySize);
    assert.deepEqual(review.Environment, dispatcher.Environment);
    assert.deepEqual(review.TracingConfig, { Mode: 'Active' });
  });

  it('reads the config table stream from its oldest record, INSERT and MODIFY only, bisecting and retrying', () => {
    // Arrange
    const functionId = logicalIdOf(synth, synth.stack.functions.reviewConfig);
    const configsId = logicalIdOf(synth, synth.stack.tables.configs);
    const queueId = logicalIdOf(synth, synth.stack.functions.reviewConfigFailures);
    // Act
    const mappings = Object.values(synth.template.findResources('AWS::Lambda::EventSourceMapping'));
    // Assert: TRIM_HORIZON, so no edit made while the stack deploys goes unreviewed
    assert.equal(mappings.length, 1);
    synth.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: functionId },
      EventSourceArn: { 'Fn::GetAtt': [configsId, 'StreamArn'] },
      StartingPosition: 'TRIM_HORIZON',
      BatchSize: CONFIG_REVIEW_STREAM.batchSize,
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: CONFIG_REVIEW_STREAM.retryAttempts,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [queueId, 'Arn'] } } },
      FunctionResponseTypes: Match.absent(),
    });
    const [mapping] = mappings;
    assert.ok(mapping);
    const { FilterCriteria } = mapping.Properties as { FilterCriteria?: { Filters?: { Pattern: string }[] } };
    const filters = FilterCriteria?.Filters;
    assert.deepEqual(
      (filters ?? []).map((f) => JSON.parse(f.Pattern) as unknown),
      [{ eventName: ['INSERT', 'MODIFY'] }],
    );
    assert.ok(CONFIG_REVIEW_STREAM.retryAttempts > 0 && CONFIG_REVIEW_STREAM.batchSize <= 100);
  });

  it('parks failed stream records in an encrypted queue that refuses requests without SSL', () => {
    // Arrange
    const queueId = logicalIdOf(synth, synth.stack.functions.reviewConfigFailures);
    // Act / Assert
    synth.template.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true });
    synth.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: queueId }],
      ...denyWithoutSsl('sqs'),
    });
  });

  it('lets the reviewer read the stream and the project, and update config and project items', () => {
    // Arrange / Act
    const statements = roleStatements(synth, 'reviewConfig');
    const on = (needle: string, action: string) =>
      statements.some((s) => mentions(s, needle) && allows(s, action));
    // Assert: readProject (GetItem of the revision item, Query of the configs), then one transaction
    // updating the config item and the revision item
    for (const action of ['dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:DescribeStream']) {
      assert.ok(
        statements.some((s) => JSON.stringify(s.Resource).includes('StreamArn') && allows(s, action)),
        action,
      );
    }
    assert.ok(on(ids.configs, 'dynamodb:Query'), 'Query on the config table');
    assert.ok(on(ids.configs, 'dynamodb:UpdateItem'), 'UpdateItem on the config table');
    assert.ok(on(ids.state, 'dynamodb:GetItem'), 'GetItem on the state table');
    assert.ok(on(ids.state, 'dynamodb:UpdateItem'), 'UpdateItem on the state table');
    assert.ok(
      statements.some((s) => mentions(s, ids.failureQueue) && allows(s, 'sqs:SendMessage')),
      'SendMessage to its failure queue',
    );
  });

  it('gives the reviewer no other table write, no bucket but state/ reads, no events, no other queue', () => {
    // Arrange / Act
    const statements = roleStatements(synth, 'reviewConfig');
    // Assert: nothing but item updates changes the tables (no Put, Delete, batch write, no scan of state)
    const tableWrites = ['dynamodb:PutItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem'];
    assert.deepEqual(
      statements.filter((s) => tableWrites.some((action) => allows(s, action))),
      [],
    );
    assert.equal(
      statements.some((s) => mentions(s, ids.state) && allows(s, 'dynamodb:Scan')),
      false,
    );
    // S3: only reads of the settings the pipeline's state was built with, in the state bucket
    const onS3 = statements.filter((s) => allowsService(s, 's3'));
    for (const statement of onS3) {
      assert.ok(mentions(statement, ids.stateBucket), JSON.stringify(statement));
      // Objects under state/ only; listing the bucket makes a missing key a 404 rather than a 403
      const objects = mentions(statement, '/state/*');
      assert.deepEqual(asList(statement.Action), objects ? ['s3:GetObject'] : ['s3:ListBucket']);
    }
    for (const bucket of [ids.raw, ids.destination]) {
      assert.equal(
        statements.some((s) => mentions(s, bucket)),
        false,
        bucket,
      );
    }
    assert.equal(
      statements.some((s) => allowsService(s, 'events')),
      false,
    );
    assert.deepEqual(
      statements.filter((s) => allowsService(s, 'sqs') && !mentions(s, ids.failureQueue)),
      [],
    );
  });

  it('lets the dispatcher pause ended trials: update config items and the project item it reads', () => {
    // Arrange / Act
    const statements = roleStatements(synth, 'findDueProjects');
    const on = (needle: string, action: string) =>
      statements.some((s) => mentions(s, needle) && allows(s, action));
    // Assert
    assert.ok(on(ids.configs, 'dynamodb:Scan'), 'Scan of the config table');
    assert.ok(on(ids.configs, 'dynamodb:UpdateItem'), 'UpdateItem on the config table');
    assert.ok(on(ids.state, 'dynamodb:GetItem'), 'GetItem on the state table');
    assert.ok(on(ids.state, 'dynamodb:UpdateItem'), 'UpdateItem on the state table');
  });

  it('lets pick-next-step read the project item before the configs', () => {
    const statements = roleStatements(synth, 'pickNextStep');
    assert.ok(statements.some((s) => mentions(s, ids.state) && allows(s, 'dynamodb:GetItem')));
    assert.ok(statements.some((s) => mentions(s, ids.configs) && allows(s, 'dynamodb:Query')));
  });

  it('lets no function assume a role when no destination role is given', () => {
    for (const name of PIPELINE_FUNCTION_NAMES) assert.deepEqual(assumableRoles(synth, name), [], name);
  });
});

describe('DataPipelinesStack config reviewer and dispatcher with a KMS key', () => {
  let synth: SynthesizedStack;
  before(() => {
    synth = synthesizeStack({ kmsKeyArn: TEST_KMS_KEY_ARN });
  });
  after(() => synth.cleanup());

  for (const name of ['reviewConfig', 'findDueProjects'] as const) {
    it(`lets ${name} use the table key for the items it reads and updates`, () => {
      // Arrange / Act
      const onKey = roleStatements(synth, name).filter((s: Statement) => mentions(s, TEST_KMS_KEY_ARN));
      // Assert
      for (const action of ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey']) {
        assert.ok(
          onKey.some((s) => allows(s, action)),
          `${name} may not ${action}`,
        );
      }
    });
  }
});

describe('DataPipelinesStack with destinationRoleArns', () => {
  let synth: SynthesizedStack;
  before(() => {
    // cdk-nag registered as in bin/app.ts: synthesis fails on any error finding.
    synth = synthesizeStack({ destinationRoleArns: [...ROLE_ARNS, ROLE_ARNS[0]] }, { nag: true });
  });
  after(() => synth.cleanup());

  it('lets exactly the destination writers assume exactly the given roles', () => {
    for (const name of PIPELINE_FUNCTION_NAMES) {
      const expected = DESTINATION_WRITERS.includes(name) ? [...ROLE_ARNS].sort() : [];
      assert.deepEqual(assumableRoles(synth, name), expected, name);
    }
    assert.deepEqual(
      synth.stack.functions.destinationWriters.map((fn) => fn.node.path).sort(),
      DESTINATION_WRITERS.map((name) => synth.stack.functions[name].node.path).sort(),
    );
  });

  it('still passes cdk-nag', () => {
    const report = new AwsSolutionsChecks(synth.app).validateScope(synth.app);
    assert.deepEqual(
      report.violations.flatMap((v) =>
        v.violatingResources.map((r) => `${v.ruleName} at ${r.constructPath}`),
      ),
      [],
    );
  });

  for (const arn of [
    'arn:aws:iam::444455556666:role/*',
    'arn:aws:iam::444455556666:user/someone',
    'mp-pipelines-destination',
  ]) {
    it(`refuses ${arn} (an IAM role ARN without wildcards is required)`, () => {
      assert.throws(
        () => new DataPipelinesStack(testApp(), 'Pipelines', { destinationRoleArns: [arn] }),
        /destinationRoleArns must be IAM role ARNs/,
      );
    });
  }
});

describe('bin/app.ts destinationRoleArns context', () => {
  /** Runs the app without bundling (the template is all these checks read). */
  const runRolesApp = (context: Record<string, unknown>) =>
    runApp({ 'aws:cdk:bundling-stacks': [], stackName: 'RolesTest', ...context });

  for (const [form, value] of [
    ['a comma-separated string', ` ${ROLE_ARNS.join(' , ')} `],
    ['a JSON array string', JSON.stringify(ROLE_ARNS)],
    ['a JSON array', [...ROLE_ARNS]],
  ] as const) {
    it(`grants sts:AssumeRole on the roles given as ${form}`, () => {
      // Arrange / Act
      const { run, outdir } = runRolesApp({ destinationRoleArns: value });
      try {
        // Assert
        assert.equal(run.status, 0, run.stderr);
        const template = Template.fromJSON(
          JSON.parse(readFileSync(join(outdir, 'RolesTest.template.json'), 'utf8')) as Record<
            string,
            unknown
          >,
        );
        template.resourcePropertiesCountIs(
          'AWS::IAM::Policy',
          {
            PolicyDocument: {
              Statement: Match.arrayWith([
                { Action: 'sts:AssumeRole', Effect: 'Allow', Resource: [...ROLE_ARNS] },
              ]),
            },
          },
          DESTINATION_WRITERS.length,
        );
      } finally {
        rmSync(outdir, { recursive: true, force: true });
      }
    });
  }

  for (const [value, message] of [
    ['["arn:aws:iam::444455556666:role/a",', /destinationRoleArns must be a JSON array of strings/],
    [[42], /destinationRoleArns must be a list of strings/],
    ['arn:aws:iam::444455556666:role/*', /destinationRoleArns must be IAM role ARNs/],
  ] as const) {
    it(`refuses destinationRoleArns ${JSON.stringify(value)} with a readable message`, () => {
      // Arrange / Act
      const { run, outdir } = runRolesApp({ destinationRoleArns: value });
      rmSync(outdir, { recursive: true, force: true });
      // Assert
      assert.notEqual(run.status, 0);
      assert.match(run.stderr, message);
    });
  }
});
