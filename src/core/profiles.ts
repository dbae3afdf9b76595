/**
 * User profiles (docs/contract.md#profile-updates): the vendor's engage-format updates, how a landing-zone
 * line is validated, and what each operation does to a profile. Pure: the ingest validates with these
 * functions and the snapshot tasks fold with them.
 */
import { timeMsOf } from './event-line.js';
import {
  canonicalJson,
  idOf,
  isPlainObject,
  type JsonLineProblem,
  nestedDeeperThan,
  ownField,
  parseObjectLine,
  type Rejected,
  rejectedLine,
} from './json-line.js';

/** The operations, in the order the vendor documents them. */
export const PROFILE_OPERATIONS = [
  '$set',
  '$set_once',
  '$unset',
  '$add',
  '$append',
  '$union',
  '$remove',
  '$delete',
] as const;
export type ProfileOperation = (typeof PROFILE_OPERATIONS)[number];
const OPERATIONS: ReadonlySet<string> = new Set(PROFILE_OPERATIONS);

export type Properties = Record<string, unknown>;

/** One validated operation: `$unset` lists property names, `$delete` has no value, the rest an object. */
export type Operation =
  | readonly ['$set' | '$set_once' | '$append' | '$union' | '$remove', Properties]
  | readonly ['$add', Readonly<Record<string, number>>]
  | readonly ['$unset', readonly string[]]
  | readonly ['$delete'];

/** A valid profile update: whose profile, when (`$time`, when given), and its operations in line order. */
export interface ProfileUpdate {
  readonly distinctId: string;
  /** `$time` in epoch ms (seconds below 1e11, as for events); absent when the line has none. */
  readonly timeMs?: number;
  readonly operations: readonly Operation[];
}

/**
 * Deepest nesting of an operation's values: profiles are written back with `JSON.stringify`, which
 * overflows the stack a few thousand levels down; no real profile comes near this.
 */
export const MAX_VALUE_DEPTH = 100;

export type ProfileLineProblem =
  | JsonLineProblem
  | 'missing_distinct_id'
  | 'invalid_time'
  | 'no_operation'
  | 'invalid_operation';

/**
 * Validates one engage-format line: `$distinct_id` (string or number), optional `$time`, and one or more
 * operations applied in the order the line lists them. Other keys (`$token`, `$ip`, `$ignore_time`...)
 * are ignored.
 */
export function parseProfileUpdate(
  line: Buffer,
): { readonly ok: true; readonly update: ProfileUpdate } | Rejected<ProfileLineProblem> {
  const parsed = parseObjectLine(line);
  if (!parsed.ok) return parsed;
  const value = parsed.value;
  const distinctId = idOf(ownField(value, '$distinct_id'));
  if (distinctId === undefined)
    return rejectedLine('missing_distinct_id', '"$distinct_id" must be a non-empty string or a number');
  const time = ownField(value, '$time');
  let timeMs: number | undefined;
  if (time !== undefined) {
    const ms = typeof time === 'number' ? timeMsOf(time) : 'not a number';
    if (typeof ms === 'string')
      return rejectedLine('invalid_time', `"$time" must be epoch seconds or milliseconds (${ms})`);
    timeMs = ms;
  }
  const operations: Operation[] = [];
  for (const key of Object.keys(value)) {
    if (!OPERATIONS.has(key)) continue;
    if (nestedDeeperThan(value[key], MAX_VALUE_DEPTH))
      return rejectedLine(
        'invalid_operation',
        `"${key}" nests values more than ${MAX_VALUE_DEPTH} levels deep`,
      );
    const operation = operationOf(key as ProfileOperation, value[key]);
    if (typeof operation === 'string') return rejectedLine('invalid_operation', `"${key}" ${operation}`);
    operations.push(operation);
  }
  if (operations.length === 0)
    return rejectedLine('no_operation', `the update has none of ${PROFILE_OPERATIONS.join(', ')}`);
  return { ok: true, update: { distinctId, ...(timeMs === undefined ? {} : { timeMs }), operations } };
}

function operationOf(name: ProfileOperation, value: unknown): Operation | string {
  switch (name) {
    case '$delete':
      return ['$delete'];
    case '$unset':
      if (!Array.isArray(value) || !value.every((v) => typeof v === 'string'))
        return 'must be a list of property names';
      return ['$unset', value as string[]];
    case '$add': {
      if (!isPlainObject(value)) return 'must be an object of property: number';
      const bad = Object.keys(value).find((k) => typeof value[k] !== 'number' || !Number.isFinite(value[k]));
      if (bad !== undefined) return `must add numbers: ${JSON.stringify(bad)} is not a finite number`;
      return ['$add', value as Record<string, number>];
    }
    case '$union': {
      if (!isPlainObject(value)) return 'must be an object of property: list';
      const bad = Object.keys(value).find((k) => !Array.isArray(value[k]));
      if (bad !== undefined) return `must give lists: ${JSON.stringify(bad)} is not a list`;
      return ['$union', value];
    }
    default:
      if (!isPlainObject(value)) return 'must be an object of property: value';
      return [name, value];
  }
}

