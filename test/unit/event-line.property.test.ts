/**
 * The byte scanner against an independent reference built on JSON.parse: generated valid events,
 * fuzzed variants of them, and arbitrary text must all get the same verdict and the same record.
 */
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { hash } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  parseEventLine,
  type QuarantineReason,
  readEventLine,
  scanEventLine,
} from '../../src/core/event-line.js';

// ---- reference model ---------------------------------------------------------------------------

type RefId =
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'number'; readonly value: number }
  | null;

type RefResult =
  | { readonly ok: false; readonly reason: QuarantineReason; readonly message?: string }
  | {
      readonly ok: true;
      readonly timeMs: number;
      readonly eventName: string;
      readonly properties: unknown;
      readonly ids: readonly RefId[];
    };

const ID_FIELDS = ['distinct_id', '$device_id', '$user_id', '$insert_id'] as const;
const RECORD_ID_KEYS = ['distinct_id', 'device_id', 'user_id', 'insert_id'] as const;
const RECORD_KEYS = ['event_name', 'time', ...RECORD_ID_KEYS, 'properties'];
const NUMBER_TOKEN = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function own(obj: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

/** The rules, applied to JSON.parse's view of the line. */
function reference(line: Buffer): RefResult {
  const body = line.at(-1) === 0x0d ? line.subarray(0, -1) : line;
  if (body.every((b) => b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d))
    return { ok: false, reason: 'empty_line' };
  if (!isUtf8(line)) return { ok: false, reason: 'invalid_utf8' };
  let value: unknown;
  try {
    value = JSON.parse(line.toString('utf8'));
  } catch (err) {
    return { ok: false, reason: 'invalid_json', message: (err as Error).message };
  }
  if (!isObject(value)) return { ok: false, reason: 'not_an_object' };
  const event = own(value, 'event');
  if (typeof event !== 'string' || event.length === 0) return { ok: false, reason: 'missing_event' };
  const properties = own(value, 'properties');
  if (!isObject(properties)) return { ok: false, reason: 'invalid_time' };
  const time = own(properties, 'time');
  if (typeof time !== 'number' || !Number.isFinite(time) || time < 0)
    return { ok: false, reason: 'invalid_time' };
  const ms = time >= 1e11 ? Math.floor(time) : Math.floor(Math.round(time * 1e6) / 1e3);
  if (ms > 8.64e15) return { ok: false, reason: 'time_out_of_range' };
  const ids = ID_FIELDS.map((field): RefId => {
    const v = own(properties, field);
    if (typeof v === 'string') return { kind: 'string', value: v };
    if (typeof v === 'number') return { kind: 'number', value: v };
    return null;
  });
  return { ok: true, timeMs: ms === 0 ? 0 : ms, eventName: event, properties, ids };
}

function jsonParseThrows(line: Buffer): boolean {
  try {
    JSON.parse(line.toString('utf8'));
    return false;
  } catch {
    return true;
  }
}

/** Asserts that the scanner and the reference agree on `line`; returns the verdict for statistics. */
function assertAgrees(line: Buffer): string {
  const got = parseEventLine(line);
  const ref = reference(line);
  const shown = () => JSON.stringify(line.toString('latin1'));

  // The scanner alone (no JSON.parse fallback) must already agree with JSON.parse on the grammar.
  if (ref.ok || ref.reason !== 'empty_line') {
    assert.equal(scanEventLine(line) === undefined, jsonParseThrows(line), `grammar verdict for ${shown()}`);
  }
  if (!ref.ok) {
    assert.equal(got.ok, false, `expected ${ref.reason} for ${shown()}`);
    if (got.ok) return 'bug';
    assert.equal(got.reason, ref.reason, `reason for ${shown()}`);
    if (ref.message !== undefined) assert.equal(got.detail, ref.message);
    return ref.reason;
  }
  assert.ok(got.ok, `expected a valid event for ${shown()}, got ${got.ok ? '' : got.reason}`);

  assert.equal(got.timeMs, ref.timeMs);
  assert.equal(got.eventName, ref.eventName);
  const text = got.record.toString('utf8');
  const rec: Record<string, unknown> = JSON.parse(text);
  assert.deepEqual(Object.keys(rec), RECORD_KEYS);
  assert.equal(rec.event_name, ref.eventName);
  assert.equal(rec.time, ref.timeMs);
  const idTexts = RECORD_ID_KEYS.map((key, i) => {
    const expected = ref.ids[i];
    const actual = rec[key];
    if (expected === null || expected === undefined) {
      assert.equal(actual, null, key);
      return null;
    }
    assert.equal(typeof actual, 'string', key);
    const s = actual as string;
    if (expected.kind === 'string') assert.equal(s, expected.value, key);
    else {
      // JSON.parse does not keep the token text; it must be a number token with the same value.
      assert.match(s, NUMBER_TOKEN, key);
      assert.ok(Object.is(Number(s), expected.value), `${key}: ${s} vs ${expected.value}`);
    }
    return s;
  });
  assert.deepEqual(rec.properties, ref.properties);
  // The properties are a byte slice of the input (the first `,"properties":` is the real key:
  // inside string tokens every quote is escaped).
  const propsBytes = got.record.subarray(got.record.indexOf(',"properties":') + ',"properties":'.length, -1);
  assert.ok(line.includes(propsBytes), 'properties must be copied from the input');
  const insertId = idTexts[3] ?? null;
  const expectedKey =
    insertId === null
      ? undefined
      : hash(
          'md5',
          JSON.stringify([insertId, idTexts[0] ?? null, ref.eventName, Math.floor(ref.timeMs / 1000)]),
          'base64url',
        );
  assert.equal(got.dedupKey, expectedKey);
  return 'valid';
}

// ---- generators --------------------------------------------------------------------------------

/** One character of a string value and how to spell it in JSON. */
const charArb = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 3, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '"',
      '\\',
      '/',
      '\b',
      '\f',
      '\n',
      '\r',
      '\t',
      '\u0000',
      '\u001f',
      '\u007f',
      '\u2028',
      '\ud800',
      '\udfff',
      'é',
      '😀',
    ),
  },
);

