/**
 * The SQL of the warehouse's views and of the queries the README publishes, in the two dialects the
 * warehouse runs: Athena (engine 3, Trino) and DuckDB. The views are defined over the tables of
 * `glue-tables.ts` (Athena) and `local/duckdb-warehouse.ts` (DuckDB), which have the same names and
 * columns: the events as exported (`mp_master_event`), every line as written (`mp_master_event_raw`,
 * JSON output only), and the current snapshots.
 */
import { EVENT_RECORD } from '../record-columns.js';
import type { JsonType } from './property-schema.js';
import { OVERFLOW_COLUMN, type TypedColumn, typesHeldBy } from './typed-columns.js';

/** Which engine a statement is written for. */
export type Dialect = 'athena' | 'duckdb';

/** How the event parts are written: gzip NDJSON, or Parquet with `time` as a millisecond timestamp. */
export type ExportFormat = 'json' | 'parquet';

/** Table and view names, as the vendor names them. */
export const TABLES = {
  events: 'mp_master_event',
  eventsRaw: 'mp_master_event_raw',
  eventsView: 'mp_master_event_view',
  eventsTyped: 'mp_master_event_typed',
  people: 'mp_people_data',
  peopleView: 'mp_people_data_view',
  identity: 'mp_identity_mappings_data',
  identityView: 'mp_identity_mappings_data_view',
} as const;

/** The partition column: the day folder, `YYYY/MM/DD` (project time). */
export const DATE_COLUMN = 'mp_date';

/** A column of a view, with its type in the engine's SQL. */
export interface ViewColumn {
  readonly name: string;
  readonly type: 'varchar' | 'bigint' | 'double' | 'boolean' | 'timestamp(3)';
}

/** The columns of `mp_master_event_view`: the vendor's seven as exported, `time` a timestamp, and the day. */
export const EVENT_VIEW_COLUMNS: readonly ViewColumn[] = [
  ...EVENT_RECORD.fields.map((field) => ({
    name: field.name,
    type: field.kind === 'time' ? ('timestamp(3)' as const) : ('varchar' as const),
  })),
  { name: DATE_COLUMN, type: 'varchar' },
];

/** `"name"`: an identifier quoted for both dialects. */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** `'text'`: a string literal for both dialects. */
export function quoteLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/** The record field that precedes `properties`, the last field of an exported line. */
const PROPERTIES_FIELD = ',"properties":';

/**
 * `mp_master_event_view`: the seven columns with `time` as a millisecond timestamp and `properties`
 * exactly as exported. For JSON output it reads the raw lines: the record's fields come from JSON
 * functions, and `properties` is the text between `,"properties":` (its first occurrence: no earlier
 * field can hold it, since quotes inside strings are escaped) and the closing brace, byte for byte.
 * For Parquet it reads `mp_master_event`, whose `time` is a timestamp already.
 */
export function eventViewSql(dialect: Dialect, format: ExportFormat): string {
  if (format === 'parquet')
    return `SELECT ${EVENT_VIEW_COLUMNS.map((c) => quoteIdentifier(c.name)).join(', ')} FROM ${quoteIdentifier(TABLES.events)}`;
  const field = (name: string) =>
    dialect === 'athena'
      ? `json_extract_scalar(line, ${quoteLiteral(`$.${name}`)})`
      : `json_extract_string(line, ${quoteLiteral(`$.${name}`)})`;
  const time =
    dialect === 'athena'
      ? `date_add('millisecond', CAST(${field('time')} AS bigint), TIMESTAMP '1970-01-01 00:00:00.000')`
      : `epoch_ms(CAST(${field('time')} AS BIGINT))`;
  const at = `strpos(line, ${quoteLiteral(PROPERTIES_FIELD)})`;
  const properties = `substr(line, ${at} + ${PROPERTIES_FIELD.length}, length(line) - ${at} - ${PROPERTIES_FIELD.length})`;
  return [
    `SELECT ${field('event_name')} AS "event_name"`,
    `${time} AS "time"`,
    ...EVENT_RECORD.fields
      .filter((f) => f.kind === 'nullable_string')
      .map((f) => `${field(f.name)} AS ${quoteIdentifier(f.name)}`),
    `${properties} AS "properties"`,
    `"${DATE_COLUMN}" FROM ${quoteIdentifier(TABLES.eventsRaw)}`,
  ].join(',\n  ');
}

/** How each dialect reads one top-level property of `properties` and tells its JSON type. */
interface PropertyAccess {
  /** Condition: the value (an SQL expression of the JSON value) has one of `types`. */
  is(value: string, types: readonly JsonType[]): string;
  /** The value as the column's SQL type (only evaluated when `is` holds). */
  cast(value: string, column: TypedColumn): string;
}

