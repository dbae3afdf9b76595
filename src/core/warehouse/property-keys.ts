/**
 * The top-level keys of `properties` objects as they appear in records, interned: each distinct property
 * name gets a small id, so counting types per property is an array increment. Reading a key is cheap when
 * it is the one that followed the previous key last time (events of one source list their keys in the
 * same order, some of them optional): its bytes are compared once, with no decoding and no lookup.
 * Used by the warehouse schema (`PropertySchema`) and by ingest's scanner, which types each property as it
 * validates the line (`PropertyCounts`), so the export need not read the properties again.
 */

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

/** Type codes: indexes into `JSON_TYPES` (a property's counts are one number per code). */
export const T_STRING = 0;
export const T_INTEGER = 1;
export const T_FLOAT = 2;
export const T_BOOLEAN = 3;
export const T_OBJECT = 4;
export const T_ARRAY = 5;
export const T_NULL = 6;

/** One key as it appears in records (its bytes), with what it stands for and the keys seen after it. */
export interface KeyToken {
  /** The key's bytes, quotes included. */
  readonly bytes: Uint8Array;
  /** The property's id, or -1 when the name did not fit (`PropertyKeys.maxNames`). */
  readonly id: number;
  /** The caller's tag for the key (the scanner's field code), a function of its bytes. */
  readonly tag: number;
  /** Whether the key has bytes of 0x80 or above (the line must then be checked as UTF-8). */
  readonly high: boolean;
  next?: KeyToken;
  other?: KeyToken;
}

/**
 * A token with every field from the start: tokens then share one shape, so the scanner's reads of
 * `next` and `bytes` stay monomorphic (adding `next` and `other` later gave tokens three shapes).
 */
function keyToken(bytes: Uint8Array, id: number, tag: number, high: boolean): KeyToken {
  return { bytes, id, tag, high, next: undefined, other: undefined };
}

const BACKSLASH = 0x5c;
/** Distinct key tokens indexed by their bytes. */
const MAX_RAW_KEYS = 100_000;

/** Interns key tokens and remembers, for the last event scanned, the type of each of its properties. */
export class PropertyKeys {
  /** Property names by id. */
  readonly names: string[] = [];
  private readonly ids = new Map<string, number>();
  private readonly byRaw = new Map<string, KeyToken>();
  /** Stands before an object's first key: its `next` is the key objects started with last time. */
  private readonly start: KeyToken = keyToken(new Uint8Array(0), -1, 0, false);
  private previous: KeyToken = this.start;
  /** The last event's typed properties: slot `id * JSON_TYPES.length + type code` of each, in order. */
  slots = new Int32Array(64);
  /** How many of `slots` the last event filled (a property given twice counts twice, as in the record). */
  slotCount = 0;
  private overflow = false;
  private complete = false;

  /** @param maxNames most distinct property names; past it, events with a new one are not typed. */
  constructor(readonly maxNames = Number.POSITIVE_INFINITY) {}

  /** Starts an event: nothing known about its properties until `endEvent`. */
  beginEvent(): void {
    this.slotCount = 0;
    this.overflow = false;
    this.complete = false;
    this.previous = this.start;
  }

  /** Starts a `properties` object (a later one replaces an earlier one: last wins). */
  beginObject(): void {
    this.slotCount = 0;
    this.overflow = false;
    this.previous = this.start;
  }

  /** The event was scanned whole: its properties are typed (unless a name did not fit). */
  endEvent(): void {
    this.complete = true;
  }

  /** Whether the last event's properties are all typed (`slots`). */
  get typed(): boolean {
    return this.complete && !this.overflow;
  }

  /**
   * The key at `p` when it is the one that followed the previous key last time (then it becomes the
   * previous key). A token's end is where its closing quote is, so bytes equal to a whole token are
   * that token, whatever follows.
   */
  predicted(buf: Uint8Array, p: number, end: number): KeyToken | undefined {
    const token = this.previous.next;
    if (token === undefined) return undefined;
    const bytes = token.bytes;
    const length = bytes.length;
    if (p + length > end) return undefined;
    for (let i = 0; i < length; i += 1) if (buf[p + i] !== bytes[i]) return undefined;
    this.previous = token;
    return token;
  }

  /**
   * The key token `buf[start, end)` (a valid JSON string), which follows
   * the previous key and is not its predicted one; it becomes the previous key. Each key remembers the
   * last two keys that followed it.
   */
  intern(buf: Buffer, start: number, end: number, high: boolean, tag: number): KeyToken {
    const previous = this.previous;
    const next = previous.next;
    const other = previous.other;
    let token: KeyToken | undefined;
    if (other !== undefined && sameBytes(buf, start, end, other.bytes)) token = other;
    else {
      const raw = buf.toString('latin1', start, end);
      token = this.byRaw.get(raw);
      if (token === undefined) {
        const name =
          buf.indexOf(BACKSLASH, start) < end
            ? (JSON.parse(buf.toString('utf8', start, end)) as string)
            : buf.toString('utf8', start + 1, end - 1);
        token = keyToken(Uint8Array.prototype.slice.call(buf, start, end), this.idOf(name), tag, high);
        // Bounded: a stream of ever new keys must not grow this index without limit.
        if (this.byRaw.size < MAX_RAW_KEYS) this.byRaw.set(raw, token);
      }
    }
    previous.other = next;
    previous.next = token;
    this.previous = token;
    return token;
  }

  /** Records that the last event's property `id` (from a token) has a value of type code `type`. */
  push(id: number, type: number): void {
    if (id < 0) {
      this.overflow = true;
      return;
    }
    if (this.slotCount === this.slots.length) {
      const bigger = new Int32Array(this.slots.length * 2);
      bigger.set(this.slots);
      this.slots = bigger;
    }
    this.slots[this.slotCount++] = id * JSON_TYPES.length + type;
  }

  /** The id of property `name`, or -1 when it is new and `maxNames` are taken. */
  private idOf(name: string): number {
    let id = this.ids.get(name);
    if (id === undefined) {
      if (this.names.length >= this.maxNames) return -1;
      id = this.names.length;
      this.names.push(name);
      this.ids.set(name, id);
    }
    return id;
  }
}

/** Whether `buf[start, end)` holds `bytes`. */
function sameBytes(buf: Uint8Array, start: number, end: number, bytes: Uint8Array): boolean {
  if (end - start !== bytes.length) return false;
  for (let i = 0; i < bytes.length; i += 1) if (buf[start + i] !== bytes[i]) return false;
  return true;
}
