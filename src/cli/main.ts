#!/usr/bin/env node
import { join, resolve } from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ConfigError } from '../core/errors.js';
import { snapshotFolder } from '../core/layout.js';
import { type DataSource, type PipelineConfig, parsePipelineConfig } from '../core/pipeline-config.js';
import { defaultStateFolder } from '../local/local-stores.js';
import { runLocalPipeline } from '../local/run.js';
import {
  addLocalHomeCommands,
  addManagementCommands,
  configFields,
  dataSourceOption,
  EXIT,
  exitCodeOf,
  FLAG_OF_FIELD,
  partFormatOptions,
  positiveInteger,
  WHERE_HELP,
} from './commands.js';
import { formatReconciliation } from './format.js';
import { addReconcileCommand } from './reconcile-command.js';
import { addWarehouseCommands } from './warehouse-command.js';

function instant(value: string): number {
  // An instant needs a zone: a bare local time would mean different things on different machines.
  if (
    !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(value) ||
    Number.isNaN(Date.parse(value))
  ) {
    throw new InvalidArgumentError('expected an ISO-8601 instant with a zone, e.g. 2024-01-03T06:00:00Z');
  }
  return Date.parse(value);
}

/** Builds the `mp-pipelines` command tree. */
export function buildProgram(): Command {
  const program = new Command('mp-pipelines')
    .description(
      'Self-hosted data pipelines: export product-analytics events to <project_id>/mp_master_event/YYYY/MM/DD/',
    )
    .showHelpAfterError()
    .configureHelp({ showGlobalOptions: true })
    // Usage errors exit with EXIT.invalid, not commander's 1 (which means a run failed).
    .exitOverride();

  addManagementCommands(program);
  addReconcileCommand(program);
  addWarehouseCommands(program);
  const local = program.command('local').description('run pipelines on this machine, with no AWS account');
  addLocalHomeCommands(local);
  partFormatOptions(local.command('run'))
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
    )
    .requiredOption('--project <id>', 'project id')
    .addOption(dataSourceOption())
    .requiredOption('--timezone <iana>', 'project time zone, e.g. America/New_York')
    .addOption(
      new Option('--frequency <frequency>', 'export window')
        .choices(['hourly', 'daily'])
        .makeOptionMandatory(),
    )
    .option(
      '--sync',
      'export late events in a daily sync run (otherwise they are counted, not exported)',
      false,
    )
    .requiredOption(
      '--from <date>',
      'first event day exported (YYYY-MM-DD, project time); earlier days are a backfill',
    )
    .option('--to <date>', 'last event day exported (YYYY-MM-DD); default: no end')
    .requiredOption(
      '--now <instant>',
      'the current instant, ISO-8601 with a zone, e.g. 2024-01-03T06:00:00Z',
      instant,
    )
    .option('--state <dir>', 'pipeline state and staging (default: <out>/_state/<project>/<name>)')
    .option('--name <name>', 'pipeline name (default: <data source>-<frequency>)')
    .option('--events <names>', 'export only these event names (comma-separated)')
    .option('--where <expression>', WHERE_HELP)
    .option('--part-max-mb <mb>', 'largest output part, uncompressed MiB (default 256)', positiveInteger)
    .option('--workers <n>', 'worker threads (default: one per core)', positiveInteger)
    .option('--json', 'print the result as JSON instead of tables', false)
    .action(async (flags: LocalRunFlags) => {
      process.exitCode = await localRun(flags);
    });
  return program;
}

interface LocalRunFlags {
  raw: string;
  out: string;
  project: string;
  dataSource: DataSource;
  timezone: string;
  frequency: 'hourly' | 'daily';
  sync: boolean;
  from: string;
  to?: string;
  now: number;
  state?: string;
  name?: string;
  events?: string;
  where?: string;
  partMaxMb?: number;
  format?: string;
  compression?: string;
  compressionLevel?: number;
  workers?: number;
  json: boolean;
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
  const result = await runLocalPipeline({
    folders,
    config,
    now: flags.now,
    ...(flags.workers === undefined ? {} : { workers: flags.workers }),
    progress: (message) => process.stderr.write(`[${config.project_id}/${config.name}] ${message}\n`),
  });
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
  return result.ok ? 0 : 1;
}

/** Where a pipeline's output goes under the destination root. */
function outputFolder(config: PipelineConfig): string {
  return config.data_source === 'events'
    ? `${config.project_id}/mp_master_event/`
    : snapshotFolder(config.project_id, config.data_source);
}

/** Rewrites config errors in terms of the flags that set the fields. */
function explain(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  if (!(error instanceof ConfigError)) return error.message;
  return error.message.replace(/^(\s*)([a-z0-9_]+)(\.\d+)?:/gm, (whole, indent: string, field: string) => {
    const flag = FLAG_OF_FIELD[field];
    return flag === undefined ? whole : `${indent}${flag}:`;
  });
}

try {
  await buildProgram().parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // commander printed the message (and the help) already; help and --version exit 0.
    process.exitCode = error.exitCode === 0 ? EXIT.ok : EXIT.invalid;
  } else {
    process.stderr.write(`error: ${explain(error)}\n`);
    process.exitCode = exitCodeOf(error);
  }
}
