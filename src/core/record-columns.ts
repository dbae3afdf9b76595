/**
 * Splits the records the engine exports into their columns by byte position. The records are our own
 * canonical JSON with a fixed key order (`event-line.ts` builds event records, the snapshot steps build
 * profile and identity lines), so each field sits behind a known key: the splitter checks the keys and
 * delimiters, reads the short fields, and takes the object field (`properties`, always last) as the
 * exact bytes between its key and the record's closing brace, never parsing it (PERFORMANCE.md: a
 * `JSON.parse` per event costs ~45 us). It trusts what the engine wrote: string contents and the object's
 * inside are not validated again, only the record's structure.
 */
import { MAX_TIME_MS } from './event-line.js';

/**
 * How a field's value is written: a JSON string, a string or `null`, an integer of epoch milliseconds,
 * or a JSON object (which must be the record's last field).
 */
export type FieldKind = 'string' | 'nullable_string' | 'time' | 'object';

/** One field of a record shape. */
export interface RecordField {
  /** The key, as written in the record. */
  readonly name: string;
  readonly kind: FieldKind;
}

/** The fields of one kind of record, in the order the engine writes them. */
export interface RecordShape {
  /** What the records are, for messages (`event record`). */
  readonly description: string;
  readonly fields: readonly RecordField[];
}

/** An exported event (`event-line.ts`): ids that were numbers in the input are strings here. */
export const EVENT_RECORD: RecordShape = {
  description: 'event record',
  fields: [
    { name: 'event_name', kind: 'string' },
    { name: 'time', kind: 'time' },
    { name: 'distinct_id', kind: 'nullable_string' },
    { name: 'device_id', kind: 'nullable_string' },
    { name: 'user_id', kind: 'nullable_string' },
    { name: 'insert_id', kind: 'nullable_string' },
    { name: 'properties', kind: 'object' },
  ],
};

/** A profile of a people snapshot (`snapshot-task.ts`). */
export const PROFILE_RECORD: RecordShape = {
  description: 'profile record',
  fields: [
    { name: 'distinct_id', kind: 'string' },
    { name: 'properties', kind: 'object' },
  ],
};

/** A mapping of an identity snapshot (`snapshot-task.ts`). */
export const IDENTITY_RECORD: RecordShape = {
  description: 'identity record',
  fields: [
    { name: 'distinct_id', kind: 'string' },
    { name: 'resolved_distinct_id', kind: 'string' },
  ],
};

/** A record that does not have the shape its splitter expects: staging or the engine is broken. */
export class RecordFormatError extends Error {
  override readonly name = 'RecordFormatError';
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const ZERO = 0x30;
const NINE = 0x39;
const LOWER_N = 0x6e;

const B_NULL = Buffer.from('null', 'latin1');

// Field kinds as small integers for the hot loop.
const STRING = 0;
const NULLABLE_STRING = 1;
const TIME = 2;
const OBJECT = 3;
const KIND_CODES: Record<FieldKind, number> = {
  string: STRING,
  nullable_string: NULLABLE_STRING,
  time: TIME,
  object: OBJECT,
};

/**
 * Locates the fields of records of one shape; reused across records (one allocation per splitter).
 * After `split(record)`, field `i`'s value is `record[start(i), end(i))`: a string's content without
 * its quotes, an object's whole text; `start(i)` is -1 for `null`. `timeMs` holds the time field.
 */
export class RecordSplitter {
  /** Epoch ms of the shape's `time` field (0 when it has none). */
  timeMs = 0;
  private readonly keys: readonly Uint8Array[];
  private readonly kinds: Uint8Array;
  private readonly spans: Int32Array;
  private readonly escaped: Uint8Array;
  private record: Buffer = Buffer.alloc(0);

  constructor(readonly shape: RecordShape) {
    const last = shape.fields.length - 1;
    shape.fields.forEach((field, i) => {
      if (field.kind === 'object' && i !== last)
        throw new RangeError(`${shape.description}: object field ${field.name} must be the last field`);
    });
    this.keys = shape.fields.map((field, i) => Buffer.from(`${i === 0 ? '{' : ','}"${field.name}":`, 'utf8'));
    this.kinds = Uint8Array.from(shape.fields, (field) => KIND_CODES[field.kind]);
    this.spans = new Int32Array(2 * shape.fields.length);
    this.escaped = new Uint8Array(shape.fields.length);
  }

