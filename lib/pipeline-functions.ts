import { fileURLToPath } from 'node:url';
import { Duration, Validations } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sources from 'aws-cdk-lib/aws-lambda-event-sources';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { LAMBDA_ENVIRONMENT } from '../src/workflow/lambda-environment.js';
import {
  grantCatalog,
  grantItemActions,
  grantList,
  grantObjects,
  grantSendTo,
  OBJECT_KEYS,
} from './grants.js';

/** The repository root (this file runs from `dist/lib/`): entries and the lock file live there. */
const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Timeouts of the functions that coordinate (little work each) and of those that move data. */
export const FUNCTION_TIMEOUTS = { control: Duration.minutes(2), data: Duration.minutes(15) } as const;

/**
 * How the config reviewer reads the config table stream: from the oldest record kept (so an edit made
 * while the stack deploys is reviewed too), inserts and modifications only (a removed pipeline has
 * nothing to review), a failing batch split to isolate the record, and retried before it is parked.
 */
export const CONFIG_REVIEW_STREAM = {
  startingPosition: lambda.StartingPosition.TRIM_HORIZON,
  eventNames: ['INSERT', 'MODIFY'],
  batchSize: 25,
  retryAttempts: 5,
} as const;

/** A queue's encryption: the customer key when there is one, SQS-managed keys otherwise. */
function queueEncryption(encryptionKey: kms.IKey | undefined): sqs.QueueProps {
  return encryptionKey === undefined
    ? { encryption: sqs.QueueEncryption.SQS_MANAGED }
    : { encryption: sqs.QueueEncryption.KMS, encryptionMasterKey: encryptionKey };
}

/**
 * A dead-letter queue (encrypted, SSL only, messages kept 14 days) of `whose` (e.g. "the schedule
 * target's"), which cdk-nag does not recognise as one (SQS3 asks a queue for a dead-letter queue).
 */
export function deadLetterQueue(
  scope: Construct,
  id: string,
  encryptionKey: kms.IKey | undefined,
  whose: string,
): sqs.Queue {
  const queue = new sqs.Queue(scope, id, {
    ...queueEncryption(encryptionKey),
    enforceSSL: true,
    retentionPeriod: Duration.days(14),
  });
  Validations.of(queue).acknowledge({
    id: 'AwsSolutions-SQS3',
    reason: `This queue is itself a dead-letter queue: ${whose}, which cdk-nag does not recognise as one.`,
  });
  return queue;
}

/** Props of the pipelines' Lambda functions. */
export interface PipelineFunctionsProps {
  /** The raw landing zone (read only). */
  readonly rawBucket: s3.IBucket;
  /** Where exports go (written under `<project_id>/`). */
  readonly destinationBucket: s3.IBucket;
  /** Private state and staging. */
  readonly stateBucket: s3.IBucket;
  readonly configsTable: dynamodb.ITable;
  readonly stateTable: dynamodb.ITable;
  /** The bus step outcome events go to. */
  readonly eventBus: events.IEventBus;
  /** How long a project lock holds without renewal. */
  readonly leaseSeconds: number;
  /** Days function logs are kept. */
  readonly logRetention: logs.RetentionDays;
  /** The `service` name in logs and metrics (Powertools). */
  readonly service: string;
  /**
   * Reserved (so also the most) concurrent executions of each fan-out function, ingest-hour and
   * export-task.
   * @default no reservation: they share the account's unreserved concurrency with everything else
   */
  readonly dataFunctionConcurrency?: number;
  /**
   * Customer key for the functions' log groups and the review failure queue.
   * @default CloudWatch Logs' own encryption, and SQS-managed encryption for the queue
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * IAM roles (in other accounts) that pipelines write their destination through (`s3_role`): the
   * functions writing destinations (ingest-hour, export-task, commit-step) may `sts:AssumeRole` exactly
   * these.
   * @default none: no function may assume a role
   */
  readonly destinationRoleArns?: readonly string[];
}

