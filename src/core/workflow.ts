/**
 * The contract between the state machines (built in `lib/`, run by Step Functions or locally) and the
 * activities behind their Task states: state names, payload shapes, execution names. Pure, so the CDK
 * code, the Lambda handlers and the local runtime share one definition.
 */
import { z } from 'zod';
import { ConfigError, describeIssue, InvalidInputError } from './errors.js';
import { parseStepId, type StepRef } from './layout.js';
import { type PipelineConfig, pipelineNameSchema, projectIdSchema } from './pipeline-config.js';
import type { ZoneCalendar } from './windows.js';

/** Names of the Task states; the local runtime maps each to its activity by this name. */
export const TASK_STATES = {
  findDueProjects: 'Find projects with due steps',
  startProjectWorkflow: 'Start project workflow',
  acquireLock: 'Acquire project lock',
  pickNextStep: 'Pick next step',
  runStep: 'Run step',
  recordFailure: 'Record step failure',
  releaseLock: 'Release project lock',
  releaseLockAfterFailure: 'Release project lock after failure',
  prepareIngest: 'Find arrival hours to ingest',
  ingestHour: 'Ingest arrival hour',
  planStep: 'Plan step',
  exportTask: 'Export task',
  commitStep: 'Commit step',
} as const;

/** The error Step Functions raises when an execution name was already used. */
export const EXECUTION_EXISTS_ERROR = 'StepFunctions.ExecutionAlreadyExistsException';

/** Minutes between schedule ticks unless the deployment says otherwise. */
export const DEFAULT_SCHEDULE_MINUTES = 15;

/** Arrival hours one ingest round of a step fans out (the step loops until none is missing). */
export const INGEST_BATCH_HOURS = 96;

/**
 * Ingest rounds one step execution runs before it ends and leaves the rest to its next run (the
 * project workflow picks the step again). An execution's history holds at most 25,000 events and each
 * ingested hour adds about 11: 8 rounds of 96 hours leave room for 1,000 export tasks (about 7 each).
 */
export const MAX_INGEST_ROUNDS = 8;

/** Steps one project workflow runs before it ends and leaves the rest to the next tick. */
export const MAX_STEPS_PER_EXECUTION = 48;

/** The daily reconciliation's result: the pipelines reconciled, and those that do not balance with why. */
export interface ReconcileOutput {
  readonly pipelines: number;
  readonly imbalanced: readonly {
    readonly project_id: string;
    readonly pipeline: string;
    readonly problems: readonly string[];
  }[];
}

/** An ISO instant in a state payload. */
const instant = z.string().refine((text) => !Number.isNaN(Date.parse(text)), 'expected an ISO instant');

/** The dispatcher's input: EventBridge's scheduled event (only `time` is read). */
export const tickInputSchema = z.object({ time: instant }).readonly();
/** The dispatcher's input: EventBridge's scheduled event (only `time` is read). */
export type TickInput = z.infer<typeof tickInputSchema>;

/** A project with due work, and the name its workflow is started under for this tick. */
export interface DueProject {
  readonly project_id: string;
  readonly execution_name: string;
}

/** The dispatcher's result for one tick. */
export interface DispatchOutput {
  readonly tick: string;
  readonly projects: readonly DueProject[];
}

/** Input of a project workflow. */
export interface ProjectInput {
  readonly project_id: string;
  readonly tick: string;
}

const lockFields = {
  project_id: projectIdSchema,
  /** The project workflow's execution name. */
  owner: z.string().min(1),
};

/** Lock request of a project workflow: the owner is its execution name. */
export const lockInputSchema = z.object(lockFields).readonly();
/** Lock request of a project workflow: the owner is its execution name. */
export type LockInput = z.infer<typeof lockInputSchema>;

/** Whether the lock was taken. */
export interface AcquireOutput {
  readonly acquired: boolean;
  /** The live holder when not acquired. */
  readonly holder?: string;
}

