/**
 * Records the engine persists. Snake_case because people read them (in the state folder, in the
 * console, in the destination's manifests) and tools parse them.
 */
import { z } from 'zod';
import { CorruptStateError, describeIssue } from './errors.js';
import { isIngestRecordKey, isRunRecordKey, SNAPSHOT_POINTER_KEY } from './layout.js';
import { DATA_SOURCES } from './pipeline-config.js';
import type { SerializedSchema } from './warehouse/property-schema.js';

/**
 * Who is responsible for a valid event (docs/contract.md#semantics): a step id, or why no step exports it.
 */
export type Owner = string;
/** Valid events outside `from_date`..`to_date`. */
export const OUTSIDE_RANGE: Owner = 'outside-range';
/** Valid events whose name the pipeline's event filter excludes. */
export const FILTERED: Owner = 'filtered';
/** Late events of a pipeline without sync: counted, never exported. */
export const LATE_NOT_SYNCED: Owner = 'late-not-synced';

/** A window as records show it: its id, start and end (ISO) and event day. */
const windowRecordSchema = z
  .object({ id: z.string(), start: z.string(), end: z.string(), day: z.string() })
  .readonly();
/** A window as records show it: its id, start and end (ISO) and event day. */
export type WindowRecord = z.infer<typeof windowRecordSchema>;

/** The parts a manifest lists: file names relative to the manifest's folder, with their sizes. */
const manifestPartsSchema = z
  .array(
    z
      .object({ file: z.string(), records: z.number(), bytes: z.number(), uncompressed_bytes: z.number() })
      .readonly(),
  )
  .readonly();

/** Counts by owner, then by event day (`YYYY-MM-DD`, project time). */
const ownerCountsSchema = z.record(z.string(), z.record(z.string(), z.number()));
/** Counts by owner, then by event day (`YYYY-MM-DD`, project time). */
export type OwnerCounts = z.infer<typeof ownerCountsSchema>;

const stagedObjectSchema = z
  .object({
    key: z.string(),
    /** The UTC event hour of its events (`YYYYMMDDHH`). */
    event_hour: z.string(),
    records: z.number(),
    bytes: z.number(),
    /** Events in it that are late for their window (owned by the sync of this arrival day). */
    late: z.number(),
    /** The steps that export its events: it is removed once every one of them has committed. */
    owners: z.array(z.string()).readonly(),
    /** Key of its dedup-keys companion, when the pipeline syncs. */
    keys_key: z.string().optional(),
  })
  .readonly();
/** One staged object an ingest wrote. */
export type StagedObject = z.infer<typeof stagedObjectSchema>;

const setAsideReasonSchema = z.enum(['unreadable', 'too_large', 'compression_ratio']);
/** Why a source object could not be ingested and was set aside whole. */
export type SetAsideReason = z.infer<typeof setAsideReasonSchema>;

const setAsideObjectSchema = z
  .object({
    key: z.string(),
    bytes: z.number(),
    reason: setAsideReasonSchema,
    /** The error of its last attempt, or what exceeded a limit. */
    error: z.string(),
    attempts: z.number(),
    /** Where the copy is, in the destination. */
    copy_key: z.string(),
  })
  .readonly();
/** A source object set aside whole (copied under the pipeline's quarantine), never silently skipped. */
export type SetAsideObject = z.infer<typeof setAsideObjectSchema>;

const pendingObjectSchema = z
  .object({
    key: z.string(),
    source: z.enum(DATA_SOURCES).exclude(['events']),
    records: z.number(),
    bytes: z.number(),
  })
  .readonly();
/** Valid updates of one arrival hour and source, kept until a snapshot folds them. */
export type PendingObject = z.infer<typeof pendingObjectSchema>;

const ingestRecordSchema = z
  .object({
    arrival_hour: z.string(),
    /** Project-time date of the arrival hour's start (the arrival day of its late events). */
    arrival_day: z.string(),
    /** The objects read; `folder_hour` marks one written late into an earlier hour's folder (adopted). */
    sources: z
      .array(
        z
          .object({
            key: z.string(),
            bytes: z.number(),
            lines: z.number(),
            folder_hour: z.string().optional(),
          })
          .readonly(),
      )
      .readonly(),
    source_lines: z.number(),
    valid: z.number(),
    quarantined: z.number(),
    quarantine_reasons: z.record(z.string(), z.number()),
    quarantine_parts: z
      .array(z.object({ key: z.string(), records: z.number(), bytes: z.number() }).readonly())
      .readonly(),
    staged: z.array(stagedObjectSchema).readonly(),
    owners: ownerCountsSchema,
    /** Snapshot pipelines: the valid updates kept for the next snapshot (instead of `staged`). */
    pending: z.array(pendingObjectSchema).readonly().optional(),
    /** Source objects that could not be read and were set aside whole (not in `sources`). */
    set_aside: z.array(setAsideObjectSchema).readonly(),
    /** How many pieces (invocations) the hour was read in. */
    pieces: z.number(),
  })
  .readonly();
/** The commit record of one arrival hour's ingest. */
export type IngestRecord = z.infer<typeof ingestRecordSchema>;

