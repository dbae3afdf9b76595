import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { canonicalJson, nestedDeeperThan } from '../../src/core/json-line.js';
import {
  applyUpdate,
  emptyFoldCounts,
  type FoldCounts,
  MAX_VALUE_DEPTH,
  mergeProfile,
  type Operation,
  PROFILE_OPERATIONS,
  type ProfileUpdate,
  type Properties,
  parseProfileUpdate,
  profileShard,
} from '../../src/core/profiles.js';

/** A line as it lands: raw text as given, anything else as its JSON text. */
function lineOf(value: unknown): Buffer {
  return Buffer.isBuffer(value)
    ? value
    : Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));
}

/** The update of a valid line; fails the test when the line is rejected. */
function parsed(value: unknown): ProfileUpdate {
  const result = parseProfileUpdate(lineOf(value));
  assert.ok(result.ok, `expected ${String(lineOf(value))} to validate: ${result.ok ? '' : result.detail}`);
  return result.update;
}

/** The update of `{"$distinct_id":"u1", ...fields}` (raw text for lines objects cannot spell). */
function updateOf(fields: Record<string, unknown> | string): ProfileUpdate {
  return parsed(typeof fields === 'string' ? fields : { $distinct_id: 'u1', ...fields });
}

/** The rejection of a line; fails the test when the line validates. */
function rejection(value: unknown): { reason: string; detail: string } {
  const result = parseProfileUpdate(lineOf(value));
  assert.equal(result.ok, false, `expected ${String(lineOf(value))} to be rejected`);
  if (result.ok) throw new Error('unreachable');
  assert.ok(result.detail.length > 0, 'a rejection carries a detail');
  return { reason: result.reason, detail: result.detail };
}

/** Folds updates (objects, or raw lines) into `profile`, with fresh counts. */
function fold(
  profile: Properties | undefined,
  ...updates: (Record<string, unknown> | string)[]
): { profile: Properties | undefined; counts: FoldCounts } {
  const counts = emptyFoldCounts();
  let current = profile;
  for (const update of updates) current = applyUpdate(current, updateOf(update), counts);
  return { profile: current, counts };
}

const counts = (c: Partial<FoldCounts>): FoldCounts => ({ ...emptyFoldCounts(), ...c });

/** The own `__proto__` property of an object, or `undefined` when it has none. */
const ownProto = (obj: object | undefined): unknown =>
  obj === undefined ? undefined : Object.getOwnPropertyDescriptor(obj, '__proto__')?.value;

describe('parseProfileUpdate: valid lines', () => {
  it('reads the distinct id and the operations, ignoring the other keys', () => {
    // Arrange: a typical engage line with $token and $ip, which are not operations.
    const line = { $token: 'tok', $distinct_id: 'user-1', $ip: '1.2.3.4', $set: { plan: 'pro' } };

    // Act
    const update = parsed(line);

    // Assert
    assert.deepEqual(update, { distinctId: 'user-1', operations: [['$set', { plan: 'pro' }]] });
    assert.equal('timeMs' in update, false, 'no timeMs key when the line has no $time');
  });

  it('turns a number distinct id into its text', () => {
    assert.equal(parsed({ $distinct_id: 42, $set: { a: 1 } }).distinctId, '42');
    assert.equal(parsed({ $distinct_id: 0, $set: { a: 1 } }).distinctId, '0');
    assert.equal(parsed({ $distinct_id: 1.5, $set: { a: 1 } }).distinctId, '1.5');
    assert.equal(parsed('{"$distinct_id":-7,"$set":{"a":1}}').distinctId, '-7');
  });

  it('reads $time below 1e11 as epoch seconds and from 1e11 on as epoch milliseconds', () => {
    const timeOf = (time: number | string) =>
      parsed(`{"$distinct_id":"u","$time":${time},"$set":{"a":1}}`).timeMs;
    assert.equal(timeOf(1_700_000_000), 1_700_000_000_000);
    assert.equal(timeOf('1700000000.25'), 1_700_000_000_250);
    assert.equal(timeOf(1_700_000_000_123), 1_700_000_000_123);
    assert.equal(timeOf(99_999_999_999), 99_999_999_999_000, 'just below 1e11: seconds');
    assert.equal(timeOf('1e11'), 100_000_000_000, 'exactly 1e11: milliseconds');
    assert.equal(timeOf(0), 0);
  });

  it('keeps the operations in the order the line lists them, not the documented order', () => {
    const update = parsed('{"$unset":["a"],"$distinct_id":"u","$add":{"n":2},"$set":{"a":1},"$delete":""}');
    assert.deepEqual(update.operations, [
      ['$unset', ['a']],
      ['$add', { n: 2 }],
      ['$set', { a: 1 }],
      ['$delete'],
    ]);
  });

  it('accepts every operation with the value shape it documents', () => {
    // Arrange
    const line = {
      $distinct_id: 'u',
      $set: { name: 'Ada', nested: { x: [1] } },
      $set_once: { first_seen: '2024-01-01' },
      $unset: ['old', 'older'],
      $add: { visits: 1, balance: -2.5 },
      $append: { events: { id: 1 } },
      $union: { tags: ['a', 'b'] },
      $remove: { tags: 'c' },
      $delete: null,
    };

    // Act
    const update = parsed(line);

    // Assert
    const expected: Operation[] = [
      ['$set', { name: 'Ada', nested: { x: [1] } }],
      ['$set_once', { first_seen: '2024-01-01' }],
      ['$unset', ['old', 'older']],
      ['$add', { visits: 1, balance: -2.5 }],
      ['$append', { events: { id: 1 } }],
      ['$union', { tags: ['a', 'b'] }],
      ['$remove', { tags: 'c' }],
      ['$delete'],
    ];
    assert.deepEqual(update.operations, expected);
    assert.deepEqual(
      update.operations.map((op) => op[0]),
      [...PROFILE_OPERATIONS],
    );
  });

  it('accepts empty operation objects and lists', () => {
    assert.deepEqual(parsed({ $distinct_id: 'u', $set: {}, $unset: [] }).operations, [
      ['$set', {}],
      ['$unset', []],
    ]);
  });
});

