/**
 * One seed of a chaos run: generates a few days of demo-like data, operates four pipelines (a daily
 * and an hourly events pipeline with sync, a people and an identity pipeline) on the 15-minute
 * schedule through the synthesized workflows, once cleanly and once with faults, then checks that the
 * faults left no trace: the same output bytes, every step committed once, every reconciliation
 * balanced.
 */
import { readdir, readFile, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { RUN_RECORDS_PREFIX } from '../core/layout.js';
import { LockLostError } from '../core/lock.js';
import type { ObjectInfo } from '../core/object-store.js';
import { type PipelineConfig, parsePipelineConfig } from '../core/pipeline-config.js';
import type { EngineStores } from '../core/ports.js';
import { dueSteps } from '../core/routing.js';
import { addDays, DAY_MS, HOUR_MS, ZoneCalendar } from '../core/windows.js';
import { DEFAULT_SCHEDULE_MINUTES } from '../core/workflow.js';
import { committedStepIds, pipelineBacklog } from '../engine/backlog.js';
import { startControlPlane } from '../local/control-plane.js';
import { generateLandingZone, Random } from '../local/generate.js';
import { generateProfileLandingZone } from '../local/generate-profiles.js';
import { localStores } from '../local/local-stores.js';
import { LocalWorkflows } from '../local/local-workflows.js';
import type { Moto } from '../local/moto.js';
import { pipelineId, type RunResult, runPipelines } from '../local/run.js';
import { loadWorkflowDefinitions } from '../local/workflow-definitions.js';
import type { Runtime } from '../workflow/runtime.js';
import {
  clockSkewOverrides,
  DEFAULT_FAULT_RATES,
  FaultInterceptor,
  type FaultKind,
  FaultPlan,
  FaultyObjectStore,
  injectDynamoFaults,
  LandingZoneView,
  outsideFunctions,
  taskProject,
} from './faults.js';

const MINUTE_MS = 60_000;
const TICK_MS = DEFAULT_SCHEDULE_MINUTES * MINUTE_MS;
const FIRST_DAY = '2024-11-01';
/** Firehose writes an object at most one buffering interval (15 minutes) after its hour ends. */
const LATEST_WRITE_AFTER_HOUR_MS = HOUR_MS + 15 * MINUTE_MS;
/**
 * Every object of an arrival-hour folder is listed 20 minutes after the hour ends: the buffering
 * interval plus the write. The engine's ARRIVAL_SETTLE_MS must wait that long; this copy of the
 * contract stays separate from it, so that an engine reading folders sooner fails `late-listing`.
 */
const LISTED_AFTER_HOUR_MS = HOUR_MS + 20 * MINUTE_MS;
/** A listing delay lasts a few minutes at most. */
const MAX_LISTING_DELAY_MS = 5 * MINUTE_MS;
/** Ticks a chaos run may fire after the clean run's last instant, so failed steps get retried. */
const MAX_EXTRA_TICKS = 24;
/** How long the workflows of a run that threw may take to end. */
const QUIESCE_TIMEOUT_MS = 120_000;

/** The data and the operation of a seed. */
export interface ChaosScenario {
  /** Days of generated data from 2024-11-01 (events, profile updates, identity events). */
  readonly dataDays: number;
  /** Days the schedule operates from 2024-11-01 (late events arrive up to 5 days after their time). */
  readonly operatedDays: number;
  readonly eventsPerHour: number;
  readonly profileUpdatesPerHour: number;
}

/** Two days of data, operated for four. */
export const DEFAULT_SCENARIO: ChaosScenario = {
  dataDays: 2,
  operatedDays: 4,
  eventsPerHour: 100,
  profileUpdatesPerHour: 50,
};

/** Options of {@link runChaosSeed}. */
export interface ChaosSeedOptions {
  readonly seed: number;
  /** The kinds of fault the chaos run injects; none makes it a second clean run. */
  readonly faults: readonly FaultKind[];
  /** @default DEFAULT_FAULT_RATES */
  readonly rates?: Readonly<Record<FaultKind, number>>;
  /** @default DEFAULT_SCENARIO */
  readonly scenario?: ChaosScenario;
  /** The emulator both runs create their tables on. */
  readonly moto: Moto;
  /** An empty folder for the landing zone and both runs' outputs. */
  readonly workDir: string;
  /** Receives each step outcome and failure of both runs. */
  readonly progress?: (line: string) => void;
}

/** What one seed did and found. */
export interface SeedReport {
  readonly seed: number;
  /** Faults injected by kind, and by `kind: variant`. */
  readonly faults: ReadonlyMap<FaultKind, number>;
  readonly variants: readonly [string, number][];
  /** Steps the clean run committed. */
  readonly steps: number;
  readonly ticks: { readonly clean: number; readonly chaos: number; readonly extra: number };
  /** Listings of the landing zone that left out an object only because of its listing delay. */
  readonly lateListings: number;
  /** Output lines of the clean run missing from the chaos run's output, and extra copies in it. */
  readonly lost: number;
  readonly duplicated: number;
  /** Steps whose run record was written more than once. */
  readonly committedTwice: number;
  /** Temp files of writes that never completed in the chaos run's destination (not objects, see `firstDifference`). */
  readonly unfinishedWrites: readonly string[];
  /** The first symptoms; empty when the seed passed. */
  readonly problems: readonly string[];
  readonly seconds: number;
}

/** Runs one seed cleanly and with faults, and compares. */
export async function runChaosSeed(options: ChaosSeedOptions): Promise<SeedReport> {
  const started = Date.now();
  const scenario = options.scenario ?? DEFAULT_SCENARIO;
  const configs = scenarioConfigs(addDays(FIRST_DAY, scenario.dataDays - 1));
  const until = Math.max(
    ...configs.map(
      (c) =>
        new ZoneCalendar(c.time_zone).dayEnd(addDays(FIRST_DAY, scenario.operatedDays - 1)) + 3 * HOUR_MS,
    ),
  );
  const raw = join(options.workDir, 'raw');
  const writeTimes = await generateData(raw, options.seed, scenario);
  const chaosPlan = new FaultPlan(
    options.seed,
    new Set(options.faults),
    options.rates ?? DEFAULT_FAULT_RATES,
  );
  const common = { configs, until, lastTick: lastTickBefore(configs, until), raw, moto: options.moto };
  const progress = options.progress ?? (() => undefined);
  const clean = await operate({
    ...common,
    plan: new FaultPlan(options.seed, new Set()),
    visibleAt: (object) => object.lastModified,
    dir: join(options.workDir, 'clean'),
    progress: (line) => progress(`clean: ${line}`),
  });
  const delays = listingDelays(chaosPlan, writeTimes);
  const chaos = await operate({
    ...common,
    plan: chaosPlan,
    visibleAt: (object) => object.lastModified + (delays.get(object.key) ?? 0),
    dir: join(options.workDir, 'chaos'),
    progress: (line) => progress(`chaos: ${line}`),
  });

  const problems = [
    ...runProblems('clean run', clean).map((p) => `the clean run failed (the harness is wrong): ${p}`),
    ...runProblems('chaos run', chaos),
    ...commitDifferences(clean, chaos),
  ];
  const difference = await firstDifference(join(clean.dir, 'out'), join(chaos.dir, 'out'));
  if (difference !== undefined) problems.push(`output differs: ${difference}`);
  const { lost, duplicated } = await compareLines(join(clean.dir, 'out'), join(chaos.dir, 'out'));
  const unfinished = await unfinishedWrites(join(chaos.dir, 'out'));
  return {
    seed: options.seed,
    faults: chaosPlan.byKind(),
    variants: chaosPlan.byVariant(),
    steps: [...clean.committed.values()].reduce((n, ids) => n + ids.size, 0),
    ticks: { clean: clean.ticks, chaos: chaos.ticks, extra: chaos.extraTicks },
    lateListings: chaos.lateListings,
    lost,
    duplicated,
    committedTwice: [...chaos.runRecordWrites.values()].filter((n) => n > 1).length,
    unfinishedWrites: unfinished,
    problems,
    seconds: (Date.now() - started) / 1000,
  };
}

// ---- the scenario -------------------------------------------------------------------------------

/** The demonstration's pipelines, bounded to the generated days so nothing new falls due after them but syncs. */
function scenarioConfigs(lastDataDay: string): PipelineConfig[] {
  const acme = {
    project_id: 'acme',
    time_zone: 'America/New_York',
    from_date: FIRST_DAY,
    to_date: lastDataDay,
  };
  return [
    parsePipelineConfig({ ...acme, name: 'events-daily', frequency: 'daily', sync: true }),
    parsePipelineConfig({ ...acme, name: 'people-daily', data_source: 'people', frequency: 'daily' }),
    parsePipelineConfig({ ...acme, name: 'identity-daily', data_source: 'identity', frequency: 'daily' }),
    parsePipelineConfig({
      project_id: 'himalaya',
      name: 'events-hourly',
      frequency: 'hourly',
      sync: true,
      time_zone: 'Asia/Kathmandu',
      from_date: FIRST_DAY,
      to_date: lastDataDay,
    }),
  ];
}

/**
 * The last tick a run may fire to retry what failed: a few hours after `until`, and before anything
 * new falls due (the next sync), so that retrying never adds steps the clean run did not run.
 */
function lastTickBefore(configs: readonly PipelineConfig[], until: number): number {
  const nextDue = Math.min(
    ...configs.map(
      (c) =>
        dueSteps(c, new ZoneCalendar(c.time_zone), until + 2 * DAY_MS).find((d) => d.dueAt > until)?.dueAt ??
        Number.POSITIVE_INFINITY,
    ),
  );
  return Math.min(until + MAX_EXTRA_TICKS * TICK_MS, Math.ceil(nextDue / TICK_MS) * TICK_MS - TICK_MS);
}

/**
 * Generates the seed's landing zone and gives each object the time Firehose would have written it
 * (within its arrival hour or the 15 minutes after), as its modification time. Returns those times.
 */
async function generateData(
  raw: string,
  seed: number,
  scenario: ChaosScenario,
): Promise<Map<string, WriteTime>> {
  const newYork = new ZoneCalendar('America/New_York');
  const kathmandu = new ZoneCalendar('Asia/Kathmandu');
  const hours = scenario.dataDays * 24;
  const events = { rawDir: raw, hours, eventsPerHour: scenario.eventsPerHour, users: 300 };
  await generateLandingZone({
    ...events,
    projectId: 'acme',
    seed: seed * 10 + 1,
    start: newYork.dayStart(FIRST_DAY),
  });
  await generateLandingZone({
    ...events,
    projectId: 'himalaya',
    seed: seed * 10 + 2,
    start: kathmandu.dayStart(FIRST_DAY),
  });
  await generateProfileLandingZone({
    rawDir: raw,
    projectId: 'acme',
    seed: seed * 10 + 3,
    start: newYork.dayStart(FIRST_DAY),
    hours,
    updatesPerHour: scenario.profileUpdatesPerHour,
    users: 300,
  });
  const random = new Random(seed);
  const times = new Map<string, WriteTime>();
  for (const key of await filesUnder(raw)) {
    const folderHour = folderHourOf(key);
    const written = folderHour + Math.floor(random.next() * LATEST_WRITE_AFTER_HOUR_MS);
    await utimes(join(raw, key), written / 1000, written / 1000);
    times.set(key, { folderHour, written });
  }
  return times;
}

interface WriteTime {
  readonly folderHour: number;
  readonly written: number;
}

/** The UTC hour of a landing-zone key's folder: `<project>/<source>/YYYY/MM/DD/HH/<name>`. */
function folderHourOf(key: string): number {
  const match = /^[^/]+\/[^/]+\/(\d{4})\/(\d{2})\/(\d{2})\/(\d{2})\//.exec(key);
  if (match === null) throw new Error(`generated landing-zone key ${key} is not in an arrival-hour folder`);
  const [, year, month, day, hour] = match.map(Number) as [number, number, number, number, number];
  return Date.UTC(year, month - 1, day, hour);
}

/**
 * The `late-listing` fault: objects that appear in listings a few minutes after their Last-Modified,
 * never later than 20 minutes after their folder's hour (LISTED_AFTER_HOUR_MS): the engine reads an
 * arrival hour only once it settled, so that is what it must survive; an object listed later still is
 * late data, which a clean run would not have seen in its hour either.
 */
function listingDelays(plan: FaultPlan, writeTimes: ReadonlyMap<string, WriteTime>): Map<string, number> {
  const delays = new Map<string, number>();
  for (const [key, { folderHour, written }] of writeTimes) {
    const strike = plan.strikes('late-listing', key);
    if (strike === undefined) continue;
    const room = Math.min(MAX_LISTING_DELAY_MS, folderHour + LISTED_AFTER_HOUR_MS - written);
    if (room <= 0) continue;
    delays.set(key, 1 + Math.floor(strike.next() * room));
    plan.record('late-listing', 'object listed late');
  }
  return delays;
}

// ---- one run ------------------------------------------------------------------------------------

interface RunSetup {
  readonly configs: readonly PipelineConfig[];
  /** Everything due by then runs; the clean run stops there. */
  readonly until: number;
  /** The last tick that may retry what failed. */
  readonly lastTick: number;
  readonly raw: string;
  readonly moto: Moto;
  readonly plan: FaultPlan;
  readonly visibleAt: (object: ObjectInfo) => number;
  /** The run's folder: `out/` (the destination) and `state/`. */
  readonly dir: string;
  readonly progress: (line: string) => void;
}

interface RunOutcome {
  readonly dir: string;
  readonly ticks: number;
  readonly extraTicks: number;
  /** Pipelines with steps due by `until` that never committed, with those steps. */
  readonly pending: ReadonlyMap<string, readonly string[]>;
  readonly results: ReadonlyMap<string, RunResult>;
  /** Committed step ids by pipeline. */
  readonly committed: ReadonlyMap<string, ReadonlySet<string>>;
  /** Run-record writes that landed, by `<project>/<pipeline> <step>`. */
  readonly runRecordWrites: ReadonlyMap<string, number>;
  /** Errors that stopped a round of ticks (a failed dispatcher). */
  readonly errors: readonly string[];
  readonly lateListings: number;
}

/**
 * Operates the pipelines on the schedule until `until`; when a tick commits nothing (a step failed),
 * the schedule goes on from the next tick, and past `until` up to `lastTick`, until nothing due by
 * `until` is left.
 */
async function operate(setup: RunSetup): Promise<RunOutcome> {
  const { plan } = setup;
  const control = await startControlPlane(setup.moto);
  injectDynamoFaults(control.dynamo, plan);
  const runRecordWrites = new Map<string, number>();
  let lateListings = 0;
  let clock: { tick: number; runtime: Runtime } | undefined;
  const stores = (config: PipelineConfig, now?: () => number): EngineStores => {
    const base = localStores(
      {
        raw: setup.raw,
        out: join(setup.dir, 'out'),
        state: join(setup.dir, 'state', config.project_id, config.name),
      },
      now,
    );
    const landingZone = new LandingZoneView(
      base.raw,
      setup.visibleAt,
      () => clock?.runtime.clock() ?? Number.NEGATIVE_INFINITY,
      () => {
        lateListings += 1;
      },
    );
    const state = new FaultyObjectStore(base.state, 'state', plan, (key) => {
      if (!key.startsWith(RUN_RECORDS_PREFIX) || !key.endsWith('.json')) return;
      const id = `${pipelineId(config)} ${key.slice(RUN_RECORDS_PREFIX.length, -'.json'.length)}`;
      runRecordWrites.set(id, (runRecordWrites.get(id) ?? 0) + 1);
    });
    return {
      raw: new FaultyObjectStore(landingZone, 'raw', plan),
      destination: new FaultyObjectStore(base.destination, 'destination', plan),
      state,
      staging: base.staging === base.state ? state : new FaultyObjectStore(base.staging, 'staging', plan),
    };
  };

  const definitions = loadWorkflowDefinitions();
  const overrides = plan.kinds.has('clock-skew')
    ? clockSkewOverrides(plan, () => {
        if (clock === undefined) throw new Error('an activity ran before the first tick');
        return clock.runtime;
      })
    : undefined;
  let takeovers = 0;
  const interceptor: FaultInterceptor = new FaultInterceptor({
    plan,
    takeOver: async (_state, input) => {
      const project = taskProject(input);
      if (clock === undefined || project === undefined) return false;
      const { runtime, tick } = clock;
      const holder = await runtime.locks.current(project);
      if (holder === undefined) return false;
      try {
        // The lease as if its holder had stopped renewing it a lease ago: it ended a minute before now.
        await runtime.locks.renew(
          project,
          holder.owner,
          runtime.clock() - MINUTE_MS - runtime.leaseMs,
          runtime.leaseMs,
        );
      } catch (error) {
        if (error instanceof LockLostError) return false;
        throw error;
      }
      takeovers += 1;
      // Another dispatch a few minutes later (its own execution names), before anything new is due.
      const rival = new LocalWorkflows({
        definitions,
        runtime,
        intercept: interceptor.intercept,
        ...(overrides === undefined ? {} : { overrides }),
      });
      await rival.tick(tick + (1 + (takeovers % 4)) * MINUTE_MS).catch((error: unknown) => {
        setup.progress(`the takeover's dispatcher failed: ${describe(error)}`);
      });
      await rival.settle();
      return true;
    },
  });

  let ticks = 0;
  let extraTicks = 0;
  const errors: string[] = [];
  const pendingSteps = async (): Promise<Map<string, string[]>> => {
    const pending = new Map<string, string[]>();
    for (const config of setup.configs) {
      const ids = (await pipelineBacklog(stores(config), config, setup.until)).map((d) => d.id);
      if (ids.length > 0) pending.set(pipelineId(config), ids);
    }
    return pending;
  };
  try {
    let pending: Map<string, string[]>;
    for (let round = 0; ; round += 1) {
      const last = clock?.tick;
      const startAt = last === undefined ? undefined : last + TICK_MS;
      if (startAt !== undefined && startAt > setup.lastTick) {
        pending = await outsideFunctions(pendingSteps);
        break;
      }
      try {
        await runPipelines({
          ...(round === 0 ? { configs: setup.configs } : {}),
          stores,
          now: startAt === undefined || startAt <= setup.until ? setup.until : startAt,
          ticks: 'schedule',
          control,
          intercept: interceptor.intercept,
          ...(overrides === undefined ? {} : { overrides: () => overrides }),
          ...(startAt === undefined ? {} : { startAt }),
          beforeTick: async (tick, runtime) => {
            clock = { tick, runtime };
            ticks += 1;
            if (tick > setup.until) extraTicks += 1;
          },
          progress: setup.progress,
        });
      } catch (error) {
        errors.push(`the round of ticks from ${iso(startAt ?? setup.until)} stopped: ${describe(error)}`);
        await quiesce(interceptor);
      }
      pending = await outsideFunctions(pendingSteps);
      if (pending.size === 0 || clock?.tick === last) break;
    }
    // A round without ticks: nothing is left to run, so this reports the pipelines' standing.
    const report = await outsideFunctions(() =>
      runPipelines({
        stores,
        now: clock?.tick ?? setup.until,
        ticks: 'schedule',
        control,
        ...(clock === undefined ? {} : { startAt: clock.tick + TICK_MS }),
      }),
    );
    const committed = new Map<string, ReadonlySet<string>>();
    for (const config of setup.configs)
      committed.set(pipelineId(config), await outsideFunctions(() => committedStepIds(stores(config))));
    return {
      dir: setup.dir,
      ticks,
      extraTicks,
      pending,
      results: report.results,
      committed,
      runRecordWrites,
      errors,
      lateListings,
    };
  } finally {
    // The runs of every seed share one emulator: stopping the plane drops this run's tables there.
    await control.stop();
  }
}

/** Waits until no Task of a run that threw is running any more. */
async function quiesce(interceptor: FaultInterceptor): Promise<void> {
  const deadline = Date.now() + QUIESCE_TIMEOUT_MS;
  while (interceptor.inFlight > 0) {
    if (Date.now() > deadline)
      throw new Error(`${interceptor.inFlight} Task(s) still running after ${QUIESCE_TIMEOUT_MS} ms`);
    await sleep(50);
  }
}

// ---- checks -------------------------------------------------------------------------------------

/** What went wrong in one run: steps never committed, imbalances, steps committed more than once. */
function runProblems(name: string, run: RunOutcome): string[] {
  const problems: string[] = [];
  for (const [pipeline, ids] of run.pending) {
    const failures = run.results.get(pipeline)?.failures ?? [];
    problems.push(
      `${name} never converged: ${pipeline} still has ${ids.length} due step(s) (${ids.slice(0, 3).join(', ')}` +
        `${ids.length > 3 ? ', ...' : ''}) after ${run.extraTicks} extra ticks` +
        `${failures.length > 0 ? `; last failure: ${failures.at(-1)}` : ''}` +
        `${run.errors.length > 0 ? `; ${run.errors.at(-1)}` : ''}`,
    );
  }
  for (const [pipeline, result] of run.results)
    for (const problem of result.reconciliation.problems)
      problems.push(`${name}: reconciliation of ${pipeline} does not balance: ${problem}`);
  for (const [step, writes] of run.runRecordWrites)
    if (writes > 1) problems.push(`${name}: step ${step} committed ${writes} times`);
  return problems;
}

/** Steps one run committed and the other did not. */
function commitDifferences(clean: RunOutcome, chaos: RunOutcome): string[] {
  const problems: string[] = [];
  for (const [pipeline, ids] of clean.committed) {
    const other = chaos.committed.get(pipeline) ?? new Set<string>();
    const missing = [...ids].filter((id) => !other.has(id));
    const extra = [...other].filter((id) => !ids.has(id));
    if (missing.length > 0) problems.push(`${pipeline}: the chaos run never committed ${missing.join(', ')}`);
    if (extra.length > 0)
      problems.push(`${pipeline}: the chaos run committed ${extra.join(', ')}, the clean run did not`);
  }
  return problems;
}

/**
 * Every file under `dir` (relative path), in byte order: the objects, or with `hidden` the files the
 * local store never lists (dot-prefixed: a write's temp file, renamed into place when it completes).
 */
async function filesUnder(dir: string, hidden = false): Promise<string[]> {
  const files: string[] = [];
  const visit = async (relative: string) => {
    const entries = await readdir(join(dir, relative)).catch(() => [] as string[]);
    for (const name of entries) {
      const path = relative === '' ? name : `${relative}/${name}`;
      if ((await stat(join(dir, path))).isDirectory()) await visit(path);
      else if (name.startsWith('.') === hidden) files.push(path);
    }
  };
  await visit('');
  return files.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

/**
 * The first object that differs between two trees (missing on one side, or other bytes), or
 * undefined. Temp files of unfinished writes are not objects (S3 shows nothing for an upload that
 * never completed): {@link unfinishedWrites} counts them.
 */
export async function firstDifference(expected: string, actual: string): Promise<string | undefined> {
  const [left, right] = await Promise.all([filesUnder(expected), filesUnder(actual)]);
  const all = [...new Set([...left, ...right])].sort((a, b) =>
    Buffer.compare(Buffer.from(a), Buffer.from(b)),
  );
  const inLeft = new Set(left);
  const inRight = new Set(right);
  for (const path of all) {
    if (!inRight.has(path)) return `${path} is missing`;
    if (!inLeft.has(path)) return `${path} is extra`;
    const [a, b] = await Promise.all([readTreeFile(expected, path), readTreeFile(actual, path)]);
    if (!a.equals(b)) return `${path} has other bytes (${b.length} instead of ${a.length})`;
  }
  return undefined;
}

/**
 * A file of an output tree. A warehouse symlink file lists its parts by URI, which locally names the
 * tree's own folder: that folder is read as `<root>`, so two trees with the same parts compare equal.
 */
async function readTreeFile(root: string, path: string): Promise<Buffer> {
  const bytes = await readFile(join(root, path));
  if (!path.endsWith('/symlink.txt')) return bytes;
  return Buffer.from(bytes.toString('utf8').replaceAll(pathToFileURL(root).href, '<root>'), 'utf8');
}

/** Temp files of writes that never completed under `dir`. */
async function unfinishedWrites(dir: string): Promise<string[]> {
  return filesUnder(dir, true);
}

/** Lines of the clean output missing from the chaos output, and lines the chaos output has more of. */
async function compareLines(expected: string, actual: string): Promise<{ lost: number; duplicated: number }> {
  const counts = new Map<string, number>();
  const count = async (dir: string, sign: number) => {
    for (const path of await filesUnder(dir)) {
      if (!path.endsWith('.gz')) continue;
      for (const line of gunzipSync(await readFile(join(dir, path)))
        .toString('utf8')
        .split('\n'))
        if (line !== '') counts.set(line, (counts.get(line) ?? 0) + sign);
    }
  };
  await count(expected, 1);
  await count(actual, -1);
  let lost = 0;
  let duplicated = 0;
  for (const difference of counts.values()) {
    if (difference > 0) lost += difference;
    else duplicated -= difference;
  }
  return { lost, duplicated };
}

function iso(time: number): string {
  return new Date(time).toISOString();
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: { name?: string; message?: string } }).cause;
  return cause?.message === undefined ? `${error.name}: ${error.message}` : `${cause.name}: ${cause.message}`;
}
