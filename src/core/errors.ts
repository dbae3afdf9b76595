/**
 * Errors are values with names: the orchestration retries `TransientError`s (throttling, I/O that may
 * succeed next time) and never retries the others. Step Functions `Retry`/`Catch` match on `name`.
 */
import type { core } from 'zod';

type ZodIssue = core.$ZodIssue;

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

/**
 * A state input (a Task's payload, an event a function is invoked with) without the shape its activity
 * takes: a bug in the definitions or a hand-made invocation. Retrying sends the same input again.
 */
export class InvalidInputError extends Error {
  override readonly name = 'InvalidInputError';
}

/**
 * Stored state (a run or ingest record, a manifest, a snapshot pointer, a lock item) this version cannot
 * read: changed by hand, or written by something else. Retrying reads the same bytes; a person must
 * look at the object the message names.
 */
export class CorruptStateError extends Error {
  override readonly name = 'CorruptStateError';

  /**
   * @param location the object or item, e.g. `s3://state/p1/events/runs/daily-2024-01-15.json`
   * @param field the field found wrong (`(document)` when the whole is unreadable)
   * @param problem what is wrong with it
   */
  constructor(
    readonly location: string,
    readonly field: string,
    problem: string,
  ) {
    super(`corrupt state in ${location}: ${field}: ${problem}`);
  }
}

/** The first problem zod found, as `field.path: what was expected`; `(whole)` names the value itself. */
export function describeIssue(issues: readonly ZodIssue[]): { field: string; problem: string } {
  const issue = issues[0];
  if (issue === undefined) return { field: '(whole)', problem: 'invalid' };
  return {
    field: issue.path.length === 0 ? '(whole)' : issue.path.map(String).join('.'),
    problem: issue.message.replace(/^Invalid input: /, ''),
  };
}