/** One Lambda per Task of the workflows; the handlers in `functions/` are thin adapters over the core. */
export class PipelineFunctions extends Construct {
  public readonly findDueProjects: lambda.IFunction;
  public readonly acquireLock: lambda.IFunction;
  public readonly releaseLock: lambda.IFunction;
  public readonly pickNextStep: lambda.IFunction;
  public readonly prepareIngest: lambda.IFunction;
  public readonly ingestHour: lambda.IFunction;
  public readonly planStep: lambda.IFunction;
  public readonly exportTask: lambda.IFunction;
  public readonly commitStep: lambda.IFunction;
  public readonly recordFailure: lambda.IFunction;
  /** Releases the lock a project workflow that timed out, was aborted or failed may have left. */
  public readonly releaseAbandonedLock: lambda.IFunction;
  /** The console-edit validator, on the config table stream. */
  public readonly reviewConfig: lambda.IFunction;
  /** Reconciles every pipeline from its ingest and run records (daily). */
  public readonly reconcilePipelines: lambda.IFunction;
  /** Where the stream records the reviewer still failed on after its retries go (their stream positions). */
  public readonly reviewConfigFailures: sqs.Queue;
  /** The functions that write pipeline destinations, through an assumed role when a pipeline has one. */
  public readonly destinationWriters: readonly lambda.IFunction[];