/** What `Pick next step` needs: the project, the tick, the lock owner and the steps run so far. */
export const pickInputSchema = z
  .object({ ...lockFields, tick: instant, steps_run: z.number().int().nonnegative() })
  .readonly();
/** What `Pick next step` needs: the project, the tick, the lock owner and the steps run so far. */
export type PickInput = z.infer<typeof pickInputSchema>;

/** One step to run, as every activity of the step workflow receives it. */
export const stepInputSchema = z
  .object({
    ...lockFields,
    pipeline: pipelineNameSchema,
    step_id: z.string().refine((id) => parseStepId(id) !== undefined, 'expected a step id'),
    /** The schedule tick that started the run (ISO). */
    tick: instant,
    /** The owner's fencing token: every write that changes committed state checks it still holds. */
    token: z.number().int().nonnegative(),
    /** When the step was picked (ISO), for its run record. */
    started_at: instant,
    /**
     * The fingerprint of the config the step was picked with (`configFingerprint`): activities read the
     * config themselves and check it, so the whole step uses one config and no state payload carries it.
     */
    config: z.string().min(1),
  })
  .readonly();
/** One step to run, as every activity of the step workflow receives it. */
export type StepInput = z.infer<typeof stepInputSchema>;

/** The next step, or why there is none. */
export type PickOutput =
  | { readonly found: true; readonly steps_run: number; readonly step: StepInput }
  | { readonly found: false; readonly steps_run: number; readonly reason: 'idle' | 'budget' };

/** The arrival hours a step still needs ingested (ISO), at most {@link INGEST_BATCH_HOURS}. */
export interface PrepareIngestOutput {
  readonly hours: readonly string[];
  /** More hours are missing after these: loop. */
  readonly more: boolean;
}

/** One Map item of the ingest fan-out. */
export const ingestHourInputSchema = z.object({ step: stepInputSchema, arrival_hour: instant }).readonly();
/** One Map item of the ingest fan-out. */
export type IngestHourInput = z.infer<typeof ingestHourInputSchema>;

/** One piece of an arrival hour read; the Map item runs again until `done`. */
export interface IngestHourOutput {
  readonly arrival_hour: string;
  readonly done: boolean;
  readonly pieces: number;
}

/** A step's fan-out: task indexes 0..n-1. */
export interface PlanOutput {
  readonly tasks: readonly number[];
}

/** One Map item of the export fan-out. */
export const exportTaskInputSchema = z
  .object({ step: stepInputSchema, task: z.number().int().nonnegative() })
  .readonly();
/** One Map item of the export fan-out. */
export type ExportTaskInput = z.infer<typeof exportTaskInputSchema>;

/** A failed step, as the project workflow's Catch hands it over. */
export const failureInputSchema = z
  .object({
    step: stepInputSchema,
    error: z.object({ Error: z.string().optional(), Cause: z.string().optional() }).readonly(),
  })
  .readonly();
/** A failed step, as the project workflow's Catch hands it over. */
export type FailureInput = z.infer<typeof failureInputSchema>;

/**
 * A batch of config table stream records, as Lambda's event source mapping delivers them (and the
 * local stream reader too): only the keys are used, the item is read again.
 */
export const configChangeEventSchema = z
  .object({
    Records: z.array(
      z
        .object({
          eventName: z.string().optional(),
          dynamodb: z
            .object({
              Keys: z.record(z.string(), z.object({ S: z.string().optional() }).readonly()).optional(),
            })
            .readonly()
            .optional(),
        })
        .readonly(),
    ),
  })
  .readonly();
/** A batch of config table stream records (see {@link configChangeEventSchema}). */
export type ConfigChangeEvent = z.infer<typeof configChangeEventSchema>;

/**
 * The input of activity `activity` (its function's name, e.g. `plan-step`) as its schema reads it;
 * `InvalidInputError` naming the first field that does not fit otherwise.
 */
