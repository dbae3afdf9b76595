/**
 * Local operation of pipelines through the synthesized workflows: a simulated clock fires the schedule
 * (skipping ticks at which nothing is due), the dispatcher starts project workflows, and those run
 * their steps, all with the real activities over local stores and DynamoDB tables on the emulator.
 */
import { DynamoConfigStore } from '../adapters/dynamo-config-store.js';
import { INGEST_RECORDS_PREFIX, isIngestRecordKey, runRecordKey } from '../core/layout.js';
import { getJson, listAll } from '../core/object-store.js';
import { configFingerprint, type PipelineConfig } from '../core/pipeline-config.js';
import type { EngineStores, MetricsSink } from '../core/ports.js';
import type { Reconciliation } from '../core/reconcile.js';
import type { RunRecord, StepRunEntry } from '../core/records.js';
import { DAY_MS } from '../core/windows.js';
import {
  DEFAULT_SCHEDULE_MINUTES,
  exportTaskInputSchema,
  ingestHourInputSchema,
  MAX_STEPS_PER_EXECUTION,
  parseProjectExecutionName,
  parseStateInput,
  STEP_FAILED,
  TASK_STATES,
} from '../core/workflow.js';
import type { IngestLimits } from '../engine/arrival-hour.js';
import { committedStepIds, firstPendingDue, pipelineBacklog } from '../engine/backlog.js';
import type { PlanLimits } from '../engine/plan.js';
import { reconcilePipeline } from '../engine/reconciliation.js';
import type { Runtime, WarehouseRuntime } from '../workflow/runtime.js';
import {
  type ControlPlane,
  localRuntime,
  RecordingEventSink,
  SummingMetrics,
  startControlPlane,
} from './control-plane.js';
import { applyExpiration, type ExpirationRule } from './lifecycle.js';
import { type LocalFolders, localStores } from './local-stores.js';
import {
  LocalWorkflows,
  type LocalWorkflowsOptions,
  NamedError,
  type TaskInterceptor,
} from './local-workflows.js';
import type { JSONValue } from './state-machines.js';
import { LocalTaskPool } from './task-pool.js';
import type { WorkerTask } from './task-worker.js';
import {
  loadStateExpiration,
  loadWorkflowDefinitions,
  type WorkflowDefinitions,
} from './workflow-definitions.js';

const MINUTE_MS = 60_000;

/** What a run gives the code it calls: its control plane and its simulated clock. */
export interface RunContext {
  readonly control: ControlPlane;
  readonly clock: () => number;
}

/** Options of a simulated operation of pipelines up to `now`. */
export interface PipelinesRunOptions {
  /** Configs stored as active pipelines before the run; the run operates every active pipeline. */
  readonly configs?: readonly PipelineConfig[];
  /** The stores of a pipeline; `clock` is the run's simulated clock (for write times). */
  readonly stores: (config: PipelineConfig, clock: () => number) => EngineStores;
  /** Operate until this instant: everything due by then runs. */
  readonly now: number;
  /**
   * DynamoDB tables to use, or their start under way (the caller stops them); default: a moto server
   * started and stopped by this run.
   */
  readonly control?: ControlPlane | Promise<ControlPlane>;
  /** Replaces Task states' local implementations (e.g. with worker threads), given the run's context. */
  readonly overrides?: (context: RunContext) => LocalWorkflowsOptions['overrides'];
  readonly intercept?: TaskInterceptor;
  readonly planLimits?: PlanLimits;
  readonly ingestLimits?: IngestLimits;
  /**
   * The state bucket's expiration rules, applied before every tick as S3 would.
   * @default the rules of the synthesized stack
   */
  readonly expiration?: readonly ExpirationRule[];
  /** Receives progress lines. */
  readonly progress?: (message: string) => void;
  /** @default DEFAULT_SCHEDULE_MINUTES */
  readonly scheduleMinutes?: number;
  /**
   * `schedule`: fire every tick of the schedule at which a step is due, as a deployment that ran all
   * along would (the demonstration). `catch-up`: fire just enough ticks, one minute apart, right
   * before `now` (a run over a backlog). The output is the same; catch-up makes far fewer ticks.
   * @default 'catch-up'
   */
  readonly ticks?: 'schedule' | 'catch-up';
  /** Where metrics go; default: summed in memory. */
  readonly metrics?: MetricsSink;
  /** `schedule` ticks: the first tick fires no earlier than this (where the simulated clock stopped). */
  readonly startAt?: number;
  /** Runs before each tick (the local place of the config stream's validator). */
  readonly beforeTick?: (tick: number, runtime: Runtime) => Promise<void>;
  /** Where commits keep warehouse tables; default: none are kept. */
  readonly warehouse?: WarehouseRuntime;
}

