/** `mp-pipelines runs list|show`: the run log, one entry per step with its latest outcome. */
import { type Command, Option } from 'commander';
import type { StepRunEntry } from '../core/records.js';
import { ManagementError } from '../management/pipelines.js';
import { table } from './format.js';
import { findPipeline, type PipelineFlags, pipelineCommand } from './pipelines-command.js';
import { positiveInteger, print } from './shared.js';
import { targetOptions, withTarget } from './target.js';

/** Adds `runs`. */
export function addRunsCommands(program: Command): void {
  const runs = program.command('runs').description('the run log: one entry per step, its latest outcome');
  targetOptions(
    pipelineCommand(runs, 'list', "list a pipeline's steps, newest first")
      .addOption(new Option('--status <status>', 'only these').choices(['succeeded', 'failed']))
      .option('--limit <n>', 'at most this many (default 50)', positiveInteger),
  ).action(async (flags: PipelineFlags & { status?: string; limit?: number }) => {
    await withTarget(flags, async (target) => {
      await findPipeline(target, flags);
      const entries = (await target.ledger.listRuns(flags.project, flags.name))
        .filter((e) => flags.status === undefined || e.status === flags.status)
        .sort((a, b) => (a.started_at < b.started_at ? 1 : a.started_at > b.started_at ? -1 : 0))
        .slice(0, flags.limit ?? 50);
      print(flags, entries, () =>
        entries.length === 0
          ? `no runs of ${flags.project}/${flags.name} yet`
          : table(
              [
                'step',
                'kind',
                'status',
                'started',
                'duration s',
                'exported',
                'duplicates',
                'lag min',
                'error',
              ],
              entries.map((e) => [
                e.step_id,
                e.kind,
                e.status,
                e.started_at,
                Number((e.duration_ms / 1000).toFixed(1)),
                e.exported ?? '-',
                e.duplicates ?? '-',
                e.export_lag_s === undefined ? '-' : Math.round(e.export_lag_s / 60),
                e.error === undefined ? '' : `${e.error}: ${e.cause ?? ''}`,
              ]),
            ),
      );
    });
  });
  targetOptions(
    pipelineCommand(runs, 'show', 'show one step: window, counts, duration, error').requiredOption(
      '--step <id>',
      'step id, e.g. daily-2024-01-31 or sync-2024-01-31 (see `runs list`)',
    ),
  ).action(async (flags: PipelineFlags & { step: string }) => {
    await withTarget(flags, async (target) => {
      await findPipeline(target, flags);
      const entry = (await target.ledger.listRuns(flags.project, flags.name)).find(
        (e) => e.step_id === flags.step,
      );
      if (entry === undefined)
        throw new ManagementError(
          `--step ${flags.step}: no run of ${flags.project}/${flags.name} has this id (see \`runs list\`)`,
          'not-found',
        );
      print(flags, entry, () => runText(entry));
    });
  });
}

function runText(entry: StepRunEntry): string {
  return table(
    ['field', 'value'],
    Object.entries(entry).map(([field, value]) => [
      field,
      typeof value === 'string' ? value : JSON.stringify(value),
    ]),
  );
}
