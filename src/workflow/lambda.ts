/**
 * What every Lambda handler in `functions/` shares: the runtime built once per container from the
 * validated environment, structured logs (Powertools Logger), CloudWatch metrics (Powertools
 * Metrics, embedded metric format: no PutMetricData calls) and X-Ray subsegments for every AWS SDK
 * call (Powertools Tracer).
 */

import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { GlueClient } from '@aws-sdk/client-glue';
import { S3Client } from '@aws-sdk/client-s3';
import { awsStores, destinationClients } from '../adapters/aws-stores.js';
import { DynamoConfigStore } from '../adapters/dynamo-config-store.js';
import { DynamoLedger } from '../adapters/dynamo-ledger.js';
import { DynamoLockStore } from '../adapters/dynamo-lock-store.js';
import { EventBridgeSink } from '../adapters/eventbridge-sink.js';
import { GlueCatalog } from '../adapters/glue-catalog.js';
import type { MetricsSink } from '../core/ports.js';
import { invocationKeys, METRICS, METRICS_NAMESPACE, outputSummary } from '../core/workflow.js';
import { readLambdaEnvironment } from './lambda-environment.js';
import type { Runtime } from './runtime.js';

const logger = new Logger();
const metrics = new Metrics({ namespace: METRICS_NAMESPACE });
/**
 * Active only where Lambda sets `AWS_EXECUTION_ENV` (not in tests or local runs, which send no
 * segments). Every outgoing call is an SDK call traced by its client: HTTP capture would trace each twice.
 */
const tracer = new Tracer({ captureHTTPsRequests: false });
const traced = <C>(client: C): C => tracer.captureAWSv3Client(client);
let runtime: Runtime | undefined;

/**
 * Wraps an activity as a Lambda handler: the event is the state's input (the activity parses it), the
 * result its output.
 */
export function lambdaHandler<O>(activity: (rt: Runtime, input: unknown) => Promise<O>) {
  return async (event: unknown, context: { awsRequestId?: string; functionName?: string }): Promise<O> => {
    logger.addContext(context as Parameters<Logger['addContext']>[0]);
    // Every line of this invocation names its project, pipeline, step and hour or task.
    const keys = invocationKeys(event);
    logger.appendKeys({ ...keys });
    const started = Date.now();
    runtime ??= lambdaRuntime();
    try {
      const output = await activity(runtime, event);
      logger.info('activity done', { duration_ms: Date.now() - started, ...outputSummary(output) });
      return output;
    } catch (error) {
      logger.error('activity failed', { duration_ms: Date.now() - started, error: error as Error });
      throw error;
    } finally {
      logger.removeKeys(Object.keys(keys));
      metrics.publishStoredMetrics();
    }
  };
}

function lambdaRuntime(): Runtime {
  const env = readLambdaEnvironment(process.env);
  const s3 = traced(new S3Client({}));
  const dynamo = traced(new DynamoDBClient({}));
  const buckets = { raw: env.RAW_BUCKET, destination: env.DESTINATION_BUCKET, state: env.STATE_BUCKET };
  const clients = destinationClients(traced);
  return {
    configs: new DynamoConfigStore({
      client: dynamo,
      configsTable: env.CONFIGS_TABLE,
      stateTable: env.STATE_TABLE,
    }),
    locks: new DynamoLockStore({ client: dynamo, tableName: env.STATE_TABLE }),
    ledger: new DynamoLedger(dynamo, env.STATE_TABLE),
    events: new EventBridgeSink(traced(new EventBridgeClient({})), env.EVENT_BUS_NAME),
    metrics: powertoolsMetrics,
    log: {
      info: (message, fields) => logger.info(message, fields ?? {}),
      warn: (message, fields) => logger.warn(message, fields ?? {}),
    },
    clock: Date.now,
    leaseMs: env.LEASE_SECONDS * 1000,
    stores: (config) => awsStores(s3, buckets, config, clients),
    warehouse: {
      catalog: new GlueCatalog(traced(new GlueClient({}))),
      destinationBucket: (config) => config.s3_bucket ?? env.DESTINATION_BUCKET,
    },
  };
}

const SECONDS = new Set<string>([METRICS.exportLag, METRICS.syncExportLag, METRICS.duration]);

/** Each value twice: per pipeline, and across pipelines (the alarms' view). */
const powertoolsMetrics: MetricsSink = {
  record(dimensions, values) {
    for (const [name, value] of Object.entries(values)) {
      const unit = SECONDS.has(name) ? MetricUnit.Seconds : MetricUnit.Count;
      metrics.addMetric(name, unit, value);
      const single = metrics.singleMetric();
      single.addDimensions({ ...dimensions });
      single.addMetric(name, unit, value);
    }
  },
};