describe('parseProfileUpdate: rejected lines', () => {
  it(`invalid_operation: values nested more than ${MAX_VALUE_DEPTH} levels deep (they could not be written back)`, () => {
    /** A `$set` line whose value nests `depth` levels (as text: JSON.stringify cannot write it). */
    const deepSet = (depth: number) =>
      `{"$distinct_id":"u1","$set":{"tags":${'['.repeat(depth - 1)}${']'.repeat(depth - 1)}}}`;
    assert.deepEqual(rejection(deepSet(5000)), {
      reason: 'invalid_operation',
      detail: `"$set" nests values more than ${MAX_VALUE_DEPTH} levels deep`,
    });
    updateOf(deepSet(MAX_VALUE_DEPTH));
    assert.equal(rejection(deepSet(MAX_VALUE_DEPTH + 1)).reason, 'invalid_operation');
  });

  it('empty_line: an empty or blank line', () => {
    assert.equal(rejection(Buffer.alloc(0)).reason, 'empty_line');
    assert.equal(rejection('   \t ').reason, 'empty_line');
  });

  it('invalid_utf8: bytes that are not UTF-8', () => {
    const bytes = Buffer.concat([
      Buffer.from('{"$distinct_id":"'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('"}'),
    ]);
    assert.equal(rejection(bytes).reason, 'invalid_utf8');
  });

  it('invalid_json: a truncated line', () => {
    assert.equal(rejection('{"$distinct_id":"u1","$set":{"plan":"pro"}').reason, 'invalid_json');
    assert.equal(rejection("{'$distinct_id':'u1'}").reason, 'invalid_json');
  });

  it('not_an_object: JSON that is an array, a string, a number or null', () => {
    for (const text of ['[{"$distinct_id":"u1","$set":{"a":1}}]', '"u1"', '42', 'null'])
      assert.equal(rejection(text).reason, 'not_an_object', text);
  });

  it('missing_distinct_id: absent, empty, null, boolean, object or non-finite', () => {
    for (const text of [
      '{"$set":{"a":1}}',
      '{"distinct_id":"u1","$set":{"a":1}}',
      '{"$distinct_id":"","$set":{"a":1}}',
      '{"$distinct_id":null,"$set":{"a":1}}',
      '{"$distinct_id":true,"$set":{"a":1}}',
      '{"$distinct_id":{"id":"u1"},"$set":{"a":1}}',
      '{"$distinct_id":1e999,"$set":{"a":1}}',
    ])
      assert.equal(rejection(text).reason, 'missing_distinct_id', text);
  });

  it('invalid_time: $time as text, null, negative, infinite or beyond the last representable date', () => {
    for (const time of ['"1700000000"', 'null', '-1', '1e999', '9e15', '{"s":1}'])
      assert.equal(
        rejection(`{"$distinct_id":"u1","$time":${time},"$set":{"a":1}}`).reason,
        'invalid_time',
        time,
      );
  });

  it('no_operation: only ignored keys, or misspelled operations', () => {
    assert.equal(rejection({ $distinct_id: 'u1', $token: 't', $ip: '0' }).reason, 'no_operation');
    assert.equal(rejection({ $distinct_id: 'u1', set: { a: 1 }, $setonce: { b: 1 } }).reason, 'no_operation');
  });

  it('invalid_operation: a value of the wrong shape, naming the operation', () => {
    const bad: [string, string][] = [
      ['$set', '[["a",1]]'],
      ['$set', 'null'],
      ['$set', '"plan"'],
      ['$set_once', '5'],
      ['$unset', '"a"'],
      ['$unset', '["a",1]'],
      ['$unset', '{"a":true}'],
      ['$add', '{"visits":"1"}'],
      ['$add', '{"visits":null}'],
      ['$add', '{"visits":1e999}'],
      ['$add', '[1]'],
      ['$append', 'null'],
      ['$union', '{"tags":"a"}'],
      ['$union', '["a"]'],
      ['$remove', '3'],
    ];
    for (const [name, value] of bad) {
      const { reason, detail } = rejection(`{"$distinct_id":"u1","${name}":${value}}`);
      assert.equal(reason, 'invalid_operation', `${name}: ${value}`);
      assert.ok(detail.includes(name), `"${detail}" should name ${name}`);
    }
  });

  it('rejects the whole line when any one of its operations is invalid', () => {
    const { reason } = rejection('{"$distinct_id":"u1","$set":{"a":1},"$add":{"n":"x"}}');
    assert.equal(reason, 'invalid_operation');
  });
});

describe('applyUpdate: each operation', () => {
  it('$set overwrites and adds properties, keeps the others, and changes the profile in place', () => {
    // Arrange
    const profile: Properties = { plan: 'free', name: 'Ada' };

    // Act
    const { profile: result, counts: c } = fold(profile, { $set: { plan: 'pro', seats: 3 } });

    // Assert
    assert.equal(result, profile, 'an existing profile is changed in place');
    assert.deepEqual(result, { plan: 'pro', name: 'Ada', seats: 3 });
    assert.deepEqual(c, counts({ updates: 1 }));
  });

  it('$set creates a missing profile (and counts it)', () => {
    const { profile, counts: c } = fold(undefined, { $set: { plan: 'pro' } });
    assert.deepEqual(profile, { plan: 'pro' });
    assert.deepEqual(c, counts({ updates: 1, created: 1 }));
  });

  it('$set with no properties still creates the profile', () => {
    const { profile, counts: c } = fold(undefined, { $set: {} });
    assert.deepEqual(profile, {});
    assert.deepEqual(c, counts({ updates: 1, created: 1 }));
  });

  it('$set_once sets only the properties the profile lacks (a null value counts as present)', () => {
    const { profile } = fold(
      { first_seen: 'day-1', referrer: null },
      {
        $set_once: { first_seen: 'day-2', referrer: 'ad', campaign: 'x' },
      },
    );
    assert.deepEqual(profile, { first_seen: 'day-1', referrer: null, campaign: 'x' });
  });

  it('$set_once creates a missing profile', () => {
    const { profile, counts: c } = fold(undefined, { $set_once: { first_seen: 'day-1' } });
    assert.deepEqual(profile, { first_seen: 'day-1' });
    assert.deepEqual(c, counts({ updates: 1, created: 1 }));
  });

  it('$unset removes the listed properties and ignores absent ones; the profile stays even when empty', () => {
    assert.deepEqual(fold({ a: 1, b: 2, c: 3 }, { $unset: ['a', 'c', 'zzz'] }).profile, { b: 2 });
    assert.deepEqual(fold({ a: 1 }, { $unset: ['a'] }).profile, {});
  });

  it('$unset never creates a profile', () => {
    const { profile, counts: c } = fold(undefined, { $unset: ['a'] });
    assert.equal(profile, undefined);
    assert.deepEqual(c, counts({ updates: 1 }));
  });

  it('$delete removes an existing profile and counts it; on no profile it does nothing', () => {
    assert.deepEqual(fold({ a: 1 }, { $delete: '' }), {
      profile: undefined,
      counts: counts({ updates: 1, deleted: 1 }),
    });
    assert.deepEqual(fold(undefined, { $delete: '' }), {
      profile: undefined,
      counts: counts({ updates: 1 }),
    });
  });

  it('after $delete, a later update starts a new profile without the old properties', () => {
    const { profile, counts: c } = fold(
      { name: 'Ada', first_seen: 'day-1' },
      { $delete: '' },
      { $set_once: { first_seen: 'day-9' } },
    );
    assert.deepEqual(profile, { first_seen: 'day-9' });
    assert.deepEqual(c, counts({ updates: 2, created: 1, deleted: 1 }));
  });

  it('$add adds to numbers, a missing property counting as 0', () => {
    const { profile, counts: c } = fold(
      { visits: 2, balance: 1.5 },
      { $add: { visits: 3, balance: -4, score: 7 } },
    );
    assert.deepEqual(profile, { visits: 5, balance: -2.5, score: 7 });
    assert.deepEqual(c, counts({ updates: 1 }));
  });

  it('$add creates a missing profile', () => {
    const { profile, counts: c } = fold(undefined, { $add: { visits: 1 } });
    assert.deepEqual(profile, { visits: 1 });
    assert.deepEqual(c, counts({ updates: 1, created: 1 }));
  });

  it('$add to a property that is not a number leaves it and counts one skip per property', () => {
    const { profile, counts: c } = fold(
      { text: '5', none: null, list: [1], flag: true, n: 1 },
      { $add: { text: 1, none: 1, list: 1, flag: 1, n: 1 } },
    );
    assert.deepEqual(profile, { text: '5', none: null, list: [1], flag: true, n: 2 });
    assert.deepEqual(c, counts({ updates: 1, skipped: 4 }));
  });

  it('$append adds one value at the end of a list, creating the list when missing', () => {
    const { profile } = fold({ events: ['a'] }, { $append: { events: ['b', 'c'], pages: '/home' } });
    assert.deepEqual(profile, { events: ['a', ['b', 'c']], pages: ['/home'] }, 'a list value is one element');
  });

  it('$append creates a missing profile', () => {
    const { profile, counts: c } = fold(undefined, { $append: { pages: '/home' } });
    assert.deepEqual(profile, { pages: ['/home'] });
    assert.deepEqual(c, counts({ updates: 1, created: 1 }));
  });

  it('$append to a property that is not a list leaves it and counts a skip', () => {
    const { profile, counts: c } = fold({ pages: '/home' }, { $append: { pages: '/about' } });
    assert.deepEqual(profile, { pages: '/home' });
    assert.deepEqual(c, counts({ updates: 1, skipped: 1 }));
  });

  it('$union adds only the values the list lacks, one of each, keeping the list order', () => {
    const { profile } = fold(
      { tags: ['a', 'b'] },
      { $union: { tags: ['c', 'b', 'c', 'd'], fresh: ['x', 'x'] } },
    );
    assert.deepEqual(profile, { tags: ['a', 'b', 'c', 'd'], fresh: ['x'] });
  });

  it('$union compares deeply: object key order does not matter, list order and types do', () => {
    const { profile } = fold(
      { items: [{ id: 1, kind: 'x', meta: { a: 1, b: 2 } }], pairs: [[1, 2]], nums: [1] },
      '{"$distinct_id":"u","$union":{' +
        '"items":[{"meta":{"b":2,"a":1},"kind":"x","id":1},{"id":2}],' +
        '"pairs":[[2,1],[1,2]],' +
        '"nums":["1",1,1.0]}}',
    );
    assert.deepEqual(profile, {
      items: [{ id: 1, kind: 'x', meta: { a: 1, b: 2 } }, { id: 2 }],
      pairs: [
        [1, 2],
        [2, 1],
      ],
      nums: [1, '1'],
    });
  });

  it('$union creates a missing profile', () => {
    const { profile, counts: c } = fold(undefined, { $union: { tags: ['a', 'a', 'b'] } });
    assert.deepEqual(profile, { tags: ['a', 'b'] });
    assert.deepEqual(c, counts({ updates: 1, created: 1 }));
  });

  it('$union on a property that is not a list leaves it, counts a skip, and still applies the others', () => {
    const { profile, counts: c } = fold({ tags: 'a', more: [] }, { $union: { tags: ['b'], more: ['m'] } });
    assert.deepEqual(profile, { tags: 'a', more: ['m'] });
    assert.deepEqual(c, counts({ updates: 1, skipped: 1 }));
  });

  it('$remove removes every element equal to the value (deep equality, any key order)', () => {
    const { profile, counts: c } = fold(
      {
        tags: ['a', 'b', 'a', 'c', 'a'],
        items: [{ x: 1, y: [1, 2] }, { x: 2 }, { y: [1, 2], x: 1 }],
        nums: [1, '1'],
      },
      '{"$distinct_id":"u","$remove":{"tags":"a","items":{"y":[1,2],"x":1},"nums":1}}',
    );
    assert.deepEqual(profile, { tags: ['b', 'c'], items: [{ x: 2 }], nums: ['1'] });
    assert.deepEqual(c, counts({ updates: 1 }));
  });

  it('$remove of a value a list lacks leaves the list as it was', () => {
    assert.deepEqual(fold({ tags: ['a'] }, { $remove: { tags: 'z' } }).profile, { tags: ['a'] });
  });

  it('$remove on a missing property does not create it and is no skip', () => {
    const { profile, counts: c } = fold({ a: 1 }, { $remove: { tags: 'a' } });
    assert.deepEqual(profile, { a: 1 });
    assert.equal(Object.hasOwn(profile ?? {}, 'tags'), false);
    assert.deepEqual(c, counts({ updates: 1 }));
  });

  it('$remove on a property that is not a list leaves it and counts a skip', () => {
    const { profile, counts: c } = fold({ tags: 'a' }, { $remove: { tags: 'a' } });
    assert.deepEqual(profile, { tags: 'a' });
    assert.deepEqual(c, counts({ updates: 1, skipped: 1 }));
  });

  it('$remove never creates a profile', () => {
    const { profile, counts: c } = fold(undefined, { $remove: { tags: 'a' } });
    assert.equal(profile, undefined);
    assert.deepEqual(c, counts({ updates: 1 }));
  });
});

describe('applyUpdate: several operations in one line apply in line order', () => {
  it('$set then $unset leaves the property unset; $unset then $set leaves it set', () => {
    assert.deepEqual(fold({ b: 2 }, '{"$distinct_id":"u","$set":{"a":1},"$unset":["a"]}').profile, { b: 2 });
    assert.deepEqual(fold({ b: 2 }, '{"$distinct_id":"u","$unset":["a"],"$set":{"a":1}}').profile, {
      a: 1,
      b: 2,
    });
  });

  it('on no profile: $set then $unset leaves an empty profile; $unset then $set creates it with the property', () => {
    const setFirst = fold(undefined, '{"$distinct_id":"u","$set":{"a":1},"$unset":["a"]}');
    assert.deepEqual(setFirst, { profile: {}, counts: counts({ updates: 1, created: 1 }) });
    const unsetFirst = fold(undefined, '{"$distinct_id":"u","$unset":["a"],"$set":{"a":1}}');
    assert.deepEqual(unsetFirst, { profile: { a: 1 }, counts: counts({ updates: 1, created: 1 }) });
  });

  it('$set then $set_once keeps the $set value; $set_once then $set ends with the $set value', () => {
    assert.deepEqual(fold(undefined, '{"$distinct_id":"u","$set":{"a":1},"$set_once":{"a":2}}').profile, {
      a: 1,
    });
    assert.deepEqual(fold(undefined, '{"$distinct_id":"u","$set_once":{"a":2},"$set":{"a":1}}').profile, {
      a: 1,
    });
    assert.deepEqual(fold({ a: 0 }, '{"$distinct_id":"u","$unset":["a"],"$set_once":{"a":2}}').profile, {
      a: 2,
    });
    assert.deepEqual(fold({ a: 0 }, '{"$distinct_id":"u","$set_once":{"a":2},"$unset":["a"]}').profile, {});
  });

  it('$add then $set ends with the $set value; $set then $add adds to it', () => {
    assert.deepEqual(fold({ n: 1 }, '{"$distinct_id":"u","$add":{"n":5},"$set":{"n":10}}').profile, {
      n: 10,
    });
    assert.deepEqual(fold({ n: 1 }, '{"$distinct_id":"u","$set":{"n":10},"$add":{"n":5}}').profile, {
      n: 15,
    });
    // A skip depends on the order too.
    assert.deepEqual(
      fold({ n: 'x' }, '{"$distinct_id":"u","$set":{"n":10},"$add":{"n":5}}').counts.skipped,
      0,
    );
    assert.deepEqual(
      fold({ n: 'x' }, '{"$distinct_id":"u","$add":{"n":5},"$set":{"n":10}}').counts.skipped,
      1,
    );
  });

  it('$delete then $set starts a new profile within the same line; $set then $delete ends with none', () => {
    const old: Properties = { a: 1, b: 2 };
    const restart = fold(old, '{"$distinct_id":"u","$delete":"","$set":{"c":3}}');
    assert.deepEqual(restart, { profile: { c: 3 }, counts: counts({ updates: 1, created: 1, deleted: 1 }) });
    assert.notEqual(restart.profile, old, 'the new profile is a new object');
    assert.equal(fold({ a: 1 }, '{"$distinct_id":"u","$set":{"c":3},"$delete":""}').profile, undefined);
  });

  it('$union then $remove vs $remove then $union', () => {
    assert.deepEqual(
      fold({ t: ['a'] }, '{"$distinct_id":"u","$union":{"t":["b"]},"$remove":{"t":"b"}}').profile,
      {
        t: ['a'],
      },
    );
    assert.deepEqual(
      fold({ t: ['a'] }, '{"$distinct_id":"u","$remove":{"t":"b"},"$union":{"t":["b"]}}').profile,
      {
        t: ['a', 'b'],
      },
    );
  });
});

describe('applyUpdate: counts', () => {
  it('counts each update once however many operations it has, and sums over a fold', () => {
    // Arrange / Act: a history of one profile.
    const { profile, counts: c } = fold(
      undefined,
      { $unset: ['a'] }, // no profile, nothing created
      { $set: { a: 1, name: 'x' }, $append: { l: 1 }, $union: { t: ['a'] } }, // created
      { $add: { a: 2, name: 1 } }, // name is text: one skip
      { $delete: '' }, // deleted
      { $delete: '' }, // nothing to delete
      { $set_once: { b: 2 } }, // created again
    );

    // Assert
    assert.deepEqual(profile, { b: 2 });
    assert.deepEqual(c, { updates: 6, created: 2, deleted: 1, skipped: 1 });
  });

  it('adds to the counts it is given', () => {
    const c: FoldCounts = { updates: 10, created: 3, deleted: 2, skipped: 1 };
    applyUpdate(undefined, updateOf({ $add: { n: 1 } }), c);
    applyUpdate({ n: 'x' }, updateOf({ $add: { n: 1 } }), c);
    assert.deepEqual(c, { updates: 12, created: 4, deleted: 2, skipped: 2 });
  });
});

describe('a property named __proto__ is an own property and never changes the prototype', () => {
  const protoOk = (profile: Properties | undefined) => {
    assert.ok(profile !== undefined);
    assert.equal(Object.getPrototypeOf(profile), Object.prototype, 'the prototype is untouched');
    assert.equal(Object.hasOwn(profile, '__proto__'), true, '__proto__ is an own property');
  };

  it('parsing keeps __proto__ as an own key of the operation', () => {
    const update = updateOf('{"$distinct_id":"u","$set":{"__proto__":{"isAdmin":true}}}');
    const op = update.operations[0];
    assert.ok(op !== undefined && op[0] === '$set');
    assert.deepEqual(ownProto(op[1]), { isAdmin: true });
  });

  it('$set creates it on a new and on an existing profile', () => {
    const line = '{"$distinct_id":"u","$set":{"__proto__":{"isAdmin":true},"plan":"pro"}}';
    for (const start of [undefined, { plan: 'free' }]) {
      const { profile } = fold(start, line);
      protoOk(profile);
      assert.deepEqual(ownProto(profile), { isAdmin: true });
      assert.equal((profile as Record<string, unknown>).isAdmin, undefined, 'nothing inherited');
      assert.equal(profile?.plan, 'pro');
      assert.equal(
        JSON.stringify(profile),
        start === undefined
          ? '{"__proto__":{"isAdmin":true},"plan":"pro"}'
          : '{"plan":"pro","__proto__":{"isAdmin":true}}',
      );
    }
    assert.equal(({} as Record<string, unknown>).isAdmin, undefined, 'Object.prototype is not polluted');
  });

  it('$set_once creates it when missing and keeps an own one', () => {
    const created = fold({}, '{"$distinct_id":"u","$set_once":{"__proto__":"first"}}').profile;
    protoOk(created);
    assert.equal(ownProto(created), 'first');
    const kept = fold(
      JSON.parse('{"__proto__":"first"}'),
      '{"$distinct_id":"u","$set_once":{"__proto__":"second"}}',
    );
    protoOk(kept.profile);
    assert.equal(ownProto(kept.profile), 'first');
  });

  it('$add counts a missing own __proto__ as 0 and adds to an own one', () => {
    const once = fold({}, '{"$distinct_id":"u","$add":{"__proto__":5}}');
    protoOk(once.profile);
    assert.equal(ownProto(once.profile), 5);
    assert.equal(once.counts.skipped, 0, 'the inherited Object.prototype is not the value');
    const twice = fold(once.profile, '{"$distinct_id":"u","$add":{"__proto__":2}}');
    assert.equal(ownProto(twice.profile), 7);
  });

  it('$append and $union create an own list, never an Array prototype', () => {
    const appended = fold({}, '{"$distinct_id":"u","$append":{"__proto__":"x"}}');
    protoOk(appended.profile);
    assert.deepEqual(ownProto(appended.profile), ['x']);
    assert.equal(appended.counts.skipped, 0);
    const unioned = fold({}, '{"$distinct_id":"u","$union":{"__proto__":["x","x","y"]}}');
    protoOk(unioned.profile);
    assert.deepEqual(ownProto(unioned.profile), ['x', 'y']);
  });

  it('$remove filters an own __proto__ list, and $unset removes it', () => {
    const removed = fold(
      JSON.parse('{"__proto__":["x","y","x"]}'),
      '{"$distinct_id":"u","$remove":{"__proto__":"x"}}',
    );
    protoOk(removed.profile);
    assert.deepEqual(ownProto(removed.profile), ['y']);
    const unset = fold(
      JSON.parse('{"__proto__":1,"a":2}'),
      '{"$distinct_id":"u","$unset":["__proto__"]}',
    ).profile;
    assert.ok(unset !== undefined);
    assert.equal(Object.hasOwn(unset, '__proto__'), false);
    assert.equal(Object.getPrototypeOf(unset), Object.prototype);
    assert.deepEqual(unset, { a: 2 });
  });

  it('mergeProfile takes an own __proto__ over without changing the prototype', () => {
    const from = JSON.parse('{"__proto__":{"isAdmin":true},"a":1}') as Properties;
    for (const into of [undefined, { b: 2 }]) {
      const merged = mergeProfile(into, from);
      protoOk(merged);
      assert.deepEqual(ownProto(merged), { isAdmin: true });
    }
    const kept = mergeProfile(JSON.parse('{"__proto__":"mine"}') as Properties, from);
    assert.equal(ownProto(kept), 'mine');
  });

  it('canonicalJson includes an own __proto__ key', () => {
    assert.equal(
      canonicalJson(JSON.parse('{"b":1,"__proto__":{"z":1,"y":2}}')),
      '{"__proto__":{"y":2,"z":1},"b":1}',
    );
  });
});

describe('mergeProfile', () => {
  it('the resolved profile wins; the properties it lacks are taken over; it is changed in place', () => {
    // Arrange
    const into: Properties = { name: 'Ada', plan: null };
    const from: Properties = { name: 'anon', plan: 'pro', first_seen: 'day-1' };

    // Act
    const merged = mergeProfile(into, from);

    // Assert
    assert.equal(merged, into);
    assert.deepEqual(merged, { name: 'Ada', plan: null, first_seen: 'day-1' });
    assert.deepEqual(from, { name: 'anon', plan: 'pro', first_seen: 'day-1' }, 'from is not changed');
  });

  it('with no resolved profile, the result holds the other profile`s properties', () => {
    const from: Properties = { a: 1, b: [1] };
    const merged = mergeProfile(undefined, from);
    assert.deepEqual(merged, { a: 1, b: [1] });
    assert.notEqual(merged, from, 'a new object');
  });
});

describe('canonicalJson', () => {
  it('sorts object keys at every depth and keeps list order', () => {
    assert.equal(
      canonicalJson({ b: [2, { d: 1, c: null }], a: 'x', c: { z: true, y: [3, 1] } }),
      '{"a":"x","b":[2,{"c":null,"d":1}],"c":{"y":[3,1],"z":true}}',
    );
  });

  it('is equal for deep-equal values in any key order, and differs for different values', () => {
    assert.equal(canonicalJson({ x: 1, y: { p: 1, q: 2 } }), canonicalJson({ y: { q: 2, p: 1 }, x: 1 }));
    assert.notEqual(canonicalJson([1, 2]), canonicalJson([2, 1]));
    assert.notEqual(canonicalJson(1), canonicalJson('1'));
    assert.notEqual(canonicalJson({ a: '1' }), canonicalJson('{"a":"1"}'));
    assert.notEqual(canonicalJson(null), canonicalJson('null'));
  });

  it('writes a value nested far deeper than the stack allows recursion', () => {
    const depth = 200_000;
    const text = `${'['.repeat(depth)}${']'.repeat(depth)}`;
    assert.equal(canonicalJson(JSON.parse(text)), text);
  });

  it('nestedDeeperThan counts levels of arrays and objects, iteratively', () => {
    assert.equal(nestedDeeperThan(1, 0), false);
    assert.equal(nestedDeeperThan([], 0), true);
    assert.equal(nestedDeeperThan({ a: [1, { b: 2 }] }, 3), false);
    assert.equal(nestedDeeperThan({ a: [1, { b: [] }] }, 3), true);
    assert.equal(nestedDeeperThan(JSON.parse(`${'['.repeat(200_000)}${']'.repeat(200_000)}`), 100), true);
  });

  it('writes JSON scalars as JSON.stringify does, and undefined as null', () => {
    assert.equal(canonicalJson('a"b\n'), '"a\\"b\\n"');
    assert.equal(canonicalJson(1.5), '1.5');
    assert.equal(canonicalJson(true), 'true');
    assert.equal(canonicalJson(null), 'null');
    assert.equal(canonicalJson(undefined), 'null');
  });

  it('property: JSON with keys sorted, the same for any key order, and parses back to a deep-equal value', () => {
    /** The expected text, written out: sorted keys, each with its value's text. */
    const expected = (value: unknown): string => {
      if (Array.isArray(value)) return `[${value.map(expected).join(',')}]`;
      if (value !== null && typeof value === 'object') {
        const keys = Object.keys(value).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        const fields = keys.map(
          (k) => `${JSON.stringify(k)}:${expected((value as Record<string, unknown>)[k])}`,
        );
        return `{${fields.join(',')}}`;
      }
      return JSON.stringify(value);
    };
    /** The same value with every object's keys in reverse insertion order. */
    const reversed = (value: unknown): unknown => {
      if (Array.isArray(value)) return value.map(reversed);
      if (value !== null && typeof value === 'object')
        return Object.fromEntries(
          Object.entries(value)
            .reverse()
            .map(([k, v]) => [k, reversed(v)]),
        );
      return value;
    };
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const plain = JSON.parse(JSON.stringify(value)) as unknown; // -0 -> 0, as a line would hold
        const text = canonicalJson(plain);
        assert.equal(text, expected(plain));
        assert.equal(canonicalJson(reversed(plain)), text);
        assert.deepEqual(JSON.parse(text), plain);
      }),
    );
  });
});

