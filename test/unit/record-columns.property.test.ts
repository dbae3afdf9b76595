/**
 * The record splitter against JSON.parse: records built by the real `parseEventLine` (and by the
 * snapshot steps' line format) from generated inputs with escapes, unicode, big integers and nested
 * properties must split into the values JSON.parse reads, with `properties` as the exact input bytes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { eventFromParsed, parseEventLine } from '../../src/core/event-line.js';
import {
  EVENT_RECORD,
  IDENTITY_RECORD,
  PROFILE_RECORD,
  RecordFormatError,
  type RecordShape,
  RecordSplitter,
} from '../../src/core/record-columns.js';

// ---- generators --------------------------------------------------------------------------------

/** One character and how to spell it in JSON: raw, `\uXXXX`, or the short escape JSON.stringify uses. */
const charArb = fc.oneof(
  { weight: 5, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 3, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom('"', '\\', '/', '\n', '\t', '\u0000', '\u2028', 'é', '東', '😀', '\ud800'),
  },
);

function spell(ch: string, style: number): string {
  if (style === 1)
    return [...Array(ch.length).keys()]
      .map((i) => `\\u${ch.charCodeAt(i).toString(16).padStart(4, '0')}`)
      .join('');
  if (style === 2 && ch === '/') return '\\/';
  return JSON.stringify(ch).slice(1, -1);
}

interface Str {
  readonly value: string;
  readonly token: string;
}

const stringArb = (maxLength: number, minLength = 0): fc.Arbitrary<Str> =>
  fc.array(fc.tuple(charArb, fc.nat(2)), { minLength, maxLength }).map((chars) => ({
    value: chars.map(([ch]) => ch).join(''),
    token: `"${chars.map(([ch, style]) => spell(ch, style)).join('')}"`,
  }));

const numberTokenArb = fc.oneof(
  fc.integer().map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => JSON.stringify(n)),
  fc.constantFrom('-0', '1.50', '1E+3', '9007199254740993', '123456789012345678901234567890', '-12.5e-3'),
);

const ws = fc.constantFrom('', '', ' ', '\n\t ');

/** Any JSON value as text, nested up to a few levels. */
const { value: valueArb } = fc.letrec<{ value: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    stringArb(6).map((s) => s.token),
    numberTokenArb,
    fc.constantFrom('true', 'false', 'null'),
    fc.array(tie('value'), { maxLength: 3 }).map((items) => `[${items.join(',')}]`),
    fc
      .array(fc.tuple(stringArb(4), tie('value')), { maxLength: 3 })
      .map((entries) => `{${entries.map(([k, v]) => `${k.token}:${v}`).join(',')}}`),
  ),
}));

/** An identity property: a string, a number, something else, or absent. */
const idArb = fc.oneof(
  { weight: 4, arbitrary: stringArb(12).map((s) => s.token) },
  { weight: 2, arbitrary: numberTokenArb },
  { weight: 1, arbitrary: fc.constantFrom('null', 'true', '{}', '[1]') },
  { weight: 2, arbitrary: fc.constant(undefined) },
);

const timeTokenArb = fc.oneof(
  fc.integer({ min: 0, max: 2_000_000_000 }).map(String),
  fc.bigInt({ min: 10n ** 11n, max: 8_640_000_000_000_000n }).map(String),
  fc
    .tuple(fc.integer({ min: 0, max: 2_000_000_000 }), fc.integer({ min: 0, max: 999 }))
    .map(([s, f]) => `${s}.${f}`),
);

/** A valid input line and the exact text of its properties object. */
const eventLineArb = fc
  .record({
    event: stringArb(12, 1),
    time: timeTokenArb,
    ids: fc.tuple(idArb, idArb, idArb, idArb),
    extra: fc.array(fc.tuple(stringArb(6), valueArb), { maxLength: 5 }),
    space: ws,
  })
  .map(({ event, time, ids, extra, space }) => {
    const names = ['"distinct_id"', '"$device_id"', '"$user_id"', '"$insert_id"'];
    const entries = [`"time":${space}${time}`];
    ids.forEach((id, i) => {
      if (id !== undefined) entries.push(`${names[i]}:${id}`);
    });
    for (const [key, value] of extra) entries.push(`${key.token}:${space}${value}`);
    const properties = `{${space}${entries.join(`,${space}`)}${space}}`;
    return { line: `{"event":${space}${event.token},${space}"properties":${properties}}`, properties };
  });

// ---- checks ------------------------------------------------------------------------------------

/** Splits `record` and asserts every field equals what JSON.parse reads from it. */
function assertSplitsLikeJsonParse(splitter: RecordSplitter, shape: RecordShape, record: Buffer): void {
  splitter.split(record);
  const parsed = JSON.parse(record.toString('utf8')) as Record<string, unknown>;
  assert.deepEqual(
    Object.keys(parsed),
    shape.fields.map((f) => f.name),
  );
  shape.fields.forEach((field, i) => {
    const expected = parsed[field.name];
    if (field.kind === 'time') {
      assert.equal(splitter.timeMs, expected, field.name);
      assert.ok(Number.isSafeInteger(splitter.timeMs));
    } else if (field.kind === 'object') {
      const text = Buffer.from(splitter.bytes(i)).toString('utf8');
      assert.deepEqual(JSON.parse(text), expected, field.name);
    } else {
      assert.equal(splitter.string(i), expected, field.name);
      const bytes = splitter.utf8(i);
      if (expected === null) assert.equal(bytes, null, field.name);
      else
        assert.deepEqual(
          Buffer.from(bytes as Uint8Array),
          Buffer.from(expected as string, 'utf8'),
          field.name,
        );
    }
  });
}

