/**
 * Pipelines as managed (docs/contract.md#management): the management attributes stored beside a config, how a
 * stored item reads, and the rules between the pipelines of one project. Pure: the CLI, the console-edit
 * validator and the dispatcher all decide with these functions.
 */
import { z } from 'zod';
import { checkPipelineConfig, type PipelineConfig } from './pipeline-config.js';
import { addDays, DAY_MS, ZoneCalendar } from './windows.js';

export const PIPELINE_STATUSES = ['active', 'paused', 'error', 'deleted'] as const;
export type PipelineStatus = (typeof PIPELINE_STATUSES)[number];

/** At most this many events pipelines per project (docs/contract.md#management-rules). */
export const MAX_EVENTS_PIPELINES_PER_PROJECT = 2;
/** A project's trial lasts this long from its first trial pipeline. */
export const TRIAL_DAYS = 30;
/** The `status_reason` of a trial pipeline paused when the trial ended. */
export const TRIAL_ENDED = 'trial ended';
/** How far before its creation day a trial pipeline may backfill. */
export const TRIAL_BACKFILL_DAYS = 1;
/** The longest `status_reason` the review writes (characters; longer reasons are cut). */
export const MAX_STATUS_REASON_CHARS = 1000;

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

/**
 * A stored value this software cannot hold as JavaScript: a number with more significant digits than a
 * JavaScript number keeps (reading it would change it), or a kind of value it does not know. It is kept
 * as stored, so it is reported, shown and written back unchanged; an attribute holding one anywhere is
 * a problem of its item.
 */
export class UnreadableValue {
  constructor(
    /** What is wrong, said after the attribute's name. */
    readonly problem: string,
    /** How it is shown (a number as stored). */
    readonly shown: string,
    /** The value in the store's own form, for writing it back unchanged. */
    readonly stored: unknown,
  ) {}

  toJSON(): string {
    return this.shown;
  }

  toString(): string {
    return this.shown;
  }
}

/**
 * A stored number (DynamoDB keeps up to 38 significant digits) as a JavaScript number when that number
 * is the stored decimal, written the shortest way (`1E+125`, `0.1`, `007.50`); otherwise (e.g.
 * `12345678901234567.5`, which JavaScript would read as 12345678901234568) an `UnreadableValue`.
 */
export function storedNumber(text: string): number | UnreadableValue {
  const value = Number(text);
  const decimal = canonicalDecimal(text);
  // DynamoDB has no negative zero: -0 reads as 0.
  if (decimal !== undefined && Number.isFinite(value) && decimal === canonicalDecimal(String(value)))
    return value === 0 ? 0 : value;
  return new UnreadableValue(
    `the number ${text} cannot be read exactly: it has more significant digits than a JavaScript number holds` +
      (Number.isFinite(value) ? ` (it would read as ${value})` : ''),
    text,
    { N: text },
  );
}

/** A decimal as sign, digits without leading or trailing zeros, and exponent; `undefined` if not one. */
function canonicalDecimal(text: string): string | undefined {
  const parts = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (parts === null) return undefined;
  const [, sign = '', whole = '', fraction = '', exponent = '0'] = parts;
  if (whole === '' && fraction === '') return undefined;
  const digits = (whole + fraction).replace(/^0+/, '');
  if (digits === '') return '0';
  const significant = digits.replace(/0+$/, '');
  const power = Number(exponent) - fraction.length + (digits.length - significant.length);
  return `${sign === '-' ? '-' : ''}${significant}e${power}`;
}

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
  /**
   * A `version` attribute that is not a version, as stored: the item reads as version 0, and its next
   * write conditions on this value and counts again from 1.
   */
  readonly invalidVersion?: unknown;
}

/**
 * Reads a stored item (plain attributes, as the store reads them: sets as `Set`, binary as
 * `Uint8Array`, numbers JavaScript cannot hold as `UnreadableValue`), validating its config and
 * management attributes. Never throws: whatever an attribute holds is a problem named after it.
 */
