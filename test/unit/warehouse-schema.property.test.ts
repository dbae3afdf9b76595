/**
 * Schema inference and typed columns: the byte scanner against a reference built on JSON.parse, the
 * algebra of merges, and the laws of the typed layout (valid unique names, determinism, nothing left
 * out, growth never renames).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseEventLine } from '../../src/core/event-line.js';
import {
  columnBaseName,
  JSON_TYPES,
  type JsonType,
  KIND_OF_TYPE,
  mergeStepSchema,
  OVERFLOW_COLUMN,
  PropertySchema,
  RESERVED_COLUMNS,
  type TypedColumn,
  typedLayout,
  typesHeldBy,
} from '../../src/core/warehouse/index.js';
import { PropertyKeys } from '../../src/core/warehouse/property-keys.js';
import { PropertyCounts } from '../../src/core/warehouse/property-schema.js';
import { eventLine, Random } from '../../src/local/generate.js';

/** The reference classification: from the parsed value, with integers bounded by BigInt. */
function referenceType(value: unknown): JsonType {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  switch (typeof value) {
    case 'string':
      return 'string';
    case 'boolean':
      return 'boolean';
    case 'number': {
      const token = JSON.stringify(value);
      if (!/^-?\d+$/.test(token)) return 'float';
      const n = BigInt(token);
      return n >= -(2n ** 63n) && n < 2n ** 63n ? 'integer' : 'float';
    }
    default:
      return 'object';
  }
}

/** An exported record line holding `properties`, as the export writes it. */
function exportedLine(properties: Record<string, unknown>): string {
  const ids = '"distinct_id":"d","device_id":null,"user_id":null,"insert_id":"i"';
  return `{"event_name":"e","time":1,${ids},"properties":${JSON.stringify(properties)}}`;
}

function referenceSchema(objects: readonly Record<string, unknown>[]) {
  // A Map, not an object: fast-check draws keys such as `__proto__`, which an object would take as its
  // prototype (and the counts would land on Object.prototype, failing every later test of the file).
  const properties = new Map<string, Map<JsonType, number>>();
  for (const object of objects)
    for (const [key, value] of Object.entries(object)) {
      const counts = properties.get(key) ?? new Map<JsonType, number>();
      const type = referenceType(value);
      counts.set(type, (counts.get(type) ?? 0) + 1);
      properties.set(key, counts);
    }
  const sorted = [...properties.keys()].sort();
  return {
    format: 'mp-pipelines/property-schema@1',
    records: objects.length,
    properties: Object.fromEntries(
      sorted.map((key) => {
        const counts = properties.get(key)!;
        return [
          key,
          Object.fromEntries(JSON_TYPES.filter((t) => counts.has(t)).map((t) => [t, counts.get(t)])),
        ];
      }),
    ),
  };
}

const keyArb = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'grapheme', maxLength: 6 }),
  fc.constantFrom('$os', 'time', 'Plan', 'plan', 'a"b', 'x\\y', 'line\nbreak', '$', '', 'distinct_id', '1st'),
  // Names an object would not keep as its own (fast-check draws them only now and then).
  fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty'),
);
const valueArb = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(2 ** 53 + 2, 1e21, -0, 1.5, 2 ** 63, -(2 ** 63), 2 ** 62, 1e300),
);
const propertiesArb = fc.dictionary(keyArb, valueArb, { maxKeys: 8 });

