import { z } from 'zod';
import { ConfigError } from './errors.js';
import { isValidDate, ZoneCalendar } from './windows.js';

/** Default cap on one output part, uncompressed: keeps a part at most about 256 MB for readers. */
export const DEFAULT_PART_MAX_BYTES = 256 * 1024 * 1024;

const isoDate = z
  .string()
  .refine(isValidDate, { message: 'must be a calendar date written YYYY-MM-DD, e.g. 2024-01-31' });

/** An events pipeline as the engine runs it; field names follow the vendor's pipeline API. */
export const eventsPipelineSchema = z
  .object({
    project_id: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 letters, digits, "_" or "-" (it becomes a folder name)'),
    name: z
      .string()
      .regex(
        /^[a-z0-9][a-z0-9-]{0,62}$/,
        'must be 1-63 lowercase letters, digits or "-", starting alphanumeric',
      ),
    data_source: z.literal('events').default('events'),
    frequency: z.enum(['hourly', 'daily']),
    sync: z.boolean().default(false),
    time_zone: z.string().min(1),
    from_date: isoDate,
    to_date: isoDate.optional(),
    /** Export only these event names (exact match); absent means every event. */
    event_names: z.array(z.string().min(1)).min(1).optional(),
    part_max_bytes: z
      .number()
      .int()
      .min(1024 * 1024)
      .default(DEFAULT_PART_MAX_BYTES),
    /** gzip level of output parts: 1 is about twice as fast as 6 and about 40% larger. */
    compression_level: z.number().int().min(1).max(9).default(1),
  })
  .strict();

/** A validated events pipeline configuration. */
export type EventsPipelineConfig = z.infer<typeof eventsPipelineSchema>;

/**
 * Validates a pipeline config, returning a typed object or throwing a `ConfigError` that lists every
 * problem as `field: what is wrong`.
 */
export function parseEventsPipelineConfig(input: unknown): EventsPipelineConfig {
  const result = eventsPipelineSchema.safeParse(input);
  if (!result.success) {
    const problems = result.error.issues.map(
      (issue) => `${issue.path.join('.') || '(config)'}: ${issue.message}`,
    );
    throw new ConfigError(`invalid pipeline config:\n  ${problems.join('\n  ')}`);
  }
  const config = result.data;
  try {
    new ZoneCalendar(config.time_zone);
  } catch (error) {
    throw new ConfigError(`invalid pipeline config:\n  time_zone: ${(error as Error).message}`);
  }
  if (config.to_date !== undefined && config.to_date < config.from_date) {
    throw new ConfigError(
      `invalid pipeline config:\n  to_date: ${config.to_date} is before from_date ${config.from_date}`,
    );
  }
  return config;
}
