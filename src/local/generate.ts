/**
 * Generates realistic landing-zone data in the vendor's ingestion format: events with ~20 properties,
 * spread over arrival-hour folders, with on-time, late, very late, clock-ahead, duplicate, id-less and
 * malformed lines. Seeded, so the same options always give the same bytes.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { rawHourPrefix } from '../core/layout.js';

const HOUR = 3_600_000;
const MINUTE = 60_000;

/** A small, fast, seedable PRNG (mulberry32). */
export class Random {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  /** One element of a non-empty list. */
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)] as T;
  }
  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }
  /** A hex id of `length` characters. */
  hex(length: number): string {
    let s = '';
    while (s.length < length)
      s += Math.floor(this.next() * 0x100000000)
        .toString(16)
        .padStart(8, '0');
    return s.slice(0, length);
  }
}

const EVENT_NAMES = [
  'Page View',
  'Sign Up',
  'Purchase',
  'Add To Cart',
  'Search',
  'Share',
  '$mp_web_page_view',
  'Video Play',
];
const CITIES = ['Berlin', 'São Paulo', 'Kathmandu', 'New York', 'Zürich', '東京', 'Lagos', 'Montréal'];
const BROWSERS = ['Chrome', 'Firefox', 'Safari', 'Edge'];
const OSES = ['Mac OS X', 'Windows', 'iOS', 'Android', 'Linux'];

/** One event line in the vendor's ingestion format (about 650 bytes, ~20 properties). */
export function eventLine(rng: Random, event: string, timeMs: number, ids: EventIds, seconds = true): string {
  const properties: Record<string, unknown> = {
    time: seconds ? Math.floor(timeMs / 1000) : timeMs,
    distinct_id: ids.distinctId,
    ...(ids.insertId === undefined ? {} : { $insert_id: ids.insertId }),
    $device_id: ids.deviceId,
    ...(ids.userId === undefined ? {} : { $user_id: ids.userId }),
    $os: rng.pick(OSES),
    $browser: rng.pick(BROWSERS),
    $browser_version: rng.int(90, 130),
    $city: rng.pick(CITIES),
    $region: 'Region "North"',
    mp_country_code: rng.pick(['DE', 'BR', 'NP', 'US', 'CH', 'JP']),
    $screen_width: rng.pick([1280, 1440, 1920, 390]),
    $screen_height: rng.pick([720, 900, 1080, 844]),
    $current_url: `https://shop.example.com/p/${rng.hex(6)}?utm_source=newsletter&q=${rng.hex(4)}`,
    mp_lib: 'web',
    $lib_version: '2.55.1',
    plan: rng.pick(['free', 'pro', 'enterprise']),
    price: Math.round(rng.next() * 10000) / 100,
    items: [rng.hex(4), rng.hex(4)],
    experiment: { name: 'checkout-v2', variant: rng.pick(['a', 'b']), exposed: rng.chance(0.5) },
    referrer: rng.chance(0.3) ? null : `https://search.example.org/?q=${rng.hex(5)}`,
    note: 'line\nbreak, tab\t and "quotes"',
  };
  // A 64-bit id beyond 2^53 written as a raw JSON number: it must reach the output byte for byte.
  const json = JSON.stringify({ event, properties });
  return `${json.slice(0, -2)},"account_id":${ids.accountId}}}`;
}

/** The identifiers of one event. */
export interface EventIds {
  readonly distinctId: string;
  readonly deviceId: string;
  readonly userId: string | undefined;
  readonly insertId: string | undefined;
  readonly accountId: string;
}

function idsFor(rng: Random, users: number, withInsertId: boolean): EventIds {
  const user = rng.int(1, users);
  return {
    distinctId: `user-${user}`,
    deviceId: `device-${user}`,
    userId: rng.chance(0.6) ? `user-${user}` : undefined,
    insertId: withInsertId ? rng.hex(32) : undefined,
    accountId: `9${String(user).padStart(18, '0')}`,
  };
}

const MALFORMED: readonly ((rng: Random) => string)[] = [
  () => '{"event": "Purchase", "properties": {"time": 1700000000, "distinct_id": "u1"',
  () => 'not json at all',
  () => '[1, 2, 3]',
  () => '{"properties": {"time": 1700000000, "distinct_id": "u1"}}',
  () => '{"event": "", "properties": {"time": 1700000000}}',
  () => '{"event": "Purchase", "properties": {"time": "yesterday"}}',
  () => '{"event": "Purchase", "properties": {"time": -5}}',
  () => '{"event": "Purchase"}',
  (rng) => `{"event": "Purchase", "properties": {"time": 1700000000, "x": ${rng.int(1, 9)}}} trailing`,
  () => '',
];

/** Options of a generated landing zone. */
export interface LandingZoneOptions {
  readonly rawDir: string;
  readonly projectId: string;
  readonly seed: number;
  /** First event time (epoch ms). */
  readonly start: number;
  readonly hours: number;
  readonly eventsPerHour: number;
  /** Distinct users (distinct_id values). */
  readonly users?: number;
  readonly filesPerHour?: number;
}

