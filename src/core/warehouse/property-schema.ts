/**
 * The schema inferred from exported events: every top-level property of `properties` and the JSON
 * types its values took, with counts. Fed per exported record, merged per step and per pipeline, kept
 * in the pipeline's state. The fast path reads the record's bytes (validated JSON, written by the
 * engine) without building objects: it scans the top-level keys of `properties` and classifies each
 * value by its first byte, skipping nested values.
 */
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import {
  JSON_TYPES,
  type JsonType,
  PropertyKeys,
  T_ARRAY,
  T_BOOLEAN,
  T_FLOAT,
  T_INTEGER,
  T_NULL,
  T_OBJECT,
  T_STRING,
} from './property-keys.js';

export { JSON_TYPES, type JsonType } from './property-keys.js';

/** Counts of the JSON types one property took. */
export type TypeCounts = Partial<Record<JsonType, number>>;

/** A schema as stored (pipeline state, task results): properties sorted, zero counts left out. */
export interface SerializedSchema {
  readonly format: 'mp-pipelines/property-schema@1';
  /** `properties` objects recorded (one per exported event). */
  readonly records: number;
  readonly properties: Readonly<Record<string, TypeCounts>>;
}

const count = z.number().int().nonnegative();
const serializedSchema = z
  .object({
    format: z.literal('mp-pipelines/property-schema@1'),
    records: count,
    properties: z.record(
      z.string(),
      z.object(Object.fromEntries(JSON_TYPES.map((t) => [t, count.optional()]))).strict(),
    ),
  })
  .strict();

const TYPE_INDEX: Readonly<Record<JsonType, number>> = Object.fromEntries(
  JSON_TYPES.map((t, i) => [t, i]),
) as Record<JsonType, number>;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACK = 0x5b;
const RBRACK = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const LOWER_T = 0x74;
const LOWER_F = 0x66;
const LOWER_E = 0x65;
const UPPER_E = 0x45;
const PLUS = 0x2b;

/** The key that precedes `properties` in an exported record: the record's last field (README "What is exported"). */
const PROPERTIES_FIELD = Buffer.from(',"properties":', 'latin1');
const INT64_MAX = '9223372036854775807';
const INT64_MIN_ABS = '9223372036854775808';

/** Accumulates the property types of exported events. */
export class PropertySchema {
  private readonly counts = new Map<string, Float64Array>();
  /** Keys met by `scanProperties`, and the counts of each key's id. */
  private readonly keys = new PropertyKeys();
  private readonly countsById: Float64Array[] = [];
  private recordCount = 0;

  /** `properties` objects recorded. */
  get records(): number {
    return this.recordCount;
  }

  /**
   * Records one exported record line (`{"event_name":…,"properties":{…}}`, as the export writes it).
   * Throws when the line has no `properties` field at its end.
   */
  addRecord(record: Buffer): void {
    this.scanProperties(record, propertiesStart(record), 1);
  }

  /**
   * Takes one record back out: a staged object's counts (`PropertyCounts`) less the records an export
   * drops are the counts of those it wrote. Throws as `addRecord` does.
   */
  removeRecord(record: Buffer): void {
    this.scanProperties(record, propertiesStart(record), -1);
  }

  /**
   * Records one `properties` value: its JSON text (bytes or string, valid JSON as exported), or a
   * parsed object (classified as `JSON.stringify` writes it). Anything but an object is refused.
   */
  addProperties(properties: Buffer | string | Readonly<Record<string, unknown>>): void {
    if (Buffer.isBuffer(properties)) this.scanProperties(properties, 0, 1);
    else if (typeof properties === 'string') this.scanProperties(Buffer.from(properties, 'utf8'), 0, 1);
    else {
      this.recordCount += 1;
      for (const [key, value] of Object.entries(properties)) {
        // `JSON.stringify` leaves these keys out.
        if (value === undefined || typeof value === 'function' || typeof value === 'symbol') continue;
        this.bump(key, typeOfValue(value));
      }
    }
  }

  /** Adds every count of `other` to this schema. */
  merge(other: PropertySchema | SerializedSchema): this {
    const from = other instanceof PropertySchema ? other : PropertySchema.fromJSON(other);
    return this.addCounts(from.recordCount, from.counts);
  }

  /** Adds `records` records whose properties took the type counts of `entries` (indexed by type code). */
  addCounts(records: number, entries: Iterable<readonly [string, ArrayLike<number>]>): this {
    this.recordCount += records;
    for (const [key, counts] of entries) {
      const mine = this.entry(key);
      for (let t = 0; t < JSON_TYPES.length; t += 1) mine[t]! += counts[t] ?? 0;
    }
    return this;
  }

