/**
 * The work behind each Task state of the three workflows (dispatcher, project, step). Each activity
 * takes its state's JSON input and returns JSON; Lambda handlers and the local runtime both call these,
 * so the cloud and the local run share every line. Activities are idempotent: Step Functions may run
 * one again after a timeout or a retry.
 */
import { ConfigError, ReconciliationError } from '../core/errors.js';
import { nextStep } from '../core/fairness.js';
import { hourIso, ingestRecordKey, parseStepId, runRecordKey } from '../core/layout.js';
import { lockFence } from '../core/lock.js';
import { fencedStore } from '../core/object-store.js';
import { configFingerprint, type PipelineConfig } from '../core/pipeline-config.js';
import { activeConfigs } from '../core/pipeline-rules.js';
import type { EngineStores } from '../core/ports.js';
import type { RunRecord, StepRunEntry } from '../core/records.js';
import { DUE_AFTER_END_MS, type DueStep, ingestNeededUntil, ingestStart } from '../core/routing.js';
import { CONFIG_TABLE_KEYS } from '../core/tables.js';
import { HOUR_MS, ZoneCalendar } from '../core/windows.js';
import {
  type AcquireOutput,
  configChangeEventSchema,
  type DispatchOutput,
  exportTaskInputSchema,
  type FailureInput,
  failureInputSchema,
  INGEST_BATCH_HOURS,
  type IngestHourOutput,
  ingestHourInputSchema,
  lockInputSchema,
  MAX_STEPS_PER_EXECUTION,
  METRICS,
  type PickOutput,
  type PlanOutput,
  type PrepareIngestOutput,
  parseInstant,
  parseStateInput,
  pickInputSchema,
  projectExecutionName,
  type ReconcileOutput,
  STEP_FAILED,
  STEP_SUCCEEDED,
  type StepInput,
  stepFromId,
  stepInputSchema,
  tickInputSchema,
} from '../core/workflow.js';
import { assignLateObjects } from '../engine/adoption.js';
import {
  advanceBacklogMark,
  checkStateConfig,
  pendingExportDue,
  pipelineBacklog,
  stateConfigDifferences,
} from '../engine/backlog.js';
import { engineFor } from '../engine/engines.js';
import { advanceIngestWatermark } from '../engine/plan.js';
import { reconcilePipeline } from '../engine/reconciliation.js';
import { updateCatalog } from '../engine/warehouse.js';
import { pauseEndedTrials, type ReviewOutcome, reviewPipeline } from '../management/pipelines.js';
import type { DataRuntime, Runtime } from './runtime.js';

/** Dispatcher: the projects with at least one due, uncommitted step at the tick. */
export async function findDueProjects(rt: Runtime, event: unknown): Promise<DispatchOutput> {
  const input = parseStateInput('find-due-projects', tickInputSchema, event);
  const tick = parseInstant(input.time, 'time');
  const pipelines = await rt.configs.listAll();
  const pauseFailed = (pipeline: { project_id: string; name: string }, error: unknown) =>
    rt.log.warn('ended trial not paused', {
      project_id: pipeline.project_id,
      pipeline: pipeline.name,
      error: String(error),
    });
  for (const paused of await pauseEndedTrials(rt.configs, pipelines, tick, pauseFailed))
    rt.log.info('trial pipeline paused', { ...paused });
  // Ended trials are left out whether or not their pause landed.
  const { configs, invalid } = activeConfigs(pipelines, tick);
  for (const problem of invalid) rt.log.warn('pipeline config is invalid and does not run', { ...problem });
  const due = new Set<string>();
  for (const config of configs) {
    const stores = rt.stores(config);
    const backlog = await pipelineBacklog(stores, config, tick);
    if (backlog.length > 0) due.add(config.project_id);
    rt.metrics.record(dimensionsOf(config), await pendingLags(stores, config, backlog, tick));
  }
  const projects = [...due]
    .sort()
    .map((project_id) => ({ project_id, execution_name: projectExecutionName(project_id, tick) }));
  rt.log.info('dispatch', { tick: input.time, projects: projects.map((p) => p.project_id) });
  return { tick: new Date(tick).toISOString(), projects };
}