describe('PropertySchema', () => {
  it('scanning the JSON text, indented or not, counts what a JSON.parse reference counts', () => {
    fc.assert(
      fc.property(fc.array(propertiesArb, { maxLength: 6 }), (objects) => {
        const compact = new PropertySchema();
        const indented = new PropertySchema();
        const parsed = new PropertySchema();
        for (const object of objects) {
          compact.addProperties(JSON.stringify(object));
          indented.addProperties(Buffer.from(JSON.stringify(object, null, 2)));
          parsed.addProperties(object);
        }
        const expected = referenceSchema(
          objects.map((o) => JSON.parse(JSON.stringify(o)) as Record<string, unknown>),
        );
        assert.deepEqual(compact.toJSON(), expected);
        assert.deepEqual(indented.toJSON(), expected);
        assert.deepEqual(parsed.toJSON(), expected);
      }),
    );
  });

  it('reads exported records the engine writes, integers beyond 2^53 and escapes included', () => {
    const rng = new Random(3);
    const schema = new PropertySchema();
    const objects: Record<string, unknown>[] = [];
    for (let i = 0; i < 200; i += 1) {
      const line = eventLine(rng, 'Purchase', 1_700_000_000_000 + i, {
        distinctId: `u${i}`,
        deviceId: `d${i}`,
        userId: i % 2 === 0 ? undefined : `u${i}`,
        insertId: i % 5 === 0 ? undefined : rng.hex(8),
        accountId: `9${String(i).padStart(18, '0')}`,
      });
      const event = parseEventLine(Buffer.from(line));
      assert.ok(event.ok);
      schema.addRecord(event.record);
      objects.push((JSON.parse(line) as { properties: Record<string, unknown> }).properties);
    }
    // account_id is 9000000000000000xyz: an integer that fits 64 bits, though not a double.
    assert.deepEqual(schema.typeCounts('account_id'), { integer: 200 });
    assert.deepEqual(schema.typeCounts('$user_id'), { string: 100 });
    assert.equal(schema.records, 200);
    const expected = referenceSchema(objects);
    assert.deepEqual(schema.toJSON().properties.referrer, expected.properties.referrer);
    assert.deepEqual(Object.keys(schema.toJSON().properties), Object.keys(expected.properties));
  });

  it('a key read as the one that followed the previous key last time must be all of it', () => {
    // Each object makes the next one's keys mispredicted: a prefix, a longer key, an escaped quote.
    const objects = [
      '{"a":1,"ab":2}',
      '{"a":"x","a":3}',
      '{"a":1,"abc":true}',
      '{"a":1,"a\\"":null}',
      '{"a":1,"ab":2}',
    ];
    const schema = new PropertySchema();
    for (const text of objects) schema.addProperties(text);
    assert.deepEqual(schema.toJSON(), {
      format: 'mp-pipelines/property-schema@1',
      records: 5,
      properties: {
        a: { string: 1, integer: 5 },
        'a"': { null: 1 },
        ab: { integer: 2 },
        abc: { boolean: 1 },
      },
    });
  });

  it('tells integers from floats by the token: no fraction or exponent, within 64 bits', () => {
    const schema = new PropertySchema();
    schema.addProperties(
      '{"a":9223372036854775807,"b":9223372036854775808,"c":-9223372036854775808,"d":-9223372036854775809,"e":1.0,"f":1e2,"g":-0}',
    );
    const types = Object.fromEntries(schema.entries().map(([key, counts]) => [key, Object.keys(counts)[0]]));
    assert.deepEqual(types, {
      a: 'integer',
      b: 'float',
      c: 'integer',
      d: 'float',
      e: 'float',
      f: 'float',
      g: 'integer',
    });
  });

  it('merge is commutative and associative, and adds record counts', () => {
    const schemaArb = fc.array(propertiesArb, { maxLength: 4 }).map((objects) => {
      const schema = new PropertySchema();
      for (const object of objects) schema.addProperties(object);
      return schema.toJSON();
    });
    fc.assert(
      fc.property(schemaArb, schemaArb, schemaArb, (a, b, c) => {
        const ab = PropertySchema.fromJSON(a).merge(b);
        const ba = PropertySchema.fromJSON(b).merge(a);
        assert.deepEqual(ab.toJSON(), ba.toJSON());
        assert.equal(ab.records, a.records + b.records);
        assert.deepEqual(
          PropertySchema.fromJSON(a).merge(PropertySchema.fromJSON(b).merge(c)).toJSON(),
          PropertySchema.fromJSON(a).merge(b).merge(c).toJSON(),
        );
        assert.deepEqual(PropertySchema.fromJSON(JSON.parse(JSON.stringify(ab))).toJSON(), ab.toJSON());
      }),
    );
  });

  it('keeps a property named __proto__ through its serialization', () => {
    const schema = new PropertySchema();
    schema.addProperties({ ['__proto__']: 1 });
    const copy = PropertySchema.fromJSON(JSON.parse(JSON.stringify(schema.toJSON())));
    assert.deepEqual(copy.toJSON(), schema.toJSON());
    assert.deepEqual(PropertySchema.fromJSON(schema.toJSON()).typeCounts('__proto__'), { integer: 1 });
  });

  it('refuses a malformed serialization, naming the field', () => {
    assert.throws(
      () =>
        PropertySchema.fromJSON({
          format: 'mp-pipelines/property-schema@1',
          records: 1,
          properties: { a: { text: 1 } },
        }),
      /invalid property schema: properties\.a/,
    );
    assert.throws(() => PropertySchema.fromJSON({ records: 1 }), /invalid property schema: format/);
    assert.throws(() => new PropertySchema().addProperties('[1]'), /must be a JSON object/);
  });
});

