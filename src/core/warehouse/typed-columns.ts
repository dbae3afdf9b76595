/**
 * The typed columns of `mp_master_event_typed`, from an inferred schema, by the vendor's naming rules
 * for schematized exports:
 * - a `$` prefix becomes `mp_`; names are lower-cased and every other character outside `[a-z0-9_]`
 *   becomes `_`; a name that does not start with a letter gets `p_` in front; names are cut at
 *   {@link MAX_BASE_LENGTH} characters;
 * - one column per property and kind (`string`, `number`, `boolean`, `json` for objects and arrays):
 *   the property's most frequent kind takes the plain name, a type conflict gets `_<kind>` (so a
 *   conflict never drops a value); any name already taken (a collision, or a reserved column such as
 *   `time`) gets `_2`, `_3`...;
 * - at most `maxColumns` columns (default {@link DEFAULT_MAX_TYPED_COLUMNS}), chosen by frequency
 *   (count of values); every other property and type is kept in the overflow column as JSON.
 * A column, once made, keeps its name and place: the previous layout is an input, and growth only adds
 * columns (a number column's SQL type may widen from `bigint` to `double` when fractions appear).
 */
import { ConfigError } from '../errors.js';
import { compareCodeUnits, type JsonType, PropertySchema, type SerializedSchema } from './property-schema.js';

/** What a typed column holds. */
export type ColumnKind = 'string' | 'number' | 'boolean' | 'json';

/** The SQL type of a typed column (Athena and DuckDB spell these the same). */
export type ColumnSqlType = 'varchar' | 'bigint' | 'double' | 'boolean';

/** One typed column of the typed view. */
export interface TypedColumn {
  readonly name: string;
  /** The top-level property it reads, exactly as in the data. */
  readonly property: string;
  readonly kind: ColumnKind;
  readonly sql_type: ColumnSqlType;
}

/** The typed view's columns and what is left to the overflow column. */
export interface TypedLayout {
  readonly columns: readonly TypedColumn[];
  /** Property and JSON type pairs that no column holds: their values are in {@link OVERFLOW_COLUMN}. */
  readonly overflow: readonly { readonly property: string; readonly type: JsonType }[];
}

/** Default cap on typed columns; the view then stays far below Athena's query size limit. */
export const DEFAULT_MAX_TYPED_COLUMNS = 250;
/** Longest name a property's cleaning yields, before suffixes (Glue allows 255). */
export const MAX_BASE_LENGTH = 100;
/** The column holding, as a JSON object, every property value that no typed column holds. */
export const OVERFLOW_COLUMN = 'mp_overflow_properties';
/** Columns of the typed view that are not typed columns: no typed column takes these names. */
export const RESERVED_COLUMNS: readonly string[] = [
  'event_name',
  'time',
  'distinct_id',
  'device_id',
  'user_id',
  'insert_id',
  'properties',
  'mp_date',
  OVERFLOW_COLUMN,
];

/** Which kind of column holds a JSON type; `null` values have none (null in every column). */
export const KIND_OF_TYPE: Readonly<Record<JsonType, ColumnKind | undefined>> = {
  string: 'string',
  integer: 'number',
  float: 'number',
  boolean: 'boolean',
  object: 'json',
  array: 'json',
  null: undefined,
};
const KIND_ORDER: readonly ColumnKind[] = ['string', 'number', 'boolean', 'json'];
const VALID_NAME = /^[a-z][a-z0-9_]*$/;

/** The JSON types a column holds: a `bigint` number column holds integers only. */
export function typesHeldBy(column: Pick<TypedColumn, 'kind' | 'sql_type'>): readonly JsonType[] {
  switch (column.kind) {
    case 'string':
      return ['string'];
    case 'number':
      return column.sql_type === 'bigint' ? ['integer'] : ['integer', 'float'];
    case 'boolean':
      return ['boolean'];
    case 'json':
      return ['object', 'array'];
  }
}

/** The cleaned name of a property, before any suffix. */
export function columnBaseName(property: string): string {
  const renamed = property.startsWith('$') ? `mp_${property.slice(1)}` : property;
  let name = '';
  for (const char of renamed.toLowerCase()) name += /^[a-z0-9_]$/.test(char) ? char : '_';
  if (!/^[a-z]/.test(name)) name = `p_${name}`;
  return name.slice(0, MAX_BASE_LENGTH);
}

