/**
 * `npm run bench [events]`: measures the local events pipeline against `zcat <files> | gzip -1`
 * on the same files, in the same run, and reports the ratio of throughputs and the peak memory.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { generateBenchData } from './generate.js';

const run = promisify(execFile);
const DAY = '2024-03-05';
const events = Number(process.argv[2] ?? process.env.BENCH_EVENTS ?? 1_000_000);
const root = resolve('.bench');
const rawDir = join(root, `raw-${events}`);
const cli = fileURLToPath(new URL('../cli/main.js', import.meta.url));

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

async function pipeline(): Promise<{ seconds: number; peakRssMb: number; exported: number }> {
  const out = join(root, 'out');
  await rm(out, { recursive: true, force: true });
  const { seconds, value } = await timed(() =>
    run(
      process.execPath,
      [
        cli,
        'local',
        'run',
        '--raw',
        rawDir,
        '--out',
        out,
        '--project',
        'bench',
        '--timezone',
        'UTC',
        '--frequency',
        'daily',
        '--from',
        DAY,
        '--now',
        `${nextDay(DAY)}T03:00:00Z`,
        '--json',
      ],
      { maxBuffer: 64 << 20 },
    ),
  );
  const result = JSON.parse(value.stdout) as {
    ok: boolean;
    peak_rss_mb: number;
    steps: { exported: number }[];
    failures: string[];
  };
  if (!result.ok) throw new Error(`the pipeline run failed: ${result.failures.join('; ')}`);
  return {
    seconds,
    peakRssMb: result.peak_rss_mb,
    exported: result.steps.reduce((sum, s) => sum + s.exported, 0),
  };
}

function nextDay(day: string): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
}

const prepared = await prepare();
const rawMb = prepared.rawBytes / 1e6;
process.stderr.write(
  `data: ${events} events, ${rawMb.toFixed(1)} MB uncompressed in ${prepared.files.length} gzip files\n`,
);
// Best of two runs each: the machine's other load only ever slows a run down.
const baselineSeconds = Math.min(await baseline(prepared.files), await baseline(prepared.files));
const first = await pipeline();
const second = await pipeline();
const ours = first.seconds <= second.seconds ? first : second;
const peakRssMb = Math.max(first.peakRssMb, second.peakRssMb);
const eventsPerSecond = Math.round(events / ours.seconds);
const mbPerSecond = rawMb / ours.seconds;
const ratio = baselineSeconds / ours.seconds;
process.stdout.write(
  `baseline (zcat | gzip -1): ${(events / baselineSeconds).toFixed(0)} events/s, ${(rawMb / baselineSeconds).toFixed(1)} MB/s, ${baselineSeconds.toFixed(2)} s\n` +
    `pipeline (local run, daily): ${eventsPerSecond} events/s, ${mbPerSecond.toFixed(1)} MB/s, ${ours.seconds.toFixed(2)} s, ` +
    `${ours.exported} events exported, peak RSS ${peakRssMb} MB\n` +
    `bench: ${eventsPerSecond} events/s, ${mbPerSecond.toFixed(1)} MB/s, ratio ${ratio.toFixed(2)} of baseline, peak RSS ${peakRssMb} MB\n`,
);
