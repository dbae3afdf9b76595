import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Match } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { DataPipelinesStack } from '../../lib/data-pipelines-stack.js';
import { STACK_OUTPUTS } from '../../src/core/tables.js';
import {
  CRASH_ERRORS,
  MAX_STEPS_PER_EXECUTION,
  RETRYABLE_ERRORS,
  TASK_STATES,
  THROTTLING_ERRORS,
} from '../../src/core/workflow.js';
import {
  allStates,
  type SynthesizedTemplate,
  stateMachineDefinitions,
} from '../../src/local/state-machines.js';
import { LAMBDA_ENVIRONMENT } from '../../src/workflow/lambda-environment.js';
import {
  allows,
  allowsService,
  asList,
  denyWithoutSsl,
  functionRole,
  logicalIdOf,
  mentions,
  onEveryResource,
  PIPELINE_FUNCTION_NAMES,
  pipelineFunctions,
  roleStatements,
  type SynthesizedStack,
  synthesizeStack,
  testApp,
} from '../support/synth.js';

/** The error Step Functions raises when an execution name was used before (AWS's name, not ours). */
const EXECUTION_ALREADY_EXISTS = 'StepFunctions.ExecutionAlreadyExistsException';

/** Actions that change data: find-due-projects may only update items (pausing ended trials). */
const WRITE_ACTIONS = [
  's3:PutObject',
  's3:DeleteObject',
  's3:DeleteObjectVersion',
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:BatchWriteItem',
] as const;

/** A state of a definition, as far as the checks below follow transitions. */
interface FlowState {
  readonly Type?: string;
  readonly Next?: string;
  readonly End?: boolean;
  readonly Default?: string;
  readonly Choices?: readonly { readonly Next: string }[];
  readonly Catch?: readonly { readonly ErrorEquals: readonly string[]; readonly Next: string }[];
  readonly Resource?: string;
  readonly Parameters?: Record<string, unknown>;
  readonly ItemSelector?: Record<string, unknown>;
  readonly TimeoutSeconds?: number;
  readonly MaxConcurrency?: number;
  readonly Retry?: readonly { readonly ErrorEquals: readonly string[]; readonly MaxAttempts?: number }[];
}

/** The states of one state machine of the stack (nested Map processors included), by name. */
function statesOf(synth: SynthesizedStack, stateMachine: IConstruct): Map<string, FlowState> {
  const definitions = stateMachineDefinitions(synth.template.toJSON() as SynthesizedTemplate);
  const definition = definitions.get(logicalIdOf(synth, stateMachine));
  assert.ok(definition, `no definition for ${stateMachine.node.path}`);
  return new Map(
    allStates(definition).map(([name, state]): [string, FlowState] => [name, state as FlowState]),
  );
}

/** A state machine's own timeout (`TimeoutSeconds` of its definition). */
function workflowTimeoutSeconds(synth: SynthesizedStack, stateMachine: IConstruct): number | undefined {
  const definitions = stateMachineDefinitions(synth.template.toJSON() as SynthesizedTemplate);
  return (definitions.get(logicalIdOf(synth, stateMachine)) as { TimeoutSeconds?: number } | undefined)
    ?.TimeoutSeconds;
}

function stateNamed(states: ReadonlyMap<string, FlowState>, name: string): FlowState {
  const state = states.get(name);
  assert.ok(state, `state ${JSON.stringify(name)} missing (have: ${[...states.keys()].join(', ')})`);
  return state;
}

/** Every state a state can go to next: Next, Choice branches and Default, Catch targets. */
const successors = (state: FlowState): string[] => [
  ...(state.Next === undefined ? [] : [state.Next]),
  ...(state.Default === undefined ? [] : [state.Default]),
  ...(state.Choices ?? []).map((choice) => choice.Next),
  ...(state.Catch ?? []).map((c) => c.Next),
];

/** The Catch targets of a state for an error list (`States.ALL`, or one error name). */
const catchTargets = (state: FlowState, error: string): string[] =>
  (state.Catch ?? []).filter((c) => c.ErrorEquals.includes(error)).map((c) => c.Next);

