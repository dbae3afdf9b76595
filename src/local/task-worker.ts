/**
 * Worker-thread entry of the local runtime: runs one ingest or export activity, the same code the
 * Lambda functions run, so every core is busy during a local run. Metrics cross back to the caller.
 */
import { DynamoConfigStore } from '../adapters/dynamo-config-store.js';
import type { PipelineConfig } from '../core/pipeline-config.js';
import type { ExportTaskInput, IngestHourInput } from '../core/workflow.js';
import type { IngestLimits } from '../engine/arrival-hour.js';
import { exportTask, ingestHour } from '../workflow/activities.js';
import type { DataRuntime } from '../workflow/runtime.js';
import { localLocks } from './control-plane.js';
import { dynamoClientFor } from './dynamo-tables.js';
import { type LocalFolders, localStores } from './local-stores.js';

/** Where a worker finds the pipeline configs and the project locks its writes are fenced by. */
export interface WorkerControl {
  readonly endpoint: string;
  readonly configsTable: string;
  readonly stateTable: string;
}

/** A unit of work sent to a worker (plain data: it crosses a thread boundary). */
export type WorkerTask = {
  readonly folders: LocalFolders;
  readonly control: WorkerControl;
  /** Simulated time minus real time when the task was sent: the worker's clock follows it. */
  readonly clockOffset: number;
  readonly ingestLimits?: IngestLimits;
} & (
  | { readonly type: 'ingest'; readonly input: IngestHourInput }
  | { readonly type: 'export'; readonly input: ExportTaskInput }
);

/** Metric values recorded by the activity, to replay on the caller's sink. */
export type RecordedMetrics = [{ project_id: string; pipeline: string }, Record<string, number>][];

/** What a worker returns: the activity's output (or its error), its metrics and its warnings. */
export interface WorkerResult {
  readonly output?: unknown;
  /** A thread boundary keeps only the standard error names: the name Retry and Catch match on travels here. */
  readonly error?: { readonly name: string; readonly message: string };
  readonly metrics: RecordedMetrics;
  readonly warnings: readonly string[];
}

const clients = new Map<string, ReturnType<typeof dynamoClientFor>>();

/** Runs one task in this worker. */
export default async function runWorkerTask(task: WorkerTask): Promise<WorkerResult> {
  const metrics: RecordedMetrics = [];
  const warnings: string[] = [];
  let dynamo = clients.get(task.control.endpoint);
  if (dynamo === undefined) {
    dynamo = dynamoClientFor(task.control.endpoint, { maxAttempts: 3 });
    clients.set(task.control.endpoint, dynamo);
  }
  const clock = () => Date.now() + task.clockOffset;
  const rt: DataRuntime = {
    stores: (_config: PipelineConfig) => localStores(task.folders, clock),
    metrics: {
      record: (dimensions, values) => void metrics.push([{ ...dimensions }, { ...values }]),
    },
    locks: localLocks({ dynamo, stateTable: task.control.stateTable }),
    configs: new DynamoConfigStore({ client: dynamo, ...task.control }),
    log: {
      info: () => undefined,
      warn: (message, fields) => void warnings.push(`${message} ${JSON.stringify(fields ?? {})}`),
    },
    ...(task.ingestLimits === undefined ? {} : { ingestLimits: task.ingestLimits }),
  };
  try {
    const output =
      task.type === 'ingest' ? await ingestHour(rt, task.input) : await exportTask(rt, task.input);
    return { output, metrics, warnings };
  } catch (error) {
    const { name, message } = error instanceof Error ? error : new Error(String(error));
    return { error: { name, message }, metrics, warnings };
  }
}
