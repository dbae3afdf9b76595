/**
 * `mp-pipelines status`: per pipeline, the last exported window, the lag against the 24 h SLA, the next
 * step and the backfill's progress.
 */
import type { Command } from 'commander';
import { pipelineStanding } from '../management/status.js';
import { table } from './format.js';
import { pipelinesOf } from './pipelines-command.js';
import { print } from './shared.js';
import { type OutputFlags, targetOptions, withTarget } from './target.js';

/** Adds `status`. */
export function addStatusCommand(program: Command): void {
  targetOptions(
    program
      .command('status')
      .description(
        'per pipeline: last exported window, lag against the 24 h SLA, next step, backfill progress',
      )
      .option('--project <id>', 'only this project'),
  ).action(async (flags: OutputFlags & { project?: string }) => {
    await withTarget(flags, async (target) => {
      const now = target.now();
      const all = (await pipelinesOf(target, flags.project)).filter((p) => p.management.status !== 'deleted');
      const standings = await Promise.all(
        all.map((p) =>
          pipelineStanding(
            p,
            p.config === undefined ? undefined : target.stores(p.config),
            target.ledger,
            now,
          ),
        ),
      );
      print(flags, { now: new Date(now).toISOString(), pipelines: standings }, () =>
        standings.length === 0
          ? 'no pipelines'
          : `as of ${new Date(now).toISOString()}\n\n${table(
              [
                'pipeline',
                'status',
                'last exported window end',
                'lag h',
                'SLA',
                'windows',
                'pending',
                'next step',
                'failing',
              ],
              standings.map((s) => [
                `${s.project_id}/${s.name}`,
                s.status_reason === undefined ? s.status : `${s.status} (${s.status_reason})`,
                s.last_exported?.window_end ?? '-',
                s.lag_s === undefined ? '-' : Number((s.lag_s / 3600).toFixed(1)),
                s.sla,
                `${s.windows.exported}/${s.windows.due}`,
                s.pending_steps,
                s.next_step === undefined
                  ? '-'
                  : `${s.next_step.step_id} ${s.next_step.overdue ? 'due since' : 'due at'} ${s.next_step.due_at}`,
                s.failing === undefined ? '' : `${s.failing.step_id}: ${s.failing.error}`,
              ]),
            )}`,
      );
    });
  });
}