/**
 * The typed columns for `schema`. `previous` (the layout the view has now) keeps every column it has
 * with its name; new columns fill the remaining room by frequency. Pure and deterministic: the result
 * depends on the counts, never on the order properties were seen in.
 */
export function typedLayout(
  schema: PropertySchema | SerializedSchema,
  previous: readonly TypedColumn[] = [],
  maxColumns = DEFAULT_MAX_TYPED_COLUMNS,
): TypedLayout {
  const counts = schema instanceof PropertySchema ? schema : PropertySchema.fromJSON(schema);
  checkPrevious(previous);
  const byKind = new Map<string, { property: string; kind: ColumnKind; count: number; float: boolean }>();
  for (const [property, types] of counts.entries()) {
    for (const [type, n] of Object.entries(types) as [JsonType, number][]) {
      const kind = KIND_OF_TYPE[type];
      if (kind === undefined) continue;
      const id = pairId(property, kind);
      const pair = byKind.get(id) ?? { property, kind, count: 0, float: false };
      pair.count += n;
      if (type === 'float') pair.float = true;
      byKind.set(id, pair);
    }
  }
  const sqlType = (kind: ColumnKind, float: boolean): ColumnSqlType =>
    kind === 'number' ? (float ? 'double' : 'bigint') : kind === 'boolean' ? 'boolean' : 'varchar';

  const taken = new Set(RESERVED_COLUMNS);
  const columns: TypedColumn[] = [];
  const kindsOf = new Map<string, Set<ColumnKind>>();
  const place = (column: TypedColumn) => {
    columns.push(column);
    taken.add(column.name);
    const kinds = kindsOf.get(column.property) ?? new Set();
    kinds.add(column.kind);
    kindsOf.set(column.property, kinds);
  };
  for (const column of previous) {
    const pair = byKind.get(pairId(column.property, column.kind));
    if (pair === undefined) continue; // not in this schema: a layout of other data
    place({ ...column, sql_type: sqlType(column.kind, pair.float || column.sql_type === 'double') });
  }
  const candidates = [...byKind.values()]
    .filter((pair) => !kindsOf.get(pair.property)?.has(pair.kind))
    .sort(
      (a, b) =>
        b.count - a.count ||
        compareCodeUnits(a.property, b.property) ||
        KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind),
    );
  for (const pair of candidates.slice(0, Math.max(0, maxColumns - columns.length))) {
    const base = columnBaseName(pair.property);
    const wanted = kindsOf.has(pair.property) ? `${base}_${pair.kind}` : base;
    let name = wanted;
    for (let n = 2; taken.has(name); n += 1) name = `${wanted}_${n}`;
    place({ name, property: pair.property, kind: pair.kind, sql_type: sqlType(pair.kind, pair.float) });
  }

  const held = new Map<string, Set<JsonType>>();
  for (const column of columns) {
    const types = held.get(column.property) ?? new Set<JsonType>(['null']);
    for (const type of typesHeldBy(column)) types.add(type);
    held.set(column.property, types);
  }
  const overflow = counts
    .entries()
    .flatMap(([property, types]) =>
      (Object.keys(types) as JsonType[])
        .filter((type) => !held.get(property)?.has(type))
        .map((type) => ({ property, type })),
    );
  return { columns, overflow };
}

function pairId(property: string, kind: ColumnKind): string {
  return `${kind}:${property}`;
}

/** A previous layout comes from state: names must be valid and unique, or nothing is built on it. */
function checkPrevious(previous: readonly TypedColumn[]): void {
  const names = new Set<string>();
  const pairs = new Set<string>();
  for (const column of previous) {
    if (!VALID_NAME.test(column.name) || RESERVED_COLUMNS.includes(column.name))
      throw new ConfigError(`typed column "${column.name}" has a name the typed view cannot use`);
    if (names.has(column.name)) throw new ConfigError(`typed column "${column.name}" appears twice`);
    const pair = pairId(column.property, column.kind);
    if (pairs.has(pair))
      throw new ConfigError(`property "${column.property}" has two ${column.kind} columns`);
    names.add(column.name);
    pairs.add(pair);
  }
}
