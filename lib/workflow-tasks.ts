import { Duration, Names } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import type { Construct } from 'constructs';
import { CRASH_ERRORS, RETRYABLE_ERRORS, THROTTLING_ERRORS } from '../src/core/workflow.js';

/** Options of one Lambda Task of a workflow. */
export interface LambdaTaskOptions {
  /** The function's event, built from the state; default: the state itself (after `inputPath`). */
  readonly payload?: sfn.TaskInput;
  /** The part of the state the Task sees. */
  readonly inputPath?: string;
  /**
   * Where the result goes in the state; `sfn.JsonPath.DISCARD` drops it.
   * @default the result replaces the state (no `ResultPath`: the local interpreter mishandles `"$"`)
   */
  readonly resultPath?: string;
  /** The function's own timeout: the Task fails (and retries) if the invocation outlives it. */
  readonly timeout: Duration;
}

/**
 * A Task invoking a pipeline function with its result as the state's result (`payloadResponseOnly`),
 * retried with exponential backoff and jitter on throttling, crashes and transient errors only (each
 * with its own budget).
 */
export function lambdaTask(
  scope: Construct,
  name: string,
  fn: lambda.IFunction,
  options: LambdaTaskOptions,
): tasks.LambdaInvoke {
  const task = new tasks.LambdaInvoke(scope, name, {
    lambdaFunction: fn,
    ...(options.payload === undefined ? {} : { payload: options.payload }),
    ...(options.inputPath === undefined ? {} : { inputPath: options.inputPath }),
    payloadResponseOnly: true,
    retryOnServiceExceptions: false,
    ...(options.resultPath === undefined ? {} : { resultPath: options.resultPath }),
    taskTimeout: sfn.Timeout.duration(options.timeout.plus(Duration.seconds(30))),
  });
  // Step Functions takes the first retrier whose errors match: each error is in one list only.
  task.addRetry({
    errors: [...THROTTLING_ERRORS],
    interval: Duration.seconds(5),
    backoffRate: 2,
    maxAttempts: 10,
    maxDelay: Duration.minutes(5),
    jitterStrategy: sfn.JitterType.FULL,
  });
  task.addRetry({
    errors: [...CRASH_ERRORS],
    interval: Duration.seconds(10),
    backoffRate: 2,
    maxAttempts: 2,
    jitterStrategy: sfn.JitterType.FULL,
  });
  task.addRetry({
    errors: [...RETRYABLE_ERRORS, sfn.Errors.TIMEOUT],
    interval: Duration.seconds(2),
    backoffRate: 2,
    maxAttempts: 6,
    maxDelay: Duration.minutes(1),
    jitterStrategy: sfn.JitterType.FULL,
  });
  return task;
}

/**
 * State machine settings every workflow shares: full logs and X-Ray tracing; with a customer key, the
 * log group and the execution data (definition, history, state input and output) encrypted with it.
 */
export function workflowObservability(
  scope: Construct,
  id: string,
  retention: logs.RetentionDays,
  encryptionKey: kms.IKey | undefined,
): Pick<sfn.StateMachineProps, 'logs' | 'tracingEnabled' | 'encryptionConfiguration' | 'stateMachineName'> {
  return {
    logs: {
      destination: new logs.LogGroup(scope, id, { retention, ...(encryptionKey ? { encryptionKey } : {}) }),
      level: sfn.LogLevel.ALL,
      includeExecutionData: true,
    },
    tracingEnabled: true,
    ...(encryptionKey === undefined
      ? {}
      : {
          encryptionConfiguration: new sfn.CustomerManagedEncryptionConfiguration(encryptionKey),
          // CDK limits the role's use of the key to the machine's ARN, made from its name: without a
          // name given here, that ARN would end in an empty name and match no execution.
          stateMachineName: Names.uniqueResourceName(scope, { maxLength: 80 }),
        }),
  };
}

/**
 * Lets a caller start, follow and stop executions of a state machine encrypted with a customer key:
 * StartExecution needs `kms:GenerateDataKey` and `kms:Decrypt`, DescribeExecution and StopExecution
 * `kms:Decrypt`. Limited to that state machine's encryption context.
 */
export function grantExecutionKey(
  caller: iam.IGrantable,
  target: sfn.IStateMachine,
  encryptionKey: kms.IKey | undefined,
): void {
  if (encryptionKey === undefined) return;
  caller.grantPrincipal.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
      resources: [encryptionKey.keyArn],
      conditions: {
        StringEquals: { 'kms:EncryptionContext:aws:states:stateMachineArn': target.stateMachineArn },
      },
    }),
  );
}