export function parseStateInput<S extends z.ZodType>(
  activity: string,
  schema: S,
  input: unknown,
): z.output<S> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const { field, problem } = describeIssue(parsed.error.issues);
  throw new InvalidInputError(`invalid input of ${activity}: ${field}: ${problem}`);
}

/** EventBridge `source` and `detail-type`s of step outcomes. */
export const EVENT_SOURCE = 'mp-pipelines';
export const STEP_SUCCEEDED = 'Pipeline Step Succeeded';
export const STEP_FAILED = 'Pipeline Step Failed';

/** CloudWatch namespace and metric names. */
export const METRICS_NAMESPACE = 'MpPipelines';

/**
 * The SLA (docs/contract.md#sla): a window is exported within 24 h of its end, late data within another 24 h.
 */
export const EXPORT_SLA_SECONDS = 24 * 3600;
export const METRICS = {
  eventsExported: 'EventsExported',
  lateEvents: 'LateEventsExported',
  duplicatesDropped: 'DuplicatesDropped',
  quarantined: 'LinesQuarantined',
  /** Objects written into an arrival-hour folder after it was read, ingested with the hour they were written in. */
  lateObjects: 'LateObjectsAdopted',
  /** Source objects that could not be read (or passed a limit) and were set aside whole. */
  objectsSetAside: 'ObjectsSetAside',
  /** Steps whose counts did not balance: nothing was committed. */
  reconciliationFailures: 'ReconciliationFailures',
  /** People and identity: lines of the snapshot written, and updates or links folded into it. */
  snapshotRecords: 'SnapshotRecords',
  updatesFolded: 'UpdatesFolded',
  /** Regular steps: seconds from the window's end to the commit (SLA 24 h). */
  exportLag: 'ExportLagSeconds',
  /** Sync steps: seconds from the arrival day's end to the commit (SLA 24 h + 24 h). */
  syncExportLag: 'SyncExportLagSeconds',
  duration: 'StepDurationSeconds',
  failures: 'StepFailures',
  /**
   * Published by the dispatcher every tick, per active pipeline: how long ago the data of its oldest step
   * that is due and not committed ended (0 when none is): a pipeline that stopped committing alarms
   * although no step succeeds to report a lag.
   */
  pendingExportLag: 'PendingExportLagSeconds',
  pendingSyncLag: 'PendingSyncLagSeconds',
  /** Published by the daily reconciliation, per pipeline: the problems its records show (0 when balanced). */
  imbalances: 'ReconciliationImbalances',
} as const;

/**
 * The project workflow's execution name for a tick: deterministic, so two triggers of the same tick
 * start one workflow. Names allow 80 characters of `[A-Za-z0-9_-]`; project ids are at most 64 of those.
 */
export function projectExecutionName(projectId: string, tick: number): string {
  const d = new Date(tick);
  if (Number.isNaN(d.getTime())) throw new ConfigError(`invalid tick time ${tick}`);
  const stamp = d.toISOString().replace(/[-:]/g, '').slice(0, 13); // YYYYMMDDTHHMM
  return `${projectId}-${stamp}`;
}

/** `projectExecutionName`'s form: the project id, a dash and the tick as `YYYYMMDDTHHMM`. */
const EXECUTION_NAME = /^([A-Za-z0-9_-]{1,64})-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})$/;

/**
 * The project and tick (to the minute) of a project workflow execution named by `projectExecutionName`
 * (its inverse); `undefined` for any other name.
 */
export function parseProjectExecutionName(name: string): { projectId: string; tick: number } | undefined {
  const match = EXECUTION_NAME.exec(name);
  if (match === null) return undefined;
  const projectId = match[1]!;
  const field = (i: number) => Number(match[i]);
  // `setUTCFullYear`, unlike `Date.UTC`, keeps years 0-99 as they are.
  const tick =
    new Date(0).setUTCFullYear(field(2), field(3) - 1, field(4)) + (field(5) * 60 + field(6)) * 60_000;
  return projectExecutionName(projectId, tick) === name ? { projectId, tick } : undefined;
}

