/**
 * `mp-pipelines local up|down|schedule|run`: pipelines on this machine, with no AWS account. `up`,
 * `down` and `schedule` work on the local home (its tables kept between commands, a simulated clock);
 * `run` runs one pipeline over a landing-zone folder, due steps at `--now`, with no home.
 */
import { join, resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { UsageError } from '../core/errors.js';
import { snapshotFolder } from '../core/layout.js';
import { type DataSource, type PipelineConfig, parsePipelineConfig } from '../core/pipeline-config.js';
import { ConfigStreamReader } from '../local/config-stream.js';
import { type ControlPlane, startControlPlane } from '../local/control-plane.js';
import { LocalHome } from '../local/local-home.js';
import { defaultStateFolder } from '../local/local-stores.js';
import type { RunResult } from '../local/run.js';
import { addConfigOptions, configFields } from './config-flags.js';
import { formatReconciliation } from './format.js';
import { rootCommand } from './root-command.js';
import { EXIT, instant, positiveInteger, print } from './shared.js';

interface ScheduleFlags {
  readonly until: number;
  readonly home?: string;
  readonly workers?: number;
  readonly json: boolean;
}

interface LocalRunFlags {
  readonly raw: string;
  readonly out: string;
  readonly project: string;
  readonly dataSource: DataSource;
  readonly frequency: 'hourly' | 'daily';
  readonly now: number;
  readonly state?: string;
  readonly name?: string;
  readonly workers?: number;
  /** The local home whose emulator the run uses (`true`: the default home). */
  readonly home?: string | true;
  readonly json: boolean;
}

/** `--workers`, of `schedule` and `run`. */
function workersOption(): Option {
  return new Option('--workers <n>', 'worker threads (default: one per core)').argParser(positiveInteger);
}

/**
 * The command tree with only `local`: what `local run` loads, without the other groups' modules (the
 * clients of the deployed commands, about 0.2 s of a local run's start).
 */
export function buildLocalProgram(): Command {
  const program = rootCommand();
  addLocalCommands(program);
  return program;
}

/** Adds `local` and its commands. */
export function addLocalCommands(program: Command): void {
  const local = program.command('local').description('run pipelines on this machine, with no AWS account');
  local
    .command('up')
    .description('start the local emulator (kept running) and restore the tables saved in the home')
    .option('--home <dir>', 'the local home (default: .mp-pipelines, or MP_PIPELINES_HOME)')
    .option('--raw <dir>', 'landing zone root (default: <home>/raw; remembered)')
    .option('--out <dir>', 'where pipelines without --s3-bucket write (default: <home>/out; remembered)')
    .action(async (flags: { home?: string; raw?: string; out?: string }) => {
      const home = new LocalHome(flags.home);
      const { server, started } = await home.up({
        ...(flags.raw === undefined ? {} : { raw: flags.raw }),
        ...(flags.out === undefined ? {} : { out: flags.out }),
      });
      process.stdout.write(
        `${started ? 'started' : 'already up'}: ${home.dir} (DynamoDB on ${server.endpoint})\n` +
          `  landing zone: ${server.raw}\n  destination:  ${server.out}\n` +
          `  clock:        ${server.now ?? 'not started (the first `local schedule` sets it)'}\n`,
      );
    });

  local
    .command('down')
    .description('save the tables into the home and stop the emulator')
    .option('--home <dir>', 'the local home')
    .action(async (flags: { home?: string }) => {
      const home = new LocalHome(flags.home);
      const stopped = await home.down();
      process.stdout.write(stopped ? `saved and stopped: ${home.dir}\n` : `not running: ${home.dir}\n`);
    });

  local
    .command('schedule')
    .description(
      'run the schedule on the simulated clock until --until: every 15-minute tick at which a step is due ' +
        'fires the dispatcher, as a deployment would (hand edits of configs are reviewed first)',
    )
    .requiredOption('--until <instant>', 'run until this instant, ISO-8601 with a zone', instant)
    .option('--home <dir>', 'the local home')
    .addOption(workersOption())
    .option('--json', 'print the result as JSON', false)
    .action(async (flags: ScheduleFlags) => {
      process.exitCode = await schedule(flags);
    });

  addConfigOptions(
    local
      .command('run')
      .description(
        'run every step of one pipeline that is due at --now: ingest complete arrival hours; events: export each ' +
          'window whose end + 2 h 20 min has passed and, with --sync, the late events of each finished arrival day; ' +
          'people and identity: write the snapshot of the latest such window',
      )
      .requiredOption(
        '--raw <dir>',
        'landing zone root: <dir>/<project>/<events|people|identity>/YYYY/MM/DD/HH/*.json[.gz]',
      )
      .requiredOption(
        '--out <dir>',
        'destination root: output goes to <dir>/<project>/mp_master_event/YYYY/MM/DD/, mp_people_data/ or mp_identity_mappings_data/',
      ),
    'local run',
  )
    .requiredOption(
      '--now <instant>',
      'the current instant, ISO-8601 with a zone, e.g. 2024-01-03T06:00:00Z',
      instant,
    )
    .option('--state <dir>', 'pipeline state and staging (default: <out>/_state/<project>/<name>)')
    .option(
      '--home [dir]',
      'use the emulator of this local home, kept up by `local up` (default home: .mp-pipelines, or ' +
        'MP_PIPELINES_HOME), instead of booting one for the run (about half a second); the run makes tables ' +
        'of its own there and drops them at the end',
    )
    .addOption(workersOption())
    .option('--json', 'print the result as JSON instead of tables', false)
    .action(async (flags: LocalRunFlags) => {
      process.exitCode = await localRun(flags);
    });
}

async function schedule(flags: ScheduleFlags): Promise<number> {
  const { until } = flags;
  const home = new LocalHome(flags.home);
  const server = await home.server();
  if (server === undefined)
    throw new UsageError(`the local home ${home.dir} is not up: start it with \`mp-pipelines local up\``);
  const clock = server.now === undefined ? undefined : Date.parse(server.now);
  if (clock !== undefined && until < clock)
    throw new UsageError(`--until: the simulated clock is already at ${server.now}; give a later instant`);
  const { pipelineId, runLocalPipelines } = await import('../local/run.js');
  const { reviewConfigChanges } = await import('../workflow/activities.js');
  const control = home.controlPlane(server);
  const stream = new ConfigStreamReader(control.dynamo, control.configsTable, server.endpoint, server.stream);
  try {
    const { results, ticks } = await runLocalPipelines({
      control,
      folders: (config) => home.folders(server, config),
      now: until,
      ticks: 'schedule',
      ...(clock === undefined ? {} : { startAt: clock }),
      ...(flags.workers === undefined ? {} : { workers: flags.workers }),
      beforeTick: async (_tick, runtime) => {
        await reviewConfigChanges(runtime, await stream.poll());
      },
      progress: (message) => process.stderr.write(`  ${message}\n`),
    });
    await home.update({ now: new Date(until).toISOString(), stream: stream.position() });
    await home.save(server);
    const ok = [...results.values()].every((r) => r.ok);
    print(
      flags,
      {
        until: new Date(until).toISOString(),
        ticks,
        pipelines: [...results.values()].map((r) => ({
          pipeline: pipelineId(r.config),
          steps: r.steps.map((s) => s.step_id),
          failures: r.failures,
          problems: r.reconciliation.problems,
        })),
      },
      () =>
        `clock now ${new Date(until).toISOString()}; ${ticks} ticks fired\n` +
        [...results.values()]
          .map(
            (r) =>
              `\n== ${pipelineId(r.config)}: ${r.steps.length} steps committed` +
              `${r.failures.length > 0 ? `, FAILING:\n  ${r.failures.join('\n  ')}` : ''}\n` +
              formatReconciliation(r.reconciliation),
          )
          .join('\n'),
    );
    return ok ? EXIT.ok : EXIT.failed;
  } finally {
    stream.close();
    await control.stop();
  }
}

async function localRun(flags: LocalRunFlags): Promise<number> {
  const config = parsePipelineConfig(
    configFields({ ...flags, name: flags.name ?? `${flags.dataSource}-${flags.frequency}` }),
  );
  const out = resolve(flags.out);
  const folders = {
    raw: resolve(flags.raw),
    out,
    state: resolve(flags.state ?? defaultStateFolder(out, config.project_id, config.name)),
  };
  const startedAt = Date.now();
  // The emulator boots while the engine's modules load (the engine is loaded only by the commands that run it).
  const control = flags.home === undefined ? startControlPlane() : homeControlPlane(flags.home);
  control.catch(() => undefined);
  const { takeTaskPool } = await import('../local/task-pool.js');
  const pool = takeTaskPool(flags.workers);
  let result: RunResult;
  try {
    const { runLocalPipeline } = await import('../local/run.js');
    result = await runLocalPipeline({
      folders,
      config,
      now: flags.now,
      control,
      pool,
      progress: (message) => process.stderr.write(`[${config.project_id}/${config.name}] ${message}\n`),
    });
  } finally {
    await pool.destroy();
    await control.then(
      (plane) => plane.stop(),
      () => undefined,
    );
  }
  const usage = process.resourceUsage();
  const peakRssMb = Math.round(usage.maxRSS / 1024);
  if (flags.json) {
    // CPU time of the whole process (worker threads included): what a busy machine disturbs least.
    const cpuMs = Math.round((usage.userCPUTime + usage.systemCPUTime) / 1000);
    process.stdout.write(
      `${JSON.stringify({ ...result, elapsed_ms: Date.now() - startedAt, cpu_ms: cpuMs, peak_rss_mb: peakRssMb }, null, 2)}\n`,
    );
  } else {
    for (const failure of result.failures) process.stderr.write(`error: ${failure}\n`);
    process.stdout.write(
      `${config.project_id}/${config.name}: ingested ${result.ingestedHours} arrival hours, ran ${result.steps.length} steps ` +
        `in ${((Date.now() - startedAt) / 1000).toFixed(1)} s (peak RSS ${peakRssMb} MB); output in ${join(out, outputFolder(config))}\n\n` +
        `${formatReconciliation(result.reconciliation)}\n`,
    );
  }
  return result.ok ? EXIT.ok : EXIT.failed;
}

/** A control plane on the emulator of a local home that is up (`local run --home`). */
async function homeControlPlane(dir: string | true): Promise<ControlPlane> {
  const home = new LocalHome(dir === true ? undefined : dir);
  const server = await home.server();
  if (server === undefined)
    throw new UsageError(
      `--home: the local home ${home.dir} is not up: start it with \`mp-pipelines local up\``,
    );
  // The home's server outlives the run: its tables are left alone, and the run's are dropped at the end.
  return startControlPlane({ endpoint: server.endpoint, pid: server.pid, stop: async () => undefined });
}

/** Where a pipeline's output goes under the destination root. */
function outputFolder(config: PipelineConfig): string {
  return config.data_source === 'events'
    ? `${config.project_id}/mp_master_event/`
    : snapshotFolder(config.project_id, config.data_source);
}
