/**
 * Reading stored config items whatever their attributes hold: numbers of any size and form, sets,
 * binary, maps, lists, nulls, names JavaScript objects treat specially. The reader never throws, keeps
 * every value as stored, and an item with a bad attribute is invalid, named after that attribute.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import fc from 'fast-check';
import { attributeValueOf, plainItem } from '../../src/adapters/dynamo-config-store.js';
import {
  MAX_STATUS_REASON_CHARS,
  readStoredPipeline,
  reviewStatus,
  type StatusChange,
  storedNumber,
  UnreadableValue,
} from '../../src/core/pipeline-rules.js';
import {
  anyAttributeValue,
  anyName,
  anyNumberText,
  attributeOverrides,
  canonicalValue,
  decimalParts,
  KNOWN_ATTRIBUTES,
  surelyBad,
} from '../support/attribute-values.js';

const NOW = Date.parse('2026-03-15T00:00:00Z');
const BASE: Record<string, AttributeValue> = {
  project_id: { S: 'p1' },
  name: { S: 'main' },
  frequency: { S: 'daily' },
  time_zone: { S: 'UTC' },
  from_date: { S: '2026-01-01' },
  status: { S: 'active' },
  version: { N: '3' },
  created_at: { S: '2026-03-01T00:00:00Z' },
};

describe('storedNumber', () => {
  test('the numbers of the issue: beyond double precision is unreadable, 1E+125 is a number', () => {
    const rounded = storedNumber('12345678901234567.5');
    assert.ok(rounded instanceof UnreadableValue);
    assert.equal(
      rounded.problem,
      'the number 12345678901234567.5 cannot be read exactly: it has more significant digits than a JavaScript number holds (it would read as 12345678901234568)',
    );
    assert.equal(JSON.stringify({ n: rounded }), '{"n":"12345678901234567.5"}');
    assert.deepEqual(rounded.stored, { N: '12345678901234567.5' });
    assert.equal(storedNumber('1E+125'), 1e125);
    assert.equal(storedNumber('007.50'), 7.5);
    assert.equal(storedNumber('0.1'), 0.1);
    assert.equal(storedNumber('9007199254740991'), Number.MAX_SAFE_INTEGER);
    assert.ok(storedNumber('9007199254740993') instanceof UnreadableValue);
  });

  test('the generated numbers are those DynamoDB accepts: at most 38 digits, 1E-130 to 9.99E+125', () => {
    fc.assert(
      fc.property(anyNumberText, (text) => {
        const { digits, exponent } = decimalParts(text);
        if (digits === '') return;
        assert.ok(digits.length <= 38, `${text} has ${digits.length} significant digits`);
        const leading = exponent + digits.length - 1;
        assert.ok(leading >= -130 && leading <= 125, `${text} is 1E${leading}`);
      }),
      { seed: 13, numRuns: 2000, includeErrorInReport: true },
    );
  });

  test('every JavaScript number reads back as itself, in plain or exponent form', () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (value) => {
        // DynamoDB has no negative zero: -0 reads as 0.
        assert.equal(storedNumber(String(value)), value === 0 ? 0 : value);
        assert.equal(storedNumber(value.toExponential()), value === 0 ? 0 : value);
      }),
      { seed: 13, numRuns: 2000, includeErrorInReport: true },
    );
  });

  test('any number DynamoDB holds reads as the same decimal, or as unreadable when JavaScript would change it', () => {
    fc.assert(
      fc.property(anyNumberText, (text) => {
        const read = storedNumber(text);
        const rounded = String(Number(text));
        if (typeof read === 'number') {
          assert.equal(canonicalValue(String(read)), canonicalValue(text), `${text} read as ${read}`);
        } else {
          assert.ok(read instanceof UnreadableValue);
          assert.notEqual(canonicalValue(rounded), canonicalValue(text), `${text} is ${rounded} exactly`);
          assert.equal(read.shown, text);
        }
      }),
      { seed: 13, numRuns: 5000, includeErrorInReport: true },
    );
  });
});

describe('plainItem', () => {
  test('never throws, keeps every name (even "__proto__"), and writes back to the same values', () => {
    fc.assert(
      fc.property(fc.dictionary(anyName, anyAttributeValue, { maxKeys: 6 }), (item) => {
        const plain = plainItem(item);
        assert.deepEqual(Object.keys(plain).sort(), Object.keys(item).sort());
        const written = Object.fromEntries(
          Object.entries(plain).map(([name, value]) => [name, attributeValueOf(value)]),
        );
        assert.deepStrictEqual(plainItem(written), plain);
      }),
      { seed: 13, numRuns: 1000, includeErrorInReport: true },
    );
  });

  test('a map key "__proto__" stays a key', () => {
    const plain = plainItem({ m: { M: Object.fromEntries([['__proto__', { S: 'x' }]]) } });
    const map = plain.m as Record<string, unknown>;
    assert.deepEqual(Object.keys(map), ['__proto__']);
    assert.equal(Object.getPrototypeOf(map), Object.prototype);
  });
});

describe('readStoredPipeline on any stored item', () => {
  test('never throws; a surely bad attribute makes the item invalid, named; the review puts it in error once', () => {
    fc.assert(
      fc.property(attributeOverrides, (changes) => {
        const item = { ...BASE, ...Object.fromEntries(changes) };
        const pipeline = readStoredPipeline(plainItem(item));
        const problems = pipeline.problems ?? [];
        const { project_id: _project, name: _name, ...attributes } = item;
        for (const [name, value] of Object.entries(attributes)) {
          if (!surelyBad(name, value)) continue;
          if (name === 'status') {
            assert.notEqual(pipeline.invalidStatus, undefined, 'a bad status is an invalid status');
            assert.equal(pipeline.management.status, 'paused');
          } else if (KNOWN_ATTRIBUTES.includes(name)) {
            assert.ok(
              problems.some((problem) => problem.startsWith(`${name}:`) || problem.startsWith(`${name}.`)),
              `${name} named in ${JSON.stringify(problems)}`,
            );
          } else {
            assert.ok(
              problems.some((problem) => problem.includes(`"${name}"`)),
              `unknown ${name} named in ${JSON.stringify(problems)}`,
            );
          }
        }
        const change = reviewStatus(pipeline, [], NOW);
        if (pipeline.management.status === 'deleted') {
          assert.equal(change, undefined, 'a deleted pipeline stays deleted');
        } else if (problems.length > 0) {
          assert.equal(change?.status, 'error');
          const reason = change?.status_reason ?? '';
          assert.ok(Array.from(reason).length <= MAX_STATUS_REASON_CHARS, `reason of ${reason.length}`);
          assert.ok(problems.join('; ').startsWith(reason.slice(0, MAX_STATUS_REASON_CHARS / 2)));
          // The review's own writes settle: at most one more rewords the reason once the bad
          // status_reason it replaced is gone.
          let written: Record<string, AttributeValue> = item;
          let next: StatusChange | undefined = change;
          for (let round = 0; next !== undefined; round += 1) {
            assert.ok(round < 2, `the review keeps rewriting: ${JSON.stringify(next)}`);
            const { status_reason: _replaced, ...rest } = written;
            written = {
              ...rest,
              status: { S: next.status },
              ...(next.status_reason === undefined ? {} : { status_reason: { S: next.status_reason } }),
            };
            next = reviewStatus(readStoredPipeline(plainItem(written)), [], NOW);
          }
        } else if (pipeline.invalidStatus !== undefined) {
          assert.equal(change?.status, 'paused');
          assert.match(
            change?.status_reason ?? '',
            /^status .* is not one of active, paused, error, deleted/,
          );
        }
      }),
      { seed: 13, numRuns: 1000, includeErrorInReport: true },
    );
  });

  test('a bad version reads as 0 and is kept as stored for the next write to condition on', () => {
    const pipeline = readStoredPipeline(plainItem({ ...BASE, version: { N: '12345678901234567.5' } }));
    assert.equal(pipeline.management.version, 0);
    assert.deepEqual(attributeValueOf(pipeline.invalidVersion), { N: '12345678901234567.5' });
    assert.deepEqual(pipeline.problems, [
      'version: the number 12345678901234567.5 cannot be read exactly: it has more significant digits than a JavaScript number holds (it would read as 12345678901234568)',
    ]);
    const huge = readStoredPipeline(plainItem({ ...BASE, version: { N: '1E+125' } }));
    assert.deepEqual(huge.problems, ['version: Too big: expected int to be <=9007199254740991']);
    assert.equal(huge.management.version, 0);
  });

  test('an attribute named "__proto__" is an unknown attribute, not a prototype', () => {
    const item = { ...BASE, ...Object.fromEntries([['__proto__', { M: { frequency: { S: 'hourly' } } }]]) };
    const pipeline = readStoredPipeline(plainItem(item));
    assert.deepEqual(pipeline.problems, ['(config): Unrecognized key: "__proto__"']);
    assert.equal(pipeline.config, undefined);
  });

  test('a reason quoting a huge value is cut, the same way each time', () => {
    const zone = 'Z'.repeat(5000);
    const pipeline = readStoredPipeline(plainItem({ ...BASE, time_zone: { S: zone } }));
    const change = reviewStatus(pipeline, [], NOW);
    assert.equal(change?.status, 'error');
    assert.ok((change?.status_reason?.length ?? 0) <= MAX_STATUS_REASON_CHARS);
    assert.match(
      change?.status_reason ?? '',
      /^time_zone: unknown time zone "ZZZ.*\.\.\. \(\d+ more characters\)$/,
    );
    const written = readStoredPipeline(
      plainItem({
        ...BASE,
        time_zone: { S: zone },
        status: { S: 'error' },
        status_reason: { S: change?.status_reason ?? '' },
      }),
    );
    assert.equal(reviewStatus(written, [], NOW), undefined);
  });
});
