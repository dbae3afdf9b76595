/**
 * The management commands (`pipelines`, `runs`, `status`) and the local home's (`local up`, `down`,
 * `schedule`). Each prints tables for people or, with `--json`, one JSON document for scripts.
 */
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { ConfigError, UsageError } from '../core/errors.js';
import { COMPRESSIONS, DATA_SOURCES, OUTPUT_FORMATS, withoutSecrets } from '../core/pipeline-config.js';
import type { StoredPipeline } from '../core/pipeline-rules.js';
import type { StepRunEntry } from '../core/records.js';
import { ConfigStreamReader } from '../local/config-stream.js';
import { LocalHome } from '../local/local-home.js';
import { pipelineId, runLocalPipelines } from '../local/run.js';
import { changeStatus, createPipeline, ManagementError, type StatusAction } from '../management/pipelines.js';
import { pipelineStanding } from '../management/status.js';
import { reviewConfigChanges } from '../workflow/activities.js';
import { formatReconciliation, table } from './format.js';
import { openTarget, type Target, type TargetFlags } from './target.js';

/** Exit codes a script can tell apart. */
export const EXIT = { ok: 0, failed: 1, invalid: 2, notFound: 3, refused: 4 } as const;

/** The exit code of an error thrown by a command. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof ConfigError || error instanceof UsageError) return EXIT.invalid;
  if (error instanceof ManagementError) return error.kind === 'not-found' ? EXIT.notFound : EXIT.refused;
  return EXIT.failed;
}

/** The flags every command acting on a target takes. */
export interface OutputFlags extends TargetFlags {
  readonly json: boolean;
}

/** Adds the target flags (`--stack`, `--region`, `--home`) and `--json`. */
export function targetOptions(command: Command): Command {
  return command
    .option(
      '--stack <name>',
      'act on this deployed stack (its outputs name the tables); default: the local home',
    )
    .option('--region <region>', "the stack's region (default: the AWS SDK's)")
    .option('--home <dir>', 'the local home (default: .mp-pipelines, or MP_PIPELINES_HOME)')
    .option('--json', 'print JSON instead of tables', false);
}

/** A stored attribute as a table cell: any value a hand edit left there (a map, a set) shows, never throws. */
function cellOf(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value, (_key, inner: unknown) =>
      inner instanceof Set ? [...inner] : typeof inner === 'bigint' ? String(inner) : inner,
    );
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** Prints JSON with `--json`, else the text for people. */
export function print(flags: OutputFlags, json: unknown, text: () => string): void {
  process.stdout.write(flags.json ? `${JSON.stringify(json, null, 2)}\n` : `${text()}\n`);
}

/** Opens the target the flags name, runs `work`, and closes it. */
export async function withTarget<T>(flags: TargetFlags, work: (target: Target) => Promise<T>): Promise<T> {
  const target = await openTarget(flags);
  try {
    return await work(target);
  } finally {
    await target.close();
  }
}

/** Config fields as the flags of `pipelines create` (and `local run`), so errors name the flag. */
export const FLAG_OF_FIELD: Record<string, string> = {
  project_id: '--project',
  name: '--name',
  data_source: '--data-source',
  frequency: '--frequency',
  sync: '--sync',
  trial: '--trial',
  time_zone: '--timezone',
  from_date: '--from',
  to_date: '--to',
  event_names: '--events',
  where: '--where',
  part_max_bytes: '--part-max-mb',
  format: '--format',
  compression: '--compression',
  compression_level: '--compression-level',
  s3_bucket: '--s3-bucket',
  s3_prefix: '--s3-prefix',
  s3_region: '--s3-region',
  s3_role: '--s3-role',
  s3_external_id: '--s3-external-id',
  s3_encryption: '--s3-encryption',
  s3_kms_key_id: '--s3-kms-key-id',
};