function spell(ch: string, style: number): string {
  const units = () => [...Array(ch.length).keys()].map((i) => ch.charCodeAt(i).toString(16).padStart(4, '0'));
  if (style === 1)
    return units()
      .map((u) => `\\u${u}`)
      .join('');
  if (style === 2)
    return units()
      .map((u) => `\\u${u.toUpperCase()}`)
      .join('');
  if (style === 3 && ch === '/') return '\\/';
  // JSON.stringify escapes what must be escaped (and lone surrogates); everything else stays raw.
  return JSON.stringify(ch).slice(1, -1);
}

interface Str {
  readonly value: string;
  readonly token: string;
}

const stringArb = (maxLength: number, minLength = 0): fc.Arbitrary<Str> =>
  fc.array(fc.tuple(charArb, fc.nat(3)), { minLength, maxLength }).map((chars) => ({
    value: chars.map(([ch]) => ch).join(''),
    token: `"${chars.map(([ch, style]) => spell(ch, style)).join('')}"`,
  }));

const numberTokenArb = fc.oneof(
  fc.integer().map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => JSON.stringify(n)),
  fc.constantFrom(
    '-0',
    '0',
    '1.50',
    '1e3',
    '1E+3',
    '0.0',
    '9007199254740993',
    '-12.5e-3',
    '123456789012345678901234567890',
  ),
);

