/**
 * `npm run bench [events]`: measures the local events pipeline in each output format (JSON gzip, JSON
 * zstd, Parquet zstd and snappy) against `zcat <files> | gzip -1` on the same files, in the same run:
 * `BENCH_ROUNDS` (default 3) rounds, each timing the baseline and every format once (interleaved, so
 * the machine's other load falls on all alike), reported as medians with their range; with each
 * format's peak memory, CPU time and bytes written as a share of JSON gzip's. Then once with a `where`
 * filter, whose cost is a parse of every event's record. The runs use one emulator kept up by `local up`
 * (`local run --home`), as a deployment's DynamoDB is always up; one more run per round boots its own,
 * as a plain `local run` does, and shows what the boot costs.
 *
 * `npm run bench people [profiles]`: builds a people snapshot of that many profiles (default one
 * million), then folds a day of updates into it, and measures the second run (new updates plus one
 * pass rewriting the snapshot) against `zcat <snapshot parts> | gzip -1` on the snapshot it wrote, with
 * the peak memory of each run: `BENCH_ROUNDS` (default 3) rounds, reported as medians with their range.
 *
 * `npm run bench dispatcher [pipelines]`: times one dispatcher tick (the real `findDueProjects` over
 * local stores and DynamoDB on moto, as local runs call it) over that many hourly pipelines (default
 * 200) with three years of history each, committed up to the tick, against one tick over one pipeline
 * with one day of history, per pipeline; and over as many pipelines with one day each, which separates
 * the cost of age from the cost of count.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseNamed, positiveInteger } from '../cli/shared.js';
import { runRecordKey, snapshotFolder, snapshotManifestKey } from '../core/layout.js';
import { putJson } from '../core/object-store.js';
import { type PipelineConfig, parsePipelineConfig } from '../core/pipeline-config.js';
import type { EngineStores } from '../core/ports.js';
import type { SnapshotManifest } from '../core/records.js';
import { dueStepsAfter } from '../core/routing.js';
import { DAY_MS, ZoneCalendar } from '../core/windows.js';
import { advanceBacklogMark, writeBacklogMark } from '../engine/backlog.js';
import { localRuntime, startControlPlane } from '../local/control-plane.js';
import { generateBenchData } from '../local/generate.js';
import { generateProfileBenchData } from '../local/generate-profiles.js';
import { defaultStateFolder, localStores } from '../local/local-stores.js';
import { type Moto, startMoto } from '../local/moto.js';
import { findDueProjects } from '../workflow/activities.js';

const run = promisify(execFile);
const DAY = '2024-03-05';
const mode = process.argv[2] === 'people' || process.argv[2] === 'dispatcher' ? process.argv[2] : 'events';
const people = mode === 'people';
const countArg = mode === 'events' ? process.argv[2] : process.argv[3];
const count = Number(countArg ?? process.env.BENCH_EVENTS ?? 1_000_000);
const events = count;
const root = resolve('.bench');
const rawDir = join(root, people ? `raw-people-${count}` : `raw-${events}`);
/** A filter that keeps about 60% of the generated events and reads two properties of each. */
const BENCH_WHERE = 'properties["plan"] == "pro" or properties["$os"] in ["iOS", "Android"]';
/** The command as installed (`bin/bundle-cli.ts`). */
const cli = fileURLToPath(new URL('../../bundle/cli/main.js', import.meta.url));

interface Prepared {
  readonly files: string[];
  readonly rawBytes: number;
}

async function prepare(): Promise<Prepared> {
  const marker = join(rawDir, 'prepared.json');
  try {
    return JSON.parse(await readFile(marker, 'utf8')) as Prepared;
  } catch {
    await rm(rawDir, { recursive: true, force: true });
    await mkdir(rawDir, { recursive: true });
    process.stderr.write(`generating ${events} events in ${rawDir} ...\n`);
    const prepared = await generateBenchData({
      rawDir,
      projectId: 'bench',
      seed: 7,
      start: Date.parse(`${DAY}T00:00:00Z`) + 3_600_000,
      events,
      hours: 23,
    });
    await writeFile(marker, JSON.stringify(prepared));
    return prepared;
  }
}

async function timed<T>(work: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  const started = process.hrtime.bigint();
  const value = await work();
  return { seconds: Number(process.hrtime.bigint() - started) / 1e9, value };
}

