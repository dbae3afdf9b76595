/**
 * Generators of DynamoDB attribute values: every kind DynamoDB holds (S, N, B, BOOL, NULL, SS, NS, BS,
 * L, M), within what DynamoDB accepts (moto accepts more): numbers of 1-38 significant digits with
 * magnitudes from 1E-130 to 9.99E+125, in any form (exponent or not, leading and trailing zeros), sets
 * non-empty without duplicates, names non-empty, nesting up to 32 levels, strings of any Unicode scalar
 * values, empty strings and binaries included.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import fc from 'fast-check';

/** DynamoDB's deepest nesting of lists and maps. */
const MAX_NESTING = 32;

/** Strings of any Unicode scalar values (DynamoDB stores UTF-8), empty included. */
export const anyString = fc.string({ unit: 'binary', maxLength: 24 });

/** Numbers that sit on the edges: beyond double precision, exponent forms, the extremes. */
const EDGE_NUMBERS = [
  '12345678901234567.5',
  '1E+125',
  '9.9999999999999999999999999999999999999E+125',
  '-9.9999999999999999999999999999999999999E+125',
  '1E-130',
  '-1E-130',
  '9007199254740991',
  '9007199254740992',
  '9007199254740993',
  '-9007199254740993',
  '0.1',
  '0.30000000000000004',
  '0',
  '-0',
  '1e21',
  '2E+6',
  '5E+0',
  '1.0',
  '007.50',
  '0.000',
  '0E+5',
  '1.0000000000000000001',
  '9007199254740991.4',
  '2097152.00000000000000000001',
];

/**
 * Decimal text DynamoDB accepts: up to 38 significant digits, the leading one between 1E-130 and
 * 9.99E+125, written with or without a point and an exponent, padded with zeros or not.
 */
export const anyNumberText: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...EDGE_NUMBERS),
  fc
    .record({
      negative: fc.boolean(),
      first: fc.integer({ min: 1, max: 9 }),
      rest: fc.string({ unit: fc.constantFrom(...'0123456789'), maxLength: 37 }),
      point: fc.nat(),
      leadingZeros: fc.nat({ max: 3 }),
      magnitude: fc.integer({ min: -130, max: 125 }),
      exponentForm: fc.constantFrom('', 'E', 'e', 'E+', 'e-'),
    })
    .map(({ negative, first, rest, point, leadingZeros, magnitude, exponentForm }) => {
      const digits = `${first}${rest}`;
      const pointAt = point % (digits.length + 1);
      // The leading digit sits at 10^(pointAt - 1) before the exponent: choose it to reach `magnitude`.
      let exponent = magnitude - (pointAt - 1);
      const body =
        pointAt === 0
          ? `0.${digits}`
          : pointAt === digits.length
            ? digits
            : `${digits.slice(0, pointAt)}.${digits.slice(pointAt)}`;
      let text = `${'0'.repeat(leadingZeros)}${body}`;
      if (exponentForm === '') {
        // Plain form: shift the point by writing zeros (only for moderate magnitudes).
        if (exponent > 0 && exponent <= 40 && !text.includes('.')) text += '0'.repeat(exponent);
        else if (exponent !== 0) text += `E${exponent}`;
        exponent = 0;
      } else if (exponentForm === 'e-' && exponent > 0) text += `e+${exponent}`;
      else if (exponentForm === 'E+' && exponent >= 0) text += `E+${exponent}`;
      else text += `${exponentForm.slice(0, 1)}${exponent}`;
      return `${negative ? '-' : ''}${text}`;
    }),
);

const anyBytes = fc.uint8Array({ maxLength: 16 });

/** Distinct numbers by value (DynamoDB refuses a set with `1` and `1.0`). */
const numberSet = fc.uniqueArray(anyNumberText, {
  minLength: 1,
  maxLength: 5,
  selector: (text) => canonicalValue(text),
});

