/**
 * The state bucket's expiration rules, applied to local stores as S3 applies them, so a local run (and
 * a test) sees what a deployment would lose to them. The rules come from the synthesized stack, never
 * from a copy.
 */
import type { ObjectStore } from '../core/object-store.js';
import { DAY_MS } from '../core/windows.js';
import type { EngineStores } from '../engine/stores.js';

/** One expiration rule of the state bucket: objects under `prefix` expire `days` after they were written. */
export interface ExpirationRule {
  readonly prefix: string;
  readonly days: number;
}

/** Where a pipeline's stores sit in the state bucket (see `awsStores`): staging under `staging/`, state under `state/`. */
const STATE_BUCKET_AREAS = { staging: 'staging/', state: 'state/' } as const;

/**
 * Deletes the objects of a pipeline's state and staging that S3 would have expired by `now`: S3 expires
 * an object at the first midnight (UTC) after its write time plus the rule's days. Returns the keys
 * removed, by store.
 */
export async function applyExpiration(
  stores: Pick<EngineStores, 'state' | 'staging'>,
  rules: readonly ExpirationRule[],
  now: number,
): Promise<{ state: string[]; staging: string[] }> {
  const removed = { state: [] as string[], staging: [] as string[] };
  for (const area of ['state', 'staging'] as const) {
    const root = STATE_BUCKET_AREAS[area];
    // A rule covers the whole area when its prefix is a prefix of the area's (rules name no pipeline).
    const days = rules.filter((rule) => root.startsWith(rule.prefix)).map((rule) => rule.days);
    if (days.length === 0) continue;
    removed[area] = await expire(stores[area], Math.min(...days), now);
  }
  return removed;
}

async function expire(store: ObjectStore, days: number, now: number): Promise<string[]> {
  const expired: string[] = [];
  for await (const object of store.list('')) {
    const expiresAt = Math.ceil((object.lastModified + days * DAY_MS) / DAY_MS) * DAY_MS;
    if (expiresAt <= now) expired.push(object.key);
  }
  await store.delete(expired);
  return expired;
}
