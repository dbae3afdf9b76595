/**
 * Records the engine persists. Snake_case because people read them (in the state folder, in the
 * console, in the destination's manifests) and tools parse them.
 */
import type { SnapshotSource } from './pipeline-config.js';
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

/** Counts by owner, then by event day (`YYYY-MM-DD`, project time). */
export type OwnerCounts = Record<Owner, Record<string, number>>;

/** One staged object an ingest wrote. */
export interface StagedObject {
  readonly key: string;
  /** The UTC event hour of its events (`YYYYMMDDHH`). */
  readonly event_hour: string;
  readonly records: number;
  readonly bytes: number;
  /** Events in it that are late for their window (owned by the sync of this arrival day). */
  readonly late: number;
  /** The steps that export its events: it is removed once every one of them has committed. */
  readonly owners: readonly string[];
  /** Key of its dedup-keys companion, when the pipeline syncs. */
  readonly keys_key?: string;
}

/** Why a source object could not be ingested and was set aside whole. */
export type SetAsideReason = 'unreadable' | 'too_large' | 'compression_ratio';

/** A source object set aside whole (copied under the pipeline's quarantine), never silently skipped. */
export interface SetAsideObject {
  readonly key: string;
  readonly bytes: number;
  readonly reason: SetAsideReason;
  /** The error of its last attempt, or what exceeded a limit. */
  readonly error: string;
  readonly attempts: number;
  /** Where the copy is, in the destination. */
  readonly copy_key: string;
}

/** The commit record of one arrival hour's ingest. */
export interface IngestRecord {
  readonly arrival_hour: string;
  /** Project-time date of the arrival hour's start (the arrival day of its late events). */
  readonly arrival_day: string;
  /** The objects read; `folder_hour` marks one written late into an earlier hour's folder (adopted). */
  readonly sources: readonly {
    readonly key: string;
    readonly bytes: number;
    readonly lines: number;
    readonly folder_hour?: string;
  }[];
  readonly source_lines: number;
  readonly valid: number;
  readonly quarantined: number;
  readonly quarantine_reasons: Record<string, number>;
  readonly quarantine_parts: readonly {
    readonly key: string;
    readonly records: number;
    readonly bytes: number;
  }[];
  readonly staged: readonly StagedObject[];
  readonly owners: OwnerCounts;
  /** Snapshot pipelines: the valid updates kept for the next snapshot (instead of `staged`). */
  readonly pending?: readonly PendingObject[];
  /** Source objects that could not be read and were set aside whole (not in `sources`). */
  readonly set_aside: readonly SetAsideObject[];
  /** How many pieces (invocations) the hour was read in. */
  readonly pieces: number;
}

/** Valid updates of one arrival hour and source, kept until a snapshot folds them. */
export interface PendingObject {
  readonly key: string;
  readonly source: SnapshotSource;
  readonly records: number;
  readonly bytes: number;
}

/** A sorted table of the snapshot state (identity mappings, or one shard of the profiles). */
export interface TableFile {
  readonly key: string;
  readonly records: number;
  readonly bytes: number;
}

/** Where a snapshot pipeline's state stands: the tables of its last committed snapshot. */
export interface SnapshotPointer {
  readonly step_id: string;
  /** The first arrival hour not folded (ISO): every update that arrived before it is in. */
  readonly through_hour: string;
  /** Lines of the snapshot in the destination. */
  readonly records: number;
  readonly identity: TableFile;
  /** People: the profile table, one sorted file per shard. */
  readonly profiles?: readonly TableFile[];
  /** The snapshot's parts in the destination: the next snapshot removes exactly these. */
  readonly parts: readonly string[];
}

/** What a snapshot step folded and wrote. */
export interface SnapshotCounts {
  /** Profile updates applied (people). */
  readonly updates: number;
  /** Identity links applied. */
  readonly links: number;
  /** Profiles created, deleted by `$delete`, and merged into the profile their id now resolves to. */
  readonly created: number;
  readonly deleted: number;
  readonly merged: number;
  /** Operations left out because the property had the wrong type (e.g. `$add` to a string). */
  readonly skipped: number;
}

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

/** The manifest of a snapshot: the only parts a reader should read. Replaced in one put. */
export interface SnapshotManifest {
  readonly format: 'mp-pipelines/snapshot-manifest@1';
  readonly project_id: string;
  readonly pipeline: string;
  readonly data_source: SnapshotSource;
  readonly step_id: string;
  readonly window: NonNullable<StepPlan['window']>;
  /** Every update that arrived before this hour is in the snapshot. */
  readonly through_hour: string;
  readonly records: number;
  readonly bytes: number;
  readonly uncompressed_bytes: number;
  readonly parts: Manifest['parts'];
}

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
  readonly window?: {
    readonly id: string;
    readonly start: string;
    readonly end: string;
    readonly day: string;
  };
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

/** Counts of one step in one event day. */
export interface DayCounts {
  exported: number;
  duplicates: number;
}

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

/** The manifest a step writes into each day folder it touches, after its parts. */
export interface Manifest {
  readonly format: 'mp-pipelines/manifest@1';
  readonly project_id: string;
  readonly pipeline: string;
  readonly step_id: string;
  readonly kind: 'regular' | 'sync';
  readonly window?: StepPlan['window'];
  readonly arrival_day?: string;
  readonly day: string;
  readonly records: number;
  readonly bytes: number;
  readonly uncompressed_bytes: number;
  readonly duplicates_dropped: number;
  readonly parts: readonly {
    readonly file: string;
    readonly records: number;
    readonly bytes: number;
    readonly uncompressed_bytes: number;
  }[];
}

/** The run record of a committed step: the step is done exactly when this exists. */
export interface RunRecord {
  readonly step_id: string;
  readonly pipeline: string;
  readonly kind: 'regular' | 'sync';
  readonly window?: StepPlan['window'];
  readonly arrival_day?: string;
  readonly status: 'succeeded';
  readonly days: Record<string, DayCounts>;
  readonly exported: number;
  readonly duplicates: number;
  readonly parts: number;
  readonly bytes: number;
  readonly tasks: number;
  readonly started_at: string;
  readonly finished_at: string;
  readonly duration_ms: number;
  /** Snapshot steps: what they folded (`exported` counts the snapshot's lines). */
  readonly snapshot?: SnapshotCounts & { readonly through_hour: string };
}

/** Adds `n` to `counts[owner][day]`. */
export function addOwnerCount(counts: OwnerCounts, owner: Owner, day: string, n = 1): void {
  const byDay = counts[owner] ?? {};
  counts[owner] = byDay;
  byDay[day] = (byDay[day] ?? 0) + n;
}

/**
 * A step's latest outcome in the project's run log (the console's and the CLI's view): the run record
 * when it succeeded, the error when it failed. A failed step is retried on the next tick.
 */
export interface StepRunEntry {
  readonly project_id: string;
  readonly pipeline: string;
  readonly step_id: string;
  readonly kind: 'regular' | 'sync';
  readonly status: 'succeeded' | 'failed';
  readonly tick: string;
  readonly started_at: string;
  readonly finished_at: string;
  readonly duration_ms: number;
  /** Succeeded steps: what they exported. */
  readonly exported?: number;
  readonly duplicates?: number;
  readonly parts?: number;
  readonly bytes?: number;
  readonly tasks?: number;
  /** Seconds from the end of the data the step covers to its commit. */
  readonly export_lag_s?: number;
  /** Failed steps: the error name and message. */
  readonly error?: string;
  readonly cause?: string;
}