/** Athena: `element_at` on `properties` cast to a map (any key, no JSON path escaping); types from `json_format`. */
const athenaAccess: PropertyAccess = {
  is(value, types) {
    const text = `json_format(${value})`;
    const integer = `(regexp_like(${text}, '^-?[0-9]+$') AND TRY_CAST(${text} AS bigint) IS NOT NULL)`;
    const test: Record<JsonType, string> = {
      string: `substr(${text}, 1, 1) = '"'`,
      integer,
      float: `(regexp_like(${text}, '^-?[0-9]') AND NOT ${integer})`,
      boolean: `${text} IN ('true', 'false')`,
      object: `substr(${text}, 1, 1) = '{'`,
      array: `substr(${text}, 1, 1) = '['`,
      null: `${text} = 'null'`,
    };
    // Integers and floats together are any number.
    const number = types.includes('integer') && types.includes('float');
    const tests = types
      .filter((type) => !(number && type === 'float'))
      .map((type) => (number && type === 'integer' ? `regexp_like(${text}, '^-?[0-9]')` : test[type]));
    return tests.length === 1 ? tests[0]! : `(${tests.join(' OR ')})`;
  },
  cast(value, column) {
    const text = `json_format(${value})`;
    switch (column.kind) {
      case 'string':
        return `CAST(${value} AS varchar)`;
      case 'number':
        return `CAST(${text} AS ${column.sql_type})`;
      case 'boolean':
        return `(${text} = 'true')`;
      case 'json':
        return text;
    }
  },
};

/** DuckDB: a JSON pointer per key (any key, `~` and `/` escaped); types from `json_type`. */
const duckdbAccess: PropertyAccess = {
  is(value, types) {
    const names = new Set<string>();
    const integerTest = `TRY_CAST(json_extract_string(${value}, '$') AS BIGINT) IS NOT NULL`;
    const tests: string[] = [];
    const number = types.includes('integer') && types.includes('float');
    for (const type of types) {
      if (number && (type === 'integer' || type === 'float'))
        names.add('BIGINT').add('UBIGINT').add('DOUBLE');
      else if (type === 'integer')
        tests.push(`(json_type(${value}) IN ('BIGINT', 'UBIGINT') AND ${integerTest})`);
      else if (type === 'float')
        tests.push(
          `(json_type(${value}) = 'DOUBLE' OR (json_type(${value}) IN ('BIGINT', 'UBIGINT') AND NOT ${integerTest}))`,
        );
      else
        names.add(
          { string: 'VARCHAR', boolean: 'BOOLEAN', object: 'OBJECT', array: 'ARRAY', null: 'NULL' }[type],
        );
    }
    if (names.size > 0)
      tests.push(`json_type(${value}) IN (${[...names].map((n) => quoteLiteral(n)).join(', ')})`);
    return tests.length === 1 ? tests[0]! : `(${tests.join(' OR ')})`;
  },
  cast(value, column) {
    switch (column.kind) {
      case 'string':
        return `json_extract_string(${value}, '$')`;
      case 'number':
        return `CAST(json_extract_string(${value}, '$') AS ${column.sql_type.toUpperCase()})`;
      case 'boolean':
        return `CAST(json_extract_string(${value}, '$') AS BOOLEAN)`;
      case 'json':
        return `CAST(${value} AS VARCHAR)`;
    }
  },
};

/** A JSON pointer (RFC 6901) to a top-level key. */
function jsonPointer(key: string): string {
  return `/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`;
}

/**
 * `mp_master_event_typed`: `mp_master_event_view`'s columns, then one column per typed column (its value
 * when the property has the column's type, else null), then {@link OVERFLOW_COLUMN}: a JSON object of
 * every property value no column holds (other types, properties past the cap, properties newer than
 * the view), or null when there is none. A type conflict therefore never drops a value; `properties`
 * keeps the exact text as well.
 */
export function typedViewSql(dialect: Dialect, columns: readonly TypedColumn[]): string {
  const access = dialect === 'athena' ? athenaAccess : duckdbAccess;
  const source = dialect === 'athena' ? 'p.mp_properties' : 'p."properties"';
  const propertyValue = (property: string) =>
    dialect === 'athena'
      ? `element_at(${source}, ${quoteLiteral(property)})`
      : `json_extract(${source}, ${quoteLiteral(jsonPointer(property))})`;
  const typed = columns.map((column) => {
    const value = propertyValue(column.property);
    return `CASE WHEN ${access.is(value, typesHeldBy(column))} THEN ${access.cast(value, column)} END AS ${quoteIdentifier(column.name)}`;
  });

  // Per key: the types the typed columns hold (null is held wherever the property has a column).
  const held = new Map<string, JsonType[]>();
  for (const column of columns)
    held.set(column.property, [...(held.get(column.property) ?? ['null']), ...typesHeldBy(column)]);
  const heldTest = (key: string, value: string) =>
    held.size === 0
      ? 'false'
      : `CASE ${key} ${[...held]
          .map(([property, types]) => `WHEN ${quoteLiteral(property)} THEN ${access.is(value, types)}`)
          .join(' ')} ELSE false END`;
  const overflow =
    dialect === 'athena'
      ? `NULLIF(json_format(CAST(map_filter(${source}, (k, v) -> NOT (${heldTest('k', 'v')})) AS json)), '{}')`
      : `NULLIF(CAST(to_json(map_from_entries(list_filter(map_entries(CAST(CAST(${source} AS JSON) AS MAP(VARCHAR, JSON))), e -> NOT (${heldTest('e.key', 'e.value')})))) AS VARCHAR), '{}')`;
  const base = EVENT_VIEW_COLUMNS.map((c) => `p.${quoteIdentifier(c.name)}`);
  const from =
    dialect === 'athena'
      ? `(SELECT v.*, TRY_CAST(json_parse(v."properties") AS map(varchar, json)) AS mp_properties FROM ${quoteIdentifier(TABLES.eventsView)} v) p`
      : `${quoteIdentifier(TABLES.eventsView)} p`;
  return `SELECT ${[...base, ...typed, `${overflow} AS ${quoteIdentifier(OVERFLOW_COLUMN)}`].join(',\n  ')}\nFROM ${from}`;
}

