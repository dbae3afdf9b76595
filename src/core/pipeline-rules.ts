/**
 * Pipelines as managed (DESIGN 5): the management attributes stored beside a config, how a stored item
 * reads, and the rules between the pipelines of one project. Pure: the CLI, the console-edit validator
 * and the dispatcher all decide with these functions.
 */
import { z } from 'zod';
import { checkPipelineConfig, type PipelineConfig } from './pipeline-config.js';
import type { ConfigListing } from './ports.js';
import { addDays, DAY_MS, ZoneCalendar } from './windows.js';

export const PIPELINE_STATUSES = ['active', 'paused', 'error', 'deleted'] as const;
export type PipelineStatus = (typeof PIPELINE_STATUSES)[number];

/** At most this many events pipelines per project (DESIGN 5). */
export const MAX_EVENTS_PIPELINES_PER_PROJECT = 2;
/** A project's trial lasts this long from its first trial pipeline. */
export const TRIAL_DAYS = 30;
/** The `status_reason` of a trial pipeline paused when the trial ended. */
export const TRIAL_ENDED = 'trial ended';
/** How far before its creation day a trial pipeline may backfill. */
export const TRIAL_BACKFILL_DAYS = 1;

const instant = z.iso.datetime({
  offset: true,
  message: 'must be an ISO-8601 instant, e.g. 2024-01-31T00:00:00Z',
});

/**
 * Attributes a stored pipeline has beside its config. Items written by hand may lack them: a missing
 * status means active, a missing version 0.
 */
export const managementSchema = z
  .object({
    status: z.enum(PIPELINE_STATUSES).default('active'),
    status_reason: z.string().optional(),
    /** Bumped by every write of the CLI and the validator (optimistic concurrency). */
    version: z.number().int().min(0).default(0),
    created_at: instant.optional(),
    updated_at: instant.optional(),
    /** Trial pipelines: when the project's trial began (copied from the project at creation). */
    trial_started_at: instant.optional(),
  })
  .strict();

export type Management = z.infer<typeof managementSchema>;
const MANAGEMENT_FIELDS = new Set(Object.keys(managementSchema.shape));

/** One stored pipeline: its management attributes and its config, or why the config does not validate. */
export interface StoredPipeline {
  readonly project_id: string;
  readonly name: string;
  readonly management: Management;
  /** The config attributes as stored (for display; `config` is the validated form). */
  readonly fields: Readonly<Record<string, unknown>>;
  readonly config?: PipelineConfig;
  /** What is wrong with the item, `field: problem` each; absent when it validates. */
  readonly problems?: readonly string[];
  /** A `status` attribute that is not a status, as stored (the pipeline reads as paused). */
  readonly invalidStatus?: unknown;
}

/** Reads a stored item (plain attributes), validating its config and management attributes. */
export function readStoredPipeline(item: Readonly<Record<string, unknown>>): StoredPipeline {
  const fields: Record<string, unknown> = {};
  const managementFields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(item)) {
    (MANAGEMENT_FIELDS.has(key) ? managementFields : fields)[key] = value;
  }
  const { management, problems: managementProblems, statusInvalid } = readManagement(managementFields);
  const check = checkPipelineConfig(fields);
  const problems = [...managementProblems, ...(check.problems ?? [])];
  return {
    project_id: String(item.project_id),
    name: String(item.name),
    management,
    fields,
    ...(check.config === undefined ? {} : { config: check.config }),
    ...(problems.length === 0 ? {} : { problems }),
    ...(statusInvalid ? { invalidStatus: managementFields.status } : {}),
  };
}

/**
 * Management attributes field by field, so one bad value (a mistyped `status`) keeps the others
 * (`created_at`, `trial_started_at`). A bad status reads as `paused`: the pipeline stops, and only a
 * person setting it again makes it run.
 */
