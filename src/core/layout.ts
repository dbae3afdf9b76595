/**
 * Every object key the engine reads or writes, in one place. Three stores are involved:
 * - the raw landing zone: `<project>/events/YYYY/MM/DD/HH/<anything>` (HH = UTC hour of arrival);
 * - the destination: `<project>/mp_master_event/YYYY/MM/DD/...` plus `<project>/_quarantine/...`;
 * - the pipeline's state: ingest records, staging, step work files and run records.
 */
import type { DataSource, SnapshotSource } from './pipeline-config.js';
import { isWindowIdShape, type Window } from './windows.js';

/** `YYYYMMDDHH` of the UTC hour starting at `hourStart` (sortable, used in state keys). */
export function hourStamp(hourStart: number): string {
  const d = new Date(hourStart);
  return `${d.getUTCFullYear()}${pad2(d.getUTCMonth() + 1)}${pad2(d.getUTCDate())}${pad2(d.getUTCHours())}`;
}

/** Inverse of `hourStamp`; `undefined` when the text is not one. */
export function parseHourStamp(stamp: string): number | undefined {
  const match = /^(\d{4})(\d{2})(\d{2})(\d{2})$/.exec(stamp);
  if (!match) return undefined;
  const [, y, m, d, h] = match.map(Number) as [number, number, number, number, number];
  const t = Date.UTC(y, m - 1, d, h);
  return hourStamp(t) === stamp ? t : undefined;
}