const timeTokenArb = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 2_000_000_000 }).map(String) },
  { weight: 2, arbitrary: fc.bigInt({ min: 10n ** 11n, max: 8_640_000_000_000_000n }).map(String) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.integer({ min: 0, max: 2_000_000_000 }), fc.integer({ min: 0, max: 999_999 }))
      .map(([s, f]) => `${s}.${String(f).padStart(6, '0')}`),
  },
  { weight: 1, arbitrary: fc.double({ min: 0, max: 1e16, noNaN: true }).map((n) => JSON.stringify(n)) },
  { weight: 1, arbitrary: fc.bigInt({ min: 8_640_000_000_000_001n, max: 10n ** 20n }).map(String) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '99999999999',
      '100000000000',
      '99999999999.5',
      '1e11',
      '-0',
      '0',
      '8640000000000000',
      '8640000000000001',
      '8.64e15',
      '1e400',
      '-1',
      '1.7E9',
      '0.0001e5',
      '"1700000000"',
      'null',
      '[]',
    ),
  },
);

type IdSpec = { readonly token: string; readonly out: string } | undefined;

/** An identity value: string, number, something else, or missing; `out` is how the record shows it. */
const idArb: fc.Arbitrary<IdSpec> = fc.oneof(
  { weight: 4, arbitrary: stringArb(10).map((s) => ({ token: s.token, out: s.token })) },
  { weight: 2, arbitrary: numberTokenArb.map((n) => ({ token: n, out: `"${n}"` })) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom('null', 'true', 'false', '{}', '[1]', '{"a":"b"}')
      .map((t) => ({ token: t, out: 'null' })),
  },
  { weight: 2, arbitrary: fc.constant(undefined) },
);

const STALE_PROPS = '{"time":1,"distinct_id":"old","$device_id":"old","$user_id":"old","$insert_id":"old"}';
const SPECIAL_PROPS = new Set<string>(['time', ...ID_FIELDS]);
const SPECIAL_TOP = new Set(['event', 'properties']);

/** Any JSON value's text, sometimes with whitespace inside. */
const valueTextArb = fc
  .tuple(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom(undefined, 1, '\t'))
  .map(([v, indent]) => JSON.stringify(v, null, indent));

const extraEntriesArb = (reserved: Set<string>, maxKeys: number) =>
  fc
    .array(fc.tuple(stringArb(8), valueTextArb), { maxLength: maxKeys })
    .map((entries) =>
      entries.filter(([key]) => !reserved.has(key.value)).map(([key, v]): [string, string] => [key.token, v]),
    );

const wsArb = fc.constantFrom('', '', '', ' ', '\t', '\n', ' \r\n ');

/** Orders `entries` by `ranks` and puts each duplicate somewhere before the entry it duplicates. */
function arrange(
  entries: ReadonlyArray<[string, string]>,
  dups: ReadonlyArray<[number, string, number]>,
  ranks: readonly number[],
): Array<[string, string]> {
  const ordered = entries
    .map((entry, i) => ({ entry, rank: ranks[i % Math.max(1, ranks.length)] ?? 0, i }))
    .sort((a, b) => a.rank - b.rank || a.i - b.i)
    .map((x) => x.entry);
  for (const [which, value, where] of dups) {
    const target = entries[which % Math.max(1, entries.length)];
    if (target === undefined) continue;
    const at = ordered.indexOf(target);
    ordered.splice(where % (at + 1), 0, [target[0], value]);
  }
  return ordered;
}

function objectText(entries: ReadonlyArray<[string, string]>, ws: string): string {
  return `{${ws}${entries.map(([k, v]) => `${k}${ws}:${ws}${v}`).join(`${ws},${ws}`)}${ws}}`;
}

interface GeneratedLine {
  readonly line: Buffer;
  /** The exact record when the line is valid (the reference decides whether it is). */
  readonly expectedRecordTail: string;
  readonly eventToken: string | undefined;
}

