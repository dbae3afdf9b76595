import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ConfigError } from '../../src/core/errors.js';
import { compileWhere, type Properties } from '../../src/core/where.js';

const PROPS: Properties = {
  plan: 'pro',
  seats: 12,
  price: 9.5,
  beta: true,
  churned: false,
  referrer: null,
  empty: '',
  zero: 0,
  tags: ['a', 'b', 7],
  none: [],
  address: { city: 'Bern', zip: '3000' },
  $os: 'iOS',
  'na"me': 'quoted',
};

const matches = (expression: string, properties: Properties = PROPS): boolean =>
  compileWhere(expression)(properties);

function refused(expression: string): string {
  try {
    compileWhere(expression);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `a ConfigError for ${expression}`);
    return error.message;
  }
  assert.fail(`expected ${JSON.stringify(expression)} to be refused`);
}

describe('where: comparisons', () => {
  test('== and != compare JSON values of the same type, without coercion', () => {
    assert.equal(matches('properties["plan"] == "pro"'), true);
    assert.equal(matches('properties["plan"] == "Pro"'), false);
    assert.equal(matches('properties["seats"] == 12'), true);
    assert.equal(matches('properties["seats"] == 12.0'), true);
    assert.equal(matches('properties["seats"] == "12"'), false);
    assert.equal(matches('properties["beta"] == true'), true);
    assert.equal(matches('properties["referrer"] == null'), true);
    assert.equal(matches('properties["tags"] == ["a", "b", 7]'), true);
    assert.equal(matches('properties["tags"] == ["b", "a", 7]'), false);
    assert.equal(matches('properties["address"] == properties["address"]'), true);
    assert.equal(matches('properties["plan"] != "free"'), true);
    assert.equal(matches('properties["plan"] != "pro"'), false);
  });

  test('a missing property equals nothing, not even null or another missing property', () => {
    assert.equal(matches('properties["missing"] == null'), false);
    assert.equal(matches('properties["missing"] == properties["other"]'), false);
    assert.equal(matches('properties["missing"] != "x"'), true);
  });

  test('ordering compares two numbers or two strings and is false for anything else', () => {
    assert.equal(matches('properties["seats"] > 10'), true);
    assert.equal(matches('properties["seats"] >= 12'), true);
    assert.equal(matches('properties["seats"] < 12'), false);
    assert.equal(matches('properties["price"] <= 9.5'), true);
    assert.equal(matches('properties["price"] > -1'), true);
    assert.equal(matches('properties["plan"] > "free"'), true);
    assert.equal(matches('properties["plan"] < "free"'), false);
    assert.equal(matches('properties["seats"] > "1"'), false);
    assert.equal(matches('properties["seats"] < "99"'), false);
    assert.equal(matches('properties["missing"] < 1'), false);
    assert.equal(matches('properties["missing"] >= 1'), false);
    assert.equal(matches('properties["referrer"] < 1'), false);
  });

  test('in finds an element of a list, or a substring of a string', () => {
    assert.equal(matches('"b" in properties["tags"]'), true);
    assert.equal(matches('7 in properties["tags"]'), true);
    assert.equal(matches('"7" in properties["tags"]'), false);
    assert.equal(matches('properties["seats"] in [1, 12, 30]'), true);
    assert.equal(matches('properties["seats"] in [1, 2]'), false);
    assert.equal(matches('"r" in properties["plan"]'), true);
    assert.equal(matches('"x" in properties["plan"]'), false);
    assert.equal(matches('"city" in properties["address"]'), false);
    assert.equal(matches('1 in properties["seats"]'), false);
    assert.equal(matches('"a" in properties["missing"]'), false);
    assert.equal(matches('properties["tags"] in [1, ["a", "b", 7]]'), true);
  });

  test('defined holds for a present property, null included', () => {
    assert.equal(matches('defined(properties["plan"])'), true);
    assert.equal(matches('defined(properties["referrer"])'), true);
    assert.equal(matches('defined(properties["missing"])'), false);
    assert.equal(matches('not defined(properties["missing"])'), true);
  });

  test('property names are exact strings with JSON escapes, $ and " included', () => {
    assert.equal(matches('properties["$os"] == "iOS"'), true);
    assert.equal(matches('properties["na\\"me"] == "quoted"'), true);
    assert.equal(matches('properties["\\u0024os"] == "i\\u004fS"'), true);
    assert.equal(matches('properties["__proto__"] == null', JSON.parse('{"__proto__": null}')), true);
    assert.equal(matches('defined(properties["__proto__"])', {}), false);
    assert.equal(matches('defined(properties["toString"])', {}), false);
  });
});