/** The columns of a snapshot table (people: `distinct_id`, `properties`; identity: the two ids). */
export function snapshotColumns(source: 'people' | 'identity'): readonly ViewColumn[] {
  return source === 'people'
    ? [
        { name: 'distinct_id', type: 'varchar' },
        { name: 'properties', type: 'varchar' },
      ]
    : [
        { name: 'distinct_id', type: 'varchar' },
        { name: 'resolved_distinct_id', type: 'varchar' },
      ];
}

/** `mp_people_data_view` / `mp_identity_mappings_data_view`: the vendor's names for the current snapshot. */
export function snapshotViewSql(source: 'people' | 'identity'): string {
  const table = source === 'people' ? TABLES.people : TABLES.identity;
  return `SELECT ${snapshotColumns(source)
    .map((c) => quoteIdentifier(c.name))
    .join(', ')} FROM ${quoteIdentifier(table)}`;
}

// ---- published queries -------------------------------------------------------------------------

/** An inclusive range of event days, `YYYY-MM-DD` (project time). */
export interface DayRange {
  readonly from: string;
  readonly to: string;
}

/** `mp_date` (`YYYY/MM/DD`) of a `YYYY-MM-DD` day. */
export function dateValue(day: string): string {
  return day.replaceAll('-', '/');
}

function dayFilter(range: DayRange, alias = ''): string {
  return `${alias}${DATE_COLUMN} BETWEEN ${quoteLiteral(dateValue(range.from))} AND ${quoteLiteral(dateValue(range.to))}`;
}

/**
 * Events per day, read from every line as written (JSON output; Parquet reads the table): the vendor's
 * "how can I count events exported". Same text in both dialects.
 */
export function dailyCountsSql(format: ExportFormat, range: DayRange): string {
  const table = format === 'json' ? TABLES.eventsRaw : TABLES.events;
  return `SELECT ${DATE_COLUMN}, count(*) AS events\nFROM ${table}\nWHERE ${dayFilter(range)}\nGROUP BY ${DATE_COLUMN}\nORDER BY ${DATE_COLUMN}`;
}

/** Copies of one event: the same event name, time, distinct id and insert id more than once. */
export function duplicatesSql(range: DayRange): string {
  return [
    'SELECT event_name, time, distinct_id, insert_id, count(*) AS copies',
    `FROM ${TABLES.eventsView}`,
    `WHERE ${dayFilter(range)} AND insert_id IS NOT NULL`,
    'GROUP BY event_name, time, distinct_id, insert_id',
    'HAVING count(*) > 1',
    'ORDER BY copies DESC, time',
  ].join('\n');
}

/** Distinct users after identity resolution: each id counted as the id it resolves to. */
export function uniqueUsersSql(range: DayRange): string {
  return [
    'SELECT count(DISTINCT coalesce(m.resolved_distinct_id, e.distinct_id)) AS users',
    `FROM ${TABLES.eventsView} e`,
    `LEFT JOIN ${TABLES.identityView} m ON m.distinct_id = e.distinct_id`,
    `WHERE ${dayFilter(range, 'e.')}`,
  ].join('\n');
}

/** Events per name whose string property `property` equals `value`, read from `properties`. */
export function propertyFilterSql(
  dialect: Dialect,
  range: DayRange,
  property: string,
  value: string,
): string {
  const read =
    dialect === 'athena'
      ? `json_extract_scalar(properties, ${quoteLiteral(`$["${property.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"]`)})`
      : `json_extract_string(properties, ${quoteLiteral(jsonPointer(property))})`;
  return [
    'SELECT event_name, count(*) AS events',
    `FROM ${TABLES.eventsView}`,
    `WHERE ${dayFilter(range)} AND ${read} = ${quoteLiteral(value)}`,
    'GROUP BY event_name',
    'ORDER BY events DESC, event_name',
  ].join('\n');
}