describe('profileShard', () => {
  /** FNV-1a over UTF-16 code units, written out here so a change in src is caught. */
  const fnv1a = (key: string): number => {
    let hash = 2166136261;
    for (let i = 0; i < key.length; i += 1) {
      hash = (hash ^ key.charCodeAt(i)) >>> 0;
      hash = Number((BigInt(hash) * 16777619n) % 4294967296n);
    }
    return hash;
  };
  const FULL = 2 ** 32;

  it('is the 32-bit FNV-1a hash (standard test vectors)', () => {
    assert.equal(profileShard('', FULL), 0x811c9dc5);
    assert.equal(profileShard('a', FULL), 0xe40c292c);
    assert.equal(profileShard('foobar', FULL), 0xbf9cf968);
  });

  it('pins the shard of concrete keys (JSON text of ids): stored state depends on it', () => {
    assert.equal(profileShard('"user-1"', FULL), 1205547074);
    assert.equal(profileShard('"user-1"', 32), 2);
    assert.equal(profileShard('"42"', 32), 19);
    assert.equal(profileShard('"42"', 64), 19);
    assert.equal(profileShard('"42"', 256), 211);
    assert.equal(profileShard('""', 1), 0);
    // Non-ASCII keys hash their UTF-16 code units.
    assert.equal(profileShard('"José"', FULL), 2983073408);
    assert.equal(profileShard('"José"', 32), 0);
    assert.equal(profileShard('"🙂"', FULL), 875625876);
    assert.equal(profileShard('"🙂"', 32), 20);
  });

  it('property: an integer in [0, shards), the hash modulo shards, and stable', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 40 }),
        fc.integer({ min: 1, max: 4096 }),
        (key, shards) => {
          const shard = profileShard(key, shards);
          assert.ok(Number.isInteger(shard) && shard >= 0 && shard < shards);
          assert.equal(shard, fnv1a(key) % shards);
          assert.equal(profileShard(key, FULL), fnv1a(key));
          assert.equal(profileShard(key, shards), shard);
        },
      ),
    );
  });
});