/** A key token spelled with `\\u` escapes only (JSON.stringify never writes them for letters). */
function escapedKey(key: string): string {
  return `"${[...key].map((c) => [...c].map((u) => `\\u${u.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')).join('')}"`;
}

/** The shapes a line can take around the same properties. */
interface Spelling {
  readonly spaced: boolean;
  readonly escapeKeys: boolean;
  readonly repeatFirst: boolean;
  readonly replacedBefore: boolean;
}
const spellingArb: fc.Arbitrary<Spelling> = fc.record({
  spaced: fc.boolean(),
  escapeKeys: fc.boolean(),
  repeatFirst: fc.boolean(),
  replacedBefore: fc.boolean(),
});

/** An event line holding `properties` (and a valid time), spelled as `spelling` says. */
function spelledLine(properties: Record<string, unknown>, spelling: Spelling): string {
  const members = Object.entries({ ...properties, time: 1_700_000_000 }).map(
    ([key, value]) =>
      `${spelling.escapeKeys ? escapedKey(key) : JSON.stringify(key)}${spelling.spaced ? ' : ' : ':'}${JSON.stringify(value)}`,
  );
  if (spelling.repeatFirst) members.push(members[0]!);
  const object = `{${members.join(spelling.spaced ? ' , ' : ',')}}`;
  const earlier = spelling.replacedBefore ? '"properties":{"time":1,"gone":[1]},' : '';
  return `{${earlier}"event":"e","properties":${object}}`;
}

describe('PropertyKeys and PropertyCounts: typing properties while validating', () => {
  it('the scanner types each property as the schema reads it in the exported record', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(propertiesArb, spellingArb), { maxLength: 8 }), (events) => {
        const keys = new PropertyKeys();
        const counts = new PropertyCounts();
        const reference = new PropertySchema();
        for (const [properties, spelling] of events) {
          const event = parseEventLine(Buffer.from(spelledLine(properties, spelling), 'utf8'), keys);
          assert.ok(event.ok, JSON.stringify(event));
          assert.ok(keys.typed);
          counts.add(keys);
          reference.addRecord(event.record);
        }
        assert.deepEqual(counts.toJSON(keys), reference.toJSON());
      }),
    );
  });

  it('past the most names, or after an event the scanner did not type, the counts are not known', () => {
    const keys = new PropertyKeys(3);
    const counts = new PropertyCounts();
    for (const text of ['{"a":1}', '{"a":1,"b":2}']) {
      assert.ok(
        parseEventLine(Buffer.from(`{"event":"e","properties":${text.replace('{', '{"time":1,')}}`), keys).ok,
      );
      assert.ok(keys.typed);
      counts.add(keys);
    }
    assert.deepEqual(counts.toJSON(keys)?.properties, {
      a: { integer: 2 },
      b: { integer: 1 },
      time: { integer: 2 },
    });
    // A fourth name does not fit: that event is not typed, and the object's counts are dropped.
    assert.ok(parseEventLine(Buffer.from('{"event":"e","properties":{"time":1,"c":3}}'), keys).ok);
    assert.equal(keys.typed, false);
    counts.add(keys);
    assert.equal(counts.toJSON(keys), undefined);
    assert.equal(counts.records, 3);
    // A line the scanner gave up on is untyped too (the fallback parses it).
    const fresh = new PropertyCounts();
    keys.beginEvent();
    fresh.add(keys);
    assert.equal(fresh.toJSON(keys), undefined);
  });

  it('removing records takes back exactly what adding them counted', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(propertiesArb, fc.boolean()), { maxLength: 10 }), (records) => {
        const lines = records.map(
          ([properties, removed]) => [Buffer.from(exportedLine(properties)), removed] as const,
        );
        const all = new PropertySchema();
        for (const [line] of lines) all.addRecord(line);
        for (const [line, removed] of lines) if (removed) all.removeRecord(line);
        const kept = new PropertySchema();
        for (const [line, removed] of lines) if (!removed) kept.addRecord(line);
        assert.deepEqual(all.toJSON(), kept.toJSON());
      }),
    );
  });
});