describe('DataPipelinesStack functions, state machines, schedule and alarms', () => {
  let synth: SynthesizedStack;
  before(() => {
    synth = synthesizeStack();
  });
  after(() => synth.cleanup());

  it('creates one Node.js 22 arm64 function per Task and the config reviewer, each with the whole pipeline environment and active tracing', () => {
    // Arrange: what each variable must name (a 120-minute step timeout leases locks for 135 minutes)
    const { stack } = synth;
    const expected = {
      RAW_BUCKET: { Ref: logicalIdOf(synth, stack.rawBucket) },
      DESTINATION_BUCKET: { Ref: logicalIdOf(synth, stack.destinationBucket) },
      STATE_BUCKET: { Ref: logicalIdOf(synth, stack.state.bucket) },
      CONFIGS_TABLE: { Ref: logicalIdOf(synth, stack.tables.configs) },
      STATE_TABLE: { Ref: logicalIdOf(synth, stack.tables.state) },
      EVENT_BUS_NAME: 'default',
      LEASE_SECONDS: String((120 + 15) * 60),
    };
    // Act: synthesized in before()
    // Assert: the handlers validate exactly these variables at cold start
    assert.deepEqual(Object.keys(expected).sort(), Object.keys(LAMBDA_ENVIRONMENT).sort());
    synth.template.resourceCountIs('AWS::Lambda::Function', PIPELINE_FUNCTION_NAMES.length);
    assert.equal(PIPELINE_FUNCTION_NAMES.length, 13);
    synth.template.allResourcesProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      Environment: { Variables: Match.objectLike(expected) },
      // The handlers trace their SDK clients into the segment Lambda opens.
      TracingConfig: { Mode: 'Active' },
    });
    const functionIds = Object.keys(synth.template.findResources('AWS::Lambda::Function')).sort();
    const expectedIds = pipelineFunctions(stack).map(([, fn]) => logicalIdOf(synth, fn));
    assert.deepEqual(functionIds, expectedIds.sort());
  });

  it('sizes the data functions (ingest, plan, export, reconcile) 2 GB and 15 minutes, every other one 512 MB and 2 minutes', () => {
    // Arrange: planning a snapshot is the heaviest fold; the README promises it 15 minutes
    const data = new Set<string>(['ingestHour', 'planStep', 'exportTask', 'reconcilePipelines']);
    const functions = synth.template.findResources('AWS::Lambda::Function');
    // Act
    const sizes = Object.fromEntries(
      pipelineFunctions(synth.stack).map(([name, fn]) => {
        const props = functions[logicalIdOf(synth, fn)]?.Properties as {
          MemorySize?: number;
          Timeout?: number;
        };
        return [name, [props.MemorySize, props.Timeout]];
      }),
    );
    // Assert
    for (const [name, size] of Object.entries(sizes))
      assert.deepEqual(size, data.has(name) ? [2048, 900] : [512, 120], name);
    const step = statesOf(synth, synth.stack.stepWorkflow.stateMachine);
    for (const task of [TASK_STATES.planStep, TASK_STATES.ingestHour, TASK_STATES.exportTask])
      assert.equal(stateNamed(step, task).TimeoutSeconds, 900 + 30, task);
  });

  it('reserves 300 concurrent executions for each fan-out function and none for the others', () => {
    // Arrange
    const functions = synth.template.findResources('AWS::Lambda::Function');
    // Act
    const reserved = Object.fromEntries(
      pipelineFunctions(synth.stack).map(([name, fn]) => [
        name,
        (
          functions[logicalIdOf(synth, fn)]?.Properties as
            | { ReservedConcurrentExecutions?: number }
            | undefined
        )?.ReservedConcurrentExecutions,
      ]),
    );
    // Assert: 600 of an account's default 1000 are the data tasks' at most; the rest stays for the
    // functions holding locks, and reserving those would cap them instead
    for (const [name, value] of Object.entries(reserved))
      assert.equal(value, name === 'ingestHour' || name === 'exportTask' ? 300 : undefined, name);
  });

  it('logs every state machine execution in full and traces it with X-Ray', () => {
    synth.template.resourceCountIs('AWS::StepFunctions::StateMachine', 3);
    synth.template.allResourcesProperties('AWS::StepFunctions::StateMachine', {
      LoggingConfiguration: Match.objectLike({
        Level: 'ALL',
        Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: Match.anyValue() } }],
      }),
      TracingConfiguration: { Enabled: true },
    });
  });

  it('starts the dispatcher every 15 minutes by default', () => {
    // Arrange
    const dispatcherId = logicalIdOf(synth, synth.stack.dispatcher.stateMachine);
    // Assert: two schedules, the ticks and the daily reconciliation
    synth.template.resourcePropertiesCountIs(
      'AWS::Events::Rule',
      { ScheduleExpression: Match.anyValue() },
      2,
    );
    synth.template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'cron(0/15 * * * ? *)',
      State: 'ENABLED',
      Targets: [Match.objectLike({ Arn: { Ref: dispatcherId }, RoleArn: Match.anyValue() })],
    });
  });

  it('runs release-abandoned-lock when a project workflow execution times out, is aborted or fails', () => {
    // Arrange
    const { stack } = synth;
    const projectId = logicalIdOf(synth, stack.projectWorkflow.stateMachine);
    const functionId = logicalIdOf(synth, stack.functions.releaseAbandonedLock);
    // Act / Assert: only that state machine's executions, only the statuses that skip its own release
    synth.template.resourceCountIs('AWS::Events::Rule', 3);
    synth.template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.states'],
        'detail-type': ['Step Functions Execution Status Change'],
        detail: { stateMachineArn: [{ Ref: projectId }], status: ['TIMED_OUT', 'ABORTED', 'FAILED'] },
      },
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [functionId, 'Arn'] } })],
    });
    synth.template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      FunctionName: { 'Fn::GetAtt': [functionId, 'Arn'] },
      Principal: 'events.amazonaws.com',
    });
  });

  it('lets the project workflow run its whole step budget of steps that take their whole timeout', () => {
    // Arrange: 48 steps of up to 120 minutes each, each with 15 minutes to pick and record it
    // Act
    const timeoutSeconds = workflowTimeoutSeconds(synth, synth.stack.projectWorkflow.stateMachine);
    // Assert: longer than the budget of full-length steps, so a live workflow never times out mid-step
    assert.equal(MAX_STEPS_PER_EXECUTION, 48);
    assert.equal(timeoutSeconds, (48 * (120 + 15) + 15) * 60);
    assert.ok(timeoutSeconds > MAX_STEPS_PER_EXECUTION * 120 * 60);
  });

  it('sends schedule events it could not deliver to an encrypted, SSL-only dead-letter queue only EventBridge may fill', () => {
    // Arrange
    const { stack } = synth;
    const queueId = logicalIdOf(synth, stack.dispatcher.scheduleDeadLetters);
    const ruleId = logicalIdOf(synth, stack.dispatcher.schedule);
    // Act / Assert
    synth.template.resourceCountIs('AWS::SQS::Queue', 3);
    synth.template.hasResourceProperties('AWS::Events::Rule', {
      Targets: [Match.objectLike({ DeadLetterConfig: { Arn: { 'Fn::GetAtt': [queueId, 'Arn'] } } })],
    });
    assert.equal(
      synth.template.findResources('AWS::SQS::Queue')[queueId]?.Properties?.SqsManagedSseEnabled,
      true,
    );
    synth.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: queueId }],
      ...denyWithoutSsl('sqs'),
    });
    synth.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: queueId }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Action: 'sqs:SendMessage',
            Principal: { Service: 'events.amazonaws.com' },
            Condition: { ArnEquals: { 'aws:SourceArn': { 'Fn::GetAtt': [ruleId, 'Arn'] } } },
          }),
        ]),
      },
    });
  });

  it('alarms on any message in a dead-letter queue: the schedule, the config review, the reconciliation', () => {
    for (const queue of [
      synth.stack.dispatcher.scheduleDeadLetters,
      synth.stack.functions.reviewConfigFailures,
      synth.stack.reconciliation.deadLetters,
    ]) {
      synth.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [
          { Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalIdOf(synth, queue), 'QueueName'] } },
        ],
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
      });
    }
  });

  it('fans out at most 40 Lambdas per Map of the step workflow by default', () => {
    const states = statesOf(synth, synth.stack.stepWorkflow.stateMachine);
    const maps = [...states.values()].filter((state) => state.Type === 'Map');
    assert.equal(maps.length, 2);
    for (const map of maps) assert.equal(map.MaxConcurrency, 40);
  });

  it('alarms on the export SLA (24 h), the late-data SLA (48 h), on failures and on lost balance', () => {
    synth.template.resourceCountIs('AWS::CloudWatch::Alarm', 14);
    // The lags of commits, and of what waits without committing (published every tick).
    for (const [metric, seconds] of [
      ['ExportLagSeconds', 86400],
      ['SyncExportLagSeconds', 172800],
      ['PendingExportLagSeconds', 86400],
      ['PendingSyncLagSeconds', 172800],
    ] as const) {
      synth.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'MpPipelines',
        MetricName: metric,
        Threshold: seconds,
        ComparisonOperator: 'GreaterThanThreshold',
      });
    }
    // Any step that did not balance, any pipeline the daily reconciliation found out of balance, any
    // object set aside.
    for (const metric of ['ReconciliationFailures', 'ReconciliationImbalances', 'ObjectsSetAside']) {
      synth.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'MpPipelines',
        MetricName: metric,
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      });
    }
  });

  it('reconciles every pipeline once a day with the reconcile function, which may only read', () => {
    const functionId = logicalIdOf(synth, synth.stack.functions.reconcilePipelines);
    synth.template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'cron(30 6 * * ? *)',
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [functionId, 'Arn'] },
          DeadLetterConfig: {
            Arn: { 'Fn::GetAtt': [logicalIdOf(synth, synth.stack.reconciliation.deadLetters), 'Arn'] },
          },
        }),
      ],
    });
    const actions = roleStatements(synth, 'reconcilePipelines').flatMap((s) => asList(s.Action));
    assert.deepEqual(
      actions.filter(
        (a) => /^(s3|dynamodb):/.test(a) && !/^(s3:(Get|List)|dynamodb:(Scan|Describe))/.test(a),
      ),
      [],
    );
  });

  it('outputs the bucket names and the state machine ARNs for the CLI', () => {
    const { stack } = synth;
    synth.template.hasOutput(STACK_OUTPUTS.rawBucketName, {
      Value: { Ref: logicalIdOf(synth, stack.rawBucket) },
    });
    synth.template.hasOutput(STACK_OUTPUTS.destinationBucketName, {
      Value: { Ref: logicalIdOf(synth, stack.destinationBucket) },
    });
    for (const [output, machine] of [
      [STACK_OUTPUTS.dispatcherArn, stack.dispatcher.stateMachine],
      [STACK_OUTPUTS.projectWorkflowArn, stack.projectWorkflow.stateMachine],
      [STACK_OUTPUTS.stepWorkflowArn, stack.stepWorkflow.stateMachine],
    ] as const) {
      synth.template.hasOutput(output, { Value: { Ref: logicalIdOf(synth, machine) } });
    }
  });
});

