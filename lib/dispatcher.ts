import type { Duration } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { EXECUTION_EXISTS_ERROR, TASK_STATES } from '../src/core/workflow.js';
import { deadLetterQueue, FUNCTION_TIMEOUTS, type PipelineFunctions } from './pipeline-functions.js';
import { grantExecutionKey, lambdaTask, workflowObservability } from './workflow-tasks.js';

/** Props of the dispatcher. */
export interface DispatcherProps {
  readonly functions: PipelineFunctions;
  readonly projectWorkflow: sfn.IStateMachine;
  /** Minutes between ticks, a divisor of 60: ticks fall on the same minutes of every hour. */
  readonly everyMinutes: number;
  /** Longest one dispatch may run. */
  readonly timeout: Duration;
  readonly logRetention: logs.RetentionDays;
  /**
   * Customer key for the execution data and the log group.
   * @default AWS-owned encryption, and CloudWatch Logs' own for the logs
   */
  readonly encryptionKey?: kms.IKey;
}

/**
 * The schedule and the dispatcher it starts: find the projects with due steps, start one project
 * workflow each under a name made of the project and the tick, so a second trigger of the same tick
 * (a retry, a duplicate delivery) starts nothing: `ExecutionAlreadyExists` is expected and ignored.
 */
export class Dispatcher extends Construct {
  public readonly stateMachine: sfn.StateMachine;
  public readonly schedule: events.Rule;
  /** The role the schedule starts the dispatcher with. */
  public readonly scheduleRole: iam.Role;
  /** Where the schedule's events go when starting the dispatcher still fails after EventBridge's retries. */
  public readonly scheduleDeadLetters: sqs.Queue;

  constructor(scope: Construct, id: string, props: DispatcherProps) {
    super(scope, id);
    if (!Number.isInteger(props.everyMinutes) || props.everyMinutes < 1 || 60 % props.everyMinutes !== 0) {
      throw new Error(
        `the schedule must fire every N minutes with N dividing 60 (got ${props.everyMinutes})`,
      );
    }
    const find = lambdaTask(this, TASK_STATES.findDueProjects, props.functions.findDueProjects, {
      payload: sfn.TaskInput.fromObject({ 'time.$': '$.time' }),
      timeout: FUNCTION_TIMEOUTS.control,
    });
    const start = new tasks.StepFunctionsStartExecution(this, TASK_STATES.startProjectWorkflow, {
      stateMachine: props.projectWorkflow,
      integrationPattern: sfn.IntegrationPattern.REQUEST_RESPONSE,
      name: sfn.JsonPath.stringAt('$.execution_name'),
      input: sfn.TaskInput.fromObject({ 'project_id.$': '$.project_id', 'tick.$': '$.tick' }),
      resultPath: sfn.JsonPath.DISCARD,
    });
    start.addCatch(new sfn.Pass(this, 'Already started'), { errors: [EXECUTION_EXISTS_ERROR] });
    const startAll = new sfn.Map(this, 'Start project workflows', {
      itemsPath: '$.projects',
      maxConcurrency: 10,
      itemSelector: {
        'project_id.$': '$$.Map.Item.Value.project_id',
        'execution_name.$': '$$.Map.Item.Value.execution_name',
        'tick.$': '$.tick',
      },
      resultPath: sfn.JsonPath.DISCARD,
    }).itemProcessor(start);

    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      definitionBody: sfn.DefinitionBody.fromChainable(find.next(startAll)),
      timeout: props.timeout,
      ...workflowObservability(this, 'Logs', props.logRetention, props.encryptionKey),
    });
    grantExecutionKey(this.stateMachine, props.projectWorkflow, props.encryptionKey);
    // The scheduled event itself is the input: its `time` is the tick.
    this.scheduleRole = new iam.Role(this, 'ScheduleRole', {
      assumedBy: new iam.ServicePrincipal('events.amazonaws.com'),
      description: 'Starts the pipelines dispatcher on schedule',
    });
    grantExecutionKey(this.scheduleRole, this.stateMachine, props.encryptionKey);
    this.scheduleDeadLetters = deadLetterQueue(
      this,
      'ScheduleDeadLetters',
      props.encryptionKey,
      "the schedule target's",
    );
    this.schedule = new events.Rule(this, 'Schedule', {
      description: 'Fires the pipelines dispatcher',
      schedule: events.Schedule.cron({ minute: `0/${props.everyMinutes}` }),
      targets: [
        new targets.SfnStateMachine(this.stateMachine, {
          retryAttempts: 4,
          role: this.scheduleRole,
          deadLetterQueue: this.scheduleDeadLetters,
        }),
      ],
    });
  }
}
