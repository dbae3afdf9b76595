import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { compileWhere } from './where.js';
import { isValidDate, ZoneCalendar } from './windows.js';

/** Default cap on one output part, uncompressed: keeps a part at most about 256 MB for readers. */
export const DEFAULT_PART_MAX_BYTES = 256 * 1024 * 1024;

/**
 * Most names `event_names` may list, and longest name (the vendor's limit on event names): 500 names
 * of 255 characters are about 130 KB, half of what a workflow state may carry.
 */
export const MAX_EVENT_NAMES = 500;
export const MAX_EVENT_NAME_LENGTH = 255;

const isoDate = z
  .string()
  .refine(isValidDate, { message: 'must be a calendar date written YYYY-MM-DD, e.g. 2024-01-31' });

/** What a pipeline exports: events by day, or complete snapshots of profiles or identity mappings. */
export const DATA_SOURCES = ['events', 'people', 'identity'] as const;
export type DataSource = (typeof DATA_SOURCES)[number];
/** The data sources exported as complete snapshots. */
export type SnapshotSource = Exclude<DataSource, 'events'>;

/** File formats of output parts. */
export const OUTPUT_FORMATS = ['json', 'parquet'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];
/** Every codec some format takes. */
export const COMPRESSIONS = ['gzip', 'zstd', 'snappy'] as const;
export type Compression = (typeof COMPRESSIONS)[number];

/** The codecs each format takes, its default first. */
export const FORMAT_COMPRESSIONS: Readonly<Record<OutputFormat, readonly Compression[]>> = {
  // gzip, as the vendor's export: every reader takes it.
  json: ['gzip', 'zstd'],
  // zstd: `properties` (JSON text) is most of the bytes, and snappy parts of it measured 1.6 times the
  // JSON gzip parts, zstd ones 0.96, for about 13% more CPU in a whole run (README, Output formats).
  parquet: ['zstd', 'snappy', 'gzip'],
};

/** Levels each codec takes, and the default: gzip and zstd at their fast end (snappy has none). */
export const COMPRESSION_LEVELS: Readonly<
  Record<Compression, { readonly min: number; readonly max: number; readonly default: number } | undefined>
> = {
  gzip: { min: 1, max: 9, default: 1 },
  zstd: { min: 1, max: 19, default: 3 },
  snappy: undefined,
};

/** A project id: it becomes a folder name and part of execution names. */
export const projectIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 letters, digits, "_" or "-" (it becomes a folder name)');

/** A pipeline's name, unique in its project. */
export const pipelineNameSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be 1-63 lowercase letters, digits or "-", starting alphanumeric');