function readManagement(attributes: Record<string, unknown>): {
  management: Management;
  problems: string[];
  statusInvalid: boolean;
} {
  const whole = managementSchema.safeParse(attributes);
  if (whole.success) return { management: whole.data, problems: [], statusInvalid: false };
  const problems: string[] = [];
  const valid: Record<string, unknown> = { status: 'paused' };
  for (const [field, schema] of Object.entries(managementSchema.shape)) {
    const one = (schema as z.ZodType).safeParse(attributes[field]);
    if (one.success) valid[field] = one.data;
    else if (field !== 'status')
      problems.push(...one.error.issues.map((issue) => `${field}: ${issue.message}`));
  }
  return {
    management: valid as Management,
    problems,
    statusInvalid: !managementSchema.shape.status.safeParse(attributes.status).success,
  };
}

/** Pipelines that run or may run again: the ones the rules compare against. */
export function isLive(pipeline: StoredPipeline): boolean {
  return pipeline.management.status === 'active' || pipeline.management.status === 'paused';
}

/** When a trial that began at `trialStartedAt` ends. */
export function trialEnd(trialStartedAt: string): number {
  return Date.parse(trialStartedAt) + TRIAL_DAYS * DAY_MS;
}

/** True when the pipeline is a trial whose project trial has ended at `now`. */
export function trialEnded(pipeline: StoredPipeline, now: number): boolean {
  const started = pipeline.management.trial_started_at;
  return pipeline.config?.trial === true && started !== undefined && now >= trialEnd(started);
}

/** The pipelines that run at `now` (active, valid, not a trial that ended), and the invalid active ones. */
export function activeConfigs(pipelines: readonly StoredPipeline[], now: number): ConfigListing {
  const configs: PipelineConfig[] = [];
  const invalid: ConfigListing['invalid'][number][] = [];
  for (const pipeline of pipelines) {
    if (pipeline.management.status !== 'active' || trialEnded(pipeline, now)) continue;
    if (pipeline.config !== undefined && pipeline.problems === undefined) configs.push(pipeline.config);
    else
      invalid.push({
        project_id: pipeline.project_id,
        name: pipeline.name,
        problem: (pipeline.problems ?? []).join('; '),
      });
  }
  return { configs, invalid };
}

/** A pipeline about to be created or re-validated, with the instant it was created. */
export interface RuleCandidate {
  readonly config: PipelineConfig;
  readonly created_at: number;
}

/**
 * What breaks the rules between `candidate` and the other pipelines of its project (`others`: every
 * stored pipeline of the project except the candidate; only live ones count). Empty when it complies.
 */
export function ruleProblems(candidate: RuleCandidate, others: readonly StoredPipeline[]): string[] {
  const { config } = candidate;
  const live = others.filter((p) => isLive(p) && p.config !== undefined && p.name !== config.name);
  const problems: string[] = [];
  if (config.data_source === 'events') {
    const events = live.filter((p) => p.config?.data_source === 'events');
    if (events.length >= MAX_EVENTS_PIPELINES_PER_PROJECT) {
      problems.push(
        `project ${config.project_id} already has ${events.length} events pipelines (${names(events)}); ` +
          `at most ${MAX_EVENTS_PIPELINES_PER_PROJECT} are allowed: delete one first`,
      );
    }
    const clashes = events.filter(
      (p) =>
        p.config !== undefined &&
        destinationOf(p.config) === destinationOf(config) &&
        rangesOverlap(p.config, config),
    );
    if (clashes.length > 0) {
      problems.push(
        `exports to ${destinationOf(config)} for dates that overlap ${names(clashes)} ` +
          `(${clashes.map((p) => rangeText(p.config as PipelineConfig)).join(', ')}): ` +
          'use another s3_bucket or s3_prefix, or dates that do not overlap',
      );
    }
  } else {
    // A snapshot replaces everything in its folder: two writers would delete each other's files.
    const clashes = live.filter(
      (p) =>
        p.config?.data_source === config.data_source && destinationOf(p.config) === destinationOf(config),
    );
    if (clashes.length > 0)
      problems.push(
        `${names(clashes)} already writes the ${config.data_source} snapshot to ${destinationOf(config)}: ` +
          'use another s3_bucket or s3_prefix',
      );
  }
  if (config.trial) {
    const trials = live.filter(
      (p) => p.config?.trial === true && p.config.data_source === config.data_source,
    );
    if (trials.length > 0)
      problems.push(
        `project ${config.project_id} already has a trial ${config.data_source} pipeline (${names(trials)}); a trial allows one per data source`,
      );
    const earliest = addDays(
      new ZoneCalendar(config.time_zone).localDate(candidate.created_at),
      -TRIAL_BACKFILL_DAYS,
    );
    if (config.from_date < earliest)
      problems.push(
        `from_date ${config.from_date} is too early for a trial pipeline: a trial backfills at most ${TRIAL_BACKFILL_DAYS} day before its creation (from ${earliest})`,
      );
  }
  return problems;
}

