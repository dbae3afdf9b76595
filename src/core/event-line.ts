/**
 * Validation and normalization of one raw event line (vendor ingestion format) into the exported
 * record, on bytes: a single iterative pass that is exactly as strict as `JSON.parse` (RFC 8259) and
 * finds the few fields it needs on the way, so the success path never builds JS objects. `properties`
 * is copied byte for byte, which keeps integers above 2^53, number formats, escapes and key order.
 * Limitation: top-level keys other than `event` and `properties` are not carried to the record.
 */
import { isUtf8 } from 'node:buffer';
import { hash } from 'node:crypto';
import { describeValue as describeParsed, isPlainObject, ownField, parseJsonValue } from './json-line.js';
import {
  type PropertyKeys,
  T_ARRAY,
  T_BOOLEAN,
  T_FLOAT,
  T_INTEGER,
  T_NULL,
  T_OBJECT,
  T_STRING,
} from './warehouse/property-keys.js';
import { fitsInt64 } from './warehouse/property-schema.js';

/** Why a line goes to quarantine. */
export type QuarantineReason =
  | 'empty_line'
  | 'invalid_utf8'
  | 'invalid_json'
  | 'not_an_object'
  | 'missing_event'
  | 'invalid_time'
  | 'time_out_of_range';

/** A line that is a valid event, with its normalized output record. */
export interface ValidEvent {
  readonly ok: true;
  /** Event time, integer epoch milliseconds (see rules). */
  readonly timeMs: number;
  /** The decoded event name (for filters). */
  readonly eventName: string;
  /** Dedup key digest, or undefined when the event has no $insert_id (never deduplicated). */
  readonly dedupKey: string | undefined;
  /** The normalized output record, one JSON object, no trailing newline. */
  readonly record: Buffer;
}

/**
 * A valid event as ingest stages it: the record is written where it goes (`writeRecord`) instead of
 * built on its own. From `readEventLine`, it describes the line last read and is valid until the next.
 */
export interface StagedEvent extends ValidEvent {
  /** Bytes of the record. */
  readonly recordBytes: number;
  /** Writes the record into `out` at `o`; returns the offset after it. */
  writeRecord(out: Uint8Array, o: number): number;
}

/** A line that goes to quarantine, with the reason and a human-readable detail. */
export interface InvalidLine {
  readonly ok: false;
  readonly reason: QuarantineReason;
  readonly detail: string;
}

/** Largest valid event time in epoch ms (the end of the ECMAScript `Date` range). */
export const MAX_TIME_MS = 8_640_000_000_000_000;

/** `properties.time` values at or above this are epoch milliseconds, below it epoch seconds. */
export const MS_THRESHOLD = 1e11;

const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const QUOTE = 0x22;
const PLUS = 0x2b;
const COMMA = 0x2c;
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const ONE = 0x31;
const NINE = 0x39;
const COLON = 0x3a;
const LBRACK = 0x5b;
const BACKSLASH = 0x5c;
const RBRACK = 0x5d;
const LOWER_E = 0x65;
const LOWER_U = 0x75;
const LBRACE = 0x7b;
const RBRACE = 0x7d;

const OBJ = 1;
const ARR = 2;

// Which field the value being scanned belongs to (0: none we care about).
const K_EVENT = 1;
const K_PROPS = 2;
const K_TIME = 3;
const K_ID = 4; // K_ID + i for ID_NAMES[i]

/** Identity fields read from `properties`, in record order (distinct, device, user, insert). */
const ID_NAMES = ['distinct_id', '$device_id', '$user_id', '$insert_id'] as const;
const ID_OUT = ['"distinct_id":', '"device_id":', '"user_id":', '"insert_id":'] as const;
const INSERT = 3;

// Identity kinds in the scratch array.
const ID_NULL = 0;
const ID_STR = 1;
const ID_STR_ESC = 2;
const ID_NUM = 3;

