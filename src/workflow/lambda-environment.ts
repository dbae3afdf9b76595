import { z } from 'zod';
import { ConfigError } from '../core/errors.js';

/** The environment every pipeline function gets from the stack, validated at cold start. */
export const LAMBDA_ENVIRONMENT = {
  RAW_BUCKET: z.string().min(3),
  DESTINATION_BUCKET: z.string().min(3),
  STATE_BUCKET: z.string().min(3),
  CONFIGS_TABLE: z.string().min(3),
  STATE_TABLE: z.string().min(3),
  EVENT_BUS_NAME: z.string().min(1),
  LEASE_SECONDS: z.coerce.number().int().min(60),
} as const;

const schema = z.object(LAMBDA_ENVIRONMENT);

/** The validated function environment. */
export type LambdaEnvironment = z.infer<typeof schema>;

/** Reads the environment; a missing or malformed variable is a deployment error naming the variable. */
export function readLambdaEnvironment(env: NodeJS.ProcessEnv): LambdaEnvironment {
  const result = schema.safeParse(env);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`invalid function environment (set by the stack):\n  ${problems.join('\n  ')}`);
  }
  return result.data;
}