/** Event lines in the vendor format: mostly valid, with every rule's corner cases mixed in. */
const eventLineArb: fc.Arbitrary<GeneratedLine> = fc
  .record({
    event: fc.oneof(
      { weight: 20, arbitrary: stringArb(12, 1).map((s) => s.token) },
      { weight: 1, arbitrary: fc.constantFrom('""', '1', 'null', '["e"]') },
      { weight: 1, arbitrary: fc.constant(undefined) },
    ),
    time: fc.option(timeTokenArb, { freq: 10 }),
    ids: fc.tuple(idArb, idArb, idArb, idArb),
    propsExtra: extraEntriesArb(SPECIAL_PROPS, 12),
    topExtra: extraEntriesArb(SPECIAL_TOP, 3),
    propsKind: fc.oneof(
      { weight: 30, arbitrary: fc.constant('object') },
      { weight: 1, arbitrary: fc.constantFrom('missing', 'array', 'string') },
    ),
    propDups: fc.array(fc.tuple(fc.nat(), valueTextArb, fc.nat()), { maxLength: 2 }),
    // An earlier `properties` with every field set: none of it may leak into the later one.
    topDups: fc.array(fc.tuple(fc.nat(), fc.oneof(valueTextArb, fc.constant(STALE_PROPS)), fc.nat()), {
      maxLength: 1,
    }),
    ranks: fc.array(fc.integer({ min: 0, max: 100 }), { minLength: 1, maxLength: 30 }),
    ws: wsArb,
    edge: fc.tuple(wsArb, wsArb, fc.boolean()),
  })
  .map((g) => {
    const propEntries: Array<[string, string]> = [...g.propsExtra];
    if (g.time !== null) propEntries.push(['"time"', g.time]);
    g.ids.forEach((id, i) => {
      if (id !== undefined) propEntries.push([JSON.stringify(ID_FIELDS[i]), id.token]);
    });
    // Duplicates come before the entry they copy, so the generated value still wins.
    const propsText = objectText(arrange(propEntries, g.propDups, g.ranks), g.ws);
    const propsValue = g.propsKind === 'object' ? propsText : g.propsKind === 'array' ? '[]' : '"p"';

    const topEntries: Array<[string, string]> = [...g.topExtra];
    if (g.event !== undefined) topEntries.push(['"event"', g.event]);
    if (g.propsKind !== 'missing') topEntries.push(['"properties"', propsValue]);
    const text = objectText(arrange(topEntries, g.topDups, [...g.ranks].reverse()), g.ws);
    const [before, after, crlf] = g.edge;
    const idsOut = g.ids.map((id) => id?.out ?? 'null');
    return {
      line: Buffer.from(`${before}${text}${after}${crlf ? '\r' : ''}`, 'utf8'),
      eventToken: g.event,
      expectedRecordTail: `,"distinct_id":${idsOut[0]},"device_id":${idsOut[1]},"user_id":${idsOut[2]},"insert_id":${idsOut[3]},"properties":${propsValue}}`,
    };
  });

const MUTATION_BYTES = [...'"\\{}[],:0123456789e-.+Eu tfn\'', '\t', '\n', '\r']
  .map((c) => c.charCodeAt(0))
  .concat([0x00, 0x01, 0x0b, 0x0c, 0x1f, 0x7f, 0x80, 0xbf, 0xc3, 0xe2, 0xed, 0xf0, 0xff]);

const mutationsArb = fc.array(
  fc.tuple(fc.constantFrom('insert', 'delete', 'replace'), fc.nat(), fc.constantFrom(...MUTATION_BYTES)),
  { minLength: 1, maxLength: 4 },
);

function mutate(line: Buffer, mutations: ReadonlyArray<[string, number, number]>): Buffer {
  const bytes = [...line];
  for (const [op, at, byte] of mutations) {
    const i = at % (bytes.length + 1);
    if (op === 'insert') bytes.splice(i, 0, byte);
    else if (i < bytes.length) bytes.splice(i, 1, ...(op === 'replace' ? [byte] : []));
  }
  return Buffer.from(bytes);
}