  constructor(scope: Construct, id: string, props: PipelineFunctionsProps) {
    super(scope, id);
    const { rawBucket, destinationBucket, stateBucket, configsTable, stateTable, eventBus } = props;
    const environment: Record<keyof typeof LAMBDA_ENVIRONMENT, string> = {
      RAW_BUCKET: rawBucket.bucketName,
      DESTINATION_BUCKET: destinationBucket.bucketName,
      STATE_BUCKET: stateBucket.bucketName,
      CONFIGS_TABLE: configsTable.tableName,
      STATE_TABLE: stateTable.tableName,
      EVENT_BUS_NAME: eventBus.eventBusName,
      LEASE_SECONDS: String(props.leaseSeconds),
    };
    const make = (name: string, description: string, size: 'control' | 'data', reserved?: number) =>
      this.makeFunction(
        name,
        description,
        size,
        { ...environment, POWERTOOLS_SERVICE_NAME: props.service },
        props.logRetention,
        props.encryptionKey,
        reserved,
      );

    // Each function gets exactly what its activity does (src/workflow/activities.ts): the item
    // actions its stores send, and objects under the keys it reads, writes or deletes.
    const { state, staging, raw, quarantine, exports, warehouse } = OBJECT_KEYS;

    /**
     * What deciding a pipeline's status needs: read the project (the revision item, then a Query of its
     * configs) and each pipeline's state (backlog, the settings it was built with), and update the
     * config item and the revision item in one transaction.
     */
    const grantStatusChanges = (fn: lambda.IFunction): void => {
      grantItemActions(configsTable, fn, 'write', 'dynamodb:Query', 'dynamodb:UpdateItem');
      grantItemActions(stateTable, fn, 'write', 'dynamodb:GetItem', 'dynamodb:UpdateItem');
      grantObjects(fn, stateBucket, ['read'], state);
      grantList(fn, stateBucket);
    };

    this.findDueProjects = make(
      'find-due-projects',
      'Lists the projects with due steps at a tick',
      'control',
    );
    // Scans every config, and pauses ended trials deciding as the reviewer does.
    grantItemActions(configsTable, this.findDueProjects, 'read', 'dynamodb:Scan');
    grantStatusChanges(this.findDueProjects);

    this.acquireLock = make('acquire-lock', 'Takes a project lock with a lease', 'control');
    // Conditional updates (a takeover moves the fencing token), then a read of the holder when they fail.
    grantItemActions(stateTable, this.acquireLock, 'write', 'dynamodb:UpdateItem', 'dynamodb:GetItem');
    this.releaseLock = make('release-lock', 'Releases a project lock held by the caller', 'control');
    // The lock item stays, with its token: a release removes the holder.
    grantItemActions(stateTable, this.releaseLock, 'write', 'dynamodb:UpdateItem');

    this.pickNextStep = make('pick-next-step', "Picks a project's next step, round-robin", 'control');
    // Renews the lease, reads the project and the cursor, moves the cursor; reads each backlog.
    grantItemActions(configsTable, this.pickNextStep, 'read', 'dynamodb:Query');
    grantItemActions(
      stateTable,
      this.pickNextStep,
      'write',
      'dynamodb:UpdateItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
    );
    grantObjects(this.pickNextStep, stateBucket, ['read'], state);
    grantList(this.pickNextStep, stateBucket);

    /**
     * What every activity of a step does first: read its pipeline's config (steps carry only its
     * fingerprint) and, before each write, check the project lock still holds with its token.
     */
    const grantStepContext = (fn: lambda.IFunction): void => {
      grantItemActions(configsTable, fn, 'read', 'dynamodb:GetItem');
      grantItemActions(stateTable, fn, 'read', 'dynamodb:GetItem');
    };

    this.prepareIngest = make(
      'prepare-ingest',
      'Lists the arrival hours a step still needs ingested',
      'control',
    );
    grantStepContext(this.prepareIngest);
    grantObjects(this.prepareIngest, stateBucket, ['read', 'write'], state);
    grantList(this.prepareIngest, stateBucket);
    // Lists the folders already read, for late objects to assign (never reads them).
    grantList(this.prepareIngest, rawBucket);

    // A data function: planning a people or identity snapshot folds the run's links and ids, the heaviest fold.
    this.planStep = make('plan-step', 'Plans the export tasks of a step', 'data');
    grantStepContext(this.planStep);
    // Reads the ingest records the staging index names (never the staged objects).
    grantObjects(this.planStep, stateBucket, ['read', 'write'], state);
    grantList(this.planStep, stateBucket);

    // The fan-out functions are capped (their concurrency reserved): many busy projects' ingest and
    // export tasks cannot take the account's whole concurrency from the functions holding the locks.
    this.ingestHour = make(
      'ingest-hour',
      'Validates, quarantines and stages one arrival hour',
      'data',
      props.dataFunctionConcurrency,
    );
    grantStepContext(this.ingestHour);
    grantObjects(this.ingestHour, rawBucket, ['read'], raw);
    grantList(this.ingestHour, rawBucket);
    // Pieces, ingest records and a snapshot pipeline's pending updates (the pieces go once the hour is
    // committed); staged events; quarantined lines and objects set aside (a restarted piece's strays go).
    grantObjects(this.ingestHour, stateBucket, ['read', 'write', 'delete'], state);
    grantObjects(this.ingestHour, stateBucket, ['write'], staging);
    grantList(this.ingestHour, stateBucket);
    grantObjects(this.ingestHour, destinationBucket, ['write', 'delete'], quarantine);
    grantList(this.ingestHour, destinationBucket);

    this.exportTask = make(
      'export-task',
      'Exports one task of a step: dedup, parts',
      'data',
      props.dataFunctionConcurrency,
    );
    grantStepContext(this.exportTask);
    // The plan, task results and a snapshot's new tables; staged events; the parts it exports.
    grantObjects(this.exportTask, stateBucket, ['read', 'write'], state);
    grantObjects(this.exportTask, stateBucket, ['read'], staging);
    grantList(this.exportTask, stateBucket);
    grantObjects(this.exportTask, destinationBucket, ['write'], exports);

    this.commitStep = make('commit-step', 'Writes manifests and the run record of a step', 'control');
    grantStepContext(this.commitStep);
    // Run record, dropped work files, tables and index markers; manifests, and parts of crashed
    // attempts or of the snapshot replaced; staged events no step needs any more.
    grantObjects(this.commitStep, stateBucket, ['read', 'write', 'delete'], state);
    grantObjects(this.commitStep, stateBucket, ['delete'], staging);
    grantList(this.commitStep, stateBucket);
    grantObjects(this.commitStep, destinationBucket, ['write', 'delete'], exports);
    // A snapshot's symlink file, which the warehouse's snapshot table reads.
    grantObjects(this.commitStep, destinationBucket, ['write'], warehouse);
    grantList(this.commitStep, destinationBucket);
    // Keeps the pipeline's warehouse tables in the project's Glue database.
    grantCatalog(this.commitStep, this);
    // Renews the lease, records the run.
    grantItemActions(stateTable, this.commitStep, 'write', 'dynamodb:UpdateItem', 'dynamodb:PutItem');
    eventBus.grantPutEventsTo(this.commitStep);

    this.releaseAbandonedLock = make(
      'release-abandoned-lock',
      'Releases the lock of a project workflow that ended without releasing it',
      'control',
    );
    grantItemActions(stateTable, this.releaseAbandonedLock, 'write', 'dynamodb:UpdateItem');

    this.recordFailure = make('record-failure', 'Records a failed step and announces it', 'control');
    grantItemActions(stateTable, this.recordFailure, 'write', 'dynamodb:PutItem');
    // Whether the step committed after all: its config, then its run record.
    grantItemActions(configsTable, this.recordFailure, 'read', 'dynamodb:GetItem');
    grantObjects(this.recordFailure, stateBucket, ['read'], state);
    grantList(this.recordFailure, stateBucket);
    eventBus.grantPutEventsTo(this.recordFailure);

    // A data function: a pipeline's history is thousands of small records, read for every pipeline.
    this.reconcilePipelines = make(
      'reconcile-pipelines',
      'Reconciles every pipeline from its ingest and run records',
      'data',
    );
    grantItemActions(configsTable, this.reconcilePipelines, 'read', 'dynamodb:Scan');
    grantObjects(this.reconcilePipelines, stateBucket, ['read'], state);
    grantList(this.reconcilePipelines, stateBucket);

    this.reviewConfig = make(
      'review-config',
      'Reviews edited pipeline configs from the config table stream',
      'control',
    );
    grantStatusChanges(this.reviewConfig);
    this.reviewConfigFailures = deadLetterQueue(
      this,
      'ReviewConfigFailures',
      props.encryptionKey,
      'the on-failure destination of the config stream event source mapping',
    );
    // The mapping sends as the function's role: exactly SendMessage to this queue (and its key), not
    // the wider set (and key action wildcards) of CDK's SqsDlq.
    const failureQueue: lambda.IEventSourceDlq = {
      bind: (_mapping, fn) => {
        grantSendTo(fn, this.reviewConfigFailures);
        return { destination: this.reviewConfigFailures.queueArn };
      },
    };
    this.reviewConfig.addEventSource(
      new sources.DynamoEventSource(configsTable, {
        startingPosition: CONFIG_REVIEW_STREAM.startingPosition,
        batchSize: CONFIG_REVIEW_STREAM.batchSize,
        filters: [
          lambda.FilterCriteria.filter({
            eventName: lambda.FilterRule.or(...CONFIG_REVIEW_STREAM.eventNames),
          }),
        ],
        bisectBatchOnError: true,
        retryAttempts: CONFIG_REVIEW_STREAM.retryAttempts,
        onFailure: failureQueue,
      }),
    );

    this.destinationWriters = [this.ingestHour, this.exportTask, this.commitStep];
    const roleArns = [...new Set(props.destinationRoleArns ?? [])];
    if (roleArns.length > 0) {
      for (const fn of this.destinationWriters)
        fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['sts:AssumeRole'], resources: roleArns }));
    }
  }

  private makeFunction(
    name: string,
    description: string,
    size: 'control' | 'data',
    environment: Record<string, string>,
    retention: logs.RetentionDays,
    encryptionKey: kms.IKey | undefined,
    reservedConcurrentExecutions: number | undefined,
  ): nodejs.NodejsFunction {
    const id = name
      .split('-')
      .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
      .join('');
    const logGroup = new logs.LogGroup(this, `${id}Logs`, {
      retention,
      ...(encryptionKey === undefined ? {} : { encryptionKey }),
    });
    // Its own role writing its own log group only, instead of AWSLambdaBasicExecutionRole (which may
    // create and write every log group of the account).
    const role = new iam.Role(this, `${id}Role`, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Runs the ${name} function`,
    });
    logGroup.grantWrite(role);
    const fn = new nodejs.NodejsFunction(this, id, {
      description,
      role,
      entry: `${PROJECT_ROOT}functions/${name}.ts`,
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: `${PROJECT_ROOT}package-lock.json`,
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      // Data functions stream and gzip: 2 GB gives them more than one vCPU; control functions do little.
      memorySize: size === 'data' ? 2048 : 512,
      timeout: FUNCTION_TIMEOUTS[size],
      ...(reservedConcurrentExecutions === undefined ? {} : { reservedConcurrentExecutions }),
      environment,
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      tracing: lambda.Tracing.ACTIVE,
      bundling: {
        format: nodejs.OutputFormat.ESM,
        target: 'node22',
        minify: true,
        sourceMap: true,
        // Bundle the SDK too: the versions tested are the versions deployed.
        externalModules: [],
        mainFields: ['module', 'main'],
        banner: "import { createRequire } from 'module'; const require = createRequire(import.meta.url);",
      },
    });
    Validations.of(fn).acknowledge({
      id: 'AwsSolutions-L1',
      reason:
        'Node.js 22 is the runtime the project supports and tests (the v3 SDK requires Node 22 from 2027); newer runtimes are adopted after testing.',
    });
    return fn;
  }
}