/** The flags that set config fields (`pipelines create` and `local run`). */
export interface ConfigFlags {
  project: string;
  name: string;
  dataSource?: string;
  frequency: string;
  timezone: string;
  from: string;
  to?: string;
  sync: boolean;
  trial?: boolean;
  events?: string;
  where?: string;
  partMaxMb?: number;
  format?: string;
  compression?: string;
  compressionLevel?: number;
  s3Bucket?: string;
  s3Prefix?: string;
  s3Region?: string;
  s3Role?: string;
  s3ExternalId?: string;
  s3Encryption?: string;
  s3KmsKeyId?: string;
}

/** Config fields from flags; absent flags leave the schema's defaults. */
export function configFields(flags: ConfigFlags): Record<string, unknown> {
  const optional: [string, unknown][] = [
    ['data_source', flags.dataSource],
    ['to_date', flags.to],
    ['trial', flags.trial],
    ['event_names', flags.events?.split(',').map((n) => n.trim())],
    ['where', flags.where],
    ['part_max_bytes', flags.partMaxMb === undefined ? undefined : flags.partMaxMb * 1024 * 1024],
    ['format', flags.format],
    ['compression', flags.compression],
    ['compression_level', flags.compressionLevel],
    ['s3_bucket', flags.s3Bucket],
    ['s3_prefix', flags.s3Prefix],
    ['s3_region', flags.s3Region],
    ['s3_role', flags.s3Role],
    ['s3_external_id', flags.s3ExternalId],
    ['s3_encryption', flags.s3Encryption],
    ['s3_kms_key_id', flags.s3KmsKeyId],
  ];
  return {
    project_id: flags.project,
    name: flags.name,
    frequency: flags.frequency,
    time_zone: flags.timezone,
    from_date: flags.from,
    sync: flags.sync,
    ...Object.fromEntries(optional.filter(([, value]) => value !== undefined)),
  };
}

/** Help of the `--where` option (`pipelines create` and `local run`). */
export const WHERE_HELP =
  'export only events whose properties match, e.g. \'properties["plan"] == "pro" and defined(properties["$os"])\'';

/** The `--data-source` option (events, or a snapshot of people or identity mappings). */
export function dataSourceOption(): Option {
  return new Option(
    '--data-source <source>',
    'events by day, or complete snapshots of people profiles or identity mappings',
  )
    .choices(DATA_SOURCES)
    .default('events');
}

/**
 * `--format`, `--compression` and `--compression-level` (`pipelines create` and `local run`); the
 * schema checks that the codec suits the format and the level the codec, naming the flag.
 */
export function partFormatOptions(command: Command): Command {
  return command
    .addOption(
      new Option('--format <format>', 'file format of output parts (default json)').choices(OUTPUT_FORMATS),
    )
    .addOption(
      new Option(
        '--compression <codec>',
        'codec of output parts: json gzip (default) or zstd; parquet zstd (default), snappy or gzip',
      ).choices(COMPRESSIONS),
    )
    .option(
      '--compression-level <level>',
      'codec level: gzip 1-9 (default 1; 6 is ~2x the CPU for ~20-40% smaller files), zstd 1-19 (default 3)',
      positiveInteger,
    );
}

/** A positive integer flag value. */
export function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

interface CreateFlags extends OutputFlags, ConfigFlags {}

interface PipelineFlags extends OutputFlags {
  project: string;
  name: string;
}

