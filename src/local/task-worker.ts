/**
 * Worker-thread entry of the local runtime: runs one ingest or export task, the same functions the
 * Lambda handlers call, so both cores are busy during a local run.
 */

import { parseEventsPipelineConfig } from '../core/pipeline-config.js';
import type { IngestRecord, StepPlan, TaskResult } from '../core/records.js';
import { runExportTask } from '../engine/export-task.js';
import { ingestArrivalHour } from '../engine/ingest.js';
import { type LocalFolders, localStores } from './local-stores.js';

/** A unit of work sent to a worker (plain data: it crosses a thread boundary). */
export type WorkerTask =
  | {
      readonly type: 'ingest';
      readonly folders: LocalFolders;
      readonly config: unknown;
      readonly arrivalHour: number;
    }
  | {
      readonly type: 'export';
      readonly folders: LocalFolders;
      readonly config: unknown;
      readonly plan: StepPlan;
      readonly task: number;
    };

/** Runs one task in this worker. */
export default async function runWorkerTask(task: WorkerTask): Promise<IngestRecord | TaskResult> {
  const stores = localStores(task.folders);
  const config = parseEventsPipelineConfig(task.config);
  if (task.type === 'ingest') return ingestArrivalHour(stores, config, task.arrivalHour);
  return runExportTask(stores, config, task.plan, task.task);
}
