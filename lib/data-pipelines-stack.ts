import { CfnOutput, Duration, Stack, type StackProps, Token } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { STACK_OUTPUTS } from '../src/core/tables.js';
import { DEFAULT_SCHEDULE_MINUTES } from '../src/core/workflow.js';
import { DataBucket } from './data-bucket.js';
import { Dispatcher } from './dispatcher.js';
import { PipelineAlarms } from './pipeline-alarms.js';
import { PipelineFunctions } from './pipeline-functions.js';
import { PipelineStateBucket } from './pipeline-state-bucket.js';
import { PipelineTables } from './pipeline-tables.js';
import { ProjectWorkflow, STEP_MARGIN } from './project-workflow.js';
import { StepWorkflow } from './step-workflow.js';
import { acknowledgeAcceptedWildcards } from './wildcard-acknowledgements.js';

/** The `service` dimension of the functions' metrics and logs. */
const SERVICE = 'mp-pipelines';

/** Props of the data pipelines stack. */
export interface DataPipelinesStackProps extends StackProps {
  /**
   * Days after which staged data no step removed is swept (see `PipelineStateBucketProps`).
   * @default 400
   */
  readonly stagingOrphanDays?: number;
  /**
   * Days a replaced or deleted object version is kept in the buckets the stack creates (a `$delete`d
   * profile leaves the last snapshot's parts this long after the snapshot replacing them).
   * @default 7
   */
  readonly noncurrentVersionDays?: number;
  /**
   * ARN of an existing customer-managed KMS key encrypting the tables and the buckets the stack creates
   * (SSE-KMS). Its key policy must let DynamoDB and S3 use it in this account.
   * @default no customer key: AWS-managed encryption for the tables, SSE-S3 for the buckets
   */
  readonly kmsKeyArn?: string;
  /**
   * An existing bucket holding the raw landing zone (`<project>/events/YYYY/MM/DD/HH/`), read only.
   * @default a new encrypted bucket
   */
  readonly rawBucketName?: string;
  /**
   * An existing bucket the exports go to (`<project>/mp_master_event/...`).
   * @default a new encrypted bucket
   */
  readonly destinationBucketName?: string;
  /**
   * Minutes between schedule ticks (a divisor of 60).
   * @default 15
   */
  readonly scheduleMinutes?: number;
  /**
   * Most ingest or export Lambdas one step runs at once (inline Map concurrency, at most 40).
   * @default 40
   */
  readonly fanOutWidth?: number;
  /**
   * Concurrent executions reserved for each of the two fan-out functions (ingest-hour, export-task),
   * which is also their cap: the data tasks of many busy projects (each fans out up to `fanOutWidth`)
   * cannot starve the functions that take and release locks, pick steps and record failures of the
   * account's concurrency (1000 by default). At least `fanOutWidth`; the account must keep 100
   * unreserved, so twice this must stay below its limit minus 100.
   * @default 300 (600 of the default 1000 reserved, 400 left for the rest)
   */
  readonly dataFunctionConcurrency?: number;
  /**
   * Longest a step may run before it counts as failed; the project lease is this plus 15 minutes, so a
   * live step never loses its lock and a dead one blocks its project this long at most.
   * @default 120
   */
  readonly stepTimeoutMinutes?: number;
  /**
   * ARNs of the IAM roles pipelines may write their destination through (a pipeline's `s3_role`, assumed
   * with its `s3_external_id`), typically in the accounts owning those buckets. The functions that write
   * destinations (ingest-hour for quarantine, export-task, commit-step) get `sts:AssumeRole` on exactly
   * these ARNs, no wildcard; a pipeline naming another role fails at its first destination write. Each
   * role's trust policy must let these functions' roles assume it (with the external id), and the role
   * carries the S3 (and KMS) permissions on the destination.
   * @default none: no function may assume a role, so pipelines write only with the stack's own grants
   */
  readonly destinationRoleArns?: readonly string[];
}

/** An IAM role ARN, without wildcards (`arn:aws:iam::<account>:role/<path/><name>`). */
const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/;

/** Everything a deployment of the data pipelines needs; composes constructs and holds no logic. */
export class DataPipelinesStack extends Stack {
  public readonly state: PipelineStateBucket;
  public readonly tables: PipelineTables;
  public readonly encryptionKey: kms.IKey | undefined;
  public readonly rawBucket: s3.IBucket;
  public readonly destinationBucket: s3.IBucket;
  public readonly functions: PipelineFunctions;
  public readonly stepWorkflow: StepWorkflow;
  public readonly projectWorkflow: ProjectWorkflow;
  public readonly dispatcher: Dispatcher;
  public readonly alarms: PipelineAlarms;

