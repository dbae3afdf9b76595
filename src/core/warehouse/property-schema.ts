/**
 * The schema inferred from exported events: every top-level property of `properties` and the JSON
 * types its values took, with counts. Fed per exported record, merged per step and per pipeline, kept
 * in the pipeline's state. The fast path reads the record's bytes (validated JSON, written by the
 * engine) without building objects: it scans the top-level keys of `properties` and classifies each
 * value by its first byte, skipping nested values.
 */
import { z } from 'zod';
import { ConfigError } from '../errors.js';

/** The JSON type of a value; numbers are `integer` (no fraction or exponent, within 64 bits) or `float`. */
export type JsonType = 'string' | 'integer' | 'float' | 'boolean' | 'object' | 'array' | 'null';

/** Every JSON type, in the order serializations list them. */
export const JSON_TYPES: readonly JsonType[] = [
  'string',
  'integer',
  'float',
  'boolean',
  'object',
  'array',
  'null',
];

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
const T_STRING = 0;
const T_INTEGER = 1;
const T_FLOAT = 2;
const T_BOOLEAN = 3;
const T_OBJECT = 4;
const T_ARRAY = 5;
const T_NULL = 6;

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
/** Distinct key tokens indexed by their bytes. */
const MAX_RAW_KEYS = 100_000;

/** The key that precedes `properties` in an exported record: the record's last field (README "What is exported"). */
const PROPERTIES_FIELD = Buffer.from(',"properties":', 'latin1');
const INT64_MAX = '9223372036854775807';
const INT64_MIN_ABS = '9223372036854775808';

/** Accumulates the property types of exported events. */
export class PropertySchema {
  private readonly counts = new Map<string, Float64Array>();
  /** The key last seen first in an object (see `keyAfter`). */
  private readonly start: KeyToken = { raw: '', counts: new Float64Array(0) };
  /** Key tokens by their bytes (as latin1 text, quotes included). */
  private readonly byRawKey = new Map<string, KeyToken>();
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
    const at = record.indexOf(PROPERTIES_FIELD);
    if (at < 0) throw new ConfigError('not an exported record: no "properties" field');
    this.scanProperties(record, at + PROPERTIES_FIELD.length);
  }

  /**
   * Records one `properties` value: its JSON text (bytes or string, valid JSON as exported), or a
   * parsed object (classified as `JSON.stringify` writes it). Anything but an object is refused.
   */
  addProperties(properties: Buffer | string | Readonly<Record<string, unknown>>): void {
    if (Buffer.isBuffer(properties)) this.scanProperties(properties, 0);
    else if (typeof properties === 'string') this.scanProperties(Buffer.from(properties, 'utf8'), 0);
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
    this.recordCount += from.recordCount;
    for (const [key, counts] of from.counts) {
      const mine = this.entry(key);
      for (let t = 0; t < counts.length; t += 1) mine[t]! += counts[t]!;
    }
    return this;
  }

  /** The properties recorded, in code-unit order, each with its nonzero type counts. */
  entries(): [string, TypeCounts][] {
    return [...this.counts.keys()].sort(compareCodeUnits).map((key) => [key, this.typeCounts(key)]);
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
    for (const [key, counts] of Object.entries(parsed.data.properties)) {
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

  private bump(key: string, type: number): void {
    this.entry(key)[type]! += 1;
  }

  /** Scans the object starting at `p` (after optional whitespace), recording each top-level member. */
  private scanProperties(buf: Buffer, p: number): void {
    const end = buf.length;
    p = skipWs(buf, p, end);
    if (buf[p] !== LBRACE) throw new ConfigError('properties must be a JSON object');
    this.recordCount += 1;
    p = skipWs(buf, p + 1, end);
    if (buf[p] === RBRACE) return;
    for (let previous = this.start; ; ) {
      // A key, a colon, a value, then a comma or the closing brace.
      // The key that followed the previous one last time, when it is the one here, is read once.
      const predicted = previous.next;
      let key: KeyToken;
      if (predicted !== undefined && startsWithToken(buf, p, end, predicted.raw)) {
        key = predicted;
        p += predicted.raw.length;
      } else {
        const keyEnd = skipString(buf, p, end);
        key = this.keyAfter(previous, buf, p, keyEnd);
        p = keyEnd;
      }
      const counts = key.counts;
      previous = key;
      p = skipWs(buf, p, end);
      if (buf[p] !== COLON) throw malformed(p);
      p = skipWs(buf, p + 1, end);
      const c = buf[p];
      if (c === QUOTE) {
        counts[T_STRING]! += 1;
        p = skipString(buf, p, end);
      } else if (c === LBRACE || c === LBRACK) {
        counts[c === LBRACE ? T_OBJECT : T_ARRAY]! += 1;
        p = skipContainer(buf, p, end);
      } else if (c === LOWER_T || c === LOWER_F) {
        counts[T_BOOLEAN]! += 1;
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
        counts[integer && fitsInt64(buf, start, p) ? T_INTEGER : T_FLOAT]! += 1;
      } else {
        counts[T_NULL]! += 1;
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

  /**
   * The key token `[start, end)`, which follows `previous` in its object and is not `previous.next`.
   * Events of one source list their keys in the same order, some of them optional, so each key
   * remembers the last two keys that followed it: one of them matching, compared byte by byte, costs
   * no decoding and no lookup (the caller tries `next` as it reads the key).
   */
  private keyAfter(previous: KeyToken, buf: Buffer, start: number, end: number): KeyToken {
    const next = previous.next;
    const other = previous.other;
    if (other !== undefined && sameBytes(buf, start, end, other.raw)) {
      previous.other = next;
      previous.next = other;
      return other;
    }
    const raw = buf.toString('latin1', start, end);
    let key = this.byRawKey.get(raw);
    if (key === undefined) {
      key = { raw, counts: this.entry(JSON.parse(buf.toString('utf8', start, end)) as string) };
      // Bounded: a stream of ever new keys must not grow this index without limit.
      if (this.byRawKey.size < MAX_RAW_KEYS) this.byRawKey.set(raw, key);
    }
    previous.other = next;
    previous.next = key;
    return key;
  }
}

/** A key token as it appears in records, with its property's counts and the keys seen after it. */
interface KeyToken {
  readonly raw: string;
  readonly counts: Float64Array;
  next?: KeyToken;
  other?: KeyToken;
}

/**
 * Whether the bytes at `p` are the key token `raw` (quotes included). A token's end is where its closing
 * quote is, so bytes equal to a whole token are that token, whatever follows.
 */
function startsWithToken(buf: Buffer, p: number, end: number, raw: string): boolean {
  if (p + raw.length > end) return false;
  for (let i = 0; i < raw.length; i += 1) if (buf[p + i] !== raw.charCodeAt(i)) return false;
  return true;
}

/** Whether `buf[start, end)` holds the bytes of `raw` (latin1: one char per byte). */
function sameBytes(buf: Buffer, start: number, end: number, raw: string): boolean {
  if (end - start !== raw.length) return false;
  for (let i = 0; i < raw.length; i += 1) if (buf[start + i] !== raw.charCodeAt(i)) return false;
  return true;
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

/** Whether the integer token `[s, e)` lies within a signed 64-bit integer. */
function fitsInt64(buf: Buffer, s: number, e: number): boolean {
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