const latin1 = (s: string): Uint8Array => Buffer.from(s, 'latin1');
const B_EVENT = latin1('event');
const B_PROPERTIES = latin1('properties');
const B_TIME = latin1('time');
const B_IDS = ID_NAMES.map(latin1);
const B_OPEN = latin1('{"event_name":');
const B_TIME_KEY = latin1(',"time":');
const B_ID_KEYS = ID_OUT.map((k) => latin1(`,${k}`));
const B_PROPS_KEY = latin1(',"properties":');
const B_NULL = latin1('null');
const FIXED_LEN =
  B_OPEN.length + B_TIME_KEY.length + B_ID_KEYS.reduce((n, b) => n + b.length, 0) + B_PROPS_KEY.length + 1;

/** Bytes allowed after a backslash (besides `u`). */
const SIMPLE_ESCAPE = new Uint8Array(256);
for (const c of '"\\/bfnrt') SIMPLE_ESCAPE[c.charCodeAt(0)] = 1;
/** Bytes that need no attention inside a string: printable ASCII except `"` and `\\`. */
const STRING_PLAIN = new Uint8Array(256);
for (let c = SPACE; c < 0x80; c++) if (c !== QUOTE && c !== BACKSLASH) STRING_PLAIN[c] = 1;
const HEX = new Uint8Array(256);
for (const c of '0123456789abcdefABCDEF') HEX[c.charCodeAt(0)] = 1;

// Container stack, reused across calls (single-threaded); a huge one from a pathological line is not kept.
let stack = new Uint8Array(64);
const KEEP_STACK = 1 << 16;
// Identity scratch: kind[0..3], token start[4..7], token end[8..11] (lines ending past 2 GiB of their
// buffer take the slow path).
const ids = new Int32Array(12);
const MAX_FAST_LINE = 0x7fffffff;
// Scratch for the dedup hash input, and its views by length: one per length, made once, not one per
// event (they are most of what reading a line allocates).
let hashScratch = Buffer.allocUnsafeSlow(1024);
let hashViews: Uint8Array[] = [];
// Set by scanString: whether the string had a backslash / a byte >= 0x80.
let strEscaped = false;
let strHigh = false;
// Set by scanNumber: whether the number had a fraction or an exponent.
let numFractional = false;

/**
 * Validates and normalizes one line (without its `\n`) into an output record, or says why it is
 * quarantined. With `keys`, the types of the properties of a valid event are left in `keys` (untyped when
 * the fallback parsed the line: `keys.typed` is false).
 */
export function parseEventLine(line: Buffer, keys?: PropertyKeys): ValidEvent | InvalidLine {
  return scanEventLine(line, keys) ?? rejected(line);
}

/**
 * `parseEventLine` for ingest, of the line at `[start, end)` of `line` (no view of it is made): a valid
 * event comes as a `StagedEvent` that writes its record into the staging buffer directly, and that is
 * only valid until the next line is read (the scanner's own state, so reading a line allocates nothing
 * but the event's strings).
 */
export function readEventLine(
  line: Buffer,
  keys?: PropertyKeys,
  start = 0,
  end = line.length,
): StagedEvent | InvalidLine {
  const scanned = scanLine(line, keys, start, end);
  if (scanned !== undefined) return scanned;
  const fallback = rejected(line.subarray(start, end));
  return fallback.ok ? stagedEventOf(fallback) : fallback;
}

/**
 * The byte scanner alone: `undefined` when it rejects the JSON grammar. Exported so tests can prove it
 * agrees with `JSON.parse` on its own, without the fallback of `parseEventLine`. With `keys`, it types
 * each top-level property of `properties` on the way (the warehouse schema, without a second pass).
 */
export function scanEventLine(line: Buffer, keys?: PropertyKeys): ValidEvent | InvalidLine | undefined {
  const scanned = scanLine(line, keys, 0, line.length);
  if (scanned === undefined || !scanned.ok) return scanned;
  const { timeMs, eventName, dedupKey } = scanned;
  return { ok: true, timeMs, eventName, dedupKey, record: scanned.record };
}

/**
 * The scanner, over bytes `[start, lineEnd)` of `line` (positions stay the buffer's): a valid line's
 * event is `cursor`, describing it until the next call.
 */
