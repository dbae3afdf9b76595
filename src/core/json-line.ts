import { isUtf8 } from 'node:buffer';

/** Why a landing-zone line is not a JSON object (shared by every data source). */
export type JsonLineProblem = 'empty_line' | 'invalid_utf8' | 'invalid_json' | 'not_an_object';

/** A line that goes to quarantine, with the reason and a human-readable detail. */
export interface Rejected<Reason extends string> {
  readonly ok: false;
  readonly reason: Reason;
  readonly detail: string;
}

export function rejectedLine<Reason extends string>(reason: Reason, detail: string): Rejected<Reason> {
  return { ok: false, reason, detail };
}

/** Decodes and parses a line; the value may be any JSON value. */
export function parseJsonValue(
  line: Buffer,
): { readonly ok: true; readonly value: unknown } | Rejected<JsonLineProblem> {
  if (!isUtf8(line)) return rejectedLine('invalid_utf8', 'the line is not valid UTF-8');
  const text = line.toString('utf8');
  // Only JSON's own whitespace makes a line empty; anything else is invalid JSON.
  if (/^[ \t\r\n]*$/.test(text)) return rejectedLine('empty_line', 'the line is empty or only whitespace');
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (err) {
    return rejectedLine('invalid_json', err instanceof Error ? err.message : String(err));
  }
}

/** Parses a line that must hold one JSON object. */
export function parseObjectLine(
  line: Buffer,
): { readonly ok: true; readonly value: Record<string, unknown> } | Rejected<JsonLineProblem> {
  const parsed = parseJsonValue(line);
  if (!parsed.ok) return parsed;
  if (!isPlainObject(parsed.value))
    return rejectedLine('not_an_object', `the line is ${describeValue(parsed.value)}, not an object`);
  return { ok: true, value: parsed.value };
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `null`, `an array`, `a string`...: what a value is, for messages. */
export function describeValue(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
}

/** An own field of a parsed object (never one inherited from `Object.prototype`). */
export function ownField(obj: object, name: string): unknown {
  return Object.hasOwn(obj, name) ? (obj as Record<string, unknown>)[name] : undefined;
}

/** A distinct id as the vendor accepts it: a non-empty string, or a finite number written as text. */
export function idOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value === '' ? undefined : value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

/**
 * JSON with object keys sorted, so deep-equal values compare equal as text. Iterative: a value nested
 * thousands of levels deep (which `JSON.parse` accepts) must not exhaust the stack.
 */
export function canonicalJson(value: unknown): string {
  let out = '';
  const work: ({ readonly text: string } | { readonly value: unknown })[] = [{ value }];
  for (let next = work.pop(); next !== undefined; next = work.pop()) {
    if ('text' in next) {
      out += next.text;
      continue;
    }
    const v = next.value;
    if (Array.isArray(v)) {
      work.push({ text: ']' });
      for (let i = v.length - 1; i >= 0; i -= 1) {
        work.push({ value: v[i] });
        if (i > 0) work.push({ text: ',' });
      }
      work.push({ text: '[' });
    } else if (isPlainObject(v)) {
      const keys = Object.keys(v).sort();
      work.push({ text: '}' });
      for (let i = keys.length - 1; i >= 0; i -= 1) {
        work.push({ value: v[keys[i]!] });
        work.push({ text: `${i > 0 ? ',' : ''}${JSON.stringify(keys[i])}:` });
      }
      work.push({ text: '{' });
    } else out += JSON.stringify(v) ?? 'null';
  }
  return out;
}

/** True when `value` has arrays or objects nested more than `limit` levels deep (checked iteratively). */
export function nestedDeeperThan(value: unknown, limit: number): boolean {
  const work: [unknown, number][] = [[value, 0]];
  for (let next = work.pop(); next !== undefined; next = work.pop()) {
    const [v, depth] = next;
    if (typeof v !== 'object' || v === null) continue;
    if (depth + 1 > limit) return true;
    for (const child of Object.values(v)) work.push([child, depth + 1]);
  }
  return false;
}