  constructor(scope: Construct, id: string, props: DataPipelinesStackProps = {}) {
    super(scope, id, props);
    this.encryptionKey =
      props.kmsKeyArn === undefined ? undefined : kms.Key.fromKeyArn(this, 'EncryptionKey', props.kmsKeyArn);
    const encryption = this.encryptionKey === undefined ? {} : { encryptionKey: this.encryptionKey };
    const fanOutWidth = props.fanOutWidth ?? 40;
    if (!Number.isInteger(fanOutWidth) || fanOutWidth < 1 || fanOutWidth > 40) {
      throw new Error(`fanOutWidth must be a whole number from 1 to 40 (got ${fanOutWidth})`);
    }
    const stepTimeout = Duration.minutes(props.stepTimeoutMinutes ?? 120);
    const dataFunctionConcurrency = props.dataFunctionConcurrency ?? 300;
    if (!Number.isInteger(dataFunctionConcurrency) || dataFunctionConcurrency < fanOutWidth) {
      throw new Error(
        `dataFunctionConcurrency must be a whole number, at least fanOutWidth (${fanOutWidth}) so one step can fan out fully (got ${dataFunctionConcurrency})`,
      );
    }
    for (const arn of props.destinationRoleArns ?? []) {
      if (!Token.isUnresolved(arn) && !ROLE_ARN.test(arn)) {
        throw new Error(
          `destinationRoleArns must be IAM role ARNs, arn:aws:iam::<account>:role/<name>, without wildcards (got ${arn})`,
        );
      }
    }
    const logRetention = logs.RetentionDays.THREE_MONTHS;

    const retention =
      props.noncurrentVersionDays === undefined ? {} : { noncurrentVersionDays: props.noncurrentVersionDays };
    this.state = new PipelineStateBucket(this, 'State', {
      ...encryption,
      ...retention,
      ...(props.stagingOrphanDays === undefined ? {} : { stagingOrphanDays: props.stagingOrphanDays }),
    });
    this.tables = new PipelineTables(this, 'Tables', encryption);
    const dataBucket = (name: string | undefined, id: string, prefix: string): s3.IBucket =>
      name === undefined
        ? new DataBucket(this, id, {
            accessLogsBucket: this.state.accessLogsBucket,
            accessLogsPrefix: prefix,
            ...encryption,
            ...retention,
          }).bucket
        : s3.Bucket.fromBucketName(this, id, name);
    this.rawBucket = dataBucket(props.rawBucketName, 'Raw', 'raw/');
    this.destinationBucket = dataBucket(props.destinationBucketName, 'Destination', 'destination/');

    this.functions = new PipelineFunctions(this, 'Functions', {
      rawBucket: this.rawBucket,
      destinationBucket: this.destinationBucket,
      stateBucket: this.state.bucket,
      configsTable: this.tables.configs,
      stateTable: this.tables.state,
      eventBus: events.EventBus.fromEventBusName(this, 'DefaultBus', 'default'),
      leaseSeconds: stepTimeout.plus(STEP_MARGIN).toSeconds(),
      logRetention,
      service: SERVICE,
      destinationRoleArns: props.destinationRoleArns ?? [],
      dataFunctionConcurrency,
      ...encryption,
    });
    this.stepWorkflow = new StepWorkflow(this, 'StepWorkflow', {
      functions: this.functions,
      fanOutWidth,
      timeout: stepTimeout,
      logRetention,
      ...encryption,
    });
    this.projectWorkflow = new ProjectWorkflow(this, 'ProjectWorkflow', {
      functions: this.functions,
      stepWorkflow: this.stepWorkflow.stateMachine,
      stepTimeout,
      logRetention,
      ...encryption,
    });
    this.dispatcher = new Dispatcher(this, 'Dispatcher', {
      functions: this.functions,
      projectWorkflow: this.projectWorkflow.stateMachine,
      everyMinutes: props.scheduleMinutes ?? DEFAULT_SCHEDULE_MINUTES,
      timeout: Duration.minutes(10),
      logRetention,
      ...encryption,
    });
    this.alarms = new PipelineAlarms(this, 'Alarms', {
      dispatcher: this.dispatcher.stateMachine,
      projectWorkflow: this.projectWorkflow.stateMachine,
      service: SERVICE,
      deadLetterQueues: [
        {
          id: 'ScheduleDeadLetters',
          what: 'The schedule could not start the dispatcher: ticks were skipped (the queue holds their events)',
          queue: this.dispatcher.scheduleDeadLetters,
        },
        {
          id: 'ReviewConfigFailures',
          what: 'The review function failed on config edits: those pipelines were not validated again (the queue holds their stream positions)',
          queue: this.functions.reviewConfigFailures,
        },
      ],
    });

    const outputs: [keyof typeof STACK_OUTPUTS, string, string][] = [
      ['stateBucketName', 'Bucket holding pipeline state and staging', this.state.bucket.bucketName],
      ['configsTableName', 'DynamoDB table of pipeline configs', this.tables.configs.tableName],
      ['stateTableName', 'DynamoDB table of project locks, run log and cursors', this.tables.state.tableName],
      ['rawBucketName', 'Bucket of the raw landing zone', this.rawBucket.bucketName],
      ['destinationBucketName', 'Bucket the exports are written to', this.destinationBucket.bucketName],
      ['dispatcherArn', 'State machine the schedule starts', this.dispatcher.stateMachine.stateMachineArn],
      [
        'projectWorkflowArn',
        'State machine running one project at a tick',
        this.projectWorkflow.stateMachine.stateMachineArn,
      ],
      [
        'stepWorkflowArn',
        'State machine running one pipeline step',
        this.stepWorkflow.stateMachine.stateMachineArn,
      ],
    ];
    for (const [key, description, value] of outputs)
      new CfnOutput(this, STACK_OUTPUTS[key], { description, value });
    acknowledgeAcceptedWildcards(this);
  }
}
