/**
 * The Glue Data Catalog definitions of a project's warehouse, as plain data (the shape of Glue's
 * `TableInput`; the adapter sends them). One database per project holds:
 * - `mp_master_event`: the vendor's seven columns over the day folders, partitioned by `mp_date`
 *   (`YYYY/MM/DD`, the folder path) with partition projection; JSON output is read by the OpenX JSON
 *   SerDe with `time` a `bigint` of milliseconds, Parquet output by the Parquet SerDe with `time` a
 *   `timestamp`. Readable by Athena, Redshift Spectrum and Spark.
 * - `mp_master_event_raw` (JSON output): every line of the same files as one string, so counts read
 *   each line exactly as written.
 * - `mp_master_event_view`: the seven columns with `time` a timestamp and `properties` exactly as
 *   exported (an Athena view), and `mp_master_event_typed` (an Athena view): plus the typed columns.
 * - `mp_people_data`, `mp_identity_mappings_data`: symlink tables over a small file listing the current
 *   snapshot's parts, and the vendor's `_view` names over them.
 */
import { createHash } from 'node:crypto';
import { snapshotFolder } from '../layout.js';
import type { DataSource, SnapshotSource } from '../pipeline-config.js';
import type { SnapshotManifest } from '../records.js';
import {
  DATE_COLUMN,
  EVENT_VIEW_COLUMNS,
  type ExportFormat,
  eventViewSql,
  snapshotColumns,
  snapshotViewSql,
  TABLES,
  typedViewSql,
  type ViewColumn,
} from './sql.js';
import { OVERFLOW_COLUMN, type TypedColumn } from './typed-columns.js';

/** A column of a Glue table (Hive type names). */
export interface GlueColumn {
  readonly Name: string;
  readonly Type: string;
}

/** The parts of Glue's `TableInput` the warehouse sets; structurally the SDK's type. */
export interface GlueTableInput {
  readonly Name: string;
  readonly Description: string;
  readonly TableType: 'EXTERNAL_TABLE' | 'VIRTUAL_VIEW';
  readonly Parameters: Readonly<Record<string, string>>;
  readonly PartitionKeys: readonly GlueColumn[];
  readonly StorageDescriptor: {
    readonly Columns: readonly GlueColumn[];
    readonly Location?: string;
    readonly InputFormat?: string;
    readonly OutputFormat?: string;
    readonly SerdeInfo: {
      readonly SerializationLibrary?: string;
      readonly Parameters?: Readonly<Record<string, string>>;
    };
  };
  readonly ViewOriginalText?: string;
  readonly ViewExpandedText?: string;
}

/** Where a project's exports are and how they are written. */
export interface WarehouseTarget {
  /** The destination bucket. */
  readonly bucket: string;
  /** The pipeline's `s3_prefix`, if any (with or without a trailing `/`). */
  readonly prefix?: string;
  readonly projectId: string;
  /** The Glue database of the project (see {@link glueDatabaseName}). */
  readonly database: string;
  readonly format: ExportFormat;
  /**
   * The first day folder the table projects (`YYYY-MM-DD`): the earliest `from_date` of the project's
   * events pipelines. Days before it are not read.
   */
  readonly firstDay: string;
}

/** Where a project's folders are: bucket, prefix and project. */
export type DestinationRoot = Pick<WarehouseTarget, 'bucket' | 'prefix' | 'projectId'>;

/** The end of the projected days: Athena projects dates in UTC, and no zone is more than a day ahead of UTC. */
export const PROJECTION_RANGE_END = 'NOW+1DAYS';