describe('DataPipelinesStack workflow definitions', () => {
  let synth: SynthesizedStack;
  let dispatcher: Map<string, FlowState>;
  let project: Map<string, FlowState>;
  before(() => {
    synth = synthesizeStack();
    dispatcher = statesOf(synth, synth.stack.dispatcher.stateMachine);
    project = statesOf(synth, synth.stack.projectWorkflow.stateMachine);
  });
  after(() => synth.cleanup());

  it('starts each project workflow under the name find-due-projects made, without waiting for it', () => {
    // Arrange / Act
    const start = stateNamed(dispatcher, TASK_STATES.startProjectWorkflow);
    // Assert: the name is deterministic per project and tick, so a repeated tick starts nothing new
    assert.equal(start.Type, 'Task');
    assert.match(start.Resource ?? '', /:states:::states:startExecution$/);
    assert.equal(start.Parameters?.['Name.$'], '$.execution_name');
    const startAll = [...dispatcher.values()].find((state) => state.Type === 'Map');
    assert.equal(startAll?.ItemSelector?.['execution_name.$'], '$$.Map.Item.Value.execution_name');
  });

  it('ignores ExecutionAlreadyExists when starting a project workflow, and only that error', () => {
    // Arrange / Act
    const start = stateNamed(dispatcher, TASK_STATES.startProjectWorkflow);
    // Assert: a second trigger of the same tick is expected; any other failure must fail the dispatcher
    assert.deepEqual(
      (start.Catch ?? []).map((c) => c.ErrorEquals),
      [[EXECUTION_ALREADY_EXISTS]],
    );
    const [target] = catchTargets(start, EXECUTION_ALREADY_EXISTS);
    const ignored = stateNamed(dispatcher, target ?? '');
    assert.ok(ignored.Type === 'Succeed' || (ignored.Type === 'Pass' && ignored.End === true), target);
  });

  it('owns the project lock by the execution name in every lock call', () => {
    for (const name of [
      TASK_STATES.acquireLock,
      TASK_STATES.pickNextStep,
      TASK_STATES.releaseLock,
      TASK_STATES.releaseLockAfterFailure,
    ]) {
      assert.equal(stateNamed(project, name).Parameters?.['owner.$'], '$$.Execution.Name', name);
    }
  });

  it('runs each step to completion and records any failure of it', () => {
    // Arrange / Act
    const runStep = stateNamed(project, TASK_STATES.runStep);
    // Assert: `.sync` keeps the lock for the whole step; States.ALL covers its timeout too
    assert.match(runStep.Resource ?? '', /:states:::states:startExecution\.sync/);
    assert.deepEqual(catchTargets(runStep, 'States.ALL'), [TASK_STATES.recordFailure]);
  });

  it('releases the lock after a failure to pick a step or a recorded step failure, then fails', () => {
    // Arrange
    const pick = stateNamed(project, TASK_STATES.pickNextStep);
    const record = stateNamed(project, TASK_STATES.recordFailure);
    const release = stateNamed(project, TASK_STATES.releaseLockAfterFailure);
    // Act / Assert: recording may itself fail; the lock is released either way
    assert.deepEqual(catchTargets(pick, 'States.ALL'), [TASK_STATES.releaseLockAfterFailure]);
    assert.equal(record.Next, TASK_STATES.releaseLockAfterFailure);
    assert.deepEqual(catchTargets(record, 'States.ALL'), [TASK_STATES.releaseLockAfterFailure]);
    assert.equal(release.Type, 'Task');
    assert.equal(stateNamed(project, release.Next ?? '').Type, 'Fail');
  });

  it('retries every Lambda task on throttling, crashes and transient errors, each in one retrier', () => {
    // Arrange: every Task invoking a function, in all three state machines
    const machines = [synth.stack.dispatcher, synth.stack.projectWorkflow, synth.stack.stepWorkflow];
    const nested = new Set<string>([TASK_STATES.runStep, TASK_STATES.startProjectWorkflow]);
    const lambdaTasks = machines.flatMap((m) =>
      [...statesOf(synth, m.stateMachine)].filter(
        ([name, state]) => state.Type === 'Task' && !nested.has(name),
      ),
    );
    // Act / Assert: a crash (Lambda.Unknown, out of memory, timeout) retries twice, throttling longest
    assert.equal(lambdaTasks.length, 11, lambdaTasks.map(([name]) => name).join(', '));
    for (const [name, state] of lambdaTasks) {
      const retriers = state.Retry ?? [];
      const attemptsFor = (error: string) => {
        const matching = retriers.filter((r) => r.ErrorEquals.includes(error));
        assert.equal(matching.length, 1, `${name}: ${error} in ${matching.length} retriers`);
        return matching[0]?.MaxAttempts;
      };
      for (const error of CRASH_ERRORS) assert.equal(attemptsFor(error), 2, `${name}: ${error}`);
      for (const error of THROTTLING_ERRORS) assert.equal(attemptsFor(error), 10, `${name}: ${error}`);
      for (const error of [...RETRYABLE_ERRORS, 'States.Timeout']) assert.equal(attemptsFor(error), 6, name);
      assert.ok(attemptsFor('Lambda.Unknown') !== undefined && attemptsFor('Sandbox.Timedout') !== undefined);
      assert.equal(
        retriers.some((r) => r.ErrorEquals.includes('States.ALL')),
        false,
        `${name} retries everything`,
      );
    }
  });

  it('ends no path after the lock is taken without releasing it', () => {
    // Arrange: walk every transition from the first state that holds the lock, stopping at releases
    const releases = new Set<string>([TASK_STATES.releaseLock, TASK_STATES.releaseLockAfterFailure]);
    const seen = new Set<string>();
    const unreleasedEnds: string[] = [];
    const pending: string[] = [TASK_STATES.pickNextStep];
    // Act
    for (let name = pending.pop(); name !== undefined; name = pending.pop()) {
      if (seen.has(name) || releases.has(name)) continue;
      seen.add(name);
      const state = stateNamed(project, name);
      const next = successors(state);
      if (state.End === true || state.Type === 'Succeed' || state.Type === 'Fail' || next.length === 0) {
        unreleasedEnds.push(name);
      }
      pending.push(...next);
    }
    // Assert: the walk covered the step loop and the failure path
    assert.deepEqual(unreleasedEnds, []);
    for (const name of [TASK_STATES.runStep, TASK_STATES.recordFailure]) assert.ok(seen.has(name), name);
  });
});