/** What was generated, for people (tests compute expectations from the files themselves). */
export interface LandingZoneStats {
  readonly lines: number;
  readonly events: number;
  readonly duplicates: number;
  readonly malformed: number;
  readonly late: number;
  readonly arrivalHours: number;
}

/**
 * Writes a landing zone of `hours` hours of events. Arrival delays: most within minutes, some up to
 * 3 h (late for hourly windows), some 1-2 days and a few 2-5 days late, a few stamped ahead of their
 * arrival (client clocks running fast). 2% of events are re-sent (same dedup key), 5% have no
 * $insert_id, 0.5% of lines are malformed; files alternate between gzip and plain text.
 */
export async function generateLandingZone(options: LandingZoneOptions): Promise<LandingZoneStats> {
  const rng = new Random(options.seed);
  const users = options.users ?? 500;
  const filesPerHour = options.filesPerHour ?? 2;
  const byArrivalHour = new Map<number, string[]>();
  const arrive = (arrival: number, line: string) => {
    const hour = Math.floor(arrival / HOUR) * HOUR;
    const lines = byArrivalHour.get(hour) ?? [];
    lines.push(line);
    byArrivalHour.set(hour, lines);
  };
  let events = 0;
  let duplicates = 0;
  let malformed = 0;
  let late = 0;
  const total = options.hours * options.eventsPerHour;
  for (let i = 0; i < total; i += 1) {
    const time = options.start + Math.floor(rng.next() * options.hours * HOUR);
    const ids = idsFor(rng, users, !rng.chance(0.05));
    const line = eventLine(rng, rng.pick(EVENT_NAMES), time, ids, rng.chance(0.8));
    const delay = arrivalDelay(rng);
    if (delay > 3 * HOUR) late += 1;
    arrive(time + delay, line);
    events += 1;
    if (rng.chance(0.02)) {
      arrive(time + arrivalDelay(rng), line);
      duplicates += 1;
    }
    if (rng.chance(0.005)) {
      arrive(time + rng.int(0, 30) * MINUTE, rng.pick(MALFORMED)(rng));
      malformed += 1;
    }
  }
  let lines = 0;
  for (const [hour, hourLines] of [...byArrivalHour].sort(([a], [b]) => a - b)) {
    const folder = join(options.rawDir, rawHourPrefix(options.projectId, hour));
    await mkdir(folder, { recursive: true });
    for (let file = 0; file < filesPerHour; file += 1) {
      const slice = hourLines.filter((_, index) => index % filesPerHour === file);
      if (slice.length === 0) continue;
      lines += slice.length;
      const text = `${slice.join('\n')}\n`;
      const gzip = file % 2 === 0;
      await writeFile(
        join(folder, `firehose-${file}-${rng.hex(8)}.json${gzip ? '.gz' : ''}`),
        gzip ? gzipSync(text) : text,
      );
    }
  }
  return { lines, events, duplicates, malformed, late, arrivalHours: byArrivalHour.size };
}

function arrivalDelay(rng: Random): number {
  const r = rng.next();
  if (r < 0.9) return rng.int(0, 20 * MINUTE);
  if (r < 0.94) return rng.int(20 * MINUTE, 3 * HOUR);
  if (r < 0.97) return rng.int(3 * HOUR, 48 * HOUR);
  if (r < 0.98) return rng.int(48 * HOUR, 120 * HOUR);
  return -rng.int(0, 2 * HOUR);
}

/** Options of a benchmark data set. */
export interface BenchDataOptions {
  readonly rawDir: string;
  readonly projectId: string;
  readonly seed: number;
  readonly start: number;
  readonly events: number;
  readonly hours: number;
}

/**
 * Writes `events` events as gzip NDJSON, one file per arrival hour, streaming hour by hour so the
 * generator's memory stays small. Returns the files and their uncompressed size.
 */
export async function generateBenchData(
  options: BenchDataOptions,
): Promise<{ files: string[]; rawBytes: number }> {
  const rng = new Random(options.seed);
  const files: string[] = [];
  let rawBytes = 0;
  const perHour = Math.ceil(options.events / options.hours);
  for (let h = 0, written = 0; h < options.hours && written < options.events; h += 1) {
    const hour = options.start + h * HOUR;
    const count = Math.min(perHour, options.events - written);
    const lines: string[] = [];
    for (let i = 0; i < count; i += 1) {
      const time = hour - rng.int(0, 40) * MINUTE + rng.int(0, 59_999);
      lines.push(
        eventLine(rng, rng.pick(EVENT_NAMES), time, idsFor(rng, 100_000, !rng.chance(0.05)), rng.chance(0.8)),
      );
    }
    written += count;
    const text = Buffer.from(`${lines.join('\n')}\n`);
    rawBytes += text.length;
    const folder = join(options.rawDir, rawHourPrefix(options.projectId, hour));
    await mkdir(folder, { recursive: true });
    const file = join(folder, 'firehose-0.json.gz');
    await writeFile(file, gzipSync(text));
    files.push(file);
  }
  return { files, rawBytes };
}