async function baseline(files: string[]): Promise<number> {
  const { seconds } = await timed(() =>
    run('bash', ['-c', 'zcat -- "$@" | gzip -1 > /dev/null', 'baseline', ...files], { maxBuffer: 1 << 20 }),
  );
  return seconds;
}

interface LocalRunResult {
  ok: boolean;
  peak_rss_mb: number;
  cpu_ms: number;
  steps: {
    exported: number;
    bytes: number;
    snapshot?: { created: number; deleted: number; merged: number };
  }[];
  failures: string[];
}

/**
 * The local home whose emulator the measured runs share (`local up`, then `local run --home`): the
 * engine is measured without the emulator's boot, as a deployment's DynamoDB is always up.
 */
const home = join(root, 'home');
const ON_HOME = ['--home', home];

/** Runs `work` with the bench home's emulator up, and stops it after. */
async function withEmulatorUp<T>(work: () => Promise<T>): Promise<T> {
  await run(process.execPath, [cli, 'local', 'up', '--home', home]);
  try {
    return await work();
  } finally {
    await run(process.execPath, [cli, 'local', 'down', '--home', home]);
  }
}

/** One `local run` in its own process (so its peak RSS is its own), with `--json`. */
async function localRun(
  out: string,
  now: string,
  extra: readonly string[] = ON_HOME,
): Promise<{ seconds: number; result: LocalRunResult }> {
  const { seconds, value } = await timed(() =>
    run(
      process.execPath,
      [
        cli,
        ...['local', 'run', '--raw', rawDir, '--out', out, '--project', 'bench', '--timezone', 'UTC'],
        ...['--frequency', 'daily', '--from', DAY, '--now', now, '--json', ...extra],
      ],
      { maxBuffer: 64 << 20 },
    ),
  );
  const result = JSON.parse(value.stdout) as LocalRunResult;
  if (!result.ok) throw new Error(`the pipeline run failed: ${result.failures.join('; ')}`);
  return { seconds, result };
}

interface PipelineRun {
  readonly seconds: number;
  readonly cpuSeconds: number;
  readonly peakRssMb: number;
  readonly exported: number;
  /** Bytes of the parts written. */
  readonly bytes: number;
}

async function pipeline(extra: readonly string[]): Promise<PipelineRun> {
  const out = join(root, 'out');
  await rm(out, { recursive: true, force: true });
  const { seconds, result } = await localRun(out, `${nextDay(DAY)}T03:00:00Z`, extra);
  return {
    seconds,
    cpuSeconds: result.cpu_ms / 1000,
    peakRssMb: result.peak_rss_mb,
    exported: result.steps.reduce((sum, s) => sum + s.exported, 0),
    bytes: result.steps.reduce((sum, s) => sum + s.bytes, 0),
  };
}

function nextDay(day: string): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
}

/**
 * The formats the events bench compares, on the bench home's emulator; the first is the reference of
 * the byte shares. Last, JSON gzip again as a plain `local run` goes: booting an emulator of its own.
 */
const BENCH_FORMATS: readonly { readonly label: string; readonly flags: readonly string[] }[] = [
  { label: 'JSON gzip', flags: ON_HOME },
  { label: 'JSON zstd', flags: [...ON_HOME, '--compression', 'zstd'] },
  { label: 'Parquet zstd', flags: [...ON_HOME, '--format', 'parquet'] },
  { label: 'Parquet snappy', flags: [...ON_HOME, '--format', 'parquet', '--compression', 'snappy'] },
  { label: 'JSON gzip, booting its own emulator', flags: [] },
];

/** `median (min-max)` of `values`, each shown by `show`. */
function spread(values: readonly number[], show: (value: number) => string): string {
  return `${show(median(values))} (${show(Math.min(...values))}-${show(Math.max(...values))})`;
}

