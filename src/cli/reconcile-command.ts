/**
 * `mp-pipelines reconcile`: the reconciliation table of a project's pipelines, computed from their
 * records alone (ingest records and run records), on the local home or a deployment (`--stack`).
 */
import type { Command } from 'commander';
import type { Reconciliation } from '../core/reconcile.js';
import { reconcilePipeline } from '../engine/reconciliation.js';
import { ManagementError } from '../management/pipelines.js';
import { formatReconciliation } from './format.js';
import { day, EXIT, print } from './shared.js';
import { type OutputFlags, targetOptions, withTarget } from './target.js';

interface ReconcileFlags extends OutputFlags {
  readonly project: string;
  readonly name?: string;
  readonly from?: string;
  readonly to?: string;
}

/** Adds `reconcile`. */
export function addReconcileCommand(program: Command): void {
  targetOptions(
    program
      .command('reconcile')
      .description(
        "balance a project's pipelines from their records: per arrival day source lines = valid + quarantined, " +
          'per event day valid = exported + synced + late + duplicates + filtered + out of range + pending; ' +
          'exits 1 on any imbalance',
      )
      .requiredOption('--project <id>', 'project id')
      .option('--name <name>', 'one pipeline (default: every pipeline of the project that ran)')
      .option('--from <date>', 'first day reported (YYYY-MM-DD); every record still counts', day)
      .option('--to <date>', 'last day reported (YYYY-MM-DD)', day),
  ).action(async (flags: ReconcileFlags) => {
    await withTarget(flags, async (target) => {
      const stored = (await target.configs.readProject(flags.project)).pipelines.filter(
        (p) => p.config !== undefined && (flags.name === undefined || p.name === flags.name),
      );
      if (stored.length === 0)
        throw new ManagementError(
          flags.name === undefined
            ? `--project ${flags.project}: no pipelines in ${target.description}`
            : `--name ${flags.name}: no pipeline ${flags.project}/${flags.name} in ${target.description}`,
          'not-found',
        );
      const results: { pipeline: string; reconciliation: Reconciliation }[] = [];
      for (const pipeline of stored) {
        const range = {
          ...(flags.from === undefined ? {} : { from: flags.from }),
          ...(flags.to === undefined ? {} : { to: flags.to }),
        };
        results.push({
          pipeline: pipeline.name,
          reconciliation: await reconcilePipeline(target.stores(pipeline.config!), range),
        });
      }
      print(flags, results, () =>
        results
          .map((r) => `${flags.project}/${r.pipeline}\n\n${formatReconciliation(r.reconciliation)}`)
          .join('\n\n'),
      );
      if (results.some((r) => r.reconciliation.problems.length > 0)) process.exitCode = EXIT.failed;
    });
  });
}
