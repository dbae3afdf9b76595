/**
 * What every command group shares: the exit codes and the error each maps to, printing for people or
 * scripts, and one parser per kind of flag value. A parser throws commander's `InvalidArgumentError`, so
 * the error names the flag and shows its help.
 */
import { InvalidArgumentError } from 'commander';
import { ConfigError, UsageError } from '../core/errors.js';
import { isValidDate } from '../core/windows.js';
import { ManagementError } from '../management/pipelines.js';

/** Exit codes a script can tell apart. */
export const EXIT = { ok: 0, failed: 1, invalid: 2, notFound: 3, refused: 4 } as const;

/** The exit code of an error thrown by a command. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof ConfigError || error instanceof UsageError) return EXIT.invalid;
  if (error instanceof ManagementError) return error.kind === 'not-found' ? EXIT.notFound : EXIT.refused;
  return EXIT.failed;
}

/** Prints JSON with `--json`, else the text for people. */
export function print(flags: { readonly json: boolean }, json: unknown, text: () => string): void {
  process.stdout.write(flags.json ? `${JSON.stringify(json, null, 2)}\n` : `${text()}\n`);
}

/** An instant, ISO-8601 with a zone, as epoch milliseconds. */
export function instant(value: string): number {
  // An instant needs a zone: a bare local time would mean different things on different machines.
  if (
    !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(value) ||
    Number.isNaN(Date.parse(value))
  ) {
    throw new InvalidArgumentError('expected an ISO-8601 instant with a zone, e.g. 2024-01-03T06:00:00Z');
  }
  return Date.parse(value);
}

/** A calendar day written YYYY-MM-DD. */
export function day(value: string): string {
  if (!isValidDate(value)) throw new InvalidArgumentError('expected a date written YYYY-MM-DD');
  return value;
}

/** A whole number, at least 1. */
export function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

/** A finite number above 0. */
export function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
}

/**
 * `parse(value)` for a value read outside commander (an environment variable, a bare argument): its
 * error becomes a `UsageError` that names `name` and the value.
 */
export function parseNamed<T>(name: string, value: string, parse: (value: string) => T): T {
  try {
    return parse(value);
  } catch (error) {
    if (error instanceof InvalidArgumentError)
      throw new UsageError(`${name}: ${error.message}, not ${JSON.stringify(value)}`);
    throw error;
  }
}