/** The fields of a pipeline as stored, before the defaults that depend on other fields. */
const pipelineFields = z
  .object({
    project_id: projectIdSchema,
    name: pipelineNameSchema,
    /**
     * events: `mp_master_event` by day; people and identity: complete snapshots (docs/contract.md#layout).
     */
    data_source: z.enum(DATA_SOURCES).default('events'),
    frequency: z.enum(['hourly', 'daily']),
    sync: z.boolean().default(false),
    time_zone: z.string().min(1),
    from_date: isoDate,
    to_date: isoDate.optional(),
    /**
     * Export only these event names (exact match); absent means every event. At most
     * {@link MAX_EVENT_NAMES} names of at most {@link MAX_EVENT_NAME_LENGTH} characters: the config
     * travels in workflow state (256 KB) and lives in one DynamoDB item (400 KB).
     */
    event_names: z
      .array(
        z
          .string()
          .min(1, 'an event name must not be empty')
          .max(MAX_EVENT_NAME_LENGTH, `an event name is at most ${MAX_EVENT_NAME_LENGTH} characters`),
      )
      .min(1, 'must list at least one event name (leave it out to export every event)')
      .max(MAX_EVENT_NAMES, `must list at most ${MAX_EVENT_NAMES} event names (use a where filter for more)`)
      .optional(),
    /** Export only events whose properties match this expression (`src/core/where.ts`); absent means all. */
    where: z.string().optional(),
    part_max_bytes: z
      .number()
      .int()
      .min(1024 * 1024)
      .default(DEFAULT_PART_MAX_BYTES),
    /** File format of output parts: NDJSON, or Parquet for engines that read columns. */
    format: z.enum(OUTPUT_FORMATS).default('json'),
    /** Codec of output parts; absent means the format's default (`DEFAULT_COMPRESSION`). */
    compression: z.enum(COMPRESSIONS).optional(),
    /**
     * Level of the codec: gzip 1-9 (1 is about twice as fast as 6 and about 40% larger), zstd 1-19;
     * absent means `DEFAULT_LEVEL`. Snappy has none.
     */
    compression_level: z.number().int().optional(),
    /**
     * Trial pipelines (docs/contract.md#management-rules): daily, no sync, a short backfill, paused when the
     * project's trial ends.
     */
    trial: z.boolean().default(false),
    /** Destination bucket; absent means the deployment's destination bucket (locally: `--out`). */
    s3_bucket: z
      .string()
      .regex(
        /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
        'must be an S3 bucket name: 3-63 lowercase letters, digits, "." or "-"',
      )
      .optional(),
    /** Key prefix in the bucket; output goes to `<s3_prefix>/<project_id>/...`. */
    s3_prefix: z
      .string()
      .regex(
        /^[A-Za-z0-9!_.*'()-]+(\/[A-Za-z0-9!_.*'()-]+)*\/?$/,
        'must be a relative key prefix such as "exports/analytics" (no leading "/", no empty segments)',
      )
      .refine((prefix) => !prefix.split('/').some((segment) => segment === '.' || segment === '..'), {
        message: 'must not contain "." or ".." segments',
      })
      .optional(),
    /** The bucket's region; absent means the deployment's region. */
    s3_region: z
      .string()
      .regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'must be an AWS region such as "us-east-1"')
      .optional(),
    /** A role in the destination's account, assumed with `s3_external_id`. */
    s3_role: z
      .string()
      .regex(
        /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/,
        'must be an IAM role ARN: arn:aws:iam::<account>:role/<name>',
      )
      .optional(),
    s3_external_id: z.string().min(2).max(1224).optional(),
    /**
     * Server-side encryption the pipeline asks for on its writes to the destination: `aes` sends SSE-S3,
     * `kms` SSE-KMS with `s3_kms_key_id` and an S3 bucket key. Absent or `none`, it asks for nothing and
     * the bucket's default encryption applies (S3 encrypts every new object, with SSE-S3 at least, so
     * `none` never means unencrypted); a header would override a bucket's SSE-KMS default.
     */
    s3_encryption: z.enum(['none', 'aes', 'kms']).optional(),
    s3_kms_key_id: z.string().min(1).optional(),
  })
  .strict()
  .superRefine((config, context) => {
    const problem = (path: string, message: string): void => {
      context.addIssue({ code: 'custom', path: [path], message });
    };
    if (config.s3_encryption === 'kms' && config.s3_kms_key_id === undefined)
      problem('s3_kms_key_id', 'is required when s3_encryption is "kms" (a key id, ARN or alias)');
    if (config.s3_encryption !== 'kms' && config.s3_kms_key_id !== undefined)
      problem(
        's3_kms_key_id',
        'is only used with s3_encryption "kms": set s3_encryption to "kms" or remove it',
      );
    if (config.s3_role !== undefined && config.s3_external_id === undefined)
      problem(
        's3_external_id',
        'is required with s3_role: the role trusts this deployment with that external id',
      );
    if (config.s3_role === undefined && config.s3_external_id !== undefined)
      problem('s3_external_id', 'is only used with s3_role');
    if (config.data_source !== 'events') {
      if (config.sync)
        problem(
          'sync',
          'must be false for people and identity pipelines: each snapshot folds in every update, late or not',
        );
      for (const field of ['event_names', 'where'] as const)
        if (config[field] !== undefined)
          problem(field, `is only used by events pipelines, not ${config.data_source}`);
    }
    if (config.where !== undefined) {
      try {
        compileWhere(config.where);
      } catch (error) {
        problem('where', (error as Error).message);
      }
    }
    if (config.trial) {
      if (config.frequency !== 'daily') problem('frequency', 'must be "daily" for a trial pipeline');
      if (config.sync) problem('sync', 'must be false for a trial pipeline (trials have no daily sync)');
    }
    try {
      new ZoneCalendar(config.time_zone);
    } catch (error) {
      problem('time_zone', (error as Error).message);
    }
    if (
      config.to_date !== undefined &&
      isValidDate(config.from_date) &&
      isValidDate(config.to_date) &&
      config.to_date < config.from_date
    )
      problem('to_date', `${config.to_date} is before from_date ${config.from_date}`);
    const codecs = FORMAT_COMPRESSIONS[config.format];
    if (config.compression !== undefined && !codecs.includes(config.compression))
      problem(
        'compression',
        `"${config.compression}" is not a codec of ${config.format} parts: use ${codecs.map((c) => `"${c}"`).join(', ')} ` +
          `(default "${codecs[0]}")`,
      );
    const codec = config.compression ?? codecs[0]!;
    const levels = COMPRESSION_LEVELS[codec];
    if (config.compression_level !== undefined) {
      if (levels === undefined)
        problem('compression_level', `${codec} has no levels: remove compression_level`);
      else if (config.compression_level < levels.min || config.compression_level > levels.max)
        problem(
          'compression_level',
          `must be ${levels.min}-${levels.max} for ${codec} (default ${levels.default}), got ${config.compression_level}`,
        );
    }
  });