/** Parses an ISO instant from a state machine payload; `ConfigError` naming the field otherwise. */
export function parseInstant(text: string, field: string): number {
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new ConfigError(`${field}: ${JSON.stringify(text)} is not an ISO instant`);
  return t;
}

/** The step an id names (inverse of `stepId`); `ConfigError` for an id no step of `config` has. */
export function stepFromId(config: PipelineConfig, calendar: ZoneCalendar, id: string): StepRef {
  const parts = parseStepId(id);
  if (parts?.kind === 'sync' && config.sync) return parts;
  if (parts?.kind === 'regular' && parts.window.frequency === config.frequency)
    return { kind: 'regular', window: calendar.windowById(config.frequency, parts.window.id) };
  throw new ConfigError(`pipeline ${config.project_id}/${config.name} has no step ${JSON.stringify(id)}`);
}

/**
 * Errors a Task retries with backoff: Lambda's own transient failures (the service exceptions Step
 * Functions' best practices name, docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html)
 * and ours. Throttling has its own, longer retry: see {@link THROTTLING_ERRORS}.
 */
export const RETRYABLE_ERRORS = [
  'Lambda.ClientExecutionTimeoutException',
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'TransientError',
  'UnreadableSourceError',
] as const;

/**
 * Lambda throttling: the function's reserved concurrency (or the account's) is in use, which the data
 * functions' cap makes expected under load, so it is waited out longer than a transient error.
 */
export const THROTTLING_ERRORS = ['Lambda.TooManyRequestsException'] as const;

/**
 * A function that crashed rather than threw, retried twice only (an out-of-memory crash on the same
 * input repeats). Step Functions reports a crash, out of memory and a function timeout as
 * `Lambda.Unknown` (docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html); the
 * Lambda invoke integration passes Lambda's own error type when the runtime gives one:
 * `Sandbox.Timedout` (the function's timeout), `Runtime.ExitError` (the runtime process exited, as
 * when the kernel kills it for memory), `Runtime.NodejsExit` (Node.js exited)
 * (docs.aws.amazon.com/lambda/latest/dg/troubleshooting-invocation.html).
 */
export const CRASH_ERRORS = [
  'Lambda.Unknown',
  'Sandbox.Timedout',
  'Runtime.ExitError',
  'Runtime.NodejsExit',
] as const;

/** The fields that name what one invocation works on, for every log line it writes. */
export interface InvocationKeys {
  project_id?: string;
  pipeline?: string;
  step_id?: string;
  arrival_hour?: string;
  task?: number;
}

/**
 * What a state input names: the project (every input of the project workflow), the step (a step input
 * or an item's `step`), and the arrival hour or task of a fan-out item. Never the config or the owner.
 */
export function invocationKeys(input: unknown): InvocationKeys {
  if (typeof input !== 'object' || input === null) return {};
  const record = input as Record<string, unknown>;
  const step =
    typeof record.step === 'object' && record.step !== null
      ? (record.step as Record<string, unknown>)
      : record;
  const keys: InvocationKeys = {};
  for (const field of ['project_id', 'pipeline', 'step_id'] as const) {
    const value = step[field];
    if (typeof value === 'string') keys[field] = value;
  }
  if (typeof record.arrival_hour === 'string') keys.arrival_hour = record.arrival_hour;
  if (typeof record.task === 'number') keys.task = record.task;
  return keys;
}

/** An activity's output as one log line shows it: its numbers and short strings, and lists by length. */
export function outputSummary(output: unknown): Record<string, string | number | boolean> {
  if (typeof output !== 'object' || output === null) return {};
  const summary: Record<string, string | number | boolean> = {};
  for (const [field, value] of Object.entries(output)) {
    if (typeof value === 'number' || typeof value === 'boolean') summary[field] = value;
    else if (typeof value === 'string' && value.length <= 200) summary[field] = value;
    else if (Array.isArray(value)) summary[field] = value.length;
  }
  return summary;
}