/**
 * How long ago the data of the pipeline's oldest due, uncommitted regular and sync steps ended, in
 * seconds (0 when none): the SLA alarms watch these, so a pipeline that stopped committing alarms too.
 */
async function pendingLags(
  stores: EngineStores,
  config: PipelineConfig,
  backlog: readonly DueStep[],
  tick: number,
): Promise<Record<string, number>> {
  const lag = (dueAt: number | undefined) =>
    dueAt === undefined ? 0 : Math.max(0, Math.round((tick - dueAt + DUE_AFTER_END_MS) / 1000));
  const regular = await pendingExportDue(stores, config, backlog, tick);
  return {
    [METRICS.pendingExportLag]: lag(regular),
    [METRICS.pendingSyncLag]: lag(backlog.find((d) => d.step.kind === 'sync')?.dueAt),
  };
}

/**
 * Reconciles every pipeline of the deployment from its records (the daily check): publishes the
 * problems of each as a metric the imbalance alarm watches, and logs them.
 */
export async function reconcileDeployment(rt: Runtime, _event: unknown): Promise<ReconcileOutput> {
  const pipelines = (await rt.configs.listAll()).flatMap((p) =>
    p.config === undefined || p.management.status === 'deleted' ? [] : [p.config],
  );
  const imbalanced: ReconcileOutput['imbalanced'][number][] = [];
  for (const config of pipelines) {
    const { problems } = await reconcilePipeline(rt.stores(config));
    rt.metrics.record(dimensionsOf(config), { [METRICS.imbalances]: problems.length });
    if (problems.length === 0) continue;
    imbalanced.push({ project_id: config.project_id, pipeline: config.name, problems });
    rt.log.warn('pipeline does not reconcile', {
      project_id: config.project_id,
      pipeline: config.name,
      problems,
    });
  }
  rt.log.info('reconciled', { pipelines: pipelines.length, imbalanced: imbalanced.length });
  return { pipelines: pipelines.length, imbalanced };
}

/**
 * The console-edit validator: reviews each pipeline a batch of config table stream records touched
 * (an invalid config goes to `error`, a fixed one back to `active`). Its own writes come back on the
 * stream and find nothing to change.
 */
export async function reviewConfigChanges(
  rt: Runtime,
  input: unknown,
): Promise<{ reviewed: number; changed: ReviewOutcome[] }> {
  const event = parseStateInput('review-config', configChangeEventSchema, input);
  const keys = new Map<string, { project_id: string; name: string }>();
  for (const record of event.Records) {
    const projectId = record.dynamodb?.Keys?.[CONFIG_TABLE_KEYS.partitionKey]?.S;
    const name = record.dynamodb?.Keys?.[CONFIG_TABLE_KEYS.sortKey]?.S;
    if (record.eventName === 'REMOVE' || projectId === undefined || name === undefined) continue;
    keys.set(JSON.stringify([projectId, name]), { project_id: projectId, name });
  }
  const changed: ReviewOutcome[] = [];
  for (const { project_id, name } of keys.values()) {
    const outcome = await reviewPipeline(rt.configs, project_id, name, rt.clock(), async (config) => {
      const differences = await stateConfigDifferences(rt.stores(config), config);
      return differences === undefined || differences.length === 0
        ? []
        : [
            `settings differ from those the pipeline's exports were built with (${differences.join('; ')}): ` +
              'restore them, or create a new pipeline with the new settings',
          ];
    });
    if (outcome === undefined) continue;
    changed.push(outcome);
    (outcome.to === 'error' ? rt.log.warn : rt.log.info)('pipeline status changed by review', { ...outcome });
  }
  return { reviewed: keys.size, changed };
}

