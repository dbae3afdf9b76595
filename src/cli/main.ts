#!/usr/bin/env node
/** The `mp-pipelines` command: runs the program and turns what it throws into a message and an exit code. */
import { prestartMoto, releasePrestartedMoto } from '../local/moto.js';

const [group, command] = process.argv.slice(2);
const localRun = group === 'local' && command === 'run';
const given = (flag: string) => process.argv.some((arg) => arg === flag || arg.startsWith(`${flag}=`));
const runs = localRun && !given('--help') && !given('-h');
// `local run` starts the emulator (unless it runs on a local home's, `--home`) and its worker threads
// (unless `--workers` sizes them) first thing, so that they boot while the CLI's modules load below.
if (runs && !given('--home')) prestartMoto();
const pool =
  runs && !given('--workers')
    ? import('../local/task-pool.js').then((module) => {
        module.prestartTaskPool();
        return module;
      })
    : undefined;

const [{ CommanderError }, { explainError }, program, { EXIT, exitCodeOf }] = await Promise.all([
  import('commander'),
  import('./config-flags.js'),
  localRun
    ? import('./local-command.js').then((module) => module.buildLocalProgram())
    : import('./program.js').then((module) => module.buildProgram()),
  import('./shared.js'),
  pool,
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
  await Promise.all([releasePrestartedMoto(), pool?.then((module) => module.releasePrestartedTaskPool())]);
}