describe('where: values of any depth', () => {
  test('comparing deeply nested values neither overflows the stack nor errs', () => {
    const nested = (depth: number, inner: string) =>
      JSON.parse(`${'['.repeat(depth)}${inner}${']'.repeat(depth)}`) as unknown;
    const p = { tags: nested(100_000, '1'), same: nested(100_000, '1'), other: nested(100_000, '2') };
    assert.equal(matches('properties["tags"] == ["a"]', p), false);
    assert.equal(matches('properties["tags"] == properties["same"]', p), true);
    assert.equal(matches('properties["tags"] == properties["other"]', p), false);
    assert.equal(matches('[1] in properties["tags"]', p), false);
  });
});

describe('where: logic', () => {
  test('values read as false when false, null, missing, 0, "", [] or {}', () => {
    for (const name of ['churned', 'referrer', 'missing', 'zero', 'empty', 'none'])
      assert.equal(matches(`properties["${name}"]`), false, name);
    assert.equal(matches('properties["x"]', { x: {} }), false);
    for (const name of ['plan', 'seats', 'beta', 'tags', 'address'])
      assert.equal(matches(`properties["${name}"]`), true, name);
  });

  test('not binds tighter than and, and tighter than or; keywords ignore case', () => {
    assert.equal(matches('true or true and false'), true);
    assert.equal(matches('(true or true) and false'), false);
    assert.equal(matches('not false and false'), false);
    assert.equal(matches('not (false and false)'), true);
    assert.equal(matches('not properties["plan"] == "free"'), true);
    assert.equal(matches('NOT properties["plan"] == "pro" OR properties["seats"] IN [12] AND TRUE'), true);
    assert.equal(matches('not not properties["beta"]'), true);
  });

  test('an expression over numbers and strings only is constant', () => {
    assert.equal(matches('1', {}), true);
    assert.equal(matches('""', {}), false);
    assert.equal(matches('[]', {}), false);
    assert.equal(matches('-0', {}), false);
  });
});

describe('where: errors name the character and what to write', () => {
  const cases: readonly [string, RegExp][] = [
    ['properties["plan"] = "pro"', /^at character 20: unexpected "=": use "==" to compare$/],
    ['properties["a"] && properties["b"]', /^at character 17: unexpected "&": use "and"/],
    ['properties["a"] || properties["b"]', /^at character 17: unexpected "\|": use "or"/],
    ['!properties["a"]', /^at character 1: unexpected "!": use "not"/],
    ["properties['plan'] == 'pro'", /^at character 12: unexpected "'": strings take double quotes$/],
    ['properties["seats"] + 1 > 2', /^at character 21: unexpected "\+": arithmetic is not supported/],
    ['properties["plan"] == "pro', /^at character 23: this string is not closed/],
    [
      'properties["plan"] == "a\\qb"',
      /^at character 23: this string is not closed, or has an invalid escape/,
    ],
    [
      'properties.plan == "pro"',
      /^at character 11: unexpected "\.": write a property as properties\["name"\]/,
    ],
    ['properties == "pro"', /^at character 12: expected "\[" after "properties"/],
    ['properties[plan] == "pro"', /^at character 12: a property name is a string in double quotes/],
    ['properties["plan" == "pro"', /^at character 19: expected "\]" after the property name, found "=="/],
    ['plan == "pro"', /^at character 1: unknown name "plan": write a property as properties\["plan"\]/],
    ['user["$email"] == "a"', /^at character 1: user\[...\] is not supported/],
    ['number(properties["a"]) > 1', /^at character 1: the function number\(\) is not supported/],
    ['defined properties["a"]', /^at character 9: expected "\(" after "defined", found "properties"/],
    [
      '(properties["a"] == 1',
      /^at character 22: expected "\)" to close the "\(" at character 1, found the end/,
    ],
    ['properties["a"] in [1, 2', /^at character 25: expected "\]" to close the "\[" at character 20/],
    ['1 < properties["a"] < 3', /^at character 21: comparisons do not chain: join them with "and"$/],
    ['properties["a"] == and', /^at character 20: expected a value, found "and"$/],
    ['properties["a"] == -properties["b"]', /^at character 21: a "-" must be followed by a number/],
    [
      'properties["a"] properties["b"]',
      /^at character 17: expected the end of the expression, found "properties"/,
    ],
    ['', /^at character 1: expected a value, found the end of the expression$/],
    ['   ', /^at character 4: expected a value, found the end of the expression$/],
  ];
  for (const [expression, message] of cases)
    test(JSON.stringify(expression), () => assert.match(refused(expression), message));

  test('deep nesting is refused before it exhausts the stack', () => {
    assert.match(refused(`${'('.repeat(100)}true${')'.repeat(100)}`), /nested more than 64 levels deep/);
    assert.match(refused(`${'not '.repeat(100)}true`), /nested more than 64 levels deep/);
    assert.equal(matches(`${'('.repeat(30)}true${')'.repeat(30)}`), true);
  });
});