describe('RecordSplitter', () => {
  it('splits event records of parseEventLine like JSON.parse, properties byte for byte', () => {
    const splitter = new RecordSplitter(EVENT_RECORD);
    fc.assert(
      fc.property(eventLineArb, ({ line, properties }) => {
        const event = parseEventLine(Buffer.from(line, 'utf8'));
        fc.pre(event.ok);
        if (!event.ok) return;
        assertSplitsLikeJsonParse(splitter, EVENT_RECORD, event.record);
        assert.equal(splitter.timeMs, event.timeMs);
        assert.equal(splitter.string(0), event.eventName);
        assert.equal(Buffer.from(splitter.bytes(6)).toString('utf8'), properties);
      }),
      { numRuns: 3000 },
    );
  });

  it('splits the records of the re-serializing fallback (JSON.stringify) too', () => {
    const splitter = new RecordSplitter(EVENT_RECORD);
    fc.assert(
      fc.property(eventLineArb, ({ line }) => {
        const event = eventFromParsed(JSON.parse(line));
        fc.pre(event.ok);
        if (event.ok) assertSplitsLikeJsonParse(splitter, EVENT_RECORD, event.record);
      }),
      { numRuns: 500 },
    );
  });

  it('keeps integers beyond 2^53 and number ids exactly as written', () => {
    const splitter = new RecordSplitter(EVENT_RECORD);
    const line =
      '{"event":"Buy","properties":{"time":1700000000.5,"distinct_id":12345678901234567890,' +
      '"$insert_id":1e3,"big":123456789012345678901234567890,"f":1.50}}';
    const event = parseEventLine(Buffer.from(line));
    assert.ok(event.ok);
    splitter.split(event.record);
    assert.equal(splitter.timeMs, 1_700_000_000_500);
    assert.equal(splitter.string(2), '12345678901234567890');
    assert.equal(splitter.string(3), null);
    assert.equal(splitter.string(5), '1e3');
    assert.equal(
      Buffer.from(splitter.bytes(6)).toString(),
      line.slice(line.indexOf('"properties":') + 13, -1),
    );
  });

  it('splits profile and identity snapshot lines like JSON.parse', () => {
    const profiles = new RecordSplitter(PROFILE_RECORD);
    const identities = new RecordSplitter(IDENTITY_RECORD);
    const object = fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 }));
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary' }),
        fc.string({ unit: 'binary' }),
        object,
        (id, other, props) => {
          // The snapshot steps write `{"distinct_id":<JSON.stringify(id)>,...}` (snapshot-task.ts, addLine).
          const key = JSON.stringify(id);
          const profile = Buffer.from(`{"distinct_id":${key},"properties":${JSON.stringify(props)}}`, 'utf8');
          assertSplitsLikeJsonParse(profiles, PROFILE_RECORD, profile);
          const identity = Buffer.from(
            `{"distinct_id":${key},"resolved_distinct_id":${JSON.stringify(other)}}`,
            'utf8',
          );
          assertSplitsLikeJsonParse(identities, IDENTITY_RECORD, identity);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('rejects a record without the shape, naming the field and the byte', () => {
    const splitter = new RecordSplitter(EVENT_RECORD);
    const good =
      '{"event_name":"a","time":1,"distinct_id":null,"device_id":"d","user_id":null,"insert_id":"i","properties":{}}';
    splitter.split(Buffer.from(good));
    const cases: [string, RegExp][] = [
      [good.replace('"time":1', '"time":-1'), /"time" with an integer of epoch milliseconds.* at byte 25/],
      [good.replace('"time":1', '"time":8640000000000001'), /"time" with an integer/],
      [good.replace('"device_id"', '"device"'), /"device_id" with its key at byte 45/],
      [good.replace('"user_id":null', '"user_id":nul'), /"user_id" with a string or null/],
      [good.replace('"event_name":"a"', '"event_name":null'), /"event_name" with a string at/],
      [good.replace('"properties":{}', '"properties":[]'), /"properties" with a JSON object/],
      [good.slice(0, -1), /"properties" with a JSON object/],
      [good.slice(0, 20), /"event_name" with a terminated string|"time"/],
      [`${good} `, /"properties" with a JSON object/],
    ];
    for (const [record, message] of cases) {
      assert.throws(
        () => splitter.split(Buffer.from(record)),
        (error: unknown) => error instanceof RecordFormatError && message.test(error.message),
        record,
      );
    }
    const identity = new RecordSplitter(IDENTITY_RECORD);
    assert.throws(
      () => identity.split(Buffer.from('{"distinct_id":"a","resolved_distinct_id":"b"} ')),
      /malformed identity record: expected the closing brace at byte 45/,
    );
  });

  it('refuses a shape whose object field is not last', () => {
    assert.throws(
      () =>
        new RecordSplitter({
          description: 'test record',
          fields: [
            { name: 'p', kind: 'object' },
            { name: 'q', kind: 'string' },
          ],
        }),
      /object field p must be the last field/,
    );
  });
});