/** Where a pipeline's output goes, as one comparable string. */
export function destinationOf(config: PipelineConfig): string {
  const prefix = config.s3_prefix === undefined ? '' : config.s3_prefix.replace(/\/?$/, '/');
  return `s3://${config.s3_bucket ?? '(deployment destination)'}/${prefix}`;
}

function rangesOverlap(a: PipelineConfig, b: PipelineConfig): boolean {
  return (
    (a.to_date === undefined || b.from_date <= a.to_date) &&
    (b.to_date === undefined || a.from_date <= b.to_date)
  );
}

function rangeText(config: PipelineConfig): string {
  return `${config.from_date}..${config.to_date ?? 'open'}`;
}

function names(pipelines: readonly StoredPipeline[]): string {
  return pipelines.map((p) => `"${p.name}"`).join(', ');
}

/** A status change the validator makes to a stored pipeline. */
export interface StatusChange {
  readonly status: PipelineStatus;
  readonly status_reason?: string;
}

/**
 * What a stored pipeline's status must become after a write (by the CLI or by hand), or `undefined`
 * when it is right: an invalid item goes to `error` with the problems as its reason, an item fixed by
 * hand from `error` back to `active`, and a trial past its end to `paused` ("trial ended").
 */
export function reviewStatus(
  pipeline: StoredPipeline,
  others: readonly StoredPipeline[],
  now: number,
  /** Problems found outside the item (e.g. settings that differ from those its state was built with). */
  outsideProblems: readonly string[] = [],
): StatusChange | undefined {
  const { status, status_reason: reason } = pipeline.management;
  if (status === 'deleted') return undefined;
  // Between two pipelines that break a rule together, the one created later is in error.
  const problems = pipeline.problems ?? [
    ...ruleProblems(
      { config: pipeline.config as PipelineConfig, created_at: createdAt(pipeline, now) },
      others.filter((other) => createdBefore(other, pipeline)),
    ),
    ...outsideProblems,
  ];
  if (problems.length > 0) {
    const text = problems.join('; ');
    return status === 'error' && reason === text ? undefined : { status: 'error', status_reason: text };
  }
  if (pipeline.invalidStatus !== undefined) {
    return {
      status: 'paused',
      status_reason:
        `status ${JSON.stringify(pipeline.invalidStatus)} is not one of ${PIPELINE_STATUSES.join(', ')}: ` +
        'the pipeline is paused; set status to "active" to resume',
    };
  }
  if (trialEnded(pipeline, now)) {
    return status === 'paused' && reason === TRIAL_ENDED
      ? undefined
      : { status: 'paused', status_reason: TRIAL_ENDED };
  }
  if (status === 'error') return { status: 'active' };
  return undefined;
}

/** When a pipeline was created; items written by hand without `created_at` count as the newest. */
export function createdAt(pipeline: StoredPipeline, now: number): number {
  const at = pipeline.management.created_at;
  return at === undefined ? now : Date.parse(at);
}

/** True when `a` was created before `b` (names break ties; no `created_at` sorts last). */
function createdBefore(a: StoredPipeline, b: StoredPipeline): boolean {
  const at =
    a.management.created_at === undefined ? Number.POSITIVE_INFINITY : Date.parse(a.management.created_at);
  const bt =
    b.management.created_at === undefined ? Number.POSITIVE_INFINITY : Date.parse(b.management.created_at);
  return at < bt || (at === bt && a.name < b.name);
}