/** Adds `pipelines`, `runs` and `status`. */
export function addManagementCommands(program: Command): void {
  const pipelines = program
    .command('pipelines')
    .description('create, view, pause, unpause and delete pipelines');
  targetOptions(
    partFormatOptions(pipelines.command('create'))
      .description('create a pipeline (rules: docs/contract.md#management-rules; a refusal says why)')
      .requiredOption('--project <id>', 'project id')
      .requiredOption('--name <name>', 'pipeline name, unique in the project')
      .addOption(dataSourceOption())
      .addOption(
        new Option('--frequency <frequency>', 'export window')
          .choices(['hourly', 'daily'])
          .makeOptionMandatory(),
      )
      .requiredOption('--timezone <iana>', 'project time zone, e.g. America/New_York')
      .requiredOption('--from <date>', 'first event day exported (YYYY-MM-DD); a past date is a backfill')
      .option('--to <date>', 'last event day exported (YYYY-MM-DD); default: no end')
      .option('--sync', 'export late events in a daily sync run', false)
      .option('--trial', 'a trial pipeline: daily, no sync, one day of backfill, ends with the trial', false)
      .option('--events <names>', 'export only these event names (comma-separated)')
      .option('--where <expression>', WHERE_HELP)
      .option('--s3-bucket <bucket>', "destination bucket (default: the deployment's destination bucket)")
      .option('--s3-prefix <prefix>', 'key prefix in the bucket')
      .option('--s3-region <region>', "the destination bucket's region")
      .option('--s3-role <arn>', 'role in the destination account to assume')
      .option('--s3-external-id <id>', 'external id the role requires')
      .addOption(
        new Option('--s3-encryption <kind>', 'server-side encryption').choices(['none', 'aes', 'kms']),
      )
      .option('--s3-kms-key-id <key>', 'KMS key for --s3-encryption kms')
      .option('--part-max-mb <mb>', 'largest output part, uncompressed MiB (default 256)', positiveInteger),
  ).action(async (flags: CreateFlags) => {
    const fields = configFields(flags);
    await withTarget(flags, async (target) => {
      const created = await createPipeline(target.configs, fields, target.now());
      await target.saved();
      print(flags, pipelineJson(created), () => `created ${describe(created)}\n\n${showText(created)}`);
    });
  });

  targetOptions(
    pipelines.command('list').description('list pipelines').option('--project <id>', 'only this project'),
  ).action(async (flags: OutputFlags & { project?: string }) => {
    await withTarget(flags, async (target) => {
      const all = await pipelinesOf(target, flags.project);
      print(flags, all.map(pipelineJson), () =>
        all.length === 0
          ? 'no pipelines'
          : table(
              ['project', 'name', 'source', 'frequency', 'sync', 'trial', 'from', 'to', 'status', 'reason'],
              all.map((p) => [
                p.project_id,
                p.name,
                cellOf(p.fields.data_source ?? 'events'),
                cellOf(p.fields.frequency ?? '?'),
                p.config?.sync ? 'yes' : 'no',
                p.config?.trial ? 'yes' : 'no',
                cellOf(p.fields.from_date ?? '?'),
                cellOf(p.fields.to_date ?? '-'),
                p.management.status,
                p.management.status_reason ?? '',
              ]),
            ),
      );
    });
  });

  targetOptions(pipelineCommand(pipelines, 'show', 'show one pipeline: config, status and version')).action(
    async (flags: PipelineFlags) => {
      await withTarget(flags, async (target) => {
        const pipeline = await findPipeline(target, flags);
        print(flags, pipelineJson(pipeline), () => showText(pipeline));
      });
    },
  );

  const actions: [StatusAction, string][] = [
    ['pause', 'stop new steps at once (a running step finishes and commits)'],
    ['unpause', 'resume where the pipeline stopped, backfill included'],
    ['delete', 'stop the pipeline for good; its exported data and run history stay'],
  ];
  for (const [action, description] of actions) {
    targetOptions(pipelineCommand(pipelines, action, description)).action(async (flags: PipelineFlags) => {
      await withTarget(flags, async (target) => {
        const changed = await changeStatus(target.configs, flags.project, flags.name, action, target.now());
        await target.saved();
        print(flags, pipelineJson(changed), () => `${describe(changed)}`);
      });
    });
  }

  const runs = program.command('runs').description('the run log: one entry per step, its latest outcome');
  targetOptions(
    pipelineCommand(runs, 'list', "list a pipeline's steps, newest first")
      .addOption(new Option('--status <status>', 'only these').choices(['succeeded', 'failed']))
      .option('--limit <n>', 'at most this many (default 50)', (value) => {
        const n = Number(value);
        if (!Number.isInteger(n) || n < 1)
          throw new UsageError(`--limit: expected a positive integer, got ${value}`);
        return n;
      }),
  ).action(async (flags: PipelineFlags & { status?: string; limit?: number }) => {
    await withTarget(flags, async (target) => {
      await findPipeline(target, flags);
      const entries = (await target.ledger.listRuns(flags.project, flags.name))
        .filter((e) => flags.status === undefined || e.status === flags.status)
        .sort((a, b) => (a.started_at < b.started_at ? 1 : a.started_at > b.started_at ? -1 : 0))
        .slice(0, flags.limit ?? 50);
      print(flags, entries, () =>
        entries.length === 0
          ? `no runs of ${flags.project}/${flags.name} yet`
          : table(
              [
                'step',
                'kind',
                'status',
                'started',
                'duration s',
                'exported',
                'duplicates',
                'lag min',
                'error',
              ],
              entries.map((e) => [
                e.step_id,
                e.kind,
                e.status,
                e.started_at,
                Number((e.duration_ms / 1000).toFixed(1)),
                e.exported ?? '-',
                e.duplicates ?? '-',
                e.export_lag_s === undefined ? '-' : Math.round(e.export_lag_s / 60),
                e.error === undefined ? '' : `${e.error}: ${e.cause ?? ''}`,
              ]),
            ),
      );
    });
  });
  targetOptions(
    pipelineCommand(runs, 'show', 'show one step: window, counts, duration, error').requiredOption(
      '--step <id>',
      'step id, e.g. daily-2024-01-31 or sync-2024-01-31 (see `runs list`)',
    ),
  ).action(async (flags: PipelineFlags & { step: string }) => {
    await withTarget(flags, async (target) => {
      await findPipeline(target, flags);
      const entry = (await target.ledger.listRuns(flags.project, flags.name)).find(
        (e) => e.step_id === flags.step,
      );
      if (entry === undefined)
        throw new ManagementError(
          `--step ${flags.step}: no run of ${flags.project}/${flags.name} has this id (see \`runs list\`)`,
          'not-found',
        );
      print(flags, entry, () => runText(entry));
    });
  });

  targetOptions(
    program
      .command('status')
      .description(
        'per pipeline: last exported window, lag against the 24 h SLA, next step, backfill progress',
      )
      .option('--project <id>', 'only this project'),
  ).action(async (flags: OutputFlags & { project?: string }) => {
    await withTarget(flags, async (target) => {
      const now = target.now();
      const all = (await pipelinesOf(target, flags.project)).filter((p) => p.management.status !== 'deleted');
      const standings = await Promise.all(
        all.map((p) =>
          pipelineStanding(
            p,
            p.config === undefined ? undefined : target.stores(p.config),
            target.ledger,
            now,
          ),
        ),
      );
      print(flags, { now: new Date(now).toISOString(), pipelines: standings }, () =>
        standings.length === 0
          ? 'no pipelines'
          : `as of ${new Date(now).toISOString()}\n\n${table(
              [
                'pipeline',
                'status',
                'last exported window end',
                'lag h',
                'SLA',
                'windows',
                'pending',
                'next step',
                'failing',
              ],
              standings.map((s) => [
                `${s.project_id}/${s.name}`,
                s.status_reason === undefined ? s.status : `${s.status} (${s.status_reason})`,
                s.last_exported?.window_end ?? '-',
                s.lag_s === undefined ? '-' : Number((s.lag_s / 3600).toFixed(1)),
                s.sla,
                `${s.windows.exported}/${s.windows.due}`,
                s.pending_steps,
                s.next_step === undefined
                  ? '-'
                  : `${s.next_step.step_id} ${s.next_step.overdue ? 'due since' : 'due at'} ${s.next_step.due_at}`,
                s.failing === undefined ? '' : `${s.failing.step_id}: ${s.failing.error}`,
              ]),
            )}`,
      );
    });
  });
}

