import { Duration } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { MAX_STEPS_PER_EXECUTION, TASK_STATES } from '../src/core/workflow.js';
import { ABANDONING_STATUSES } from '../src/workflow/abandoned-lock.js';
import { FUNCTION_TIMEOUTS, type PipelineFunctions } from './pipeline-functions.js';
import { grantExecutionKey, lambdaTask, workflowObservability } from './workflow-tasks.js';

/**
 * What the lock lease adds to the step timeout, and what the workflow allows each step beyond it for
 * picking the step and recording its end: a live step never loses its lock, a dead one holds it this
 * long at most past its timeout.
 */
export const STEP_MARGIN = Duration.minutes(15);

/**
 * The project workflow's timeout: its step budget ({@link MAX_STEPS_PER_EXECUTION}) of steps of at most
 * `stepTimeout` each, each with {@link STEP_MARGIN}, and one margin for taking and releasing the lock.
 * Shorter, and a workflow working through a backlog of long steps would time out mid-step.
 */
export function projectWorkflowTimeout(stepTimeout: Duration): Duration {
  const perStep = stepTimeout.toMinutes() + STEP_MARGIN.toMinutes();
  return Duration.minutes(MAX_STEPS_PER_EXECUTION * perStep + STEP_MARGIN.toMinutes());
}

/** Props of the project workflow. */
export interface ProjectWorkflowProps {
  readonly functions: PipelineFunctions;
  /** The step workflow it runs each step with. */
  readonly stepWorkflow: sfn.IStateMachine;
  /** Longest one step may run before it counts as failed (and the lock is released). */
  readonly stepTimeout: Duration;
  readonly logRetention: logs.RetentionDays;
  /**
   * Customer key for the execution data and the log group.
   * @default AWS-owned encryption, and CloudWatch Logs' own for the logs
   */
  readonly encryptionKey?: kms.IKey;
}

/**
 * One project at one tick (input `{ project_id, tick }`, execution named by the dispatcher): take the
 * project lock (owner: the execution name) or end when another run holds it; run due steps one after
 * another, each as a step workflow execution; release the lock on every path. A failed or timed-out
 * step is recorded, the lock released and the execution fails; the next tick retries the step.
 */
export class ProjectWorkflow extends Construct {
  public readonly stateMachine: sfn.StateMachine;
  /** Runs `release-abandoned-lock` when an execution times out, is aborted or fails. */
  public readonly abandonedLocks: events.Rule;

  constructor(scope: Construct, id: string, props: ProjectWorkflowProps) {
    super(scope, id);
    const fns = props.functions;
    const owner = '$$.Execution.Name';
    const lock = sfn.TaskInput.fromObject({ 'project_id.$': '$.project_id', 'owner.$': owner });

    const begin = new sfn.Pass(this, 'Begin', {
      result: sfn.Result.fromObject({ steps_run: 0 }),
      resultPath: '$.next',
    });
    const acquire = lambdaTask(this, TASK_STATES.acquireLock, fns.acquireLock, {
      payload: lock,
      timeout: FUNCTION_TIMEOUTS.control,
      resultPath: '$.lock',
    });
    const pick = lambdaTask(this, TASK_STATES.pickNextStep, fns.pickNextStep, {
      payload: sfn.TaskInput.fromObject({
        'project_id.$': '$.project_id',
        'owner.$': owner,
        'tick.$': '$.tick',
        'steps_run.$': '$.next.steps_run',
      }),
      timeout: FUNCTION_TIMEOUTS.control,
      resultPath: '$.next',
    });
    const runStep = new tasks.StepFunctionsStartExecution(this, TASK_STATES.runStep, {
      stateMachine: props.stepWorkflow,
      integrationPattern: sfn.IntegrationPattern.RUN_JOB,
      input: sfn.TaskInput.fromObject({ 'step.$': '$.next.step' }),
      taskTimeout: sfn.Timeout.duration(props.stepTimeout),
      resultPath: sfn.JsonPath.DISCARD,
    });
    // Two states (state names are unique) running the same release: one per path out of the loop.
    const releaseState = (name: string) =>
      lambdaTask(this, name, fns.releaseLock, {
        payload: lock,
        timeout: FUNCTION_TIMEOUTS.control,
        resultPath: '$.release',
      });
    const release = releaseState(TASK_STATES.releaseLock);
    const releaseAfterFailure = releaseState(TASK_STATES.releaseLockAfterFailure);
    const recordFailure = lambdaTask(this, TASK_STATES.recordFailure, fns.recordFailure, {
      payload: sfn.TaskInput.fromObject({ 'step.$': '$.next.step', 'error.$': '$.failure' }),
      timeout: FUNCTION_TIMEOUTS.control,
      resultPath: sfn.JsonPath.DISCARD,
    });
    const failed = new sfn.Fail(this, 'Failed', {
      errorPath: '$.failure.Error',
      causePath: '$.failure.Cause',
    });

    // Every state after the lock is taken ends in a release, whatever happens.
    const onFailure = { errors: [sfn.Errors.ALL], resultPath: '$.failure' };
    pick.addCatch(releaseAfterFailure, onFailure);
    runStep.addCatch(recordFailure, onFailure);
    recordFailure.addCatch(releaseAfterFailure, {
      errors: [sfn.Errors.ALL],
      resultPath: '$.recording_failure',
    });
    recordFailure.next(releaseAfterFailure);
    releaseAfterFailure.next(failed);

    const definition = begin
      .next(acquire)
      .next(
        new sfn.Choice(this, 'Lock acquired?')
          .when(
            sfn.Condition.booleanEquals('$.lock.acquired', true),
            pick.next(
              new sfn.Choice(this, 'Step due?')
                .when(sfn.Condition.booleanEquals('$.next.found', true), runStep.next(pick))
                .otherwise(release.next(new sfn.Succeed(this, 'Done'))),
            ),
          )
          .otherwise(new sfn.Succeed(this, 'Project busy')),
      );
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      definitionBody: sfn.DefinitionBody.fromChainable(definition),
      timeout: projectWorkflowTimeout(props.stepTimeout),
      ...workflowObservability(this, 'Logs', props.logRetention, props.encryptionKey),
    });
    grantExecutionKey(this.stateMachine, props.stepWorkflow, props.encryptionKey);
    // Paths that never reach a release state (a timeout, an abort, a failure no Catch handles) leave
    // the lock until its lease ends; this gives it back at once, if the execution still holds it.
    this.abandonedLocks = new events.Rule(this, 'AbandonedLocks', {
      description: 'Releases the lock of a project workflow that ended without releasing it',
      eventPattern: {
        source: ['aws.states'],
        detailType: ['Step Functions Execution Status Change'],
        detail: { stateMachineArn: [this.stateMachine.stateMachineArn], status: [...ABANDONING_STATUSES] },
      },
      targets: [
        new targets.LambdaFunction(fns.releaseAbandonedLock, {
          retryAttempts: 8,
          maxEventAge: STEP_MARGIN,
        }),
      ],
    });
  }
}