/** What a run did for one pipeline, and the pipeline's reconciliation after it. */
export interface RunResult {
  readonly config: PipelineConfig;
  readonly ingestedHours: number;
  /** Steps committed by this run, in commit order. */
  readonly steps: readonly RunRecord[];
  /** Steps that failed and are still not committed, with their errors. */
  readonly failures: readonly string[];
  readonly reconciliation: Reconciliation;
  /** True when nothing failed and everything balances. */
  readonly ok: boolean;
}

/** Results by pipeline (`<project>/<name>`), and the schedule ticks fired. */
export interface PipelinesRunResult {
  readonly results: ReadonlyMap<string, RunResult>;
  readonly ticks: number;
}

/** A pipeline's key in results: `<project>/<name>`. */
export function pipelineId(config: Pick<PipelineConfig, 'project_id' | 'name'>): string {
  return `${config.project_id}/${config.name}`;
}

/**
 * Operates pipelines until `now`: stores their configs, then fires ticks of the schedule (see
 * `ticks`), each time waiting for the workflows they start, until nothing is due or a failure repeats
 * (the next run retries it).
 */
export async function runPipelines(options: PipelinesRunOptions): Promise<PipelinesRunResult> {
  const { now } = options;
  const progress = options.progress ?? (() => undefined);
  const starting = Promise.resolve(options.control ?? startControlPlane());
  let definitions: WorkflowDefinitions;
  try {
    definitions = loadWorkflowDefinitions();
  } catch (error) {
    // The definitions' error is the one to report, whatever the emulator did meanwhile.
    if (options.control === undefined) await starting.then((plane) => plane.stop()).catch(() => undefined);
    throw error;
  }
  const control = await starting;
  try {
    let tickStart = { tick: now, wall: Date.now() };
    // Simulated time: the tick, plus the real time spent since it fired (run records get durations).
    const clock = () => tickStart.tick + (Date.now() - tickStart.wall);
    const storesOf = (config: PipelineConfig) => options.stores(config, clock);
    const events = new RecordingEventSink((type, detail) => progress(describeOutcome(type, detail)));
    const runtime = localRuntime({
      control,
      stores: storesOf,
      clock,
      events,
      progress,
      ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
      ...(options.planLimits === undefined ? {} : { planLimits: options.planLimits }),
      ...(options.ingestLimits === undefined ? {} : { ingestLimits: options.ingestLimits }),
      ...(options.warehouse === undefined ? {} : { warehouse: options.warehouse }),
    });
    for (const config of options.configs ?? []) await runtime.configs.put(config, tickStart.tick);
    // Every pipeline that can report: the active ones run, the others may have run before a pause.
    const reported = (await runtime.configs.listAll()).flatMap((p) =>
      p.config === undefined || p.management.status === 'deleted' ? [] : [p.config],
    );
    const before = await Promise.all(reported.map((c) => snapshot(storesOf(c))));
    const active = async (tick: number): Promise<readonly PipelineConfig[]> =>
      (await runtime.configs.listActive(undefined, tick)).configs;
    const overrides = options.overrides?.({ control, clock });
    const workflows = new LocalWorkflows({
      definitions,
      runtime,
      ...(overrides === undefined ? {} : { overrides }),
      ...(options.intercept === undefined ? {} : { intercept: options.intercept }),
    });
    const expiration = options.expiration ?? loadStateExpiration();
    // S3 applies lifecycle rules about once a day: so does the run, at its first tick of each UTC day.
    let expiredDay = Number.NEGATIVE_INFINITY;

    const until = Math.floor(now / MINUTE_MS) * MINUTE_MS;
    let ticks = 0;
    const fire = async (tick: number): Promise<boolean> => {
      tickStart = { tick, wall: Date.now() };
      if (Math.floor(tick / DAY_MS) > expiredDay) {
        expiredDay = Math.floor(tick / DAY_MS);
        for (const config of reported) await applyExpiration(storesOf(config), expiration, tick);
      }
      await options.beforeTick?.(tick, runtime);
      const committedBefore = await countCommitted(storesOf, reported);
      await workflows.tick(tick);
      await workflows.settle();
      ticks += 1;
      return (await countCommitted(storesOf, reported)) > committedBefore;
    };
    if ((options.ticks ?? 'catch-up') === 'catch-up') {
      // Each project workflow runs a bounded number of steps: enough ticks for the whole backlog.
      const pending = await countPending(storesOf, await active(until), until);
      const first = until - Math.ceil(pending / MAX_STEPS_PER_EXECUTION) * MINUTE_MS;
      for (let tick = first; pending > 0 && tick <= until; tick += MINUTE_MS) {
        const progressed = await fire(tick);
        if (tick === until && !progressed) break;
        if ((await countPending(storesOf, await active(until), until)) === 0) break;
      }
    } else {
      const interval = (options.scheduleMinutes ?? DEFAULT_SCHEDULE_MINUTES) * MINUTE_MS;
      // The clock never runs backwards: a schedule resumed at `startAt` fires nothing before it.
      let last = options.startAt === undefined ? Number.NEGATIVE_INFINITY : options.startAt - interval;
      let stalled = 0;
      for (;;) {
        const due = await earliestPendingDue(storesOf, await active(until), until);
        if (due === undefined) break;
        const tick = Math.min(until, Math.max(Math.ceil(due / interval) * interval, last + interval));
        if (tick <= last) break;
        last = tick;
        // Two ticks in a row that commit nothing mean a failure that repeats: the next run retries it.
        // (One is not enough: a step's failed reads count towards setting its object aside next tick.)
        stalled = (await fire(tick)) ? 0 : stalled + 1;
        if (stalled === 2) break;
      }
    }

    const outcomes = await workflows.settle();
    const results = new Map<string, RunResult>();
    for (const [index, config] of reported.entries()) {
      const stores = storesOf(config);
      const after = await snapshot(stores);
      const steps: RunRecord[] = [];
      for (const id of after.committed) {
        if (before[index]?.committed.has(id)) continue;
        const record = await getJson<RunRecord>(stores.state, runRecordKey(id));
        if (record !== undefined) steps.push(record);
      }
      steps.sort((a, b) => (a.finished_at < b.finished_at ? -1 : a.finished_at > b.finished_at ? 1 : 0));
      const failures = (await runtime.ledger.listRuns(config.project_id, config.name))
        .filter((entry) => entry.status === 'failed' && !after.committed.has(entry.step_id))
        .map((entry) => `step ${entry.step_id} failed: ${entry.error}: ${entry.cause}`);
      // A project workflow can fail before any step runs (e.g. the state belongs to other settings):
      // the project's last one tells, since a later one retries what an earlier one failed on.
      const last = outcomes.findLast(
        (o) => parseProjectExecutionName(o.name)?.projectId === config.project_id,
      );
      if (failures.length === 0 && last?.status === 'failed')
        failures.push(`project workflow ${last.name} failed: ${last.error}`);
      const reconciliation = await reconcilePipeline(stores);
      results.set(pipelineId(config), {
        config,
        ingestedHours: after.ingested - (before[index]?.ingested ?? 0),
        steps,
        failures: [...new Set(failures)],
        reconciliation,
        ok: failures.length === 0 && reconciliation.problems.length === 0,
      });
    }
    return { results, ticks };
  } finally {
    if (options.control === undefined) await control.stop();
  }
}