/** A decimal's exact value as a comparable string (test-side, independent of the code under test). */
export function canonicalValue(text: string): string {
  const { negative, digits, exponent } = decimalParts(text);
  return digits === '' ? '0' : `${negative ? '-' : ''}${digits}e${exponent}`;
}

/** A decimal as sign, significant digits (no leading or trailing zeros) and the exponent of the last. */
export function decimalParts(text: string): { negative: boolean; digits: string; exponent: number } {
  const match = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (match === null) throw new Error(`not a decimal: ${text}`);
  const [, sign = '', whole = '', fraction = '', exponent = '0'] = match;
  const all = `${whole}${fraction}`.replace(/^0+/, '');
  const digits = all.replace(/0+$/, '');
  return {
    negative: sign === '-' && digits !== '',
    digits,
    exponent: Number(exponent) - fraction.length + (all.length - digits.length),
  };
}

/** Scalar attribute values of every scalar and set kind. */
const scalarValue: fc.Arbitrary<AttributeValue> = fc.oneof(
  anyString.map((S) => ({ S })),
  anyNumberText.map((N) => ({ N })),
  anyBytes.map((B) => ({ B })),
  fc.boolean().map((BOOL) => ({ BOOL })),
  fc.constant({ NULL: true }),
  fc.uniqueArray(anyString, { minLength: 1, maxLength: 5 }).map((SS) => ({ SS })),
  numberSet.map((NS) => ({ NS })),
  fc
    .uniqueArray(anyBytes, { minLength: 1, maxLength: 4, selector: (bytes) => bytes.join(',') })
    .map((BS) => ({ BS })),
);

/** Names of attributes and map keys: any non-empty string, and the ones JavaScript objects treat specially. */
export const anyName: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'binary', minLength: 1, maxLength: 12 }),
  fc.constantFrom('__proto__', 'constructor', 'toString', 'valueOf', 'toJSON', 'hasOwnProperty'),
);

/** Any attribute value, lists and maps nested a few levels (deeper nesting: see `deepValue`). */
export const anyAttributeValue: fc.Arbitrary<AttributeValue> = fc.letrec<{ value: AttributeValue }>(
  (tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      scalarValue,
      fc.array(tie('value'), { maxLength: 4 }).map((L) => ({ L })),
      fc
        .uniqueArray(fc.tuple(anyName, tie('value')), { maxLength: 4, selector: ([name]) => name })
        .map((entries) => ({ M: Object.fromEntries(entries) })),
    ),
  }),
).value;

/** A value nested as deep as DynamoDB allows, as lists and maps. */
export const deepValue: fc.Arbitrary<AttributeValue> = fc
  .tuple(scalarValue, fc.array(fc.tuple(fc.boolean(), anyName), { minLength: 1, maxLength: MAX_NESTING }))
  .map(([inner, levels]) =>
    levels.reduce<AttributeValue>(
      (value, [asList, name]) => (asList ? { L: [value] } : { M: Object.fromEntries([[name, value]]) }),
      inner,
    ),
  );

/** A large string (tens of kilobytes), as a value or a name would hold. */
export const largeString: fc.Arbitrary<string> = fc
  .tuple(fc.string({ unit: 'binary', minLength: 1, maxLength: 4 }), fc.integer({ min: 1000, max: 3500 }))
  .map(([piece, times]) => piece.repeat(times));

/** The attribute kind each known attribute must have (test-side, from the README's field list). */
const KINDS: Readonly<Record<string, string>> = {
  data_source: 'S',
  frequency: 'S',
  sync: 'BOOL',
  time_zone: 'S',
  from_date: 'S',
  to_date: 'S',
  event_names: 'L',
  where: 'S',
  part_max_bytes: 'N',
  format: 'S',
  compression: 'S',
  compression_level: 'N',
  trial: 'BOOL',
  s3_bucket: 'S',
  s3_prefix: 'S',
  s3_region: 'S',
  s3_role: 'S',
  s3_external_id: 'S',
  s3_encryption: 'S',
  s3_kms_key_id: 'S',
  status: 'S',
  status_reason: 'S',
  version: 'N',
  created_at: 'S',
  updated_at: 'S',
  trial_started_at: 'S',
};
/** Every attribute name a config item may have besides its key. */
export const KNOWN_ATTRIBUTES = Object.keys(KINDS);