const OPENX_JSON_SERDE = 'org.openx.data.jsonserde.JsonSerDe';
const LAZY_SIMPLE_SERDE = 'org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe';
const PARQUET_SERDE = 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe';
const TEXT_INPUT = 'org.apache.hadoop.mapred.TextInputFormat';
const TEXT_OUTPUT = 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat';
const SYMLINK_INPUT = 'org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat';
const PARQUET_INPUT = 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat';
const PARQUET_OUTPUT = 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat';
/** A byte no valid JSON line holds unescaped: the raw table's field delimiter, so a line is one field. */
const NO_FIELD_DELIMITER = '\u0001';
/** OpenX: keys match columns exactly (its default lower-cases every key, nested ones included). */
const OPENX_PARAMETERS = { 'case.insensitive': 'false', 'ignore.malformed.json': 'false' };

/**
 * The Glue database of a project: `mp_` and the project id, lower-cased with `-` as `_` (Glue and
 * Athena allow lower-case letters, digits and `_`); when that changed the id, 8 hex digits of its
 * hash follow, so `a-b`, `a_b` and `A_b` never share a database.
 */
export function glueDatabaseName(projectId: string): string {
  const cleaned = projectId.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  if (cleaned === projectId) return `mp_${cleaned}`;
  return `mp_${cleaned}_${createHash('sha256').update(projectId).digest('hex').slice(0, 8)}`;
}

/** `s3://bucket/prefix/project/<folder>/`. */
function location(target: DestinationRoot, folder: string): string {
  const prefix =
    target.prefix === undefined || target.prefix === '' ? '' : `${target.prefix.replace(/\/$/, '')}/`;
  return `s3://${target.bucket}/${prefix}${target.projectId}/${folder}/`;
}

/** Partition projection over the day folders (Athena's `date` type; the value is the folder path). */
function dayProjection(target: WarehouseTarget): Record<string, string> {
  return {
    'projection.enabled': 'true',
    [`projection.${DATE_COLUMN}.type`]: 'date',
    [`projection.${DATE_COLUMN}.format`]: 'yyyy/MM/dd',
    [`projection.${DATE_COLUMN}.range`]: `${target.firstDay.replaceAll('-', '/')},${PROJECTION_RANGE_END}`,
    [`projection.${DATE_COLUMN}.interval`]: '1',
    [`projection.${DATE_COLUMN}.interval.unit`]: 'DAYS',
    'storage.location.template': `${location(target, TABLES.events)}\${${DATE_COLUMN}}/`,
  };
}

const DAY_PARTITION: readonly GlueColumn[] = [{ Name: DATE_COLUMN, Type: 'string' }];

/** `mp_master_event`: the vendor's columns over the day folders. */
export function eventsTable(target: WarehouseTarget): GlueTableInput {
  const json = target.format === 'json';
  return {
    Name: TABLES.events,
    Description: `Events exported by mp-pipelines for project ${target.projectId} (${target.format}); time is ${json ? 'epoch milliseconds' : 'a timestamp'}`,
    TableType: 'EXTERNAL_TABLE',
    Parameters: { EXTERNAL: 'TRUE', classification: target.format, ...dayProjection(target) },
    PartitionKeys: DAY_PARTITION,
    StorageDescriptor: {
      Columns: [
        { Name: 'event_name', Type: 'string' },
        { Name: 'time', Type: json ? 'bigint' : 'timestamp' },
        { Name: 'distinct_id', Type: 'string' },
        { Name: 'device_id', Type: 'string' },
        { Name: 'user_id', Type: 'string' },
        { Name: 'insert_id', Type: 'string' },
        { Name: 'properties', Type: 'string' },
      ],
      Location: location(target, TABLES.events),
      InputFormat: json ? TEXT_INPUT : PARQUET_INPUT,
      OutputFormat: json ? TEXT_OUTPUT : PARQUET_OUTPUT,
      SerdeInfo: json
        ? { SerializationLibrary: OPENX_JSON_SERDE, Parameters: OPENX_PARAMETERS }
        : { SerializationLibrary: PARQUET_SERDE, Parameters: { 'serialization.format': '1' } },
    },
  };
}