/** Options of a local run over folders, with ingest and export tasks on worker threads. */
export interface LocalRunOptions extends Omit<PipelinesRunOptions, 'stores' | 'configs' | 'overrides'> {
  readonly config: PipelineConfig;
  readonly folders: LocalFolders;
  /** Worker threads of the pool this run creates; default: one per core. */
  readonly workers?: number;
  /** A pool to use instead (and leave running). */
  readonly pool?: LocalTaskPool;
}

/** Operates one pipeline over local folders until `now` (the `local run` command). */
export async function runLocalPipeline(options: LocalRunOptions): Promise<RunResult> {
  const { config, folders } = options;
  const { results } = await runLocalPipelines({ ...options, configs: [config], folders: () => folders });
  return results.get(pipelineId(config)) as RunResult;
}

/** Options of a local run of several pipelines over folders. */
export interface LocalPipelinesRunOptions extends Omit<PipelinesRunOptions, 'stores' | 'overrides'> {
  readonly folders: (config: PipelineConfig) => LocalFolders;
  readonly workers?: number;
  readonly pool?: LocalTaskPool;
}

/** `runPipelines` over local folders, with ingest and export activities on worker threads. */
export async function runLocalPipelines(options: LocalPipelinesRunOptions): Promise<PipelinesRunResult> {
  const pool = options.pool ?? new LocalTaskPool(options.workers);
  const metrics = options.metrics ?? new SummingMetrics();
  const progress = options.progress ?? (() => undefined);
  const onPool = (type: WorkerTask['type'], { control, clock }: RunContext) => {
    const configs = new DynamoConfigStore({ client: control.dynamo, ...control });
    // The configs steps were picked with, by fingerprint (read once, though a step's tasks come together):
    // where a task's files are and whether it runs alone. The task reads the config again and checks it.
    const picked = new Map<string, Promise<PipelineConfig | undefined>>();
    const pickedConfig = (step: { project_id: string; pipeline: string; config: string }) => {
      let config = picked.get(step.config);
      if (config === undefined) {
        config = configs.readPipeline(step.project_id, step.pipeline).then((read) => read?.config);
        picked.set(step.config, config);
        // Only a config with the step's fingerprint is kept (a changed one is read again next time).
        config.then(
          (read) => {
            if (read === undefined || configFingerprint(read) !== step.config) picked.delete(step.config);
          },
          () => picked.delete(step.config),
        );
      }
      return config;
    };
    return async (input: JSONValue): Promise<JSONValue> => {
      // The input crossed JSON: parsed as the activity parses it, for the pipeline it names.
      const { step } =
        type === 'ingest'
          ? parseStateInput('ingest-hour', ingestHourInputSchema, input)
          : parseStateInput('export-task', exportTaskInputSchema, input);
      const config = await pickedConfig(step);
      if (config === undefined)
        throw new NamedError('ConfigError', `no valid config of ${step.project_id}/${step.pipeline}`);
      const task = {
        type,
        folders: options.folders(config),
        control: {
          endpoint: control.endpoint,
          configsTable: control.configsTable,
          stateTable: control.stateTable,
        },
        clockOffset: clock() - Date.now(),
        ...(options.ingestLimits === undefined ? {} : { ingestLimits: options.ingestLimits }),
        input,
      } as unknown as WorkerTask;
      // A snapshot task folds a shard of profiles in memory: alone on its thread.
      const result = await pool.run(task, { alone: type === 'export' && config.data_source !== 'events' });
      for (const [dimensions, values] of result.metrics) metrics.record(dimensions, values);
      for (const warning of result.warnings) progress(warning);
      if (result.error !== undefined) throw new NamedError(result.error.name, result.error.message);
      return result.output as JSONValue;
    };
  };
  try {
    return await runPipelines({
      ...options,
      metrics,
      stores: (config, clock) => localStores(options.folders(config), clock),
      overrides: (context) => ({
        [TASK_STATES.ingestHour]: onPool('ingest', context),
        [TASK_STATES.exportTask]: onPool('export', context),
      }),
    });
  } finally {
    if (options.pool === undefined) await pool.destroy();
  }
}