/** What folding updates into profiles did, for run records. */
export interface FoldCounts {
  /** Updates applied (each counts once, however many operations it has). */
  updates: number;
  /** Profiles that did not exist before and do after. */
  created: number;
  /** Profiles removed by `$delete`. */
  deleted: number;
  /**
   * Operations on a property of the wrong type, left as they were: `$add` to a non-number, `$append`,
   * `$union` or `$remove` on a non-list.
   */
  skipped: number;
}

export function emptyFoldCounts(): FoldCounts {
  return { updates: 0, created: 0, deleted: 0, skipped: 0 };
}

/**
 * Applies one update to a profile (`undefined`: no profile) and returns the result (`undefined`: the
 * profile does not exist). `profile` is changed in place when it exists. Semantics:
 * - `$set` overwrites; `$set_once` sets only properties the profile does not have;
 * - `$unset` removes properties; `$delete` removes the whole profile (a later update starts a new one);
 * - `$add` adds to a number (a missing property counts as 0);
 * - `$append` adds one value to the end of a list; `$union` adds the values a list lacks (deep
 *   equality), keeping one of each; `$remove` removes every element equal to the value;
 * - `$unset`, `$remove` and `$delete` never create a profile; the other operations do.
 */
export function applyUpdate(
  profile: Properties | undefined,
  update: ProfileUpdate,
  counts: FoldCounts,
): Properties | undefined {
  counts.updates += 1;
  let current = profile;
  for (const operation of update.operations) {
    if (operation[0] === '$delete') {
      if (current !== undefined) counts.deleted += 1;
      current = undefined;
      continue;
    }
    if (current === undefined) {
      if (operation[0] === '$unset' || operation[0] === '$remove') continue;
      current = {};
      counts.created += 1;
    }
    applyOperation(current, operation, counts);
  }
  return current;
}

function applyOperation(
  profile: Properties,
  operation: Exclude<Operation, readonly ['$delete']>,
  counts: FoldCounts,
): void {
  switch (operation[0]) {
    case '$set':
      for (const [k, v] of Object.entries(operation[1])) put(profile, k, v);
      return;
    case '$set_once':
      for (const [k, v] of Object.entries(operation[1])) if (!Object.hasOwn(profile, k)) put(profile, k, v);
      return;
    case '$unset':
      for (const k of operation[1]) delete profile[k];
      return;
    case '$add':
      for (const [k, n] of Object.entries(operation[1])) {
        const existing = Object.hasOwn(profile, k) ? profile[k] : 0;
        if (typeof existing === 'number') put(profile, k, existing + n);
        else counts.skipped += 1;
      }
      return;
    case '$append':
      for (const [k, v] of Object.entries(operation[1])) {
        const list = listProperty(profile, k);
        if (list === undefined) counts.skipped += 1;
        else list.push(v);
      }
      return;
    case '$union':
      for (const [k, values] of Object.entries(operation[1])) {
        const list = listProperty(profile, k);
        if (list === undefined) {
          counts.skipped += 1;
          continue;
        }
        const present = new Set(list.map(canonicalJson));
        for (const v of values as unknown[]) {
          const text = canonicalJson(v);
          if (present.has(text)) continue;
          present.add(text);
          list.push(v);
        }
      }
      return;
    case '$remove':
      for (const [k, v] of Object.entries(operation[1])) {
        if (!Object.hasOwn(profile, k)) continue;
        const list = profile[k];
        if (!Array.isArray(list)) {
          counts.skipped += 1;
          continue;
        }
        const text = canonicalJson(v);
        put(
          profile,
          k,
          list.filter((element) => canonicalJson(element) !== text),
        );
      }
      return;
  }
}

/** The list at `profile[key]`, created empty when missing; `undefined` when it holds something else. */
function listProperty(profile: Properties, key: string): unknown[] | undefined {
  if (!Object.hasOwn(profile, key)) put(profile, key, []);
  const value = profile[key];
  return Array.isArray(value) ? value : undefined;
}

/**
 * Merges the profile of an identity that now resolves to another into the resolved one: properties the
 * resolved profile has win; the others are taken over (as `$set_once` would).
 */
export function mergeProfile(into: Properties | undefined, from: Properties): Properties {
  const merged = into ?? {};
  for (const [k, v] of Object.entries(from)) if (!Object.hasOwn(merged, k)) put(merged, k, v);
  return merged;
}

/** Sets an own property, also one named `__proto__` (which plain assignment would not create). */
function put(profile: Properties, key: string, value: unknown): void {
  if (key === '__proto__')
    Object.defineProperty(profile, key, { value, enumerable: true, writable: true, configurable: true });
  else profile[key] = value;
}

/**
 * The shard of the profile table that holds a profile, by FNV-1a of its key (the id's JSON text).
 * Stored state depends on it: it must never change.
 */
export function profileShard(key: string, shards: number): number {
  return fnv1a(key) % shards;
}

/**
 * A 30-bit digest of an id (a small integer, which a Set holds unboxed): sets of a million ids fit in
 * a fifth of the memory their strings take. Distinct ids may share a digest.
 */
export function idDigest(idText: string): number {
  return fnv1a(idText) >>> 2;
}

/** FNV-1a over UTF-16 code units, unsigned 32 bits. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}