/** Takes the project lock for the workflow, or reports who holds it. */
export async function acquireLock(rt: Runtime, state: unknown): Promise<AcquireOutput> {
  const input = parseStateInput('acquire-lock', lockInputSchema, state);
  const lease = await rt.locks.acquire(input.project_id, input.owner, rt.clock(), rt.leaseMs);
  if (lease !== undefined) return { acquired: true };
  const holder = await rt.locks.current(input.project_id);
  rt.log.info('project busy', { project_id: input.project_id, holder: holder?.owner });
  return holder === undefined ? { acquired: false } : { acquired: false, holder: holder.owner };
}

/** Releases the project lock if the workflow still holds it. */
export async function releaseLock(rt: Runtime, state: unknown): Promise<{ released: boolean }> {
  const input = parseStateInput('release-lock', lockInputSchema, state);
  return { released: await rt.locks.release(input.project_id, input.owner) };
}

/**
 * The project's next step (docs/contract.md#fairness: its pipelines take turns, oldest due step first inside
 * one), after renewing the lease. Configs are validated again here, so an edit applies from the next
 * step on and a whole step uses one config.
 */
export async function pickNextStep(rt: Runtime, state: unknown): Promise<PickOutput> {
  const input = parseStateInput('pick-next-step', pickInputSchema, state);
  const now = rt.clock();
  const lease = await rt.locks.renew(input.project_id, input.owner, now, rt.leaseMs);
  if (input.steps_run >= MAX_STEPS_PER_EXECUTION)
    return { found: false, steps_run: input.steps_run, reason: 'budget' };
  const tick = parseInstant(input.tick, 'tick');
  const { configs, invalid } = await rt.configs.listActive(input.project_id, now);
  for (const problem of invalid) rt.log.warn('pipeline config is invalid and does not run', { ...problem });
  const backlogs = await Promise.all(
    configs.map(async (config) => ({
      pipeline: config.name,
      due: await pipelineBacklog(rt.stores(config), config, tick),
    })),
  );
  // Turns matter only between pipelines: a project with one skips the cursor.
  const taking = backlogs.filter((b) => b.due.length > 0).length > 1;
  const next = nextStep(backlogs, taking ? await rt.ledger.lastPipeline(input.project_id) : undefined);
  const config = configs.find((c) => c.name === next?.pipeline);
  if (next === undefined || config === undefined)
    return { found: false, steps_run: input.steps_run, reason: 'idle' };
  if (taking) await rt.ledger.setLastPipeline(input.project_id, next.pipeline);
  return {
    found: true,
    steps_run: input.steps_run + 1,
    step: {
      project_id: input.project_id,
      pipeline: next.pipeline,
      step_id: next.step.id,
      tick: input.tick,
      owner: input.owner,
      token: lease.token,
      started_at: new Date(now).toISOString(),
      config: configFingerprint(config),
    },
  };
}

/**
 * The arrival hours the step needs that have no ingest record yet, a batch at a time, with the late
 * objects of folders already read assigned to them. Advances the ingest watermark over hours ingested
 * since, and checks the state belongs to this config.
 */
export async function prepareIngest(rt: Runtime, state: unknown): Promise<PrepareIngestOutput> {
  const step = parseStateInput('prepare-ingest', stepInputSchema, state);
  const { config, stores } = await stepContext(rt, step);
  await checkStateConfig(stores, config);
  const calendar = new ZoneCalendar(config.time_zone);
  const watermark = await advanceIngestWatermark(stores.state, ingestStart(config, calendar));
  const needed = ingestNeededUntil(config, stepFromId(config, calendar, step.step_id), calendar);
  const hours: number[] = [];
  for (let hour = watermark; hour < needed && hours.length <= INGEST_BATCH_HOURS; hour += HOUR_MS) {
    if ((await stores.state.getBytes(ingestRecordKey(hour))) === undefined) hours.push(hour);
  }
  const batch = hours.slice(0, INGEST_BATCH_HOURS);
  await assignLateObjects(stores, config, batch);
  return { hours: batch.map((h) => new Date(h).toISOString()), more: hours.length > INGEST_BATCH_HOURS };
}

