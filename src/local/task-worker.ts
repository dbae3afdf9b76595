/**
 * Worker-thread entry of the local runtime: runs one ingest or export activity, the same code the
 * Lambda functions run, so every core is busy during a local run. Metrics cross back to the caller.
 */
import type { PipelineConfig } from '../core/pipeline-config.js';
import type { ExportTaskInput, IngestHourInput } from '../core/workflow.js';
import { exportTask, ingestHour } from '../workflow/activities.js';
import { type LocalFolders, localStores } from './local-stores.js';

/** A unit of work sent to a worker (plain data: it crosses a thread boundary). */
export type WorkerTask =
  | { readonly type: 'ingest'; readonly folders: LocalFolders; readonly input: IngestHourInput }
  | { readonly type: 'export'; readonly folders: LocalFolders; readonly input: ExportTaskInput };

/** Metric values recorded by the activity, to replay on the caller's sink. */
export type RecordedMetrics = [{ project_id: string; pipeline: string }, Record<string, number>][];

/** What a worker returns: the activity's output and its metrics. */
export interface WorkerResult {
  readonly output: unknown;
  readonly metrics: RecordedMetrics;
}

/** Runs one task in this worker. */
export default async function runWorkerTask(task: WorkerTask): Promise<WorkerResult> {
  const metrics: RecordedMetrics = [];
  const rt = {
    stores: (_config: PipelineConfig) => localStores(task.folders),
    metrics: {
      record: (dimensions: RecordedMetrics[number][0], values: Record<string, number>) =>
        void metrics.push([dimensions, { ...values }]),
    },
  };
  const output = task.type === 'ingest' ? await ingestHour(rt, task.input) : await exportTask(rt, task.input);
  return { output, metrics };
}