/** True when `text` is a whole number JavaScript holds exactly (|n| <= 2^53 - 1). */
function exactSafeInteger(text: string): boolean {
  const { digits, exponent } = decimalParts(text);
  if (digits === '') return true;
  if (exponent < 0 || exponent > 20) return false;
  return BigInt(digits) * 10n ** BigInt(exponent) <= BigInt(Number.MAX_SAFE_INTEGER);
}

/**
 * Whether a value surely cannot be valid for the attribute, decided from kinds alone: an unknown name,
 * the wrong kind, a number that is not a safe whole number, a list of names holding a non-string.
 */
export function surelyBad(name: string, value: AttributeValue): boolean {
  if (!Object.hasOwn(KINDS, name)) return true;
  const kind = Object.keys(value)[0];
  if (kind !== KINDS[name]) return true;
  if (value.N !== undefined) return !exactSafeInteger(value.N);
  if (value.L !== undefined) return value.L.some((member) => member.S === undefined);
  return false;
}

/**
 * Values a field may validly hold (and some it may not), so that edited items are sometimes valid.
 * Dates stay near 2024-03: the dispatcher's cost grows with a pipeline's history (a separate item).
 */
const fieldValue: fc.Arbitrary<AttributeValue> = fc.constantFrom<AttributeValue>(
  ...['hourly', 'daily', 'weekly', 'people', 'identity', 'events', 'UTC', 'Asia/Kolkata', 'Mars/Olympus'].map(
    (S) => ({ S }),
  ),
  ...['2024-03-01', '2024-03-09', '2024-02-30', '2024-03-10T00:00:00Z', 'yesterday'].map((S) => ({ S })),
  ...['active', 'paused', 'error', 'deleted', 'Active', 'aes', 'kms', 'none'].map((S) => ({ S })),
  ...['exports/a', '/leading', 'my-bucket', 'Bad_Bucket', 'us-east-1', 'properties["plan"] == "pro"'].map(
    (S) => ({ S }),
  ),
  ...['0', '1', '7', '9', '10', '2097152', '-1', '1.5', '12345678901234567.5', '1E+125'].map((N) => ({ N })),
  // Near whole numbers that JavaScript would round to a valid value.
  ...['7.0000000000000000001', '2097152.00000000000000000001', '9007199254740991.4'].map((N) => ({ N })),
  { BOOL: true },
  { BOOL: false },
  { L: [{ S: 'Purchase' }] },
  { L: [] },
);

const attributeName = fc.oneof(fc.constantFrom(...KNOWN_ATTRIBUTES), anyName);

/** One large attribute: a large value, or a large name (an item holds at most 400 KB, so only one). */
const largeOverride: fc.Arbitrary<[string, AttributeValue]> = fc.oneof(
  fc.tuple(
    attributeName,
    largeString.map((S): AttributeValue => ({ S })),
  ),
  fc.tuple(largeString, anyAttributeValue),
);

/**
 * Attribute overrides of an item: known names and any others, any values (field values, deep and
 * large ones too). The key attributes stay: they name the item.
 */
export const attributeOverrides: fc.Arbitrary<[string, AttributeValue][]> = fc
  .tuple(
    fc.array(
      fc.tuple(
        attributeName,
        fc.oneof(
          { weight: 6, arbitrary: anyAttributeValue },
          { weight: 2, arbitrary: fieldValue },
          { weight: 1, arbitrary: deepValue },
        ),
      ),
      { maxLength: 4 },
    ),
    fc.option(largeOverride, { freq: 5 }),
  )
  .map(([small, large]) => (large === null ? small : [...small, large]))
  .filter((changes) => changes.length > 0)
  .map((changes) => changes.filter(([name]) => name !== 'project_id' && name !== 'name'));