describe('DataPipelinesStack function permissions (least privilege)', () => {
  let synth: SynthesizedStack;
  let ids: { raw: string; destination: string; configs: string; state: string };
  before(() => {
    synth = synthesizeStack();
    const { stack } = synth;
    // Quoted, so that one logical id never matches as the prefix of another.
    const quoted = (construct: IConstruct) => `"${logicalIdOf(synth, construct)}"`;
    ids = {
      raw: quoted(stack.rawBucket),
      destination: quoted(stack.destinationBucket),
      configs: quoted(stack.tables.configs),
      state: quoted(stack.tables.state),
    };
  });
  after(() => synth.cleanup());

  it('gives every function role no managed policy, and logs to its own log group only', () => {
    const functions = synth.template.findResources('AWS::Lambda::Function');
    for (const [name, fn] of pipelineFunctions(synth.stack)) {
      // Arrange: the log group the function is configured with
      const logGroup = (
        functions[logicalIdOf(synth, fn)]?.Properties as
          | { LoggingConfig?: { LogGroup?: { Ref?: string } } }
          | undefined
      )?.LoggingConfig?.LogGroup?.Ref;
      assert.ok(logGroup, `${name} has no log group of its own`);
      // Act
      const onLogs = roleStatements(synth, name).filter((s) => allowsService(s, 'logs'));
      // Assert: not AWSLambdaBasicExecutionRole, which may create and write any log group
      assert.deepEqual(functionRole(synth, name).properties.ManagedPolicyArns ?? [], [], name);
      assert.deepEqual(
        onLogs.map((s) => [asList(s.Action), s.Resource]),
        [[['logs:CreateLogStream', 'logs:PutLogEvents'], { 'Fn::GetAtt': [logGroup, 'Arn'] }]],
        name,
      );
    }
  });

  it('grants nothing on every resource (*) but X-Ray tracing, and ListStreams to the stream consumer', () => {
    for (const name of PIPELINE_FUNCTION_NAMES) {
      // DynamoDB ListStreams has no resource-level permissions; the config reviewer's event source needs it.
      const accepted = name === 'reviewConfig' ? /^(xray:|dynamodb:ListStreams$)/ : /^xray:/;
      const actions = roleStatements(synth, name)
        .filter(onEveryResource)
        .flatMap((s) => [...asList(s.Action)]);
      assert.deepEqual(
        actions.filter((action) => !accepted.test(action)),
        [],
        name,
      );
    }
  });

  it('lets ingest-hour read the raw bucket, never write or delete in it', () => {
    // Arrange / Act
    const onRaw = roleStatements(synth, 'ingestHour').filter((s) => mentions(s, ids.raw));
    // Assert
    assert.ok(onRaw.some((s) => allows(s, 's3:GetObject')));
    assert.ok(onRaw.some((s) => allows(s, 's3:ListBucket')));
    for (const action of ['s3:PutObject', 's3:DeleteObject', 's3:DeleteObjectVersion']) {
      assert.equal(
        onRaw.some((s) => allows(s, action)),
        false,
        `ingest-hour may ${action} in the raw bucket`,
      );
    }
  });

  it('gives export-task no access to the raw bucket at all', () => {
    // Arrange / Act
    const statements = roleStatements(synth, 'exportTask');
    // Assert: it works from staged data only; the positive check proves the statements were found
    assert.deepEqual(
      statements.filter((s) => mentions(s, ids.raw)),
      [],
    );
    assert.ok(statements.some((s) => mentions(s, ids.destination) && allows(s, 's3:PutObject')));
  });

  it('lets find-due-projects change only config and project items (pausing ended trials), nothing in S3', () => {
    // Arrange / Act
    const statements = roleStatements(synth, 'findDueProjects');
    // Assert: the pause is one transaction, an Update of the config item and one of the project item
    const writes = statements.flatMap((s) => [
      ...asList(s.Action).filter((pattern) => /^s3:(Put|Delete)/i.test(pattern)),
      ...WRITE_ACTIONS.filter((action) => action !== 'dynamodb:UpdateItem' && allows(s, action)),
    ]);
    assert.deepEqual(writes, []);
    assert.ok(statements.some((s) => mentions(s, ids.configs) && allows(s, 'dynamodb:Query')));
    for (const table of [ids.configs, ids.state]) {
      assert.ok(
        statements.some((s) => mentions(s, table) && allows(s, 'dynamodb:UpdateItem')),
        table,
      );
    }
    assert.ok(statements.some((s) => mentions(s, ids.state) && allows(s, 'dynamodb:GetItem')));
  });

  for (const name of ['acquireLock', 'releaseLock'] as const) {
    it(`gives ${name} no S3 action, only the state table`, () => {
      // Arrange / Act
      const statements = roleStatements(synth, name);
      // Assert
      assert.deepEqual(
        statements.filter((s) => allowsService(s, 's3')),
        [],
      );
      // Both change the lock item in place (a takeover that counts the fencing token, a release that
      // keeps the token); neither may remove it, or the token would start again.
      assert.ok(statements.some((s) => mentions(s, ids.state) && allows(s, 'dynamodb:UpdateItem')));
      assert.ok(!statements.some((s) => allows(s, 'dynamodb:DeleteItem')));
      assert.equal(
        statements.some((s) => mentions(s, ids.configs)),
        false,
      );
    });
  }

  it('lets release-abandoned-lock update items of the state table and do nothing else', () => {
    // Arrange / Act
    const statements = roleStatements(synth, 'releaseAbandonedLock').filter(
      (s) => !allowsService(s, 'xray') && !allowsService(s, 'logs'),
    );
    // Assert: the release is one conditional UpdateItem of the lock item (its token stays)
    assert.deepEqual(
      statements.map((s) => [asList(s.Action), mentions(s, ids.state)]),
      [[['dynamodb:UpdateItem'], true]],
    );
  });

  it('lets only commit-step and record-failure put events', () => {
    // Arrange / Act
    const putters = PIPELINE_FUNCTION_NAMES.filter((name) =>
      roleStatements(synth, name).some((s) => allows(s, 'events:PutEvents')),
    );
    // Assert
    assert.deepEqual(putters, ['commitStep', 'recordFailure']);
  });
});