/** Reads the next piece of one arrival hour; the hour is committed when `done` (idempotent). */
export async function ingestHour(rt: DataRuntime, state: unknown): Promise<IngestHourOutput> {
  const input = parseStateInput('ingest-hour', ingestHourInputSchema, state);
  const arrivalHour = parseInstant(input.arrival_hour, 'arrival_hour');
  const { config, stores } = await stepContext(rt, input.step);
  const outcome = await engineFor(config).ingestPiece(stores, config, arrivalHour, rt.ingestLimits);
  if (outcome.committedNow && outcome.record !== undefined) {
    const { record } = outcome;
    rt.metrics.record(dimensionsOf(config), {
      [METRICS.quarantined]: record.quarantined,
      [METRICS.lateObjects]: record.sources.filter((object) => object.folder_hour !== undefined).length,
      [METRICS.objectsSetAside]: record.set_aside.length,
    });
    for (const object of record.set_aside)
      rt.log.warn('source object set aside', { ...logFields(input.step), ...object });
  }
  return { arrival_hour: hourIso(arrivalHour), done: outcome.done, pieces: outcome.pieces };
}

/**
 * Plans the step (persisted, so a retry repeats the same tasks) and returns its fan-out, after moving
 * the ingest watermark over the hours just ingested.
 */
export async function planStep(rt: Runtime, state: unknown): Promise<PlanOutput> {
  const step = parseStateInput('plan-step', stepInputSchema, state);
  const { config, stores } = await stepContext(rt, step);
  const calendar = new ZoneCalendar(config.time_zone);
  await advanceIngestWatermark(stores.state, ingestStart(config, calendar));
  const ref = stepFromId(config, calendar, step.step_id);
  const plan = await engineFor(config).plan(stores, config, ref, rt.planLimits);
  return { tasks: plan.tasks.map((_, task) => task) };
}

/** Runs one export task of the step's persisted plan. */
export async function exportTask(rt: DataRuntime, state: unknown): Promise<{ task: number; parts: number }> {
  const input = parseStateInput('export-task', exportTaskInputSchema, state);
  const { step_id } = input.step;
  const { config, stores } = await stepContext(rt, input.step);
  const result = await engineFor(config).runTask(stores, config, step_id, input.task);
  return { task: input.task, parts: result.parts.length };
}

/**
 * Commits the step (manifests, run record), then logs, announces and measures it. The lease is renewed
 * first: a holder that lost the lock (it outlived its lease) commits nothing. A retry after the commit
 * finds the run record and only repeats the announcements.
 */