/** ISO form of an hour for records people read, e.g. `2024-11-03T05:00Z`. */
export function hourIso(hourStart: number): string {
  return `${new Date(hourStart).toISOString().slice(0, 13)}:00Z`;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** `YYYY/MM/DD` folder of a `YYYY-MM-DD` date. */
export function dateFolder(date: string): string {
  return date.replaceAll('-', '/');
}

/** The raw landing-zone folder of one arrival hour of one data source (Firehose's default UTC layout). */
export function rawHourPrefix(projectId: string, arrivalHour: number, source: DataSource = 'events'): string {
  return `${projectId}/${source}/${hourFolder(arrivalHour)}`;
}

/** `YYYY/MM/DD/HH/` of a UTC hour. */
function hourFolder(hourStart: number): string {
  const d = new Date(hourStart);
  return `${d.getUTCFullYear()}/${pad2(d.getUTCMonth() + 1)}/${pad2(d.getUTCDate())}/${pad2(d.getUTCHours())}/`;
}

// ---- steps -------------------------------------------------------------------------------------

/** A pipeline step: the regular export of one window, or the sync of the late events of one arrival day. */
export type StepRef =
  | { readonly kind: 'regular'; readonly window: Window }
  | { readonly kind: 'sync'; readonly arrivalDay: string };

/**
 * What a step id says on its own, without a calendar: a regular step's frequency and window id, or a
 * sync step's arrival day. Every `StepRef` is one.
 */
export type StepIdParts =
  | { readonly kind: 'regular'; readonly window: Pick<Window, 'frequency' | 'id'> }
  | { readonly kind: 'sync'; readonly arrivalDay: string };

/** Stable step id, also the prefix of the step's output files: `daily-2024-01-15`, `hourly-...`, `sync-2024-01-17`. */
export function stepId(step: StepIdParts): string {
  return step.kind === 'regular' ? `${step.window.frequency}-${step.window.id}` : `sync-${step.arrivalDay}`;
}

/**
 * The parts of a step id (inverse of `stepId`); `undefined` for text no step has. Only the shape is
 * checked: whether a zone has the window is `ZoneCalendar.windowById`'s question.
 */
export function parseStepId(id: string): StepIdParts | undefined {
  const dash = id.indexOf('-');
  if (dash < 0) return undefined;
  const head = id.slice(0, dash);
  const rest = id.slice(dash + 1);
  if (head === 'sync') return isWindowIdShape('daily', rest) ? { kind: 'sync', arrivalDay: rest } : undefined;
  if (head !== 'daily' && head !== 'hourly') return undefined;
  return isWindowIdShape(head, rest) ? { kind: 'regular', window: { frequency: head, id: rest } } : undefined;
}

// ---- destination -------------------------------------------------------------------------------

/** Folder of one event day in the destination. */
export function eventDayPrefix(projectId: string, day: string): string {
  return `${projectId}/mp_master_event/${dateFolder(day)}/`;
}

/**
 * What every output file of one step of one pipeline is named after: `<pipeline>.<step id>`. Two
 * pipelines writing the same folder (a deleted one's exports stay) never share a file name.
 */
export function stepFileStem(pipeline: string, id: string): string {
  return `${pipeline}.${id}`;
}

/** Prefix shared by every part a step writes into one day folder (used to find strays of a crashed attempt). */
export function partPrefix(projectId: string, day: string, pipeline: string, id: string): string {
  return `${eventDayPrefix(projectId, day)}${stepFileStem(pipeline, id)}-t`;
}

/**
 * Deterministic key of one output part: the same step, task and part index always give the same key.
 * `extension` follows the pipeline's format (`.json.gz`, `.json.zst`, `.parquet`).
 */
export function partKey(
  projectId: string,
  day: string,
  pipeline: string,
  id: string,
  task: number,
  part: number,
  extension: string,
): string {
  return `${partPrefix(projectId, day, pipeline, id)}${pad3(task)}-p${pad3(part)}${extension}`;
}

/** The manifest a step writes into a day folder after all its parts: the completion signal for readers. */
export function manifestKey(projectId: string, day: string, pipeline: string, id: string): string {
  return `${eventDayPrefix(projectId, day)}_manifest-${stepFileStem(pipeline, id)}.json`;
}

/** Folder of one pipeline's quarantined lines of one arrival hour of one data source (outside the data folders). */
export function quarantineFolder(
  projectId: string,
  pipeline: string,
  source: DataSource,
  arrivalHour: number,
): string {
  return `${projectId}/_quarantine/${pipeline}/${source}/${hourFolder(arrivalHour)}`;
}

/** A quarantine part written by one piece of an arrival hour's ingest. */
export function quarantineKey(
  projectId: string,
  pipeline: string,
  source: DataSource,
  arrivalHour: number,
  piece: number,
  part: number,
): string {
  const folder = quarantineFolder(projectId, pipeline, source, arrivalHour);
  return `${folder}quarantine-${pad3(piece)}-${pad3(part)}.json.gz`;
}

/** Where a source object that cannot be ingested is set aside whole, under its landing-zone key. */
export function setAsideKey(projectId: string, pipeline: string, rawKey: string): string {
  return `${projectId}/_quarantine/${pipeline}/objects/${rawKey}`;
}

/** Why an object was set aside (reason, error, attempts), beside its copy. */
export function setAsideReasonKey(projectId: string, pipeline: string, rawKey: string): string {
  return `${setAsideKey(projectId, pipeline, rawKey)}.reason.json`;
}

// ---- snapshots (people and identity) -----------------------------------------------------------

/** The destination folder of a snapshot data source. */
export function snapshotFolder(projectId: string, source: SnapshotSource): string {
  return `${projectId}/${source === 'people' ? 'mp_people_data' : 'mp_identity_mappings_data'}/`;
}

/** The manifest of a pipeline's current snapshot: replaced in one put, it is what readers follow. */
export function snapshotManifestKey(projectId: string, source: SnapshotSource, pipeline: string): string {
  return `${snapshotFolder(projectId, source)}_manifest-${pipeline}.json`;
}

/**
 * A part of the snapshot a step writes (named by the step, so it never overwrites the current one);
 * `extension` as for `partKey`.
 */
export function snapshotPartKey(
  projectId: string,
  source: SnapshotSource,
  pipeline: string,
  id: string,
  task: number,
  part: number,
  extension: string,
): string {
  const stem = stepFileStem(pipeline, id);
  return `${snapshotFolder(projectId, source)}${stem}-t${pad3(task)}-p${pad3(part)}${extension}`;
}

function pad3(n: number): string {
  return String(n).padStart(3, '0');
}

// ---- state -------------------------------------------------------------------------------------

/** The pipeline config the state was created with. */
export const PIPELINE_STATE_KEY = 'pipeline.json';
/** First arrival hour not yet ingested: every hour before it has an ingest record. */
export const INGEST_WATERMARK_KEY = 'ingest/_watermark.json';

/** The ingest record of one arrival hour, written last by its ingest: the hour's commit. */
export function ingestRecordKey(arrivalHour: number): string {
  return `ingest/${hourStamp(arrivalHour)}.json`;
}

/** Prefix of every ingest record (and of the watermark, which `isIngestRecordKey` tells apart). */
export const INGEST_RECORDS_PREFIX = 'ingest/';

/** True for the key of an hour's ingest record. */
export function isIngestRecordKey(key: string): boolean {
  return /^ingest\/\d{10}\.json$/.test(key);
}

/** Work files of an arrival hour's ingest until its record is written: its sources and its pieces. */
export function ingestWorkPrefix(arrivalHour: number): string {
  return `ingest-work/${hourStamp(arrivalHour)}/`;
}

/** The objects an arrival hour ingests, fixed by its first piece so every later piece reads the same. */
export function ingestSourcesKey(arrivalHour: number): string {
  return `${ingestWorkPrefix(arrivalHour)}sources.json`;
}

/** What one piece of an arrival hour's ingest read and wrote; the next piece starts where it ended. */
export function ingestPieceKey(arrivalHour: number, piece: number): string {
  return `${ingestWorkPrefix(arrivalHour)}piece-${pad3(piece)}.json`;
}

/** Failed reads of an hour's source objects, counted until an object is set aside. */
export function ingestAttemptsKey(arrivalHour: number): string {
  return `${ingestWorkPrefix(arrivalHour)}attempts.json`;
}

/** The late objects assigned to an arrival hour (found in folders already read). */
export function adoptionKey(arrivalHour: number): string {
  return `adopt/${hourStamp(arrivalHour)}.json`;
}

/**
 * Prefix of the staging index of one UTC event hour (its `hourStamp`): one marker per arrival hour that
 * staged events of it.
 */
export function stagingIndexPrefix(eventHourStamp: string): string {
  return `index/${eventHourStamp}/`;
}

/** The marker saying arrival hour `arrivalHour` staged events of an event hour (its ingest record says which). */
export function stagingIndexKey(eventHourStamp: string, arrivalHour: number): string {
  return `${stagingIndexPrefix(eventHourStamp)}${hourStamp(arrivalHour)}`;
}

/** The arrival hour a staging index marker names; `undefined` for any other key. */
export function parseStagingIndexKey(key: string): number | undefined {
  const match = /^index\/[^/]+\/(\d{10})$/.exec(key);
  return match === null ? undefined : parseHourStamp(match[1]!);
}

/** A staged object: exportable events of one UTC event hour that arrived in one hour, from one ingest piece. */
export interface StagedName {
  readonly eventHour: number;
  readonly arrivalHour: number;
  readonly piece: number;
  /** Numbers the objects one piece writes for one event hour, in write order. */
  readonly seq: number;
}

/** Key of a staged data object (in the staging store). */
export function stagedKey(name: StagedName): string {
  return `${stagedBase(name)}.ndjson`;
}

/** Key of the dedup keys of a staged object (written when the pipeline syncs late events). */
export function stagedKeysKey(name: StagedName): string {
  return `${stagedBase(name)}.keys`;
}

function stagedBase(name: StagedName): string {
  const arrival = `${hourStamp(name.arrivalHour)}-${pad3(name.piece)}-${String(name.seq).padStart(6, '0')}`;
  return `stage/${hourStamp(name.eventHour)}/${arrival}`;
}

/** Prefix of every step's work files. */
export const STEP_WORK_PREFIX = 'steps/';

/** Work files of a step in progress (its plan and its tasks' results). */
export function stepWorkPrefix(id: string): string {
  return `${STEP_WORK_PREFIX}${id}/`;
}

/** The persisted plan of a step, so a re-run after a crash reuses the same tasks and file names. */
export function planKey(id: string): string {
  return `${stepWorkPrefix(id)}plan.json`;
}

/** The result of one export task of a step. */
export function taskResultKey(id: string, task: number): string {
  return `${stepWorkPrefix(id)}task-${pad3(task)}.json`;
}

/** The run record of a committed step: written last, it marks the step done. */
export function runRecordKey(id: string): string {
  return `runs/${id}.json`;
}

/** Prefix of every run record. */
export const RUN_RECORDS_PREFIX = 'runs/';

/** True for the key of a step's run record. */
export function isRunRecordKey(key: string): boolean {
  return /^runs\/[^/]+\.json$/.test(key);
}
/** How far the pipeline's due steps are known to be committed (see `engine/backlog.ts`). */
export const BACKLOG_MARK_KEY = 'backlog-mark.json';

/** The pipeline's warehouse schema (`core/warehouse/schema-state.ts`): merged by every events commit. */
export const WAREHOUSE_SCHEMA_KEY = 'warehouse/schema.json';
/** What the catalog was last made from (see `engine/warehouse.ts`): nothing is sent when it still holds. */
export const WAREHOUSE_CATALOG_KEY = 'warehouse/catalog.json';

/** Which snapshot the pipeline's state is at: written by a snapshot step's commit. */
export const SNAPSHOT_POINTER_KEY = 'snapshot/current.json';
/** Prefix of every generation of snapshot tables. */
export const SNAPSHOT_TABLES_PREFIX = 'snapshot/tables/';

/** A table (identity mappings, or one shard of the profiles) of the snapshot a step writes. */
export function snapshotTableKey(id: string, table: string): string {
  return `${SNAPSHOT_TABLES_PREFIX}${id}/${table}.ndjson`;
}

/** Valid updates of one arrival hour and source from one ingest piece, kept until a snapshot folds them. */
export function pendingUpdatesKey(arrivalHour: number, source: SnapshotSource, piece: number): string {
  return `${pendingHourPrefix(arrivalHour)}${source}-${pad3(piece)}.ndjson`;
}

/** Every pending object of one arrival hour (pieces of an attempt that was restarted included). */
export function pendingHourPrefix(arrivalHour: number): string {
  return `pending/${hourStamp(arrivalHour)}/`;
}

/** A step's profile updates routed to one shard of the profile table. */
export function routedUpdatesKey(id: string, shard: number): string {
  return `${stepWorkPrefix(id)}shard-${pad3(shard)}.ndjson`;
}