async function eventsBench(): Promise<void> {
  const prepared = await prepare();
  const rawMb = prepared.rawBytes / 1e6;
  const rounds = parseNamed('BENCH_ROUNDS', process.env.BENCH_ROUNDS ?? '3', positiveInteger);
  process.stderr.write(
    `data: ${events} events, ${rawMb.toFixed(1)} MB uncompressed in ${prepared.files.length} gzip files; ` +
      `${rounds} rounds of the baseline and ${BENCH_FORMATS.length} runs; the runs share one emulator kept up ` +
      'with `local up` (as DynamoDB is for a deployment), except the last, which boots its own\n',
  );
  const baselines: number[] = [];
  const runs: PipelineRun[][] = BENCH_FORMATS.map(() => []);
  for (let round = 0; round < rounds; round += 1) {
    baselines.push(await baseline(prepared.files));
    for (const [i, format] of BENCH_FORMATS.entries()) {
      const measured = await pipeline(format.flags);
      runs[i]!.push(measured);
      process.stderr.write(`round ${round + 1}: ${format.label} ${measured.seconds.toFixed(2)} s\n`);
    }
  }
  const exported = new Set(runs.flat().map((r) => r.exported));
  if (exported.size !== 1)
    throw new Error(`the formats exported different counts: ${[...exported].join(', ')}`);
  const filtered = await pipeline([...ON_HOME, '--where', BENCH_WHERE]);
  const baselineSeconds = median(baselines);
  const seconds = (value: number) => `${value.toFixed(2)} s`;
  const fixed2 = (value: number) => value.toFixed(2);
  const referenceBytes = median(runs[0]!.map((r) => r.bytes));
  const lines = BENCH_FORMATS.map((format, i) => {
    const measured = runs[i]!;
    // Each round's ratio against that round's baseline: load that slows both cancels out.
    const ratios = measured.map((r, round) => baselines[round]! / r.seconds);
    const bytes = median(measured.map((r) => r.bytes));
    return (
      `${format.label}: ratio ${spread(ratios, fixed2)} of baseline, ${spread(
        measured.map((r) => r.seconds),
        seconds,
      )}, CPU ${spread(
        measured.map((r) => r.cpuSeconds),
        seconds,
      )}, ${(bytes / 1e6).toFixed(1)} MB written (${((100 * bytes) / referenceBytes).toFixed(0)}% of JSON gzip), ` +
      `peak RSS ${Math.max(...measured.map((r) => r.peakRssMb))} MB\n`
    );
  });
  process.stdout.write(
    `baseline (zcat | gzip -1): ${spread(baselines, seconds)}, ${(events / baselineSeconds).toFixed(0)} events/s, ` +
      `${(rawMb / baselineSeconds).toFixed(1)} MB/s (median (min-max) of ${rounds} rounds)\n` +
      lines.join('') +
      `JSON gzip with --where '${BENCH_WHERE}' (one run): ${seconds(filtered.seconds)}, ${filtered.exported} events exported, ` +
      `ratio ${(baselineSeconds / filtered.seconds).toFixed(2)} of the median baseline, peak RSS ${filtered.peakRssMb} MB\n` +
      `bench: JSON gzip ratio ${fixed2(median(runs[0]!.map((r, round) => baselines[round]! / r.seconds)))} of baseline, ` +
      `peak RSS at most ${Math.max(...runs.flat().map((r) => r.peakRssMb))} MB in every format\n`,
  );
}