function scanLine(
  line: Buffer,
  keys: PropertyKeys | undefined,
  start: number,
  lineEnd: number,
): StagedEvent | InvalidLine | undefined {
  keys?.beginEvent();
  let end = lineEnd;
  if (lineEnd > MAX_FAST_LINE) return undefined;
  if (end > start && line[end - 1] === CR) end--;
  let p = skipWs(line, start, end);
  if (p === end) return invalid('empty_line', 'the line is empty or only whitespace');
  const first = line[p]!;

  let st = stack;
  let depth = 0;
  let high = false;
  let expectKey = false;
  let inProps = false;
  let evKind = 0; // 0 missing, 1 string, 2 other
  let evS = 0;
  let evE = 0;
  let evEsc = false;
  let prKind = 0; // 0 missing, 1 object, 2 other
  let prS = 0;
  let prE = 0;
  let tmKind = 0; // 0 missing, 1 number, 2 other
  let tmS = 0;
  let tmE = 0;
  resetIds();

  outer: for (;;) {
    let key = 0;
    // The id of the `properties` member whose value comes next (-2: not one).
    let property = -2;
    if (expectKey) {
      if (p >= end || line[p] !== QUOTE) return undefined;
      const ks = p;
      if (keys !== undefined && depth === 2 && inProps) {
        // The key that followed the previous one last time is read once, its field already known.
        let token = keys.predicted(line, p, end);
        if (token === undefined) {
          p = scanString(line, p, end);
          if (p < 0) return undefined;
          token = keys.intern(line, ks, p, strHigh, propKey(line, ks, p, strEscaped));
        } else p += token.bytes.length;
        if (token.high) high = true;
        key = token.tag;
        property = token.id;
      } else {
        p = scanString(line, p, end);
        if (p < 0) return undefined;
        if (strHigh) high = true;
        if (depth === 1) key = topKey(line, ks, p, strEscaped);
        else if (depth === 2 && inProps) key = propKey(line, ks, p, strEscaped);
      }
      p = skipWs(line, p, end);
      if (p >= end || line[p] !== COLON) return undefined;
      p = skipWs(line, p + 1, end);
    }
    if (p >= end) return undefined;
    const c = line[p]!;
    if (c === LBRACE || c === LBRACK) {
      if (key === K_PROPS && c === LBRACE) {
        // A later `properties` replaces an earlier one (last wins), so its fields start afresh.
        prKind = 1;
        prS = p;
        tmKind = 0;
        resetIds();
        keys?.beginObject();
        inProps = true;
      } else if (key === K_EVENT) evKind = 2;
      else if (key === K_PROPS) prKind = 2;
      else if (key === K_TIME) tmKind = 2;
      else if (key >= K_ID) ids[key - K_ID] = ID_NULL;
      if (property !== -2) keys!.push(property, c === LBRACE ? T_OBJECT : T_ARRAY);
      if (depth === st.length) {
        const bigger = new Uint8Array(st.length * 2);
        bigger.set(st);
        st = bigger;
        if (bigger.length <= KEEP_STACK) stack = bigger;
      }
      st[depth++] = c === LBRACE ? OBJ : ARR;
      p = skipWs(line, p + 1, end);
      if (p < end && line[p] === c + 2) {
        // `{}` or `[]` (the closing bracket is the opening one + 2 in ASCII).
        p++;
        depth--;
        if (inProps && depth === 1) {
          prE = p;
          inProps = false;
        }
      } else {
        expectKey = c === LBRACE;
        continue;
      }
    } else {
      const vs = p;
      let isString = false;
      let isNumber = false;
      if (c === QUOTE) {
        p = scanString(line, p, end);
        if (p < 0) return undefined;
        if (strHigh) high = true;
        isString = true;
      } else if (c === MINUS || (c >= ZERO && c <= NINE)) {
        p = scanNumber(line, p, end);
        if (p < 0) return undefined;
        isNumber = true;
      } else {
        p = scanLiteral(line, p, end, c);
        if (p < 0) return undefined;
      }
      if (property !== -2)
        keys!.push(
          property,
          isString
            ? T_STRING
            : isNumber
              ? numFractional || !fitsInt64(line, vs, p)
                ? T_FLOAT
                : T_INTEGER
              : c === 0x6e
                ? T_NULL
                : T_BOOLEAN,
        );
      if (key === K_EVENT) {
        if (isString) {
          evKind = 1;
          evS = vs;
          evE = p;
          evEsc = strEscaped;
        } else evKind = 2;
      } else if (key === K_PROPS) prKind = 2;
      else if (key === K_TIME) {
        if (isNumber) {
          tmKind = 1;
          tmS = vs;
          tmE = p;
        } else tmKind = 2;
      } else if (key >= K_ID) {
        const i = key - K_ID;
        ids[i] = isString ? (strEscaped ? ID_STR_ESC : ID_STR) : isNumber ? ID_NUM : ID_NULL;
        ids[4 + i] = vs;
        ids[8 + i] = p;
      }
    }
    // After a complete value: a separator, a closing bracket, or the end of the line.
    for (;;) {
      p = skipWs(line, p, end);
      if (depth === 0) {
        if (p === end) break outer;
        return undefined;
      }
      if (p >= end) return undefined;
      const d = line[p]!;
      const top = st[depth - 1];
      if (d === COMMA) {
        p = skipWs(line, p + 1, end);
        expectKey = top === OBJ;
        continue outer;
      }
      if ((d === RBRACE && top === OBJ) || (d === RBRACK && top === ARR)) {
        p++;
        depth--;
        if (inProps && depth === 1) {
          prE = p;
          inProps = false;
        }
        continue;
      }
      return undefined;
    }
  }

  keys?.endEvent();
  // The grammar holds; now the rules, in contract order.
  if (high && !isUtf8(line.subarray(start, lineEnd)))
    return invalid('invalid_utf8', 'the line is not valid UTF-8');
  if (first !== LBRACE) return invalid('not_an_object', `the line is ${describeValue(first)}, not an object`);
  if (evKind !== 1 || evE - evS === 2) return invalid('missing_event', eventProblem(evKind));
  if (prKind !== 1) return invalid('invalid_time', propertiesProblem(prKind));
  if (tmKind !== 1) {
    const what = tmKind === 0 ? 'is missing' : 'is not a number';
    return invalid('invalid_time', `properties.time ${what}`);
  }
  const timeMs = timeMsOf(numberValue(line, tmS, tmE));
  if (typeof timeMs === 'string')
    return invalid(
      timeMs === 'too_late' ? 'time_out_of_range' : 'invalid_time',
      timeDetail(timeMs, line.toString('latin1', tmS, tmE)),
    );

  let dedupKey: string | undefined;
  if (ids[INSERT] !== ID_NULL) {
    dedupKey =
      evEsc || ids[INSERT] === ID_STR_ESC || ids[0] === ID_STR_ESC
        ? dedupKeyOf(
            decodeId(line, INSERT),
            ids[0] === ID_NULL ? null : decodeId(line, 0),
            decodeString(line, evS, evE, evEsc),
            timeMs,
          )
        : rawDedupKey(line, evS, evE, timeMs);
  }
  return cursor.describe(line, timeMs, dedupKey, evS, evE, evEsc, prS, prE);
}