/** Bytes around a line in ingest's chunk that would change any verdict if they were read: not UTF-8, a CR. */
const BEFORE_LINE = Buffer.from([...Buffer.from('{"event":"x","properties":{"time":1}}\n'), 0xff, 0x20]);
const AFTER_LINE = Buffer.from([0xff, 0x0d, 0x0a, 0x7d]);

/**
 * Ingest's reader gives parseEventLine's verdict and event, and writes the same record in place, whether
 * the line is a buffer of its own or a range of a larger chunk.
 */
function assertReadAgrees(line: Buffer): void {
  const parsed = parseEventLine(line);
  const chunk = Buffer.concat([BEFORE_LINE, line, AFTER_LINE]);
  for (const read of [
    () => readEventLine(line),
    () => readEventLine(chunk, undefined, BEFORE_LINE.length, BEFORE_LINE.length + line.length),
  ]) {
    assertSameEvent(read(), parsed);
  }
}

function assertSameEvent(
  read: ReturnType<typeof readEventLine>,
  parsed: ReturnType<typeof parseEventLine>,
): void {
  if (!parsed.ok || !read.ok) {
    assert.deepEqual(read, parsed);
    return;
  }
  assert.deepEqual(
    [read.timeMs, read.eventName, read.dedupKey],
    [parsed.timeMs, parsed.eventName, parsed.dedupKey],
  );
  const out = Buffer.alloc(read.recordBytes + 5, 0xff);
  assert.equal(read.writeRecord(out, 3), 3 + read.recordBytes);
  assert.deepEqual(out.subarray(3, 3 + read.recordBytes), parsed.record);
  assert.deepEqual([out[2], out[3 + read.recordBytes]], [0xff, 0xff], 'nothing written outside the record');
}

function tally(counts: Map<string, number>, verdict: string): void {
  counts.set(verdict, (counts.get(verdict) ?? 0) + 1);
}

// ---- properties --------------------------------------------------------------------------------