const tableFileSchema = z.object({ key: z.string(), records: z.number(), bytes: z.number() }).readonly();
/** A sorted table of the snapshot state (identity mappings, or one shard of the profiles). */
export type TableFile = z.infer<typeof tableFileSchema>;

const snapshotPointerSchema = z
  .object({
    step_id: z.string(),
    /** The first arrival hour not folded (ISO): every update that arrived before it is in. */
    through_hour: z.string(),
    /** Lines of the snapshot in the destination. */
    records: z.number(),
    identity: tableFileSchema,
    /** People: the profile table, one sorted file per shard. */
    profiles: z.array(tableFileSchema).readonly().optional(),
    /** The snapshot's parts in the destination: the next snapshot removes exactly these. */
    parts: z.array(z.string()).readonly(),
  })
  .readonly();
/** Where a snapshot pipeline's state stands: the tables of its last committed snapshot. */
export type SnapshotPointer = z.infer<typeof snapshotPointerSchema>;

const snapshotCountsSchema = z.object({
  /** Profile updates applied (people). */
  updates: z.number(),
  /** Identity links applied. */
  links: z.number(),
  /** Profiles created, deleted by `$delete`, and merged into the profile their id now resolves to. */
  created: z.number(),
  deleted: z.number(),
  merged: z.number(),
  /** Operations left out because the property had the wrong type (e.g. `$add` to a string). */
  skipped: z.number(),
});
/** What a snapshot step folded and wrote. */
export type SnapshotCounts = Readonly<z.infer<typeof snapshotCountsSchema>>;

/** A snapshot step's plan: the folded identity table, and the shards each task rewrites. */
export interface SnapshotPlan {
  readonly step_id: string;
  readonly kind: 'snapshot';
  readonly window: NonNullable<StepPlan['window']>;
  /** The snapshot this one folds into (absent for the first): its tables are the step's input. */
  readonly base?: SnapshotPointer;
  /** Arrival hours folded: `[from_hour, through_hour)` (ISO). */
  readonly from_hour: string;
  readonly through_hour: string;
  /** The identity table after this step's links (the last snapshot's when none arrived). */
  readonly identity: TableFile;
  readonly links: number;
  /** People: updates routed to each shard, and profiles merged away by the links. */
  readonly updates: number;
  readonly merged: number;
  /** People: the shards that have routed changes (the others are copied as they are). */
  readonly routed: readonly number[];
  /** Shards each task rewrites (identity: one task, no shards). */
  readonly tasks: readonly (readonly number[])[];
}

/** What one snapshot task wrote. */
export interface SnapshotTaskResult {
  readonly step_id: string;
  readonly task: number;
  readonly parts: readonly PartRecord[];
  /** People: the new table file of each shard the task rewrote. */
  readonly shards: readonly { readonly shard: number; readonly table: TableFile }[];
  readonly updates: number;
  readonly created: number;
  readonly deleted: number;
  readonly skipped: number;
}

const snapshotManifestSchema = z
  .object({
    format: z.literal('mp-pipelines/snapshot-manifest@1'),
    project_id: z.string(),
    pipeline: z.string(),
    data_source: z.enum(DATA_SOURCES).exclude(['events']),
    step_id: z.string(),
    window: windowRecordSchema,
    /** Every update that arrived before this hour is in the snapshot. */
    through_hour: z.string(),
    records: z.number(),
    bytes: z.number(),
    uncompressed_bytes: z.number(),
    parts: manifestPartsSchema,
  })
  .readonly();
/** The manifest of a snapshot: the only parts a reader should read. Replaced in one put. */
export type SnapshotManifest = z.infer<typeof snapshotManifestSchema>;

/** One staged object an export unit reads: its records, or only its dedup keys (copies that came earlier). */
export interface UnitObject {
  readonly key: string;
  readonly read: 'records' | 'keys';
  /** When its events arrived (ISO hour): a sync tells late events from on-time ones by it. */
  readonly arrival_hour: string;
}

/**
 * The part of a step's export that one task handles: one UTC event hour, or one slice of it by the
 * hash of the dedup key when the hour holds more keys than one task keeps in memory.
 */
export interface ExportUnit {
  readonly event_hour: string;
  readonly slice: number;
  readonly slices: number;
  /** In arrival order: duplicates keep their first copy. */
  readonly objects: readonly UnitObject[];
  /** Staged bytes read (all slices of an hour read all of its objects). */
  readonly bytes: number;
}

/** A step's plan, persisted before any task runs so a re-run repeats the same tasks. */
export interface StepPlan {
  readonly step_id: string;
  readonly kind: 'regular' | 'sync';
  /** Regular steps: the window. */
  readonly window?: WindowRecord;
  /** Sync steps: the arrival day whose late events it exports. */
  readonly arrival_day?: string;
  readonly tasks: readonly (readonly ExportUnit[])[];
  /** Events the ingest records routed to this step, by event day: the commit must account for each. */
  readonly routed: Record<string, number>;
  /** The staged objects whose events the step exports, removed once all their owners committed. */
  readonly staged: readonly PlannedObject[];
}