export function readStoredPipeline(item: Readonly<Record<string, unknown>>): StoredPipeline {
  const fields: Record<string, unknown> = {};
  const managementFields: Record<string, unknown> = {};
  const unreadable = new Map<string, string>();
  for (const [key, value] of Object.entries(item)) {
    // Defined, not assigned: an attribute named "__proto__" stays an attribute (and is refused).
    Object.defineProperty(MANAGEMENT_FIELDS.has(key) ? managementFields : fields, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
    const problem = unreadableIn(value);
    // An unreadable status is an invalid one: the pipeline pauses (see readManagement).
    if (problem !== undefined && key !== 'status') unreadable.set(key, `${key}: ${problem}`);
  }
  const {
    management,
    problems: managementProblems,
    statusInvalid,
    versionInvalid,
  } = readManagement(managementFields);
  const check = checkPipelineConfig(fields);
  const problems = [
    ...unreadable.values(),
    // The validator's own words about an unreadable value ("received UnreadableValue") add nothing.
    ...[...managementProblems, ...(check.problems ?? [])].filter((problem) => {
      const field = problem.split(/[.:]/, 1)[0] ?? '';
      return field === '(config)' || !unreadable.has(field);
    }),
  ];
  return {
    project_id: String(item.project_id),
    name: String(item.name),
    management,
    fields,
    ...(check.config === undefined ? {} : { config: check.config }),
    ...(problems.length === 0 ? {} : { problems }),
    ...(statusInvalid ? { invalidStatus: managementFields.status } : {}),
    ...(versionInvalid ? { invalidVersion: managementFields.version } : {}),
  };
}

/** The problem of the first unreadable value inside `value` (lists, sets and maps included). */
function unreadableIn(value: unknown): string | undefined {
  if (value instanceof UnreadableValue) return value.problem;
  if (Array.isArray(value) || value instanceof Set) {
    for (const member of value) {
      const problem = unreadableIn(member);
      if (problem !== undefined) return problem;
    }
  } else if (typeof value === 'object' && value !== null && !(value instanceof Uint8Array)) {
    return unreadableIn(Object.values(value));
  }
  return undefined;
}

/**
 * Management attributes field by field, so one bad value (a mistyped `status`) keeps the others
 * (`created_at`, `trial_started_at`). A bad status reads as `paused`: the pipeline stops, and only a
 * person setting it again makes it run. A bad version reads as 0.
 */
function readManagement(attributes: Record<string, unknown>): {
  management: Management;
  problems: string[];
  statusInvalid: boolean;
  versionInvalid: boolean;
} {
  const whole = managementSchema.safeParse(attributes);
  if (whole.success)
    return { management: whole.data, problems: [], statusInvalid: false, versionInvalid: false };
  const problems: string[] = [];
  const valid: Record<string, unknown> = { status: 'paused', version: 0 };
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
    versionInvalid: !managementSchema.shape.version.safeParse(attributes.version).success,
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

/** A stored config that fails validation: it never runs, and the problem is reported. */
export interface InvalidConfig {
  readonly project_id: string;
  readonly name: string;
  readonly problem: string;
}

/** The active pipelines found, and the stored configs that are invalid. */
export interface ConfigListing {
  readonly configs: readonly PipelineConfig[];
  readonly invalid: readonly InvalidConfig[];
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
    const text = statusReason(problems.join('; '));
    return status === 'error' && reason === text ? undefined : { status: 'error', status_reason: text };
  }
  if (pipeline.invalidStatus !== undefined) {
    return {
      status: 'paused',
      status_reason: statusReason(
        `status ${shown(pipeline.invalidStatus)} is not one of ${PIPELINE_STATUSES.join(', ')}: ` +
          'the pipeline is paused; set status to "active" to resume',
      ),
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

/**
 * `text` cut to {@link MAX_STATUS_REASON_CHARS} characters: a reason quoting a huge attribute (an
 * unknown time zone, unknown attribute names) would otherwise grow the item past DynamoDB's 400 KB.
 */
function statusReason(text: string): string {
  return cut(text, MAX_STATUS_REASON_CHARS);
}

/** At most `max` characters of `text`, saying how many more there were. */
function cut(text: string, max: number): string {
  const characters = Array.from(text);
  if (characters.length <= max) return text;
  const kept = max - 32;
  return `${characters.slice(0, kept).join('')}... (${characters.length - kept} more characters)`;
}

/** A stored value as a problem quotes it: JSON, sets as lists, binary as its length, long ones cut. */
function shown(value: unknown): string {
  const json = JSON.stringify(value, (_key, member: unknown) =>
    member instanceof Set ? [...member] : member instanceof Uint8Array ? `<${member.length} bytes>` : member,
  );
  return cut(json, 200);
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
