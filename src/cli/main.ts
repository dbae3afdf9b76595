#!/usr/bin/env node
/** The `mp-pipelines` command: runs the program and turns what it throws into a message and an exit code. */
import { prestartMoto, releasePrestartedMoto } from '../local/moto.js';

const [group, command] = process.argv.slice(2);
const localRun = group === 'local' && command === 'run';
// `local run` starts the emulator first thing, so that it boots while the CLI's modules load below.
if (localRun && !process.argv.some((arg) => arg === '--help' || arg === '-h')) prestartMoto();

const [{ CommanderError }, { explainError }, program, { EXIT, exitCodeOf }] = await Promise.all([
  import('commander'),
  import('./config-flags.js'),
  localRun
    ? import('./local-command.js').then((module) => module.buildLocalProgram())
    : import('./program.js').then((module) => module.buildProgram()),
  import('./shared.js'),
]);
try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // commander printed the message (and the help) already; help and --version exit 0.
    process.exitCode = error.exitCode === 0 ? EXIT.ok : EXIT.invalid;
  } else {
    process.stderr.write(`error: ${explainError(error)}\n`);
    process.exitCode = exitCodeOf(error);
  }
} finally {
  await releasePrestartedMoto();
}
