import { availableParallelism } from 'node:os';
import pLimit, { type LimitFunction } from 'p-limit';
import { Piscina } from 'piscina';
import { ConfigError } from '../core/errors.js';
import {
  hourIso,
  INGEST_RECORDS_PREFIX,
  ingestRecordKey,
  isIngestRecordKey,
  PIPELINE_STATE_KEY,
  RUN_RECORDS_PREFIX,
} from '../core/layout.js';
import { getJson, listAll, putJson } from '../core/object-store.js';
import type { EventsPipelineConfig } from '../core/pipeline-config.js';
import { type Reconciliation, reconcile } from '../core/reconcile.js';
import type { IngestRecord, RunRecord, StepPlan, TaskResult } from '../core/records.js';
import { completeArrivalHours, dueSteps, ingestStart } from '../core/routing.js';
import { ZoneCalendar } from '../core/windows.js';
import { commitStep } from '../engine/commit.js';
import { runExportTask } from '../engine/export-task.js';
import { ingestArrivalHour } from '../engine/ingest.js';
import { advanceIngestWatermark, type PlanLimits, planStep, readIngestWatermark } from '../engine/plan.js';
import type { EngineStores } from '../engine/stores.js';
import { type LocalFolders, localStores } from './local-stores.js';
import type { WorkerTask } from './task-worker.js';

/** Runs the two kinds of parallel work of a pipeline: ingest of an arrival hour, one export task. */
export interface TaskExecutor {
  /** Tasks run at once. */
  readonly concurrency: number;
  ingest(arrivalHour: number): Promise<IngestRecord>;
  exportTask(plan: StepPlan, task: number): Promise<TaskResult>;
}

/** An executor that runs tasks in this thread, against any stores (S3 included). */
export function inProcessExecutor(
  stores: EngineStores,
  config: EventsPipelineConfig,
  concurrency = 2,
): TaskExecutor {
  return {
    concurrency,
    ingest: (arrivalHour) => ingestArrivalHour(stores, config, arrivalHour),
    exportTask: (plan, task) => runExportTask(stores, config, plan, task),
  };
}

/** Options of one run of the due steps of one pipeline. */
export interface RunOptions {
  readonly stores: EngineStores;
  readonly config: EventsPipelineConfig;
  /** The instant the run pretends it is: steps due at `now` run. */
  readonly now: number;
  readonly executor: TaskExecutor;
  /** Receives progress lines. */
  readonly progress?: (message: string) => void;
  /** How steps are cut into tasks; default `DEFAULT_PLAN_LIMITS`. */
  readonly planLimits?: PlanLimits;
  /** Wall clock for run records (durations); default `Date.now`. */
  readonly clock?: () => number;
}

/** What a run did, and the pipeline's reconciliation after it. */
export interface RunResult {
  readonly ingestedHours: number;
  readonly steps: readonly RunRecord[];
  readonly failures: readonly string[];
  readonly reconciliation: Reconciliation;
  /** True when nothing failed and everything balances. */
  readonly ok: boolean;
}

/**
 * Runs every step of one pipeline due at `now`: ingests each complete arrival hour not yet ingested
 * (in parallel), then runs the due steps one at a time (one running step per project), each fanning
 * its export tasks out over the executor, and reconciles. Steps already committed are skipped, so the
 * same stores can be run again later (incremental) and end as one run would. A failed ingest or step
 * is reported and the rest goes on; steps that depend on a failed ingest wait for a later run.
 */
export async function runDueSteps(options: RunOptions): Promise<RunResult> {
  const { config, stores, now, executor } = options;
  const progress = options.progress ?? (() => undefined);
  const clock = options.clock ?? Date.now;
  await checkStateConfig(stores, config);
  const calendar = new ZoneCalendar(config.time_zone);
  const failures: string[] = [];
  const limit = pLimit(executor.concurrency);
  const ingestedHours = await ingestDueHours(options, limit, failures, progress);
  const committed = new Set(
    (await listAll(stores.state, RUN_RECORDS_PREFIX)).map((o) =>
      o.key.slice(RUN_RECORDS_PREFIX.length, -'.json'.length),
    ),
  );
  const due = dueSteps(config, calendar, now).filter((d) => !committed.has(d.id));
  const steps: RunRecord[] = [];
  for (const [index, { step, id }] of due.entries()) {
    const startedAt = clock();
    try {
      const plan = await planStep(stores, config, step, options.planLimits);
      await Promise.all(plan.tasks.map((_, task) => limit(() => executor.exportTask(plan, task))));
      const record = await commitStep(stores, config, plan, { startedAt, finishedAt: clock() });
      steps.push(record);
      progress(
        `step ${index + 1}/${due.length} ${id}: exported ${record.exported}, dropped ${record.duplicates} duplicates, ` +
          `${record.parts} parts, ${record.tasks} tasks, ${record.duration_ms} ms`,
      );
    } catch (error) {
      failures.push(`step ${id} failed: ${messageOf(error)}`);
      progress(`step ${index + 1}/${due.length} ${id}: FAILED: ${messageOf(error)}`);
    }
  }
  const reconciliation = await reconcileState(stores);
  return {
    ingestedHours,
    steps,
    failures,
    reconciliation,
    ok: failures.length === 0 && reconciliation.problems.length === 0,
  };
}