function schemaOf(objects: readonly Record<string, unknown>[]): PropertySchema {
  const schema = new PropertySchema();
  for (const object of objects) schema.addProperties(object);
  return schema;
}

const VALID_NAME = /^[a-z][a-z0-9_]*$/;

function assertLayoutLaws(
  schema: PropertySchema,
  columns: readonly TypedColumn[],
  overflow: readonly { property: string; type: JsonType }[],
) {
  const names = columns.map((c) => c.name);
  assert.equal(new Set(names).size, names.length, `unique names: ${names.join(', ')}`);
  for (const name of names) {
    assert.match(name, VALID_NAME);
    assert.ok(name.length <= 128, name);
    assert.ok(!RESERVED_COLUMNS.includes(name), `${name} is reserved`);
  }
  // Every property and type is held by a column or listed in the overflow, never both.
  const inOverflow = new Set(overflow.map((o) => `${o.type}:${o.property}`));
  for (const [property, types] of schema.entries()) {
    const own = columns.filter((c) => c.property === property);
    for (const type of Object.keys(types) as JsonType[]) {
      const held = type === 'null' ? own.length > 0 : own.some((c) => typesHeldBy(c).includes(type));
      assert.notEqual(held, inOverflow.has(`${type}:${property}`), `${property} ${type}`);
    }
  }
}