  /** The properties recorded, in code-unit order, each with its nonzero type counts (none: left out). */
  entries(): [string, TypeCounts][] {
    return [...this.counts.keys()]
      .sort(compareCodeUnits)
      .map((key): [string, TypeCounts] => [key, this.typeCounts(key)])
      .filter(([, counts]) => Object.keys(counts).length > 0);
  }

  /** The type counts of one property (empty when never seen). */
  typeCounts(property: string): TypeCounts {
    const counts = this.counts.get(property);
    const result: TypeCounts = {};
    if (counts === undefined) return result;
    for (let t = 0; t < JSON_TYPES.length; t += 1) if (counts[t]! > 0) result[JSON_TYPES[t]!] = counts[t]!;
    return result;
  }

  /** The stable serialization: the same counts always give the same JSON text. */
  toJSON(): SerializedSchema {
    return {
      format: 'mp-pipelines/property-schema@1',
      records: this.recordCount,
      properties: Object.fromEntries(this.entries()),
    };
  }

  /** Reads a serialization back; a malformed one fails with a `ConfigError` naming the field. */
  static fromJSON(value: unknown): PropertySchema {
    const parsed = serializedSchema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new ConfigError(
        `invalid property schema: ${issue.path.join('.') || '(schema)'}: ${issue.message}`,
      );
    }
    const schema = new PropertySchema();
    schema.recordCount = parsed.data.records;
    // Read from the value zod checked, not from zod's copy: assigning a `__proto__` key sets the copy's
    // prototype instead of adding the property, so a property named `__proto__` would vanish.
    const properties = (value as SerializedSchema).properties;
    for (const [key, counts] of Object.entries(properties)) {
      const entry = schema.entry(key);
      for (const [type, n] of Object.entries(counts)) entry[TYPE_INDEX[type as JsonType]] = n ?? 0;
    }
    return schema;
  }

  private entry(key: string): Float64Array {
    let counts = this.counts.get(key);
    if (counts === undefined) {
      counts = new Float64Array(JSON_TYPES.length);
      this.counts.set(key, counts);
    }
    return counts;
  }

  /** The counts of key id `id` (from `this.keys`), kept by id for the next records. */
  private countsOf(id: number): Float64Array {
    const counts = this.entry(this.keys.names[id]!);
    this.countsById[id] = counts;
    return counts;
  }

  private bump(key: string, type: number): void {
    this.entry(key)[type]! += 1;
  }

  /**
   * Scans the object starting at `p` (after optional whitespace), adding `delta` (1 or -1) to the count of
   * each top-level member's type.
   */
  private scanProperties(buf: Buffer, p: number, delta: number): void {
    const end = buf.length;
    p = skipWs(buf, p, end);
    if (buf[p] !== LBRACE) throw new ConfigError('properties must be a JSON object');
    this.recordCount += delta;
    p = skipWs(buf, p + 1, end);
    if (buf[p] === RBRACE) return;
    const keys = this.keys;
    keys.beginObject();
    for (;;) {
      // A key, a colon, a value, then a comma or the closing brace.
      let token = keys.predicted(buf, p, end);
      if (token === undefined) {
        const keyEnd = skipString(buf, p, end);
        token = keys.intern(buf, p, keyEnd, false, 0);
        p = keyEnd;
      } else p += token.bytes.length;
      const counts = this.countsById[token.id] ?? this.countsOf(token.id);
      p = skipWs(buf, p, end);
      if (buf[p] !== COLON) throw malformed(p);
      p = skipWs(buf, p + 1, end);
      const c = buf[p];
      if (c === QUOTE) {
        counts[T_STRING]! += delta;
        p = skipString(buf, p, end);
      } else if (c === LBRACE || c === LBRACK) {
        counts[c === LBRACE ? T_OBJECT : T_ARRAY]! += delta;
        p = skipContainer(buf, p, end);
      } else if (c === LOWER_T || c === LOWER_F) {
        counts[T_BOOLEAN]! += delta;
        p += c === LOWER_T ? 4 : 5;
      } else if (c === MINUS || (c !== undefined && c >= ZERO && c <= NINE)) {
        const start = p;
        let integer = true;
        for (p += 1; p < end; p += 1) {
          const d = buf[p]!;
          if (d >= ZERO && d <= NINE) continue;
          if (d === DOT || d === LOWER_E || d === UPPER_E || d === MINUS || d === PLUS) integer = false;
          else break;
        }
        counts[integer && fitsInt64(buf, start, p) ? T_INTEGER : T_FLOAT]! += delta;
      } else {
        counts[T_NULL]! += delta;
        p += 4;
      }
      p = skipWs(buf, p, end);
      if (buf[p] === COMMA) {
        p = skipWs(buf, p + 1, end);
        continue;
      }
      if (buf[p] === RBRACE) return;
      throw malformed(p);
    }
  }
}

/**
 * The property types of a set of records (one staged object), added event by event from the scanner's
 * `PropertyKeys` as ingest validates the lines: counts per (property id, type), grown as ids appear.
 */