async function peopleBench(): Promise<void> {
  const laterUpdates = Math.max(1, Math.round(count / 100));
  const marker = join(rawDir, 'prepared.json');
  const prepared = await readFile(marker, 'utf8').then(
    (text) => JSON.parse(text) as { rawBytes: number },
    async () => {
      await rm(rawDir, { recursive: true, force: true });
      process.stderr.write(
        `generating ${count} profiles and ${laterUpdates} later updates in ${rawDir} ...\n`,
      );
      const made = await generateProfileBenchData({
        rawDir,
        projectId: 'bench',
        start: Date.parse(`${DAY}T00:00:00Z`),
        profiles: count,
        hours: 23,
        laterUpdates,
      });
      await writeFile(marker, JSON.stringify(made));
      return made;
    },
  );
  process.stderr.write(
    `data: ${count} profiles, ${(prepared.rawBytes / 1e6).toFixed(1)} MB of updates uncompressed\n`,
  );
  const rounds = parseNamed('BENCH_ROUNDS', process.env.BENCH_ROUNDS ?? '3', positiveInteger);
  const measured: {
    firstSeconds: number;
    firstRss: number;
    seconds: number;
    rss: number;
    baseline: number;
    bytes: number;
  }[] = [];
  for (let round = 0; round < rounds; round += 1) {
    const out = join(root, 'out-people');
    await rm(out, { recursive: true, force: true });
    const extra = ['--data-source', 'people', '--name', 'people-daily'];
    const first = await localRun(out, `${nextDay(DAY)}T03:00:00Z`, extra);
    const second = await localRun(out, `${nextDay(nextDay(DAY))}T03:00:00Z`, extra);
    const folder = join(out, snapshotFolder('bench', 'people'));
    const manifest = JSON.parse(
      await readFile(join(out, snapshotManifestKey('bench', 'people', 'people-daily')), 'utf8'),
    ) as SnapshotManifest;
    const folded = second.result.steps[0]?.snapshot;
    const expected = count + (folded?.created ?? 0) - (folded?.deleted ?? 0) - (folded?.merged ?? 0);
    if (manifest.records !== expected)
      throw new Error(`the snapshot has ${manifest.records} profiles, not ${expected}`);
    const parts = manifest.parts.map((p) => join(folder, p.file));
    measured.push({
      firstSeconds: first.seconds,
      firstRss: first.result.peak_rss_mb,
      seconds: second.seconds,
      rss: second.result.peak_rss_mb,
      baseline: await baseline(parts),
      bytes: manifest.uncompressed_bytes,
    });
    process.stderr.write(
      `round ${round + 1}: first ${first.seconds.toFixed(2)} s, next ${second.seconds.toFixed(2)} s\n`,
    );
  }
  const seconds = (value: number) => `${value.toFixed(2)} s`;
  const megabytes = (value: number) => `${value.toFixed(0)} MB`;
  const of = (pick: (m: (typeof measured)[number]) => number) => measured.map(pick);
  // Each round's ratio against that round's baseline: load that slows both cancels out.
  const ratios = measured.map((m) => m.baseline / m.seconds);
  process.stdout.write(
    `first snapshot (${count} new profiles): ${spread(
      of((m) => m.firstSeconds),
      seconds,
    )}, peak RSS ${spread(
      of((m) => m.firstRss),
      megabytes,
    )}\n` +
      `baseline (zcat | gzip -1 of the snapshot, ${(median(of((m) => m.bytes)) / 1e6).toFixed(0)} MB): ${spread(
        of((m) => m.baseline),
        seconds,
      )}\n` +
      `next snapshot (${laterUpdates} updates folded into ${count} profiles): ${spread(
        of((m) => m.seconds),
        seconds,
      )}, peak RSS ${spread(
        of((m) => m.rss),
        megabytes,
      )}\n` +
      `bench people: ratio ${spread(ratios, (r) => r.toFixed(2))} of baseline, peak RSS at most ${Math.max(...of((m) => m.rss))} MB (first snapshot at most ${Math.max(...of((m) => m.firstRss))} MB); median (min-max) of ${rounds} rounds\n`,
  );
}

/** The tick the dispatcher bench times (a schedule instant); every pipeline is committed up to it. */
const DISPATCH_TICK = Date.parse('2025-03-05T12:15:00Z');
const DISPATCH_ZONES = ['America/New_York', 'Europe/Berlin', 'Asia/Kolkata', 'Australia/Adelaide', 'UTC'];
const TIMED_TICKS = 5;

/**
 * Lays down what a pipeline's state holds at the tick after its history was committed tick by tick:
 * the run records of its last two days and the backlog mark its last commit moved (the real
 * `advanceBacklogMark` moves it over those records). The older run records are not written: with a
 * current mark no tick reads them, before this change or after.
 */
async function layDownHistory(stores: EngineStores, config: PipelineConfig): Promise<void> {
  const recent = dueStepsAfter(
    config,
    new ZoneCalendar(config.time_zone),
    DISPATCH_TICK,
    DISPATCH_TICK - 2 * DAY_MS,
  );
  const first = recent[0];
  if (first === undefined)
    throw new Error(`no step of ${config.name} became due in the two days before the tick`);
  // Everything due before these was committed by earlier ticks.
  await writeBacklogMark(stores, config, first.dueAt - 1);
  // Only their presence is read.
  for (const d of recent) await putJson(stores.state, runRecordKey(d.id), { step_id: d.id });
  await advanceBacklogMark(stores, config, DISPATCH_TICK);
}