type StoresOf = (config: PipelineConfig) => EngineStores;

/** The first instant at which a step due by `until` and not committed became due. */
async function earliestPendingDue(
  stores: StoresOf,
  configs: readonly PipelineConfig[],
  until: number,
): Promise<number | undefined> {
  let earliest: number | undefined;
  for (const config of configs) {
    const first = await firstPendingDue(stores(config), config, until);
    if (first !== undefined && (earliest === undefined || first < earliest)) earliest = first;
  }
  return earliest;
}

async function countPending(
  stores: StoresOf,
  configs: readonly PipelineConfig[],
  until: number,
): Promise<number> {
  let count = 0;
  for (const config of configs) count += (await pipelineBacklog(stores(config), config, until)).length;
  return count;
}

async function countCommitted(stores: StoresOf, configs: readonly PipelineConfig[]): Promise<number> {
  let count = 0;
  for (const config of configs) count += (await committedStepIds(stores(config))).size;
  return count;
}

async function snapshot(stores: EngineStores): Promise<{ committed: Set<string>; ingested: number }> {
  const ingested = (await listAll(stores.state, INGEST_RECORDS_PREFIX)).filter((o) =>
    isIngestRecordKey(o.key),
  ).length;
  return { committed: await committedStepIds(stores), ingested };
}

function describeOutcome(detailType: string, entry: StepRunEntry): string {
  const where = `${entry.project_id}/${entry.pipeline} ${entry.step_id}`;
  if (detailType === STEP_FAILED) return `${where}: FAILED: ${entry.error}: ${entry.cause}`;
  return (
    `${where}: exported ${entry.exported}, dropped ${entry.duplicates} duplicates, ${entry.parts} parts, ` +
    `${entry.tasks} tasks, lag ${Math.round((entry.export_lag_s ?? 0) / 60)} min`
  );
}
