/**
 * Errors are values with names: the orchestration retries `TransientError`s (throttling, I/O that may
 * succeed next time) and never retries the others. Step Functions `Retry`/`Catch` match on `name`.
 */

/** A failure that may succeed when retried: throttling, a dropped connection, an unreadable object. */
export class TransientError extends Error {
  override readonly name: string = 'TransientError';
}

/** A source object that cannot be decoded (bad gzip): the step fails and retries, nothing commits. */
export class UnreadableSourceError extends TransientError {
  override readonly name = 'UnreadableSourceError';
}

/** Invalid configuration or arguments: retrying cannot help; a person must fix the input. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** A step was asked to run before what it depends on is in place (e.g. an arrival hour not ingested). */
export class NotReadyError extends Error {
  override readonly name = 'NotReadyError';
}

/**
 * Data a committed ingest record names is gone (removed by hand, or by a lifecycle rule after a very
 * long pause): the step fails, naming it, rather than commit less. Retrying cannot bring it back.
 */
export class StagingLostError extends Error {
  override readonly name = 'StagingLostError';
}

/** The counts do not balance: some line was lost or written twice. Never a warning. */
export class ReconciliationError extends Error {
  override readonly name = 'ReconciliationError';
}

/** A command used wrongly (a missing flag, a target that is not there): the message says what to do. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