describe('DataPipelinesStack with existing raw and destination buckets', () => {
  const rawBucketName = 'my-raw-landing';
  const destinationBucketName = 'my-exports';
  let synth: SynthesizedStack;
  before(() => {
    synth = synthesizeStack({ rawBucketName, destinationBucketName });
  });
  after(() => synth.cleanup());

  it('creates only the state, access log and query result buckets', () => {
    synth.template.resourceCountIs('AWS::S3::Bucket', 3);
    synth.template.hasOutput(STACK_OUTPUTS.rawBucketName, { Value: rawBucketName });
    synth.template.hasOutput(STACK_OUTPUTS.destinationBucketName, { Value: destinationBucketName });
  });

  it('points every function at the given buckets', () => {
    synth.template.allResourcesProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({ RAW_BUCKET: rawBucketName, DESTINATION_BUCKET: destinationBucketName }),
      },
    });
  });

  it('lets ingest-hour read the given raw bucket by its ARN, never write in it', () => {
    // Arrange: the bucket ARN, and its objects' ARNs (a closing quote or a slash after the name)
    const bucketArn = `:s3:::${rawBucketName}"`;
    const objectArns = `:s3:::${rawBucketName}/`;
    // Act
    const onRaw = roleStatements(synth, 'ingestHour').filter(
      (s) => mentions(s, bucketArn) || mentions(s, objectArns),
    );
    // Assert
    assert.ok(onRaw.some((s) => mentions(s, bucketArn) && allows(s, 's3:ListBucket')));
    assert.ok(onRaw.some((s) => mentions(s, objectArns) && allows(s, 's3:GetObject')));
    assert.equal(
      onRaw.some((s) => allows(s, 's3:PutObject') || allows(s, 's3:DeleteObject')),
      false,
    );
    assert.deepEqual(
      roleStatements(synth, 'exportTask').filter((s) => mentions(s, objectArns) || mentions(s, bucketArn)),
      [],
    );
  });
});