describe('applyUpdate against a reference model', () => {
  type ModelOp =
    | ['$set' | '$set_once', [string, unknown][]]
    | ['$add', [string, number][]]
    | ['$unset', string[]]
    | ['$delete'];

  /** What the doc comment says, written independently: a map of properties, or no profile. */
  function modelApply(
    profile: Map<string, unknown> | undefined,
    ops: readonly ModelOp[],
    c: FoldCounts,
  ): Map<string, unknown> | undefined {
    c.updates += 1;
    let current = profile;
    for (const op of ops) {
      if (op[0] === '$delete') {
        if (current !== undefined) c.deleted += 1;
        current = undefined;
      } else if (op[0] === '$unset') {
        for (const k of op[1]) current?.delete(k);
      } else {
        if (current === undefined) {
          current = new Map();
          c.created += 1;
        }
        for (const [k, v] of op[1]) {
          if (op[0] === '$set') current.set(k, v);
          else if (op[0] === '$set_once') {
            if (!current.has(k)) current.set(k, v);
          } else {
            const existing = current.has(k) ? current.get(k) : 0;
            if (typeof existing === 'number') current.set(k, existing + (v as number));
            else c.skipped += 1;
          }
        }
      }
    }
    return current;
  }

  const KEY = fc.constantFrom('a', 'b', 'c', '__proto__', 'constructor');
  const VALUE = fc.oneof(
    fc.integer({ min: -50, max: 50 }),
    fc.constantFrom('x', '', null, true),
    fc.constant([1]),
  );
  const entries = <T>(value: fc.Arbitrary<T>) =>
    fc.uniqueArray(fc.tuple(KEY, value), { selector: ([k]) => k, maxLength: 3 });
  const OP: fc.Arbitrary<ModelOp> = fc.oneof(
    entries(VALUE).map((e): ModelOp => ['$set', e]),
    entries(VALUE).map((e): ModelOp => ['$set_once', e]),
    entries(fc.integer({ min: -50, max: 50 })).map((e): ModelOp => ['$add', e]),
    fc.uniqueArray(KEY, { maxLength: 3 }).map((keys): ModelOp => ['$unset', keys]),
    fc.constant<ModelOp>(['$delete']),
  );
  const UPDATE = fc.uniqueArray(OP, { selector: (op) => op[0], minLength: 1, maxLength: 4 });

  /** The line of an update, written as JSON text (so `__proto__` is an own key as in a real line). */
  const lineText = (ops: readonly ModelOp[]): string => {
    const body = (op: ModelOp): string =>
      op[0] === '$delete'
        ? '""'
        : op[0] === '$unset'
          ? JSON.stringify(op[1])
          : `{${op[1].map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`;
    return `{"$distinct_id":"u",${ops.map((op) => `${JSON.stringify(op[0])}:${body(op)}`).join(',')}}`;
  };

  const plain = (model: Map<string, unknown> | undefined) =>
    model === undefined ? undefined : Object.fromEntries(model);

  it('property: $set/$set_once/$unset/$add/$delete sequences give the model`s profile and counts', () => {
    fc.assert(
      fc.property(
        fc.option(entries(VALUE), { nil: undefined }),
        fc.array(UPDATE, { maxLength: 8 }),
        (start, updates) => {
          // Arrange: the same starting profile for both (or none).
          let model = start === undefined ? undefined : new Map<string, unknown>(start);
          let actual = plain(model);
          const modelCounts = emptyFoldCounts();
          const actualCounts = emptyFoldCounts();

          for (const ops of updates) {
            // Act
            const update = updateOf(lineText(ops));
            assert.deepEqual(
              update.operations.map((op) => op[0]),
              ops.map((op) => op[0]),
              'operations in line order',
            );
            actual = applyUpdate(actual, update, actualCounts);
            model = modelApply(model, ops, modelCounts);

            // Assert, after every update
            assert.deepEqual(actual, plain(model));
            if (actual !== undefined) assert.equal(Object.getPrototypeOf(actual), Object.prototype);
            assert.deepEqual(actualCounts, modelCounts);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
