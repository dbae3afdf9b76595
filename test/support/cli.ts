/** The `mp-pipelines` command as installed (the bundle the build writes), run in a child process. */
import { type ExecFileOptions, execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const exec = promisify(execFile);
const CLI = fileURLToPath(new URL('../../bundle/cli/main.js', import.meta.url));

/** What one command printed and its exit code. */
export interface CliOutcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the command with `args`; a non-zero exit is an outcome, not an error. */
export async function runCli(args: readonly string[], options: ExecFileOptions = {}): Promise<CliOutcome> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [CLI, ...args], { ...options, encoding: 'utf8' });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as CliOutcome;
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}