/**
 * Builds the result from an already parsed line, with `JSON.stringify` for the record: the fallback for
 * a line the scanner rejected but `JSON.parse` accepted (should never happen; correctness first).
 * Unlike the fast path, ids and `properties` are re-serialized, so number formats may change.
 */
export function eventFromParsed(value: unknown): ValidEvent | InvalidLine {
  if (!isPlainObject(value))
    return invalid('not_an_object', `the line is ${describeParsed(value)}, not an object`);
  const event = ownField(value, 'event');
  if (typeof event !== 'string' || event === '') {
    return invalid(
      'missing_event',
      eventProblem(event === undefined ? 0 : typeof event === 'string' ? 1 : 2),
    );
  }
  const props = ownField(value, 'properties');
  if (typeof props !== 'object' || props === null || Array.isArray(props)) {
    return invalid('invalid_time', propertiesProblem(props === undefined ? 0 : 2));
  }
  const time = ownField(props, 'time');
  if (typeof time !== 'number') {
    return invalid(
      'invalid_time',
      `properties.time ${time === undefined ? 'is missing' : 'is not a number'}`,
    );
  }
  const timeMs = timeMsOf(time);
  if (typeof timeMs === 'string')
    return invalid(
      timeMs === 'too_late' ? 'time_out_of_range' : 'invalid_time',
      timeDetail(timeMs, String(time)),
    );
  const idValues = ID_NAMES.map((name) => {
    const v = ownField(props, name);
    return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : null;
  });
  const parts = [`{"event_name":${JSON.stringify(event)}`, `"time":${timeMs}`];
  for (let i = 0; i < ID_OUT.length; i++) parts.push(`${ID_OUT[i]}${JSON.stringify(idValues[i] ?? null)}`);
  parts.push(`"properties":${JSON.stringify(props)}}`);
  const insertId = idValues[INSERT] ?? null;
  return {
    ok: true,
    timeMs,
    eventName: event,
    dedupKey: insertId === null ? undefined : dedupKeyOf(insertId, idValues[0] ?? null, event, timeMs),
    record: Buffer.from(parts.join(','), 'utf8'),
  };
}