/** A staged object a step reads the records of, with what decides when it can go. */
export interface PlannedObject extends StagedObject {
  readonly arrival_hour: string;
}

const dayCountsSchema = z.object({ exported: z.number(), duplicates: z.number() });
/** Counts of one step in one event day. */
export type DayCounts = z.infer<typeof dayCountsSchema>;

/** One output part. */
export interface PartRecord {
  readonly key: string;
  readonly day: string;
  readonly records: number;
  readonly bytes: number;
  readonly uncompressed_bytes: number;
}

/** What one export task wrote. */
export interface TaskResult {
  readonly step_id: string;
  readonly task: number;
  readonly parts: readonly PartRecord[];
  readonly days: Record<string, DayCounts>;
  /** The properties of the records written, with their JSON types (absent in results of older versions). */
  readonly schema?: SerializedSchema;
}

const manifestSchema = z
  .object({
    format: z.literal('mp-pipelines/manifest@1'),
    project_id: z.string(),
    pipeline: z.string(),
    step_id: z.string(),
    kind: z.enum(['regular', 'sync']),
    window: windowRecordSchema.optional(),
    arrival_day: z.string().optional(),
    day: z.string(),
    records: z.number(),
    bytes: z.number(),
    uncompressed_bytes: z.number(),
    duplicates_dropped: z.number(),
    parts: manifestPartsSchema,
  })
  .readonly();
/** The manifest a step writes into each day folder it touches, after its parts. */
export type Manifest = z.infer<typeof manifestSchema>;

const runRecordSchema = z
  .object({
    step_id: z.string(),
    pipeline: z.string(),
    kind: z.enum(['regular', 'sync']),
    /** Regular and snapshot steps: the window. */
    window: windowRecordSchema.optional(),
    /** Sync steps: the arrival day. */
    arrival_day: z.string().optional(),
    status: z.literal('succeeded'),
    days: z.record(z.string(), dayCountsSchema),
    exported: z.number(),
    duplicates: z.number(),
    parts: z.number(),
    bytes: z.number(),
    tasks: z.number(),
    started_at: z.string(),
    finished_at: z.string(),
    duration_ms: z.number(),
    /** Snapshot steps: what they folded (`exported` counts the snapshot's lines). */
    snapshot: snapshotCountsSchema.extend({ through_hour: z.string() }).readonly().optional(),
  })
  .readonly();
/** The run record of a committed step: the step is done exactly when this exists. */
export type RunRecord = z.infer<typeof runRecordSchema>;

/** Adds `n` to `counts[owner][day]`. */
export function addOwnerCount(counts: OwnerCounts, owner: Owner, day: string, n = 1): void {
  const byDay = counts[owner] ?? {};
  counts[owner] = byDay;
  byDay[day] = (byDay[day] ?? 0) + n;
}

const stepRunEntrySchema = z
  .object({
    project_id: z.string(),
    pipeline: z.string(),
    step_id: z.string(),
    kind: z.enum(['regular', 'sync']),
    status: z.enum(['succeeded', 'failed']),
    tick: z.string(),
    started_at: z.string(),
    finished_at: z.string(),
    duration_ms: z.number(),
    /** Succeeded steps: what they exported. */
    exported: z.number().optional(),
    duplicates: z.number().optional(),
    parts: z.number().optional(),
    bytes: z.number().optional(),
    tasks: z.number().optional(),
    /** Seconds from the end of the data the step covers to its commit. */
    export_lag_s: z.number().optional(),
    /** Failed steps: the error name and message. */
    error: z.string().optional(),
    cause: z.string().optional(),
  })
  .readonly();
/**
 * A step's latest outcome in the project's run log (the console's and the CLI's view): the run record
 * when it succeeded, the error when it failed. A failed step is retried on the next tick.
 */
export type StepRunEntry = z.infer<typeof stepRunEntrySchema>;

/** The stored records whose shape this version checks on every read. */
export const STORED_RECORDS = {
  runRecord: runRecordSchema,
  ingestRecord: ingestRecordSchema,
  snapshotPointer: snapshotPointerSchema,
  manifest: manifestSchema,
  snapshotManifest: snapshotManifestSchema,
  stepRunEntry: stepRunEntrySchema,
} as const;

/**
 * `value` as `schema` reads it; `CorruptStateError` naming `location` (the object or item it was read
 * from) and the first field that does not fit otherwise.
 */
export function parseStoredState<S extends z.ZodType>(
  location: string,
  schema: S,
  value: unknown,
): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const { field, problem } = describeIssue(parsed.error.issues);
  throw new CorruptStateError(location, field, problem);
}

/**
 * The schema of the record a pipeline state key holds (run records, ingest records, the snapshot
 * pointer), so every read of one checks it whoever reads it; `undefined` for other keys.
 */
export function stateRecordSchema(key: string): z.ZodType | undefined {
  if (isRunRecordKey(key)) return runRecordSchema;
  if (isIngestRecordKey(key)) return ingestRecordSchema;
  return key === SNAPSHOT_POINTER_KEY ? snapshotPointerSchema : undefined;
}
