import { TransientError } from '../core/errors.js';

/** Error names S3, DynamoDB and the SDK use for throttling and server-side trouble. */
const TRANSIENT_NAMES = new Set([
  'SlowDown',
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'ProvisionedThroughputExceededException',
  // A concurrent transaction touches the item; the write may go through next time.
  'TransactionConflictException',
  // S3: a conditional write raced another on the same key; the next attempt sees the winner.
  'ConditionalRequestConflict',
  'ServiceUnavailable',
  'InternalError',
  'InternalServerError',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
]);

/** Socket-level failures that a later attempt may not meet. */
const TRANSIENT_SYSTEM_CODES = new Set([
  'ECONNRESET',
  'ETIMEDOUT',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
]);

/** The fields of SDK and Node errors that classify them. */
export interface ErrorFields {
  readonly name?: unknown;
  readonly code?: unknown;
  readonly Code?: unknown;
  readonly cause?: unknown;
  readonly $metadata?: { readonly httpStatusCode?: unknown };
}

/** The classifying fields of an error, or `undefined` for a non-object. */
export function errorFields(error: unknown): ErrorFields | undefined {
  return typeof error === 'object' && error !== null ? (error as ErrorFields) : undefined;
}

/** True for throttling, 429/5xx answers and dropped connections, here or in a wrapped cause. */
export function isTransientAwsError(error: unknown, depth = 0): boolean {
  const fields = errorFields(error);
  if (fields === undefined || depth > 3) return false;
  const status = fields.$metadata?.httpStatusCode;
  if (typeof status === 'number' && (status === 429 || status >= 500)) return true;
  for (const name of [fields.name, fields.Code]) {
    if (typeof name === 'string' && TRANSIENT_NAMES.has(name)) return true;
  }
  if (typeof fields.code === 'string' && TRANSIENT_SYSTEM_CODES.has(fields.code)) return true;
  return isTransientAwsError(fields.cause, depth + 1);
}

/** True for an error code the transient set names (e.g. a per-key `DeleteObjects` error). */
export function isTransientCode(code: string | undefined): boolean {
  return code !== undefined && TRANSIENT_NAMES.has(code);
}

/** Wraps a retryable failure in `TransientError` with `what` failed; returns any other error unchanged. */
export function asTransient(error: unknown, what: string): unknown {
  if (!isTransientAwsError(error)) return error;
  const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return new TransientError(`${what} failed: ${reason}`, { cause: error });
}