/** The vendor's dedup key of an event: same $insert_id, distinct_id, event name, and time to the second. */
export function dedupKeyOf(
  insertId: string,
  distinctId: string | null,
  eventName: string,
  timeMs: number,
): string {
  return hash(
    'md5',
    JSON.stringify([insertId, distinctId, eventName, Math.floor(timeMs / 1000)]),
    'base64url',
  );
}

/**
 * Event time in integer epoch ms from `properties.time` (seconds below 1e11, else ms), or why it is not
 * valid. Seconds are rounded to the microsecond first so float noise (1700000000.999) does not lose a ms.
 */
export function timeMsOf(value: number): number | 'not_finite' | 'negative' | 'too_late' {
  if (!Number.isFinite(value)) return 'not_finite';
  if (value < 0) return 'negative';
  // `+ 0` turns -0 into 0.
  const ms = (value >= MS_THRESHOLD ? Math.floor(value) : Math.floor(Math.round(value * 1e6) / 1e3)) + 0;
  return ms > MAX_TIME_MS ? 'too_late' : ms;
}

// ---- slow path ---------------------------------------------------------------------------------

/** Verdict for a line the scanner rejected: invalid UTF-8, or `JSON.parse`'s own error. */
function rejected(line: Buffer): ValidEvent | InvalidLine {
  const parsed = parseJsonValue(line);
  if (!parsed.ok) return parsed;
  try {
    return eventFromParsed(parsed.value);
  } catch (err) {
    // Only reachable with nesting too deep for JSON.stringify's recursion.
    return invalid(
      'invalid_json',
      `cannot re-serialize the line: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}

// ---- scanner pieces ------------------------------------------------------------------------------

function skipWs(buf: Buffer, p: number, end: number): number {
  for (; p < end; p++) {
    const c = buf[p]!;
    // One comparison settles the common case (any token byte is above the space).
    if (c > SPACE || (c !== SPACE && c !== LF && c !== CR && c !== TAB)) break;
  }
  return p;
}

/** Scans the string token starting at the quote at `p`; returns the index after its closing quote, or -1. */
function scanString(buf: Buffer, p: number, end: number): number {
  let escaped = false;
  let high = false;
  p++;
  for (;;) {
    // Tight loop over plain printable ASCII, the bulk of any line.
    while (p < end && STRING_PLAIN[buf[p]!] === 1) p++;
    if (p >= end) return -1;
    const c = buf[p]!;
    if (c === QUOTE) break;
    if (c === BACKSLASH) {
      if (p + 1 >= end) return -1;
      const e = buf[p + 1]!;
      if (SIMPLE_ESCAPE[e] === 1) p += 2;
      else if (
        e === LOWER_U &&
        p + 5 < end &&
        HEX[buf[p + 2]!] === 1 &&
        HEX[buf[p + 3]!] === 1 &&
        HEX[buf[p + 4]!] === 1 &&
        HEX[buf[p + 5]!] === 1
      ) {
        p += 6;
      } else return -1;
      escaped = true;
      continue;
    }
    if (c < SPACE) return -1;
    high = true;
    p++;
  }
  strEscaped = escaped;
  strHigh = high;
  return p + 1;
}

/** Scans `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` at `p`; returns the index after it, or -1. */
function scanNumber(buf: Buffer, p: number, end: number): number {
  numFractional = false;
  if (buf[p] === MINUS) p++;
  if (p >= end) return -1;
  const c = buf[p]!;
  if (c === ZERO) p++;
  else if (c >= ONE && c <= NINE) p = skipDigits(buf, p + 1, end);
  else return -1;
  if (p < end && buf[p] === DOT) {
    const q = skipDigits(buf, p + 1, end);
    if (q === p + 1) return -1;
    p = q;
    numFractional = true;
  }
  if (p < end && (buf[p]! | 0x20) === LOWER_E) {
    numFractional = true;
    p++;
    if (p < end && (buf[p] === PLUS || buf[p] === MINUS)) p++;
    const q = skipDigits(buf, p, end);
    if (q === p) return -1;
    p = q;
  }
  return p;
}

function skipDigits(buf: Buffer, p: number, end: number): number {
  while (p < end && buf[p]! >= ZERO && buf[p]! <= NINE) p++;
  return p;
}

const B_TRUE = latin1('true');
const B_FALSE = latin1('false');
const B_NULL_LIT = latin1('null');

/** Scans `true`, `false` or `null` at `p`; returns the index after it, or -1. */
function scanLiteral(buf: Buffer, p: number, end: number, c: number): number {
  const lit = c === 0x74 ? B_TRUE : c === 0x66 ? B_FALSE : c === 0x6e ? B_NULL_LIT : undefined;
  if (lit === undefined || p + lit.length > end || !bytesAt(buf, p, lit)) return -1;
  return p + lit.length;
}

function bytesAt(buf: Buffer, p: number, lit: Uint8Array): boolean {
  for (let i = 0; i < lit.length; i++) if (buf[p + i] !== lit[i]) return false;
  return true;
}

/** Field of a top-level key token `[s, e)` (quotes included). */
function topKey(buf: Buffer, s: number, e: number, escaped: boolean): number {
  if (escaped) {
    const name = decodeString(buf, s, e, true);
    return name === 'event' ? K_EVENT : name === 'properties' ? K_PROPS : 0;
  }
  const n = e - s - 2;
  if (n === 5 && bytesAt(buf, s + 1, B_EVENT)) return K_EVENT;
  if (n === 10 && bytesAt(buf, s + 1, B_PROPERTIES)) return K_PROPS;
  return 0;
}

/** Field of a key token `[s, e)` directly inside `properties`. */
function propKey(buf: Buffer, s: number, e: number, escaped: boolean): number {
  if (escaped) {
    const name = decodeString(buf, s, e, true);
    if (name === 'time') return K_TIME;
    const i = (ID_NAMES as readonly string[]).indexOf(name);
    return i < 0 ? 0 : K_ID + i;
  }
  const n = e - s - 2;
  if (n === 4) return bytesAt(buf, s + 1, B_TIME) ? K_TIME : 0;
  for (let i = 0; i < B_IDS.length; i++) {
    const b = B_IDS[i]!;
    if (n === b.length && bytesAt(buf, s + 1, b)) return K_ID + i;
  }
  return 0;
}

/** Decodes the string token `[s, e)` (quotes included); `JSON.parse` only when it has escapes. */
function decodeString(buf: Buffer, s: number, e: number, escaped: boolean): string {
  if (!escaped) return buf.toString('utf8', s + 1, e - 1);
  const decoded: string = JSON.parse(buf.toString('utf8', s, e));
  return decoded;
}

function resetIds(): void {
  // Only the kinds matter: positions are read for non-null kinds only.
  ids[0] = ID_NULL;
  ids[1] = ID_NULL;
  ids[2] = ID_NULL;
  ids[3] = ID_NULL;
}

/** Decoded value of identity `i` (not null): the string, or a number's token text. */
function decodeId(buf: Buffer, i: number): string {
  const s = ids[4 + i]!;
  const e = ids[8 + i]!;
  return ids[i] === ID_NUM ? buf.toString('latin1', s, e) : decodeString(buf, s, e, ids[i] === ID_STR_ESC);
}

/** Value of the number token `[s, e)`; plain integers of up to 15 digits are exact without a string. */
function numberValue(buf: Buffer, s: number, e: number): number {
  if (e - s <= 15) {
    let v = 0;
    let i = s;
    for (; i < e; i++) {
      const c = buf[i]!;
      if (c < ZERO || c > NINE) break;
      v = v * 10 + (c - ZERO);
    }
    if (i === e) return v;
  }
  return Number(buf.toString('latin1', s, e));
}

// ---- record ------------------------------------------------------------------------------------

/**
 * The valid event of the line scanned last: its record is written from the line's bytes and the
 * scanner's identity positions (`ids`), which the next scan overwrites.
 */
class ScannedEvent implements StagedEvent {
  readonly ok = true;
  timeMs = 0;
  dedupKey: string | undefined;
  recordBytes = 0;
  private line: Buffer = Buffer.alloc(0);
  private evS = 0;
  private evE = 0;
  private evEscaped = false;
  private prS = 0;
  private prE = 0;

  describe(
    line: Buffer,
    timeMs: number,
    dedupKey: string | undefined,
    evS: number,
    evE: number,
    evEscaped: boolean,
    prS: number,
    prE: number,
  ): this {
    this.line = line;
    this.timeMs = timeMs;
    this.dedupKey = dedupKey;
    this.evS = evS;
    this.evE = evE;
    this.evEscaped = evEscaped;
    this.prS = prS;
    this.prE = prE;
    let bytes = FIXED_LEN + (evE - evS) + digitCount(timeMs) + (prE - prS);
    for (let i = 0; i < 4; i++) bytes += idLength(i);
    this.recordBytes = bytes;
    return this;
  }

  /** Decoded when asked: only filters read it, and most pipelines have none. */
  get eventName(): string {
    return decodeString(this.line, this.evS, this.evE, this.evEscaped);
  }

  /** The record on its own (a copy: it stays valid after the next scan). */
  get record(): Buffer {
    const out = Buffer.allocUnsafe(this.recordBytes);
    this.writeRecord(out, 0);
    return out;
  }

  writeRecord(out: Uint8Array, o: number): number {
    const line = this.line;
    o = put(out, o, B_OPEN, 0, B_OPEN.length);
    o = put(out, o, line, this.evS, this.evE);
    o = put(out, o, B_TIME_KEY, 0, B_TIME_KEY.length);
    o = putDigits(out, o, this.timeMs);
    for (let i = 0; i < 4; i++) {
      const keyBytes = B_ID_KEYS[i]!;
      o = put(out, o, keyBytes, 0, keyBytes.length);
      o = putId(out, o, line, i);
    }
    o = put(out, o, B_PROPS_KEY, 0, B_PROPS_KEY.length);
    o = put(out, o, line, this.prS, this.prE);
    out[o++] = RBRACE;
    return o;
  }
}

const cursor = new ScannedEvent();

/** An event whose record is built (the fallback's, by `JSON.stringify`) as a `StagedEvent`. */
export function stagedEventOf(event: ValidEvent): StagedEvent {
  const { record } = event;
  return {
    ...event,
    recordBytes: record.length,
    writeRecord: (out, o) => o + record.copy(out, o),
  };
}

/**
 * `dedupKeyOf` without decoding: for string tokens without escapes the raw bytes are exactly what
 * `JSON.stringify` writes for the decoded value (valid UTF-8, no quote, backslash or control char),
 * so the hash input can be assembled from the line's bytes.
 */
function rawDedupKey(line: Buffer, evS: number, evE: number, timeMs: number): string {
  // `[`, 3 separators, `]`, 4 quotes around number ids, `null`, 16 digits of the second.
  const max = ids[8 + INSERT]! - ids[4 + INSERT]! + (ids[8]! - ids[4]!) + (evE - evS) + 30;
  if (hashScratch.length < max) {
    hashScratch = Buffer.allocUnsafeSlow(Math.max(max, hashScratch.length * 2));
    hashViews = [];
  }
  const h = hashScratch;
  h[0] = LBRACK;
  let o = putId(h, 1, line, INSERT);
  h[o++] = COMMA;
  o = putId(h, o, line, 0);
  h[o++] = COMMA;
  o = put(h, o, line, evS, evE);
  h[o++] = COMMA;
  o = putDigits(h, o, Math.floor(timeMs / 1000));
  h[o++] = RBRACK;
  let view = hashViews[o];
  if (view === undefined) {
    view = new Uint8Array(h.buffer, h.byteOffset, o);
    hashViews[o] = view;
  }
  return hash('md5', view, 'base64url');
}

/** Writes identity `i` as the record shows it: the string token, a number token in quotes, or `null`. */
function putId(out: Uint8Array, o: number, line: Buffer, i: number): number {
  const kind = ids[i];
  if (kind === ID_NULL) return put(out, o, B_NULL, 0, 4);
  const s = ids[4 + i]!;
  const e = ids[8 + i]!;
  if (kind !== ID_NUM) return put(out, o, line, s, e);
  out[o++] = QUOTE;
  o = put(out, o, line, s, e);
  out[o++] = QUOTE;
  return o;
}

/** Writes a non-negative integer below 2^53 in decimal; returns the offset after it. */
export function putDigits(out: Uint8Array, o: number, n: number): number {
  // Halves below 2^31 keep the digit loop in int32 (`%` on doubles is a slow fmod call).
  const hi = Math.floor(n / 1e8);
  const lo = (n - hi * 1e8) | 0;
  if (hi === 0) return putInt(out, o, lo, 1);
  o = putInt(out, o, hi | 0, 1);
  return putInt(out, o, lo, 8);
}

/** Writes an integer in [0, 2^31) with at least `minDigits` digits (zero-padded). */
function putInt(out: Uint8Array, o: number, n: number, minDigits: number): number {
  let digits = 1;
  for (let x = 10; x <= n; x *= 10) digits++;
  if (digits < minDigits) digits = minDigits;
  for (let k = o + digits - 1; k >= o; k--) {
    const q = (n / 10) | 0;
    out[k] = ZERO + n - q * 10;
    n = q;
  }
  return o + digits;
}

function idLength(i: number): number {
  const kind = ids[i];
  if (kind === ID_NULL) return 4;
  const len = ids[8 + i]! - ids[4 + i]!;
  return kind === ID_NUM ? len + 2 : len;
}

/** Decimal digits of a non-negative integer below 2^53 (as `putDigits` writes it). */
export function digitCount(n: number): number {
  let d = 1;
  for (let x = 10; x <= n && d < 17; x *= 10) d++;
  return d;
}

/** Copies `src[s, e)` to `dst` at `o` and returns the new offset; a loop beats a native call for short runs. */
function put(dst: Uint8Array, o: number, src: Uint8Array, s: number, e: number): number {
  if (e - s > 48) {
    // A plain view: `subarray` on a Buffer goes through the slower species constructor.
    dst.set(new Uint8Array(src.buffer, src.byteOffset + s, e - s), o);
    return o + e - s;
  }
  for (let i = s; i < e; i++) dst[o++] = src[i]!;
  return o;
}

// ---- details -----------------------------------------------------------------------------------

function invalid(reason: QuarantineReason, detail: string): InvalidLine {
  return { ok: false, reason, detail };
}

function describeValue(first: number): string {
  if (first === LBRACK) return 'an array';
  if (first === QUOTE) return 'a string';
  if (first === 0x74 || first === 0x66) return 'a boolean';
  if (first === 0x6e) return 'null';
  return 'a number';
}

function eventProblem(kind: number): string {
  return kind === 0
    ? '"event" is missing'
    : kind === 1
      ? '"event" is an empty string'
      : '"event" is not a string';
}

function propertiesProblem(kind: number): string {
  return kind === 0 ? '"properties" is missing' : '"properties" is not an object';
}

function timeDetail(problem: 'not_finite' | 'negative' | 'too_late', token: string): string {
  if (problem === 'not_finite') return `properties.time ${token} is not a finite number`;
  if (problem === 'negative') return `properties.time ${token} is negative`;
  return `properties.time ${token} is after ${MAX_TIME_MS} ms`;
}