export class PropertyCounts {
  records = 0;
  /** False once an event came whose properties were not typed: no counts are kept then. */
  known = true;
  private counts: Float64Array = new Float64Array(0);

  /** Adds the last event `keys` scanned; returns how many bytes the counts grew by (memory budgets). */
  add(keys: PropertyKeys): number {
    this.records += 1;
    if (!this.known) return 0;
    if (!keys.typed) {
      this.known = false;
      const freed = this.counts.byteLength;
      this.counts = new Float64Array(0);
      return -freed;
    }
    const before = this.counts.byteLength;
    const slots = keys.slots;
    let counts = this.counts;
    for (let i = 0; i < keys.slotCount; i += 1) {
      const slot = slots[i]!;
      if (slot >= counts.length) counts = this.grow(slot);
      counts[slot]! += 1;
    }
    return counts.byteLength - before;
  }

  /** Bytes the counts take. */
  get bytes(): number {
    return this.counts.byteLength;
  }

  /** The counts as a stored schema (names from `keys`), or undefined when they are not known. */
  toJSON(keys: PropertyKeys): SerializedSchema | undefined {
    if (!this.known) return undefined;
    const rows: [string, Float64Array][] = [];
    for (let at = 0; at < this.counts.length; at += JSON_TYPES.length) {
      const row = this.counts.subarray(at, at + JSON_TYPES.length);
      // Rows past the ids seen are capacity, all zero.
      if (row.some((n) => n > 0)) rows.push([keys.names[at / JSON_TYPES.length]!, row]);
    }
    return new PropertySchema().addCounts(this.records, rows).toJSON();
  }

  private grow(slot: number): Float64Array {
    const rows = Math.max(
      8,
      2 * (this.counts.length / JSON_TYPES.length),
      Math.floor(slot / JSON_TYPES.length) + 1,
    );
    const bigger = new Float64Array(rows * JSON_TYPES.length);
    bigger.set(this.counts);
    this.counts = bigger;
    return bigger;
  }
}

/** The JSON type of a parsed value, as `JSON.stringify` would write it. */
function typeOfValue(value: unknown): number {
  if (value === null) return T_NULL;
  if (typeof value === 'string') return T_STRING;
  if (typeof value === 'boolean') return T_BOOLEAN;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return T_NULL;
    const text = JSON.stringify(value);
    return /^-?\d+$/.test(text) && fitsInt64(Buffer.from(text, 'latin1'), 0, text.length)
      ? T_INTEGER
      : T_FLOAT;
  }
  if (typeof value === 'bigint') return value >= -(2n ** 63n) && value < 2n ** 63n ? T_INTEGER : T_FLOAT;
  return Array.isArray(value) ? T_ARRAY : T_OBJECT;
}

/** Where the `properties` value of an exported record starts. */
function propertiesStart(record: Buffer): number {
  const at = record.indexOf(PROPERTIES_FIELD);
  if (at < 0) throw new ConfigError('not an exported record: no "properties" field');
  return at + PROPERTIES_FIELD.length;
}

/** Whether the integer token `[s, e)` lies within a signed 64-bit integer. */
export function fitsInt64(buf: Buffer, s: number, e: number): boolean {
  const negative = buf[s] === MINUS;
  const digits = e - s - (negative ? 1 : 0);
  if (digits < 19) return true;
  if (digits > 19) return false;
  return buf.toString('latin1', negative ? s + 1 : s, e) <= (negative ? INT64_MIN_ABS : INT64_MAX);
}

function skipWs(buf: Buffer, p: number, end: number): number {
  while (p < end) {
    const c = buf[p]!;
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    p += 1;
  }
  return p;
}

/** The index after the string token starting at the quote at `p`. */
function skipString(buf: Buffer, p: number, end: number): number {
  if (buf[p] !== QUOTE) throw malformed(p);
  for (p += 1; p < end; p += 1) {
    const c = buf[p]!;
    if (c === QUOTE) return p + 1;
    if (c === BACKSLASH) p += 1;
  }
  throw malformed(end);
}

/** The index after the object or array starting at `p` (strings inside may hold brackets). */
function skipContainer(buf: Buffer, p: number, end: number): number {
  let depth = 0;
  while (p < end) {
    const c = buf[p]!;
    if (c === QUOTE) {
      p = skipString(buf, p, end);
      continue;
    }
    if (c === LBRACE || c === LBRACK) depth += 1;
    else if (c === RBRACE || c === RBRACK) {
      depth -= 1;
      if (depth === 0) return p + 1;
    }
    p += 1;
  }
  throw malformed(end);
}

function malformed(at: number): ConfigError {
  return new ConfigError(`properties is not valid JSON near byte ${at}`);
}

/** Orders strings by UTF-16 code units (as `Array.prototype.sort` does), independent of locale. */
export function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