export async function commitStep(
  rt: Runtime,
  state: unknown,
): Promise<{ step_id: string; exported: number; duplicates: number; parts: number }> {
  const step = parseStateInput('commit-step', stepInputSchema, state);
  await renewLease(rt, step);
  const { config, stores } = await stepContext(rt, step);
  const timing = { startedAt: parseInstant(step.started_at, 'started_at'), finishedAt: rt.clock() };
  let record: RunRecord;
  try {
    record = await engineFor(config).commit(stores, config, step.step_id, timing);
  } catch (error) {
    if (error instanceof ReconciliationError) {
      rt.metrics.record(dimensionsOf(config), { [METRICS.reconciliationFailures]: 1 });
      rt.log.warn('step does not balance', { ...logFields(step), error: error.message });
    }
    throw error;
  }
  const entry = succeededEntry(step, config, record);
  await rt.ledger.recordRun(entry);
  await rt.events.publish(STEP_SUCCEEDED, entry);
  const lag = {
    [record.kind === 'sync' ? METRICS.syncExportLag : METRICS.exportLag]: entry.export_lag_s ?? 0,
  };
  rt.metrics.record(dimensionsOf(config), {
    ...(record.snapshot === undefined
      ? {
          [METRICS.eventsExported]: record.exported,
          [METRICS.lateEvents]: record.kind === 'sync' ? record.exported : 0,
          [METRICS.duplicatesDropped]: record.duplicates,
        }
      : {
          [METRICS.snapshotRecords]: record.exported,
          [METRICS.updatesFolded]: record.snapshot.updates + record.snapshot.links,
        }),
    ...lag,
    [METRICS.duration]: record.duration_ms / 1000,
  });
  rt.log.info('step committed', { ...entry });
  await keepCatalog(rt, config, stores, step);
  // The mark only saves lookups: failing to move it must not fail a committed step.
  await advanceBacklogMark(stores, config, timing.finishedAt).catch((error: unknown) =>
    rt.log.warn('backlog mark not moved', { step_id: record.step_id, error: String(error) }),
  );
  return {
    step_id: record.step_id,
    exported: record.exported,
    duplicates: record.duplicates,
    parts: record.parts,
  };
}

/**
 * Brings the pipeline's warehouse tables up to date after a commit. A catalog that cannot be written
 * (throttling, a Lake Formation denial) must not fail a committed step: it is logged, and the next
 * commit tries again (nothing marks it applied until it is).
 */
async function keepCatalog(
  rt: Runtime,
  config: PipelineConfig,
  stores: EngineStores,
  step: StepInput,
): Promise<void> {
  if (rt.warehouse === undefined) return;
  try {
    const updated = await updateCatalog(rt.warehouse.catalog, stores, config, {
      bucket: rt.warehouse.destinationBucket(config),
      ...(config.s3_prefix === undefined ? {} : { prefix: config.s3_prefix }),
    });
    if (updated !== undefined) rt.log.info('warehouse tables updated', { ...logFields(step), ...updated });
  } catch (error) {
    rt.log.warn('warehouse tables not updated', { ...logFields(step), error: String(error) });
  }
}

/**
 * Records a failed step with its error; the next tick runs it again. A step that committed after all
 * (an attempt failed after the commit, or a zombie's failure arrives late) keeps its success.
 */
export async function recordFailure(rt: Runtime, state: unknown): Promise<{ recorded: boolean }> {
  const input = parseStateInput('record-failure', failureInputSchema, state);
  const { step } = input;
  // Whatever the config became since, the step's state tells whether it committed after all.
  const config = (await rt.configs.readPipeline(step.project_id, step.pipeline))?.config;
  const committed =
    config !== undefined &&
    (await rt.stores(config).state.getBytes(runRecordKey(step.step_id))) !== undefined;
  if (committed) {
    rt.log.warn('failure of a committed step not recorded', {
      ...logFields(step),
      ...stepError(input.error),
    });
    return { recorded: false };
  }
  const finishedAt = rt.clock();
  const startedAt = parseInstant(step.started_at, 'started_at');
  const entry: StepRunEntry = {
    project_id: step.project_id,
    pipeline: step.pipeline,
    step_id: step.step_id,
    kind: parseStepId(step.step_id)?.kind === 'sync' ? 'sync' : 'regular',
    status: 'failed',
    tick: step.tick,
    started_at: step.started_at,
    finished_at: new Date(finishedAt).toISOString(),
    duration_ms: finishedAt - startedAt,
    ...stepError(input.error),
  };
  await rt.ledger.recordRun(entry);
  await rt.events.publish(STEP_FAILED, entry);
  rt.metrics.record({ project_id: step.project_id, pipeline: step.pipeline }, { [METRICS.failures]: 1 });
  rt.log.warn('step failed', { ...entry });
  return { recorded: true };
}

