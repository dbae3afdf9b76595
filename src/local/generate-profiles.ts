/**
 * Generates landing-zone data for people and identity pipelines: engage-format profile updates with
 * every operation (some for anonymous ids that are identified later, some with a `$time` older than
 * other updates of their hour), and identity events (`$identify`, `$create_alias`, `$merge`, explicit
 * mappings), with malformed lines in both. Seeded, so the same options always give the same bytes.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { rawHourPrefix } from '../core/layout.js';
import type { SnapshotSource } from '../core/pipeline-config.js';
import { Random } from './generate.js';

const HOUR = 3_600_000;

export interface ProfileLandingZoneOptions {
  readonly rawDir: string;
  readonly projectId: string;
  readonly seed: number;
  /** First arrival hour (UTC, ms). */
  readonly start: number;
  readonly hours: number;
  /** Profile updates per arrival hour. */
  readonly updatesPerHour: number;
  /** Distinct users the updates are about. */
  readonly users: number;
}

export interface ProfileLandingZoneStats {
  readonly updates: number;
  readonly identityEvents: number;
  readonly malformed: number;
}

const PLANS = ['free', 'pro', 'team', 'enterprise'];
const CITIES = ['Lisbon', 'Kathmandu', 'New York', 'Oslo', 'Lagos', 'Lima'];
const TAGS = ['beta', 'newsletter', 'mobile', 'desktop', 'churn-risk'];

/** Writes `hours` arrival-hour folders of people and identity data under `rawDir`. */
export async function generateProfileLandingZone(
  options: ProfileLandingZoneOptions,
): Promise<ProfileLandingZoneStats> {
  const rng = new Random(options.seed);
  const identified = new Set<number>();
  let updates = 0;
  let identityEvents = 0;
  let malformed = 0;
  for (let h = 0; h < options.hours; h += 1) {
    const hour = options.start + h * HOUR;
    const people: string[] = [];
    const identity: string[] = [];
    for (let i = 0; i < options.updatesPerHour; i += 1) {
      const user = rng.int(0, options.users - 1);
      // Users not identified yet act under their device id; identifying them later merges the profiles.
      const distinctId = identified.has(user) || rng.chance(0.5) ? `user-${user}` : `device-${user}`;
      // A quarter of the updates were made earlier in the hour than the line before them.
      const timeMs = hour + rng.int(0, HOUR - 1) - (rng.chance(0.25) ? rng.int(0, 20 * 60_000) : 0);
      people.push(
        JSON.stringify({ $token: 'demo', $distinct_id: distinctId, $time: timeMs, ...operation(rng) }),
      );
      updates += 1;
      if (distinctId.startsWith('device-') && rng.chance(0.3)) {
        identified.add(user);
        identity.push(identityEvent(rng, user, hour));
        identityEvents += 1;
      }
    }
    if (rng.chance(0.3)) {
      // Two users found to be one person.
      const a = rng.int(0, options.users - 1);
      const b = rng.int(0, options.users - 1);
      identity.push(
        JSON.stringify({
          event: '$merge',
          properties: { $distinct_ids: [`user-${a}`, `user-${b}`], time: hour },
        }),
      );
      identityEvents += 1;
    }
    if (rng.chance(0.2)) {
      people.push('{"$distinct_id": "broken", "$set": ', JSON.stringify({ $distinct_id: 'no-operation' }));
      identity.push(JSON.stringify({ event: '$identify', properties: { $anon_id: 'lonely' } }));
      malformed += 3;
    }
    await writeHour(options, hour, 'people', people, rng.chance(0.5));
    await writeHour(options, hour, 'identity', identity, false);
  }
  return { updates, identityEvents, malformed };
}

function operation(rng: Random): Record<string, unknown> {
  const roll = rng.next();
  if (roll < 0.35)
    return { $set: { plan: rng.pick(PLANS), city: rng.pick(CITIES), $name: `Person ${rng.hex(4)}` } };
  if (roll < 0.45) return { $set_once: { first_seen_city: rng.pick(CITIES), signup_plan: rng.pick(PLANS) } };
  if (roll < 0.65) return { $add: { logins: 1, spent: rng.int(1, 500) / 10 } };
  if (roll < 0.72) return { $append: { pages: `/p/${rng.int(1, 40)}` } };
  if (roll < 0.84) return { $union: { tags: [rng.pick(TAGS), rng.pick(TAGS)] } };
  if (roll < 0.9) return { $remove: { tags: rng.pick(TAGS) } };
  if (roll < 0.97) return { $unset: ['city'] };
  return { $delete: '' };
}

