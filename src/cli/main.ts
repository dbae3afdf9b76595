#!/usr/bin/env node
/** The `mp-pipelines` command: runs the program and turns what it throws into a message and an exit code. */
import { CommanderError } from 'commander';
import { explainError } from './config-flags.js';
import { buildProgram } from './program.js';
import { EXIT, exitCodeOf } from './shared.js';

try {
  await buildProgram().parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // commander printed the message (and the help) already; help and --version exit 0.
    process.exitCode = error.exitCode === 0 ? EXIT.ok : EXIT.invalid;
  } else {
    process.stderr.write(`error: ${explainError(error)}\n`);
    process.exitCode = exitCodeOf(error);
  }
}