describe('parseEventLine against the JSON.parse reference', () => {
  it('agrees on generated event lines, and keeps tokens and properties byte for byte', () => {
    const counts = new Map<string, number>();
    fc.assert(
      fc.property(eventLineArb, ({ line, eventToken, expectedRecordTail }) => {
        // Act
        const verdict = assertAgrees(line);
        tally(counts, verdict);
        assertReadAgrees(line);
        // Assert: valid lines give exactly the expected record.
        const result = parseEventLine(line);
        if (result.ok) {
          assert.equal(
            result.record.toString('utf8'),
            `{"event_name":${eventToken},"time":${result.timeMs}${expectedRecordTail}`,
          );
        }
      }),
      { seed: 42, numRuns: 3000, includeErrorInReport: true },
    );
    // The generator must mostly produce valid events, and every reason must show up.
    if (process.env.EVENT_LINE_STATS) console.log('generated', JSON.stringify([...counts]));
    assert.ok((counts.get('valid') ?? 0) > 1500, JSON.stringify([...counts]));
    for (const reason of ['missing_event', 'invalid_time', 'time_out_of_range']) {
      assert.ok((counts.get(reason) ?? 0) > 10, `${reason}: ${JSON.stringify([...counts])}`);
    }
  });

  it('agrees on fuzzed event lines (random byte insertions, deletions, replacements)', () => {
    const counts = new Map<string, number>();
    fc.assert(
      fc.property(eventLineArb, mutationsArb, ({ line }, mutations) => {
        const mutated = mutate(line, mutations);
        tally(counts, assertAgrees(mutated));
        assertReadAgrees(mutated);
      }),
      { seed: 7, numRuns: 6000, includeErrorInReport: true },
    );
    if (process.env.EVENT_LINE_STATS) console.log('fuzzed', JSON.stringify([...counts]));
    assert.ok((counts.get('valid') ?? 0) > 300, JSON.stringify([...counts]));
    assert.ok((counts.get('invalid_json') ?? 0) > 1000, JSON.stringify([...counts]));
    assert.ok((counts.get('invalid_utf8') ?? 0) > 100, JSON.stringify([...counts]));
  });

  it('agrees on arbitrary unicode text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (text) => {
        assertAgrees(Buffer.from(text, 'utf8'));
      }),
      { seed: 1, numRuns: 3000, includeErrorInReport: true },
    );
  });

  it('agrees on text made of JSON punctuation', () => {
    const unit = fc.constantFrom(
      ...['{', '}', '[', ']', '"', '\\', ':', ',', '0', '1', '9', '-', '+', '.', 'e', 'E', 'u', 'a', 'F'],
      ...[
        'true',
        'false',
        'null',
        'nul',
        ' ',
        '\t',
        '\n',
        '\r',
        '\f',
        '\v',
        '\u0000',
        'é',
        '"event"',
        '"properties"',
        '"time"',
      ],
    );
    const counts = new Map<string, number>();
    fc.assert(
      fc.property(fc.string({ unit, maxLength: 30 }), (text) => {
        tally(counts, assertAgrees(Buffer.from(text, 'utf8')));
      }),
      { seed: 2, numRuns: 5000, includeErrorInReport: true },
    );
    assert.ok((counts.get('not_an_object') ?? 0) > 50, JSON.stringify([...counts]));
  });

  it('agrees on number-like and string-like tokens in every field position', () => {
    // Tokens from small alphabets hit the number and escape grammar far more often than random text.
    const digits = fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: 0, maxLength: 4 });
    const numberish = fc.oneof(
      fc.string({ unit: fc.constantFrom(...'0123456789.eE+-'), minLength: 1, maxLength: 8 }),
      // Number-shaped: sign, integer, fraction, exponent; empty or zero-led digit runs make some invalid.
      fc
        .tuple(
          fc.constantFrom('', '-', '+'),
          digits,
          fc.option(digits),
          fc.option(fc.tuple(fc.constantFrom('e', 'E'), fc.constantFrom('', '+', '-'), digits)),
        )
        .map(
          ([sign, int, frac, exp]) =>
            `${sign}${int}${frac === null ? '' : `.${frac}`}${exp === null ? '' : exp.join('')}`,
        ),
    );
    const stringish = fc.oneof(
      fc
        .string({ unit: fc.constantFrom(...'\\"u0aAfFgG/bnrtx\'', '\t', '\u0001', 'é', ' '), maxLength: 8 })
        .map((inner) => `"${inner}"`),
      stringArb(6).map((str) => str.token),
    );
    const token = fc.oneof(numberish, stringish);
    const counts = new Map<string, number>();
    fc.assert(
      // One position gets the odd token, the others stay valid, so its verdict decides the line's.
      fc.property(fc.nat(4), stringish, numberish, token, (position, str, num, any) => {
        const fields = ['"e"', '1700000000', '"d"', '"i"'];
        fields[position % 4] = position % 4 === 0 ? str : position % 4 === 1 ? num : any;
        const [event, time, distinct, insert] = fields;
        const line =
          position === 4
            ? any
            : `{"event":${event},"properties":{"time":${time},"distinct_id":${distinct},"$insert_id":${insert}}}`;
        tally(counts, assertAgrees(Buffer.from(line, 'utf8')));
      }),
      { seed: 5, numRuns: 6000, includeErrorInReport: true },
    );
    if (process.env.EVENT_LINE_STATS) console.log('tokens', JSON.stringify([...counts]));
    assert.ok((counts.get('valid') ?? 0) > 1500, JSON.stringify([...counts]));
  });

  it('agrees on any JSON value and on random bytes', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        assertAgrees(Buffer.from(JSON.stringify(value), 'utf8'));
      }),
      { seed: 3, numRuns: 1500, includeErrorInReport: true },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
        assertAgrees(Buffer.from(bytes));
      }),
      { seed: 4, numRuns: 3000, includeErrorInReport: true },
    );
  });
});
