/**
 * Identity mappings (docs/contract.md#identity): the landing-zone forms that link distinct ids, and the
 * union-find that resolves chains and merges to one canonical id per cluster. Pure: the ingest
 * validates with `parseIdentityLine`, snapshot steps fold with `IdentityFold`.
 *
 * The canonical id, deterministically: links are applied in order (`time`, then arrival); when a link
 * joins two clusters, the new cluster keeps the canonical id of the link's target cluster (the
 * `$identified_id` of `$identify`, the `distinct_id` of `$create_alias`, the `resolved_distinct_id` of
 * an explicit mapping); `$merge` has no target, and the lexicographically smallest canonical id wins.
 */
import { timeMsOf } from './event-line.js';
import {
  idOf,
  isPlainObject,
  type JsonLineProblem,
  ownField,
  parseObjectLine,
  type Rejected,
  rejectedLine,
} from './json-line.js';

/** One validated link between distinct ids. */
export interface IdentityLink {
  /** Every id the link names, distinct: two or more, or one for a link of an id to itself. */
  readonly ids: readonly string[];
  /** The id whose cluster's canonical id the joined cluster keeps; absent for `$merge`. */
  readonly target?: string;
  /** The link's `time` in epoch ms, when the line has one. */
  readonly timeMs?: number;
}

export type IdentityLineProblem = JsonLineProblem | 'not_an_identity_event' | 'missing_id' | 'invalid_time';

type Parsed = { readonly ok: true; readonly link: IdentityLink } | Rejected<IdentityLineProblem>;

/**
 * Validates one identity line: `$identify` (`$anon_id` -> `$identified_id`), `$create_alias` (`alias`
 * -> `distinct_id`), `$merge` (`$distinct_ids`, two or more) as events with `properties`, or an explicit
 * mapping `{"distinct_id", "resolved_distinct_id"}`. `time` is optional.
 */
export function parseIdentityLine(line: Buffer): Parsed {
  const parsed = parseObjectLine(line);
  if (!parsed.ok) return parsed;
  const value = parsed.value;
  const event = ownField(value, 'event');
  if (event === undefined && ownField(value, 'resolved_distinct_id') !== undefined)
    return directed(value, 'distinct_id', 'resolved_distinct_id', 'time');
  const props = ownField(value, 'properties');
  if (!isPlainObject(props))
    return rejectedLine(
      'not_an_identity_event',
      'expected an event with "properties", or {"distinct_id", "resolved_distinct_id"}',
    );
  switch (event) {
    case '$identify':
      return directed(props, '$anon_id', '$identified_id', 'time', 'properties.');
    case '$create_alias':
      return directed(props, 'alias', 'distinct_id', 'time', 'properties.');
    case '$merge': {
      const list = ownField(props, '$distinct_ids');
      const ids = Array.isArray(list) ? list.map(idOf) : [];
      if (ids.some((id) => id === undefined) || unique(ids as string[]).length < 2)
        return rejectedLine('missing_id', '"properties.$distinct_ids" must list two or more distinct ids');
      return withTime(props, 'time', 'properties.', { ids: unique(ids as string[]) });
    }
    default:
      return rejectedLine(
        'not_an_identity_event',
        `"event" is ${JSON.stringify(event) ?? 'missing'}; expected $identify, $create_alias or $merge`,
      );
  }
}

function directed(
  fields: Record<string, unknown>,
  from: string,
  to: string,
  time: string,
  path = '',
): Parsed {
  const source = idOf(ownField(fields, from));
  const target = idOf(ownField(fields, to));
  if (source === undefined || target === undefined)
    return rejectedLine(
      'missing_id',
      `"${path}${source === undefined ? from : to}" must be a non-empty string or a number`,
    );
  return withTime(fields, time, path, { ids: unique([source, target]), target });
}

function withTime(fields: Record<string, unknown>, name: string, path: string, link: IdentityLink): Parsed {
  const time = ownField(fields, name);
  if (time === undefined) return { ok: true, link };
  const ms = typeof time === 'number' ? timeMsOf(time) : 'not a number';
  if (typeof ms === 'string')
    return rejectedLine('invalid_time', `"${path}${name}" must be epoch seconds or milliseconds (${ms})`);
  return { ok: true, link: { ...link, timeMs: ms } };
}

function unique(ids: readonly string[]): string[] {
  return [...new Set(ids)];
}

/**
 * Folds links into an identity table without holding the table: it starts from the current canonical
 * id of every id the links name (looked up beforehand) and records which canonical ids lost to
 * another, so one streaming pass over the table can rewrite it.
 */
export class IdentityFold {
  private readonly parent = new Map<string, string>();
  private readonly added = new Set<string>();

  /** `current`: the canonical id of each id the links name that the table already has. */
  constructor(private readonly current: ReadonlyMap<string, string>) {}

  /** Applies one link (in order). */
  apply(link: IdentityLink): void {
    const roots = unique(link.ids.map((id) => this.find(this.node(id))));
    if (roots.length < 2) return;
    const winner =
      link.target === undefined ? (roots.sort()[0] as string) : this.find(this.node(link.target));
    for (const root of roots) if (root !== winner) this.parent.set(root, winner);
  }

  /** The canonical id now of a canonical id the table held before (itself unless its cluster joined another). */
  resolve(canonical: string): string {
    return this.find(canonical);
  }

  /** Canonical ids the table held that lost to another, and the canonical id each now resolves to. */
  *remapped(): Iterable<[string, string]> {
    for (const id of this.parent.keys()) if (!this.added.has(id)) yield [id, this.find(id)];
  }

  /** Ids the table did not have, with their canonical ids. */
  *newIds(): Iterable<[string, string]> {
    for (const id of this.added) yield [id, this.find(id)];
  }

  private node(id: string): string {
    const canonical = this.current.get(id);
    if (canonical !== undefined) return canonical;
    this.added.add(id);
    return id;
  }

  private find(id: string): string {
    let root = id;
    for (let next = this.parent.get(root); next !== undefined; next = this.parent.get(root)) root = next;
    // Path compression keeps later finds short.
    for (let node = id; node !== root; ) {
      const next = this.parent.get(node) as string;
      this.parent.set(node, root);
      node = next;
    }
    return root;
  }
}