describe('typedLayout', () => {
  it('names follow the vendor rules: $ to mp_, lower case, cleaned, collisions and conflicts suffixed', () => {
    const schema = schemaOf([
      { $os: 'iOS', Plan: 'pro', plan: 'free', time: 1, 'Screen Width': 390, 東京: true, _id: 'x' },
      { $os: 'Android', plan: 3, time: 2, 'Screen Width': 1440 },
      { plan: 'pro', nothing: null },
    ]);
    const { columns, overflow } = typedLayout(schema);
    const byName = Object.fromEntries(columns.map((c) => [c.name, `${c.property}:${c.kind}:${c.sql_type}`]));
    assert.deepEqual(byName, {
      mp_os: '$os:string:varchar',
      plan: 'plan:string:varchar',
      screen_width: 'Screen Width:number:bigint',
      time_2: 'time:number:bigint',
      p__id: '_id:string:varchar',
      plan_2: 'Plan:string:varchar',
      plan_number: 'plan:number:bigint',
      p___: '東京:boolean:boolean',
    });
    assert.deepEqual(overflow, [{ property: 'nothing', type: 'null' }]);
    assert.equal(columnBaseName('$Current URL'), 'mp_current_url');
  });

  it('caps the columns by frequency and leaves the rest to the overflow column', () => {
    const schema = schemaOf([{ a: 1, b: 'x', c: true }, { a: 2, b: 'y' }, { a: 3 }]);
    const { columns, overflow } = typedLayout(schema, [], 2);
    assert.deepEqual(
      columns.map((c) => c.name),
      ['a', 'b'],
    );
    assert.deepEqual(overflow, [{ property: 'c', type: 'boolean' }]);
    assert.ok(!columns.some((c) => c.name === OVERFLOW_COLUMN));
  });

  it('counts records that share keys in shifting orders, some optional, as the reference does', () => {
    // Records of one source repeat a few keys, in orders that change and with some left out: the
    // scanner's memory of which key follows which must never count a key as another.
    const pool = ['time', '$os', 'plan', 'a"b', '$', 'x\\y', 'plan2', 'é'];
    const recordArb = fc
      .subarray(pool.map((key, i) => [key, i] as const))
      .chain((pairs) => fc.shuffledSubarray(pairs, { minLength: pairs.length }))
      .chain((pairs) => fc.tuple(...pairs.map(([key]) => valueArb.map((value) => [key, value] as const))))
      .map((entries) => Object.fromEntries(entries) as Record<string, unknown>);
    fc.assert(
      fc.property(fc.array(recordArb, { maxLength: 40 }), (objects) => {
        const scanned = new PropertySchema();
        for (const object of objects) scanned.addRecord(Buffer.from(exportedLine(object)));
        const expected = referenceSchema(
          objects.map((o) => JSON.parse(JSON.stringify(o)) as Record<string, unknown>),
        );
        assert.deepEqual(scanned.toJSON(), expected);
      }),
    );
  });

  it('one property spelled two ways (escaped or not) is one property', () => {
    const schema = new PropertySchema();
    schema.addProperties('{"plan":"pro","n":1}');
    schema.addProperties('{"pl\\u0061n":2,"n":1}');
    schema.addProperties('{"plan":"free","n":1}');
    assert.deepEqual(schema.typeCounts('plan'), { string: 2, integer: 1 });
    assert.deepEqual(schema.typeCounts('n'), { integer: 3 });
  });

  it('holds its laws on any schema, whatever the order the properties were seen in', () => {
    fc.assert(
      fc.property(
        fc.array(propertiesArb, { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 0, max: 12 }),
        (objects, max) => {
          const schema = schemaOf(objects);
          const layout = typedLayout(schema, [], max);
          assertLayoutLaws(schema, layout.columns, layout.overflow);
          assert.ok(layout.columns.length <= max);
          const kinds = new Set(
            schema.entries().flatMap(([p, types]) =>
              Object.keys(types)
                .flatMap((t) => KIND_OF_TYPE[t as JsonType] ?? [])
                .map((k) => `${k}:${p}`),
            ),
          );
          assert.equal(layout.columns.length, Math.min(max, kinds.size));
          assert.deepEqual(typedLayout(schemaOf([...objects].reverse()), [], max), layout);
          assert.deepEqual(typedLayout(schema.toJSON(), [], max), layout);
        },
      ),
    );
  });

  it('growth never renames or drops a column: the previous layout is kept and only extended', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(propertiesArb, { maxLength: 4 }), { minLength: 2, maxLength: 5 }),
        fc.integer({ min: 1, max: 10 }),
        (batches, max) => {
          const schema = new PropertySchema();
          let columns: readonly TypedColumn[] = [];
          for (const batch of batches) {
            for (const object of batch) schema.addProperties(object);
            const next = typedLayout(schema, columns, max);
            assertLayoutLaws(schema, next.columns, next.overflow);
            for (const [i, old] of columns.entries()) {
              const now = next.columns[i]!;
              assert.deepEqual([now.name, now.property, now.kind], [old.name, old.property, old.kind]);
              if (old.sql_type === 'double') assert.equal(now.sql_type, 'double');
            }
            columns = next.columns;
          }
        },
      ),
    );
  });

  it('refuses a previous layout with duplicate or invalid names', () => {
    const schema = schemaOf([{ a: 1 }]);
    const column: TypedColumn = { name: 'a', property: 'a', kind: 'number', sql_type: 'bigint' };
    assert.throws(() => typedLayout(schema, [column, { ...column, property: 'b' }]), /"a" appears twice/);
    assert.throws(() => typedLayout(schema, [{ ...column, name: 'time' }]), /cannot use/);
  });
});

describe('mergeStepSchema', () => {
  it('merges a step once, however often its commit runs, and says when the columns changed', () => {
    const first = mergeStepSchema(undefined, 'daily-2024-11-01', schemaOf([{ a: 1 }]));
    assert.ok(first.columnsChanged);
    const again = mergeStepSchema(first.state, 'daily-2024-11-01', schemaOf([{ a: 1 }]));
    assert.equal(again.state, first.state);
    assert.ok(!again.columnsChanged);
    const same = mergeStepSchema(first.state, 'daily-2024-11-02', schemaOf([{ a: 2 }]));
    assert.ok(!same.columnsChanged);
    assert.deepEqual(same.state.schema.properties, { a: { integer: 2 } });
    const grown = mergeStepSchema(same.state, 'sync-2024-11-02', schemaOf([{ a: 2.5, b: 'x' }]));
    assert.ok(grown.columnsChanged);
    assert.deepEqual(
      grown.state.columns.map((c) => `${c.name}:${c.sql_type}`),
      ['a:double', 'b:varchar'],
    );
    assert.deepEqual(grown.state.merged_steps, ['daily-2024-11-01', 'daily-2024-11-02', 'sync-2024-11-02']);
  });
});