describe('where: laws (property-based)', () => {
  const jsonValue = fc.oneof(
    fc.constant(null),
    fc.boolean(),
    fc.integer({ min: -50, max: 50 }),
    fc.constantFrom('a', 'b', 'ab', ''),
    fc.array(fc.constantFrom(1, 'a', null), { maxLength: 3 }),
  );
  const properties = fc.dictionary(fc.constantFrom('p', 'q', 'r'), jsonValue) as fc.Arbitrary<Properties>;
  const operand = fc.oneof(
    fc.constantFrom('properties["p"]', 'properties["q"]', 'properties["r"]'),
    jsonValue.map((v) => JSON.stringify(v)),
  );
  const comparison = fc
    .tuple(operand, fc.constantFrom('==', '!=', '<', '<=', '>', '>=', 'in'), operand)
    .map(([a, op, b]) => `${a} ${op} ${b}`);
  const condition: fc.Arbitrary<string> = fc.letrec<{ c: string }>((tie) => ({
    c: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      comparison,
      operand,
      tie('c').map((c) => `not (${c})`),
      fc.tuple(tie('c'), fc.constantFrom('and', 'or'), tie('c')).map(([a, op, b]) => `(${a}) ${op} (${b})`),
    ),
  })).c;

  test('!= is the negation of ==, and not-not is truthiness', () => {
    fc.assert(
      fc.property(operand, operand, properties, (a, b, p) => {
        assert.equal(matches(`${a} != ${b}`, p), !matches(`${a} == ${b}`, p));
        assert.equal(matches(`not not ${a}`, p), matches(a, p));
      }),
    );
  });

  test('De Morgan holds, and and/or agree with the truth of their sides', () => {
    fc.assert(
      fc.property(condition, condition, properties, (a, b, p) => {
        const [x, y] = [matches(a, p), matches(b, p)];
        assert.equal(matches(`(${a}) and (${b})`, p), x && y);
        assert.equal(matches(`(${a}) or (${b})`, p), x || y);
        assert.equal(matches(`not ((${a}) and (${b}))`, p), matches(`not (${a}) or not (${b})`, p));
      }),
    );
  });

  test('a property equals the literal of its own value exactly when the value is not missing', () => {
    fc.assert(
      fc.property(jsonValue, jsonValue, (value, other) => {
        const p = { p: value };
        assert.equal(matches(`properties["p"] == ${JSON.stringify(value)}`, p), true);
        assert.equal(matches(`properties["p"] in [${JSON.stringify(value)}]`, p), true);
        assert.equal(
          matches(`properties["p"] == ${JSON.stringify(other)}`, p),
          JSON.stringify(value) === JSON.stringify(other),
        );
      }),
    );
  });

  test('< and >= are complements for two numbers or two strings, and both false across types', () => {
    fc.assert(
      fc.property(jsonValue, jsonValue, (a, b) => {
        const p = { p: a, q: b };
        const lt = matches('properties["p"] < properties["q"]', p);
        const ge = matches('properties["p"] >= properties["q"]', p);
        const comparable =
          (typeof a === 'number' && typeof b === 'number') ||
          (typeof a === 'string' && typeof b === 'string');
        assert.equal(lt !== ge, comparable);
        if (!comparable) assert.equal(lt || ge, false);
      }),
    );
  });
});
