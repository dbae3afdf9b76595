/**
 * The flags that set pipeline config fields, declared once for `pipelines create` and `local run`: a new
 * config option is one entry here. Config errors name these flags instead of the fields.
 */
import { type Command, Option } from 'commander';
import { ConfigError } from '../core/errors.js';
import { COMPRESSIONS, DATA_SOURCES, OUTPUT_FORMATS } from '../core/pipeline-config.js';
import { positiveInteger } from './shared.js';

/** The commands that take config flags. */
export type ConfigCommand = 'pipelines create' | 'local run';

/** One config field's flag. */
export interface ConfigFlag {
  /** The config field the flag sets. */
  readonly field: string;
  /** The option as `pipelines create` declares it. */
  readonly option: () => Option;
  /** The field's value from the flag's; absent, the flag's value as it is. */
  readonly toField?: (value: unknown) => unknown;
  /**
   * How `local run` differs: `false` when it has no such flag (it writes to `--out`, and trials are a
   * deployment's), or the help it shows instead and whether the flag may be left out there.
   */
  readonly localRun?: false | { readonly help: string; readonly optional?: true };
}

const MIB = 1024 * 1024;

/** Every config flag, in the order `pipelines create --help` lists them. */
export const CONFIG_FLAGS: readonly ConfigFlag[] = [
  {
    field: 'format',
    option: () =>
      new Option('--format <format>', 'file format of output parts (default json)').choices(OUTPUT_FORMATS),
  },
  {
    field: 'compression',
    option: () =>
      new Option(
        '--compression <codec>',
        'codec of output parts: json gzip (default) or zstd; parquet zstd (default), snappy or gzip',
      ).choices(COMPRESSIONS),
  },
  {
    // The schema checks that the codec suits the format and the level the codec, naming the flag.
    field: 'compression_level',
    option: () =>
      new Option(
        '--compression-level <level>',
        'codec level: gzip 1-9 (default 1; 6 is ~2x the CPU for ~20-40% smaller files), zstd 1-19 (default 3)',
      ).argParser(positiveInteger),
  },
  {
    field: 'project_id',
    option: () => new Option('--project <id>', 'project id').makeOptionMandatory(),
  },
  {
    field: 'name',
    option: () => new Option('--name <name>', 'pipeline name, unique in the project').makeOptionMandatory(),
    localRun: { help: 'pipeline name (default: <data source>-<frequency>)', optional: true },
  },
  {
    field: 'data_source',
    option: () =>
      new Option(
        '--data-source <source>',
        'events by day, or complete snapshots of people profiles or identity mappings',
      )
        .choices(DATA_SOURCES)
        .default('events'),
  },
  {
    field: 'frequency',
    option: () =>
      new Option('--frequency <frequency>', 'export window')
        .choices(['hourly', 'daily'])
        .makeOptionMandatory(),
  },
  {
    field: 'time_zone',
    option: () =>
      new Option('--timezone <iana>', 'project time zone, e.g. America/New_York').makeOptionMandatory(),
  },
  {
    field: 'from_date',
    option: () =>
      new Option(
        '--from <date>',
        'first event day exported (YYYY-MM-DD); a past date is a backfill',
      ).makeOptionMandatory(),
    localRun: { help: 'first event day exported (YYYY-MM-DD, project time); earlier days are a backfill' },
  },
  {
    field: 'to_date',
    option: () => new Option('--to <date>', 'last event day exported (YYYY-MM-DD); default: no end'),
  },
  {
    field: 'sync',
    option: () => new Option('--sync', 'export late events in a daily sync run').default(false),
    localRun: {
      help: 'export late events in a daily sync run (otherwise they are counted, not exported)',
    },
  },
  {
    field: 'trial',
    option: () =>
      new Option(
        '--trial',
        'a trial pipeline: daily, no sync, one day of backfill, ends with the trial',
      ).default(false),
    localRun: false,
  },
  {
    field: 'event_names',
    option: () => new Option('--events <names>', 'export only these event names (comma-separated)'),
    toField: (names) =>
      String(names)
        .split(',')
        .map((name) => name.trim()),
  },
  {
    field: 'where',
    option: () =>
      new Option(
        '--where <expression>',
        'export only events whose properties match, e.g. \'properties["plan"] == "pro" and defined(properties["$os"])\'',
      ),
  },
  {
    field: 's3_bucket',
    option: () =>
      new Option('--s3-bucket <bucket>', "destination bucket (default: the deployment's destination bucket)"),
    localRun: false,
  },
  {
    field: 's3_prefix',
    option: () => new Option('--s3-prefix <prefix>', 'key prefix in the bucket'),
    localRun: false,
  },
  {
    field: 's3_region',
    option: () => new Option('--s3-region <region>', "the destination bucket's region"),
    localRun: false,
  },
  {
    field: 's3_role',
    option: () => new Option('--s3-role <arn>', 'role in the destination account to assume'),
    localRun: false,
  },
  {
    field: 's3_external_id',
    option: () => new Option('--s3-external-id <id>', 'external id the role requires'),
    localRun: false,
  },
  {
    field: 's3_encryption',
    option: () =>
      new Option('--s3-encryption <kind>', 'server-side encryption').choices(['none', 'aes', 'kms']),
    localRun: false,
  },
  {
    field: 's3_kms_key_id',
    option: () => new Option('--s3-kms-key-id <key>', 'KMS key for --s3-encryption kms'),
    localRun: false,
  },
  {
    field: 'part_max_bytes',
    option: () =>
      new Option('--part-max-mb <mb>', 'largest output part, uncompressed MiB (default 256)').argParser(
        positiveInteger,
      ),
    toField: (mb) => Number(mb) * MIB,
  },
];

/** The config flags as `command` declares them, in order. */
export function configOptions(command: ConfigCommand): Option[] {
  return CONFIG_FLAGS.flatMap((flag) => {
    const option = flag.option();
    if (command === 'pipelines create' || flag.localRun === undefined) return [option];
    if (flag.localRun === false) return [];
    option.description = flag.localRun.help;
    if (flag.localRun.optional) option.makeOptionMandatory(false);
    return [option];
  });
}

/** Adds the config flags to `command`, which is `name`. */
export function addConfigOptions(command: Command, name: ConfigCommand): Command {
  for (const option of configOptions(name)) command.addOption(option);
  return command;
}

const DECLARED = CONFIG_FLAGS.map((flag) => ({ flag, option: flag.option() }));

/** Config fields from a command's flag values; absent flags leave the schema's defaults. */
export function configFields(flags: object): Record<string, unknown> {
  const values = new Map<string, unknown>(Object.entries(flags));
  return Object.fromEntries(
    DECLARED.flatMap(({ flag, option }) => {
      const value = values.get(option.attributeName());
      if (value === undefined) return [];
      return [[flag.field, flag.toField === undefined ? value : flag.toField(value)]];
    }),
  );
}

/** The flag that sets a config field, e.g. `--timezone` for `time_zone`. */
export function flagOfField(field: string): string | undefined {
  return DECLARED.find(({ flag }) => flag.field === field)?.option.long;
}

/** The message of an error; a config error's lines name the flags that set the fields. */
export function explainError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  if (!(error instanceof ConfigError)) return error.message;
  return error.message.replace(/^(\s*)([a-z0-9_]+)(\.\d+)?:/gm, (whole, indent: string, field: string) => {
    const flag = flagOfField(field);
    return flag === undefined ? whole : `${indent}${flag}:`;
  });
}