interface TickTimes {
  readonly pipelines: number;
  /** Wall-clock ms of each timed tick, and the CPU ms this process spent in it (the emulator's aside). */
  readonly wallMs: readonly number[];
  readonly cpuMs: readonly number[];
}

/** Stores the pipelines and their states, then times ticks of the dispatcher over them. */
async function timeDispatcher(moto: Moto, pipelines: number, historyDays: number): Promise<TickTimes> {
  const control = await startControlPlane(moto);
  const folder = join(root, `dispatcher-${pipelines}x${historyDays}d`);
  try {
    await rm(folder, { recursive: true, force: true });
    const out = join(folder, 'out');
    const stores = (config: PipelineConfig) =>
      localStores({
        raw: join(folder, 'raw'),
        out,
        state: defaultStateFolder(out, config.project_id, config.name),
      });
    const runtime = localRuntime({ control, stores, clock: () => DISPATCH_TICK });
    const fromDate = new Date(DISPATCH_TICK - historyDays * DAY_MS).toISOString().slice(0, 10);
    for (let i = 0; i < pipelines; i += 1) {
      // One project each: the dispatcher stops looking at a project's pipelines once one is due.
      const config = parsePipelineConfig({
        project_id: `bench-${String(i).padStart(4, '0')}`,
        name: 'events-hourly',
        frequency: 'hourly',
        sync: true,
        time_zone: DISPATCH_ZONES[i % DISPATCH_ZONES.length],
        from_date: fromDate,
      });
      await runtime.configs.put(config, DISPATCH_TICK);
      await layDownHistory(stores(config), config);
    }
    const tick = { time: new Date(DISPATCH_TICK).toISOString() };
    const wallMs: number[] = [];
    const cpuMs: number[] = [];
    // The first tick is not timed: it warms the code and the connection to the emulator.
    for (let i = 0; i <= TIMED_TICKS; i += 1) {
      const cpu = process.cpuUsage();
      const { seconds, value } = await timed(() => findDueProjects(runtime, tick));
      const used = process.cpuUsage(cpu);
      if (value.projects.length > 0)
        throw new Error(
          `the bench's state is not committed up to the tick: ${value.projects.length} projects due`,
        );
      if (i === 0) continue;
      wallMs.push(seconds * 1000);
      cpuMs.push((used.user + used.system) / 1000);
    }
    return { pipelines, wallMs, cpuMs };
  } finally {
    await control.stop();
    await rm(folder, { recursive: true, force: true });
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Median wall time per pipeline of a case's ticks. */
function perPipelineMs(times: TickTimes): number {
  return median(times.wallMs) / times.pipelines;
}

function describeTicks(label: string, times: TickTimes): string {
  const ms = (value: number) => value.toFixed(value < 10 ? 2 : 1);
  return (
    `${label}: median ${ms(median(times.wallMs))} ms per tick ` +
    `(${ms(Math.min(...times.wallMs))}-${ms(Math.max(...times.wallMs))} over ${times.wallMs.length} ticks), ` +
    `${ms(perPipelineMs(times))} ms per pipeline, CPU ${ms(median(times.cpuMs))} ms\n`
  );
}

async function dispatcherBench(): Promise<void> {
  const pipelines = parseNamed('pipelines', countArg ?? '200', positiveInteger);
  const moto = await startMoto();
  try {
    const oneDay = await timeDispatcher(moto, 1, 1);
    const manyDays = await timeDispatcher(moto, pipelines, 1);
    const threeYears = await timeDispatcher(moto, pipelines, 3 * 365);
    process.stdout.write(
      describeTicks('one pipeline with one day of history', oneDay) +
        describeTicks(`${pipelines} pipelines with one day of history each`, manyDays) +
        describeTicks(`${pipelines} pipelines with three years of hourly history each`, threeYears) +
        `bench dispatcher: per pipeline, three years of history cost ` +
        `${(perPipelineMs(threeYears) / perPipelineMs(oneDay)).toFixed(2)} of one pipeline with one day ` +
        `and ${(perPipelineMs(threeYears) / perPipelineMs(manyDays)).toFixed(2)} of ${pipelines} with one day (target: at most 2)\n`,
    );
  } finally {
    await moto.stop();
  }
}

await (mode === 'dispatcher' ? dispatcherBench() : withEmulatorUp(people ? peopleBench : eventsBench));