/** Options of a local run over folders, with tasks on worker threads. */
export interface LocalRunOptions extends Omit<RunOptions, 'stores' | 'executor'> {
  readonly folders: LocalFolders;
  /** Worker threads of the pool this run creates; default: one per core. */
  readonly workers?: number;
  /** A pool to use instead (and leave running): callers making many runs save the thread start-ups. */
  readonly pool?: LocalTaskPool;
}

/** `runDueSteps` over local folders, with ingest and export tasks on worker threads. */
export async function runLocalPipeline(options: LocalRunOptions): Promise<RunResult> {
  const pool = options.pool ?? new LocalTaskPool(options.workers);
  const { folders, config } = options;
  try {
    return await runDueSteps({
      ...options,
      stores: localStores(folders),
      executor: {
        concurrency: pool.threads * TASKS_PER_THREAD,
        ingest: (arrivalHour) =>
          pool.run({ type: 'ingest', folders, config, arrivalHour }) as Promise<IngestRecord>,
        exportTask: (plan, task) =>
          pool.run({ type: 'export', folders, config, plan, task }) as Promise<TaskResult>,
      },
    });
  } finally {
    if (options.pool === undefined) await pool.destroy();
  }
}

const TASKS_PER_THREAD = 2;

/** The worker threads that run ingest and export tasks, one per core by default. */
export class LocalTaskPool {
  private readonly piscina: Piscina<WorkerTask, IngestRecord | TaskResult>;

  constructor(readonly threads = availableParallelism()) {
    this.piscina = new Piscina({
      filename: new URL('./task-worker.js', import.meta.url).href,
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: 60_000,
      // gzip and file I/O run on libuv's thread pool: a second task keeps the thread busy meanwhile.
      concurrentTasksPerWorker: TASKS_PER_THREAD,
    });
  }

  /** Runs one task on a worker thread. */
  run(task: WorkerTask): Promise<IngestRecord | TaskResult> {
    return this.piscina.run(task);
  }

  /** Stops the threads. */
  destroy(): Promise<void> {
    return this.piscina.destroy();
  }
}

async function ingestDueHours(
  options: RunOptions,
  limit: LimitFunction,
  failures: string[],
  progress: (message: string) => void,
): Promise<number> {
  const { config, stores, now, executor } = options;
  const calendar = new ZoneCalendar(config.time_zone);
  const start = ingestStart(config, calendar);
  const watermark = await readIngestWatermark(stores.state, start);
  const hours: number[] = [];
  for (const hour of completeArrivalHours(config, calendar, now)) {
    if (hour >= watermark && (await stores.state.getBytes(ingestRecordKey(hour))) === undefined)
      hours.push(hour);
  }
  let done = 0;
  let lines = 0;
  let lastReport = 0;
  await Promise.all(
    hours.map(async (arrivalHour) => {
      try {
        const record = await limit(() => executor.ingest(arrivalHour));
        lines += record.source_lines;
      } catch (error) {
        failures.push(`ingest of arrival hour ${hourIso(arrivalHour)} failed: ${messageOf(error)}`);
      }
      done += 1;
      if (done === hours.length || done - lastReport >= Math.max(1, Math.ceil(hours.length / 10))) {
        lastReport = done;
        progress(`ingested ${done}/${hours.length} arrival hours (${lines} source lines)`);
      }
    }),
  );
  await advanceIngestWatermark(stores.state, start);
  return hours.length;
}

/** Reconciles everything a pipeline's state holds. */
export async function reconcileState(stores: EngineStores): Promise<Reconciliation> {
  const ingests = await readAll<IngestRecord>(stores, INGEST_RECORDS_PREFIX, isIngestRecordKey);
  const runs = await readAll<RunRecord>(stores, RUN_RECORDS_PREFIX, (key) => key.endsWith('.json'));
  return reconcile(ingests, runs);
}

async function readAll<T>(
  stores: EngineStores,
  prefix: string,
  wanted: (key: string) => boolean,
): Promise<T[]> {
  const records: T[] = [];
  for (const { key } of await listAll(stores.state, prefix)) {
    if (!wanted(key)) continue;
    const record = await getJson<T>(stores.state, key);
    if (record !== undefined) records.push(record);
  }
  return records;
}

/** The state remembers the config it was built with; a run with another config would mix results. */
async function checkStateConfig(stores: EngineStores, config: EventsPipelineConfig): Promise<void> {
  const stored = await getJson<EventsPipelineConfig>(stores.state, PIPELINE_STATE_KEY);
  if (stored === undefined) {
    await putJson(stores.state, PIPELINE_STATE_KEY, config);
    return;
  }
  const differences = (Object.keys({ ...stored, ...config }) as (keyof EventsPipelineConfig)[]).filter(
    (field) => JSON.stringify(stored[field]) !== JSON.stringify(config[field]),
  );
  if (differences.length > 0) {
    throw new ConfigError(
      `the state in ${stores.state.description} belongs to pipeline "${stored.name}" created with other settings ` +
        `(${differences.map((f) => `${f}: ${JSON.stringify(stored[f])} then, ${JSON.stringify(config[f])} now`).join('; ')}). ` +
        'Use the same settings, or another --out or --state folder.',
    );
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