  /** Locates every field of `record` (no trailing newline); throws `RecordFormatError` naming what is wrong. */
  split(record: Buffer): void {
    this.record = record;
    const length = record.length;
    let p = 0;
    for (let i = 0; i < this.keys.length; i++) {
      const key = this.keys[i]!;
      if (!bytesAt(record, p, key)) this.fail(i, p, 'its key');
      p += key.length;
      const kind = this.kinds[i];
      if (kind === OBJECT) {
        // The last field: everything up to the record's closing brace, which closes the object too.
        if (
          record[p] !== LBRACE ||
          length - p < 3 ||
          record[length - 2] !== RBRACE ||
          record[length - 1] !== RBRACE
        )
          this.fail(i, p, 'a JSON object');
        this.spans[2 * i] = p;
        this.spans[2 * i + 1] = length - 1;
        return;
      }
      if (kind === TIME) {
        let value = 0;
        const start = p;
        while (p < length && record[p]! >= ZERO && record[p]! <= NINE)
          value = value * 10 + (record[p++]! - ZERO);
        if (p === start || p - start > 16 || value > MAX_TIME_MS)
          this.fail(i, start, `an integer of epoch milliseconds up to ${MAX_TIME_MS}`);
        this.timeMs = value;
        this.spans[2 * i] = start;
        this.spans[2 * i + 1] = p;
        continue;
      }
      if (kind === NULLABLE_STRING && record[p] === LOWER_N) {
        if (!bytesAt(record, p, B_NULL)) this.fail(i, p, 'a string or null');
        this.spans[2 * i] = -1;
        this.spans[2 * i + 1] = -1;
        p += 4;
        continue;
      }
      if (record[p] !== QUOTE) this.fail(i, p, kind === STRING ? 'a string' : 'a string or null');
      const start = p + 1;
      let escaped = 0;
      for (p = start; p < length; p++) {
        const c = record[p];
        if (c === QUOTE) break;
        if (c === BACKSLASH) {
          // The escaped byte (or the `u` of `\uXXXX`) is never a quote that ends the string.
          escaped = 1;
          p++;
        }
      }
      if (p >= length) this.fail(i, start - 1, 'a terminated string');
      this.spans[2 * i] = start;
      this.spans[2 * i + 1] = p;
      this.escaped[i] = escaped;
      p++;
    }
    if (p !== length - 1 || record[p] !== RBRACE) this.fail(this.keys.length, p, 'the closing brace');
  }

  /** Start of field `i`'s value in the record, or -1 when it is `null`. */
  start(i: number): number {
    return this.spans[2 * i]!;
  }

  /** End (exclusive) of field `i`'s value in the record. */
  end(i: number): number {
    return this.spans[2 * i + 1]!;
  }

  /** Whether string field `i` has escapes (its bytes then differ from its value's UTF-8). */
  escapedAt(i: number): boolean {
    return this.escaped[i] === 1;
  }

  /** The decoded value of string field `i`, or `null`. */
  string(i: number): string | null {
    const start = this.spans[2 * i]!;
    if (start < 0) return null;
    const end = this.spans[2 * i + 1]!;
    if (this.escaped[i] === 0) return this.record.toString('utf8', start, end);
    const decoded: string = JSON.parse(this.record.toString('utf8', start - 1, end + 1));
    return decoded;
  }

  /**
   * The UTF-8 bytes of string field `i`'s decoded value, or `null`: a view of the record when the
   * string has no escapes (its bytes are then exactly the value's). A lone surrogate escape (`\ud800`)
   * has no UTF-8 form and becomes U+FFFD.
   */
  utf8(i: number): Uint8Array | null {
    const start = this.spans[2 * i]!;
    if (start < 0) return null;
    if (this.escaped[i] === 0) return this.bytes(i);
    return Buffer.from(this.string(i) as string, 'utf8');
  }

  /** The raw bytes of field `i`'s value as a view of the record (a string's content, an object's text). */
  bytes(i: number): Uint8Array {
    const start = this.spans[2 * i]!;
    const record = this.record;
    return new Uint8Array(record.buffer, record.byteOffset + start, this.spans[2 * i + 1]! - start);
  }

  private fail(field: number, at: number, expected: string): never {
    const name = this.shape.fields[field]?.name;
    const what = name === undefined ? expected : `"${name}" with ${expected}`;
    const record = this.record;
    const shown = record.toString('utf8', 0, Math.min(record.length, 120));
    throw new RecordFormatError(
      `malformed ${this.shape.description}: expected ${what} at byte ${at} of ${JSON.stringify(shown)}` +
        `${record.length > 120 ? ' (cut)' : ''}`,
    );
  }
}

function bytesAt(buf: Buffer, p: number, lit: Uint8Array): boolean {
  if (p + lit.length > buf.length) return false;
  for (let i = 0; i < lit.length; i++) if (buf[p + i] !== lit[i]) return false;
  return true;
}