/** Adds `local up`, `local down` and `local schedule` to the `local` command. */
export function addLocalHomeCommands(local: Command): void {
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
    .requiredOption('--until <instant>', 'run until this instant, ISO-8601 with a zone')
    .option('--home <dir>', 'the local home')
    .option('--workers <n>', 'worker threads (default: one per core)')
    .option('--json', 'print the result as JSON', false)
    .action(async (flags: { until: string; home?: string; workers?: string; json: boolean }) => {
      process.exitCode = await schedule(flags);
    });
}

async function schedule(flags: {
  until: string;
  home?: string;
  workers?: string;
  json: boolean;
}): Promise<number> {
  const until = Date.parse(flags.until);
  if (!/(Z|[+-]\d{2}:\d{2})$/.test(flags.until) || Number.isNaN(until))
    throw new UsageError('--until: expected an ISO-8601 instant with a zone, e.g. 2024-01-03T06:00:00Z');
  const workers = flags.workers === undefined ? undefined : Number(flags.workers);
  if (workers !== undefined && (!Number.isInteger(workers) || workers < 1))
    throw new UsageError('--workers: expected a positive integer');
  const home = new LocalHome(flags.home);
  const server = await home.server();
  if (server === undefined)
    throw new UsageError(`the local home ${home.dir} is not up: start it with \`mp-pipelines local up\``);
  const clock = server.now === undefined ? undefined : Date.parse(server.now);
  if (clock !== undefined && until < clock)
    throw new UsageError(`--until: the simulated clock is already at ${server.now}; give a later instant`);
  const control = home.controlPlane(server);
  const stream = new ConfigStreamReader(control.dynamo, control.configsTable, server.endpoint, server.stream);
  try {
    const { results, ticks } = await runLocalPipelines({
      control,
      folders: (config) => home.folders(server, config),
      now: until,
      ticks: 'schedule',
      ...(clock === undefined ? {} : { startAt: clock }),
      ...(workers === undefined ? {} : { workers }),
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

/** Every stored pipeline, or one project's. */
async function pipelinesOf(
  target: Target,
  projectId: string | undefined,
): Promise<readonly StoredPipeline[]> {
  return projectId === undefined
    ? target.configs.listAll()
    : (await target.configs.readProject(projectId)).pipelines;
}

function pipelineCommand(parent: Command, name: string, description: string): Command {
  return parent
    .command(name)
    .description(description)
    .requiredOption('--project <id>', 'project id')
    .requiredOption('--name <name>', 'pipeline name');
}

async function findPipeline(
  target: Target,
  flags: { project: string; name: string },
): Promise<StoredPipeline> {
  const pipeline = (await target.configs.readProject(flags.project)).pipelines.find(
    (p) => p.name === flags.name,
  );
  if (pipeline === undefined)
    throw new ManagementError(
      `no pipeline ${flags.project}/${flags.name} in ${target.description} (see \`pipelines list\`)`,
      'not-found',
    );
  return pipeline;
}

/** A pipeline as the CLI shows it: config, management fields and problems, the external id masked. */
function pipelineJson(pipeline: StoredPipeline): Record<string, unknown> {
  return withoutSecrets({
    ...pipeline.fields,
    ...pipeline.config,
    ...pipeline.management,
    ...(pipeline.problems === undefined ? {} : { problems: pipeline.problems }),
  });
}

function describe(pipeline: StoredPipeline): string {
  const { status, status_reason: reason, version } = pipeline.management;
  return `${pipeline.project_id}/${pipeline.name}: ${status}${reason === undefined ? '' : ` (${reason})`}, version ${version}`;
}

function showText(pipeline: StoredPipeline): string {
  const rows = Object.entries(pipelineJson(pipeline)).map(([field, value]) => [
    field,
    typeof value === 'string' ? value : JSON.stringify(value),
  ]);
  return table(['field', 'value'], rows);
}

function runText(entry: StepRunEntry): string {
  return table(
    ['field', 'value'],
    Object.entries(entry).map(([field, value]) => [
      field,
      typeof value === 'string' ? value : JSON.stringify(value),
    ]),
  );
}