function identityEvent(rng: Random, user: number, hour: number): string {
  const time = hour + rng.int(0, HOUR - 1);
  const roll = rng.next();
  if (roll < 0.6)
    return JSON.stringify({
      event: '$identify',
      properties: { $anon_id: `device-${user}`, $identified_id: `user-${user}`, time },
    });
  if (roll < 0.8)
    return JSON.stringify({
      event: '$create_alias',
      properties: { alias: `device-${user}`, distinct_id: `user-${user}`, time },
    });
  return JSON.stringify({ distinct_id: `device-${user}`, resolved_distinct_id: `user-${user}` });
}

async function writeHour(
  options: ProfileLandingZoneOptions,
  hour: number,
  source: SnapshotSource,
  lines: readonly string[],
  gzip: boolean,
): Promise<void> {
  if (lines.length === 0) return;
  const folder = join(options.rawDir, rawHourPrefix(options.projectId, hour, source));
  await mkdir(folder, { recursive: true });
  const body = `${lines.join('\n')}\n`;
  await writeFile(
    join(folder, gzip ? `firehose-${source}.json.gz` : `firehose-${source}.json`),
    gzip ? gzipSync(body) : body,
  );
}

export interface ProfileBenchOptions {
  readonly rawDir: string;
  readonly projectId: string;
  /** First arrival hour (UTC, ms). */
  readonly start: number;
  /** Profiles created in the first `hours` hours, one `$set` each. */
  readonly profiles: number;
  readonly hours: number;
  /** Updates of existing profiles arriving the day after, with identity links among them. */
  readonly laterUpdates: number;
}

/**
 * Benchmark data: `profiles` profiles created by one `$set` of ten properties each, spread over
 * `hours` arrival hours in gzip files, then `laterUpdates` updates to existing profiles (and one
 * identity link per hundred) arriving over the next day.
 */
export async function generateProfileBenchData(options: ProfileBenchOptions): Promise<{ rawBytes: number }> {
  const rng = new Random(17);
  let rawBytes = 0;
  const write = async (hour: number, source: SnapshotSource, lines: string[]) => {
    const folder = join(options.rawDir, rawHourPrefix(options.projectId, hour, source));
    await mkdir(folder, { recursive: true });
    const body = `${lines.join('\n')}\n`;
    rawBytes += Buffer.byteLength(body);
    await writeFile(join(folder, 'bench.json.gz'), gzipSync(body, { level: 1 }));
  };
  const perHour = Math.ceil(options.profiles / options.hours);
  for (let h = 0; h < options.hours; h += 1) {
    const lines: string[] = [];
    for (let i = h * perHour; i < Math.min(options.profiles, (h + 1) * perHour); i += 1) {
      lines.push(
        JSON.stringify({
          $distinct_id: `user-${i}`,
          $time: options.start + h * HOUR,
          $set: {
            $name: `Person ${rng.hex(6)}`,
            $email: `person-${i}@example.com`,
            plan: rng.pick(PLANS),
            city: rng.pick(CITIES),
            signup: options.start + h * HOUR,
            logins: rng.int(1, 400),
            spent: rng.int(0, 100_000) / 100,
            tags: [rng.pick(TAGS), rng.pick(TAGS)],
            verified: rng.chance(0.5),
            referrer: rng.chance(0.3) ? `https://example.com/${rng.hex(8)}` : null,
          },
        }),
      );
    }
    await write(options.start + h * HOUR, 'people', lines);
  }
  const later = options.start + 24 * HOUR;
  const updates: string[] = [];
  const links: string[] = [];
  for (let i = 0; i < options.laterUpdates; i += 1) {
    const user = rng.int(0, options.profiles - 1);
    updates.push(JSON.stringify({ $distinct_id: `user-${user}`, ...operation(rng) }));
    if (i % 100 === 0)
      links.push(
        JSON.stringify({
          distinct_id: `user-${rng.int(0, options.profiles - 1)}`,
          resolved_distinct_id: `user-${user}`,
        }),
      );
  }
  await write(later, 'people', updates);
  await write(later, 'identity', links);
  return { rawBytes };
}