/**
 * The config a step runs with, read from the catalog and checked against the fingerprint the step was
 * picked with (so the whole step uses one config, which no state payload carries), and the pipeline's
 * stores with every write fenced by the step's hold on the project lock.
 */
async function stepContext(
  rt: Pick<DataRuntime, 'configs' | 'stores' | 'locks'>,
  step: StepInput,
): Promise<{ config: PipelineConfig; stores: EngineStores }> {
  const config = (await rt.configs.readPipeline(step.project_id, step.pipeline))?.config;
  if (config === undefined)
    throw new ConfigError(
      `pipeline ${step.project_id}/${step.pipeline} has no valid config any more: step ${step.step_id} stops`,
    );
  if (configFingerprint(config) !== step.config)
    throw new ConfigError(
      `the settings of pipeline ${step.project_id}/${step.pipeline} changed while step ${step.step_id} ran: ` +
        'the next tick runs it with the new settings',
    );
  const fence = lockFence(rt.locks, step.project_id, step.owner, step.token);
  const stores = rt.stores(config);
  return {
    config,
    stores: {
      raw: stores.raw,
      destination: fencedStore(stores.destination, fence),
      state: fencedStore(stores.state, fence),
      staging: fencedStore(stores.staging, fence),
    },
  };
}

/** What every log line about a step carries. */
function logFields(step: StepInput): Record<string, unknown> {
  return { project_id: step.project_id, pipeline: step.pipeline, step_id: step.step_id };
}

async function renewLease(rt: Runtime, step: StepInput): Promise<void> {
  await rt.locks.renew(step.project_id, step.owner, rt.clock(), rt.leaseMs);
}

function succeededEntry(step: StepInput, config: PipelineConfig, record: RunRecord): StepRunEntry {
  // A sync step's data ends with its arrival day, any other step's with its window.
  const ref = parseStepId(record.step_id);
  const dataEnd =
    ref?.kind === 'sync'
      ? new ZoneCalendar(config.time_zone).dayEnd(ref.arrivalDay)
      : Date.parse(record.window?.end ?? '');
  return {
    project_id: step.project_id,
    pipeline: step.pipeline,
    step_id: record.step_id,
    kind: record.kind,
    status: 'succeeded',
    tick: step.tick,
    started_at: record.started_at,
    finished_at: record.finished_at,
    duration_ms: record.duration_ms,
    exported: record.exported,
    duplicates: record.duplicates,
    parts: record.parts,
    bytes: record.bytes,
    tasks: record.tasks,
    export_lag_s: Math.max(0, Math.round((Date.parse(record.finished_at) - dataEnd) / 1000)),
  };
}

function dimensionsOf(config: PipelineConfig): { project_id: string; pipeline: string } {
  return { project_id: config.project_id, pipeline: config.name };
}

/**
 * The step's own error from what the project workflow caught: a failed step workflow execution arrives
 * as `States.TaskFailed` whose cause is the execution's description (with its `Error` and `Cause`), and
 * a Lambda error's cause is JSON with `errorMessage`.
 */
export function stepError(caught: FailureInput['error'], depth = 0): { error: string; cause: string } {
  const error = caught.Error ?? 'Error';
  const cause = caught.Cause ?? '';
  let parsed: { Error?: unknown; Cause?: unknown; errorMessage?: unknown; errorType?: unknown } | undefined;
  try {
    parsed = JSON.parse(cause) as typeof parsed;
  } catch {
    // not JSON: the cause is the message
  }
  if (typeof parsed?.Error === 'string' && depth < 3) {
    return stepError(
      { Error: parsed.Error, ...(typeof parsed.Cause === 'string' ? { Cause: parsed.Cause } : {}) },
      depth + 1,
    );
  }
  if (typeof parsed?.errorMessage === 'string') {
    return {
      error: typeof parsed.errorType === 'string' ? parsed.errorType : error,
      cause: parsed.errorMessage,
    };
  }
  return { error, cause };
}