describe('DataPipelinesStack with scheduleMinutes 30, fanOutWidth 12 and stepTimeoutMinutes 60', () => {
  let synth: SynthesizedStack;
  before(() => {
    synth = synthesizeStack({ scheduleMinutes: 30, fanOutWidth: 12, stepTimeoutMinutes: 60 });
  });
  after(() => synth.cleanup());

  it('starts the dispatcher every 30 minutes', () => {
    synth.template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'cron(0/30 * * * ? *)' });
  });

  it('fans out at most 12 Lambdas per Map of the step workflow', () => {
    const states = statesOf(synth, synth.stack.stepWorkflow.stateMachine);
    const maps = [...states.values()].filter((state) => state.Type === 'Map');
    assert.equal(maps.length, 2);
    for (const map of maps) assert.equal(map.MaxConcurrency, 12);
  });

  it('times the project workflow out after its budget of 60-minute steps', () => {
    assert.equal(
      workflowTimeoutSeconds(synth, synth.stack.projectWorkflow.stateMachine),
      (48 * (60 + 15) + 15) * 60,
    );
  });

  it('times a step out after 60 minutes, 15 minutes before its lock lease would run out', () => {
    // Arrange / Act
    const runStep = stateNamed(
      statesOf(synth, synth.stack.projectWorkflow.stateMachine),
      TASK_STATES.runStep,
    );
    // Assert: a live step never loses its lock; a dead one blocks its project for the lease at most
    assert.equal(runStep.TimeoutSeconds, 60 * 60);
    synth.template.allResourcesProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ LEASE_SECONDS: String(75 * 60) }) },
    });
  });
});