/** `mp_master_event_raw`: every line of the JSON parts as one string (`line`), by day. */
export function rawEventsTable(target: WarehouseTarget): GlueTableInput {
  return {
    Name: TABLES.eventsRaw,
    Description: `Every exported line, exactly as written, for project ${target.projectId}`,
    TableType: 'EXTERNAL_TABLE',
    Parameters: { EXTERNAL: 'TRUE', classification: 'text', ...dayProjection(target) },
    PartitionKeys: DAY_PARTITION,
    StorageDescriptor: {
      Columns: [{ Name: 'line', Type: 'string' }],
      Location: location(target, TABLES.events),
      InputFormat: TEXT_INPUT,
      OutputFormat: TEXT_OUTPUT,
      SerdeInfo: {
        SerializationLibrary: LAZY_SIMPLE_SERDE,
        Parameters: { 'field.delim': NO_FIELD_DELIMITER, 'serialization.format': NO_FIELD_DELIMITER },
      },
    },
  };
}

/** The folder of a snapshot's symlink file (outside the data folders: readers skip `_` names). */
function symlinkFolder(source: SnapshotSource): string {
  return `_warehouse/${source === 'people' ? TABLES.people : TABLES.identity}`;
}

/**
 * Key (relative to the destination root, like every engine key) of the file listing the current
 * snapshot's parts, which the snapshot table reads.
 */
export function symlinkKey(projectId: string, source: SnapshotSource): string {
  return `${projectId}/${symlinkFolder(source)}/symlink.txt`;
}

/**
 * The symlink file of a snapshot: the address of each part its manifest lists, one per line. `uri`
 * gives a destination key's address (`ObjectStore.uri`: `s3://bucket/prefix/key` in AWS).
 */
export function symlinkBody(uri: (key: string) => string, manifest: SnapshotManifest): string {
  const folder = snapshotFolder(manifest.project_id, manifest.data_source);
  return manifest.parts.map((part) => `${uri(`${folder}${part.file}`)}\n`).join('');
}

/**
 * `mp_people_data` / `mp_identity_mappings_data`: a symlink table. Its location holds one file that
 * lists the current snapshot's parts; the commit replaces it in one put after the snapshot manifest
 * and before the old parts are deleted, so a query reads one snapshot whole.
 */
export function snapshotTable(target: WarehouseTarget, source: SnapshotSource): GlueTableInput {
  const json = target.format === 'json';
  return {
    Name: source === 'people' ? TABLES.people : TABLES.identity,
    Description: `The current ${source} snapshot of project ${target.projectId} (the parts its manifest lists)`,
    TableType: 'EXTERNAL_TABLE',
    Parameters: { EXTERNAL: 'TRUE', classification: target.format },
    PartitionKeys: [],
    StorageDescriptor: {
      Columns: snapshotColumns(source).map((c) => ({ Name: c.name, Type: hiveType(c.type) })),
      Location: location(target, symlinkFolder(source)),
      InputFormat: SYMLINK_INPUT,
      OutputFormat: json ? TEXT_OUTPUT : PARQUET_OUTPUT,
      SerdeInfo: json
        ? { SerializationLibrary: OPENX_JSON_SERDE, Parameters: OPENX_PARAMETERS }
        : { SerializationLibrary: PARQUET_SERDE, Parameters: { 'serialization.format': '1' } },
    },
  };
}

function hiveType(type: ViewColumn['type']): string {
  return type === 'varchar' ? 'string' : type === 'timestamp(3)' ? 'timestamp' : type;
}

/**
 * An Athena view stored in Glue the way Athena stores the views it creates: `VIRTUAL_VIEW`, the
 * definition as base64 JSON in `ViewOriginalText` between `/* Presto View: ` and ` *\/`, Hive types in
 * the storage descriptor. (Not in Athena's documentation: verify on a real account.)
 */