/** A pipeline as the engine runs it; field names follow the vendor's pipeline API. */
export const pipelineSchema = pipelineFields.transform((config) => {
  const compression = config.compression ?? FORMAT_COMPRESSIONS[config.format][0]!;
  const level = config.compression_level ?? COMPRESSION_LEVELS[compression]?.default;
  const { compression_level: _given, ...rest } = config;
  return { ...rest, compression, ...(level === undefined ? {} : { compression_level: level }) };
});

/** A validated pipeline configuration. */
export type PipelineConfig = z.output<typeof pipelineSchema>;

/** A config, or every problem found as `field: what is wrong`. */
export type ConfigCheck =
  | { readonly config: PipelineConfig; readonly problems?: undefined }
  | { readonly config?: undefined; readonly problems: readonly string[] };

/** Validates a pipeline config without throwing. */
export function checkPipelineConfig(input: unknown): ConfigCheck {
  const result = pipelineSchema.safeParse(input);
  if (result.success) return { config: result.data };
  return {
    problems: result.error.issues.map((issue) => `${issue.path.join('.') || '(config)'}: ${issue.message}`),
  };
}

/**
 * Validates a pipeline config, returning a typed object or throwing a `ConfigError` that lists every
 * problem as `field: what is wrong`.
 */
export function parsePipelineConfig(input: unknown): PipelineConfig {
  const { config, problems } = checkPipelineConfig(input);
  if (config === undefined) throw new ConfigError(`invalid pipeline config:\n  ${problems.join('\n  ')}`);
  return config;
}

/**
 * A short fingerprint of a config's settings: a step carries it instead of the config (state payloads
 * are logged, and a config holds the external id of a destination role), and every activity of the step
 * checks the stored config still has it, so a whole step runs with one config.
 */
export function configFingerprint(config: PipelineConfig): string {
  return createHash('sha256').update(JSON.stringify(config)).digest('hex').slice(0, 16);
}

/** Config fields that must not be shown or logged as they are. */
const SECRET_FIELDS = new Set<string>(['s3_external_id']);

/** A copy of config fields with the secrets masked, for output people and logs see. */
export function withoutSecrets<T extends Readonly<Record<string, unknown>>>(fields: T): T {
  const shown: Record<string, unknown> = { ...fields };
  for (const field of SECRET_FIELDS) if (shown[field] !== undefined) shown[field] = '****';
  return shown as T;
}

/** True for a config field whose value must not be shown. */
export function isSecretField(field: string): boolean {
  return SECRET_FIELDS.has(field);
}