describe('DataPipelinesStack with dataFunctionConcurrency 60 and fanOutWidth 12', () => {
  it('reserves 60 concurrent executions for each fan-out function', () => {
    const synth = synthesizeStack({ dataFunctionConcurrency: 60, fanOutWidth: 12 });
    try {
      synth.template.resourcePropertiesCountIs(
        'AWS::Lambda::Function',
        { ReservedConcurrentExecutions: 60 },
        2,
      );
      synth.template.resourcePropertiesCountIs(
        'AWS::Lambda::Function',
        { ReservedConcurrentExecutions: Match.anyValue() },
        2,
      );
    } finally {
      synth.cleanup();
    }
  });
});

describe('DataPipelinesStack props', () => {
  for (const scheduleMinutes of [7, 45, 0]) {
    it(`refuses a schedule every ${scheduleMinutes} minutes (the minutes must divide 60)`, () => {
      assert.throws(
        () => new DataPipelinesStack(testApp(), 'Pipelines', { scheduleMinutes }),
        /every N minutes with N dividing 60/,
      );
    });
  }

  for (const [dataFunctionConcurrency, fanOutWidth] of [
    [39, 40],
    [11, 12],
    [100.5, 40],
  ] as const) {
    it(`refuses dataFunctionConcurrency ${dataFunctionConcurrency} with fanOutWidth ${fanOutWidth}`, () => {
      assert.throws(
        () => new DataPipelinesStack(testApp(), 'Pipelines', { dataFunctionConcurrency, fanOutWidth }),
        /dataFunctionConcurrency must be a whole number, at least fanOutWidth/,
      );
    });
  }

  for (const fanOutWidth of [41, 0, 2.5]) {
    it(`refuses a fan-out width of ${fanOutWidth} (inline Maps run at most 40 at once)`, () => {
      assert.throws(
        () => new DataPipelinesStack(testApp(), 'Pipelines', { fanOutWidth }),
        /fanOutWidth must be a whole number from 1 to 40/,
      );
    });
  }
});