export function athenaView(
  target: Pick<WarehouseTarget, 'database'>,
  name: string,
  description: string,
  sql: string,
  columns: readonly ViewColumn[],
): GlueTableInput {
  const definition = {
    originalSql: sql,
    catalog: 'awsdatacatalog',
    schema: target.database,
    columns: columns.map((c) => ({ name: c.name, type: c.type })),
  };
  return {
    Name: name,
    Description: description,
    TableType: 'VIRTUAL_VIEW',
    Parameters: { presto_view: 'true', comment: 'Presto View' },
    PartitionKeys: [],
    StorageDescriptor: {
      Columns: columns.map((c) => ({ Name: c.name, Type: hiveType(c.type) })),
      SerdeInfo: {},
    },
    ViewOriginalText: `/* Presto View: ${Buffer.from(JSON.stringify(definition), 'utf8').toString('base64')} */`,
    ViewExpandedText: '/* Presto View */',
  };
}

/** The SQL of an Athena view created by {@link athenaView}, read back (for tests and for people). */
export function athenaViewSql(view: Pick<GlueTableInput, 'ViewOriginalText'>): string {
  const match = /^\/\* Presto View: ([A-Za-z0-9+/=]+) \*\/$/.exec(view.ViewOriginalText ?? '');
  if (match === null) throw new Error('not an Athena view definition');
  return (JSON.parse(Buffer.from(match[1]!, 'base64').toString('utf8')) as { originalSql: string })
    .originalSql;
}

/** The columns of `mp_master_event_typed`. */
export function typedViewColumns(columns: readonly TypedColumn[]): ViewColumn[] {
  return [
    ...EVENT_VIEW_COLUMNS,
    ...columns.map((c) => ({ name: c.name, type: c.sql_type })),
    { name: OVERFLOW_COLUMN, type: 'varchar' },
  ];
}

/**
 * Every table and view of a project's warehouse, in the order to create them (views after what they
 * read). `columns` is the typed layout (`typedLayout(...).columns`).
 */
export function warehouseTables(target: WarehouseTarget, columns: readonly TypedColumn[]): GlueTableInput[] {
  const json = target.format === 'json';
  return [
    eventsTable(target),
    ...(json ? [rawEventsTable(target)] : []),
    athenaView(
      target,
      TABLES.eventsView,
      'The exported events with time as a timestamp and properties exactly as exported',
      eventViewSql('athena', target.format),
      EVENT_VIEW_COLUMNS,
    ),
    athenaView(
      target,
      TABLES.eventsTyped,
      'The exported events with properties as typed columns inferred from the data',
      typedViewSql('athena', columns),
      typedViewColumns(columns),
    ),
    snapshotTable(target, 'people'),
    athenaView(
      target,
      TABLES.peopleView,
      'The current people snapshot',
      snapshotViewSql('people'),
      snapshotColumns('people'),
    ),
    snapshotTable(target, 'identity'),
    athenaView(
      target,
      TABLES.identityView,
      'The current identity mappings snapshot',
      snapshotViewSql('identity'),
      snapshotColumns('identity'),
    ),
  ];
}

/** The tables and views each kind of pipeline keeps current (a project's pipelines share its database). */
const TABLES_OF_SOURCE: Readonly<Record<DataSource, readonly string[]>> = {
  events: [TABLES.events, TABLES.eventsRaw, TABLES.eventsView, TABLES.eventsTyped],
  people: [TABLES.people, TABLES.peopleView],
  identity: [TABLES.identity, TABLES.identityView],
};

/**
 * The part of {@link warehouseTables} one pipeline keeps: an events pipeline the event tables and views
 * (`columns` its typed layout), a people or identity pipeline its snapshot table and view.
 */
export function pipelineTables(
  target: WarehouseTarget,
  source: DataSource,
  columns: readonly TypedColumn[],
): GlueTableInput[] {
  const names = new Set(TABLES_OF_SOURCE[source]);
  return warehouseTables(target, columns).filter((table) => names.has(table.Name));
}
