/**
 * `npm run chaos [seeds]`: the fault-injection run. For each seed, operates the demonstration's four
 * pipelines through the synthesized workflows once cleanly and once with faults injected at random
 * (seeded), and checks that the outputs are byte-identical, every step committed once and every
 * reconciliation balanced. Prints each seed, then the totals; exits non-zero on any failure.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import {
  DEFAULT_FAULT_KINDS,
  DEFAULT_FAULT_RATES,
  FAULT_KINDS,
  type FaultKind,
  parseFaultKinds,
} from '../chaos/faults.js';
import { DEFAULT_SCENARIO, runChaosSeed, type SeedReport } from '../chaos/runner.js';
import { EXIT, exitCodeOf, positiveInteger, positiveNumber } from '../cli/shared.js';
import { startMoto } from '../local/moto.js';

interface ChaosFlags {
  seed?: number;
  firstSeed: number;
  faults: string;
  days: number;
  operatedDays?: number;
  eventsPerHour: number;
  rateScale: number;
  keep: boolean;
  verbose: boolean;
}

function buildProgram(): Command {
  return new Command('chaos')
    .description(
      'operate four pipelines through the synthesized workflows, cleanly and with faults injected at random, ' +
        'per seed, and check the outputs are byte-identical, every step committed once, every reconciliation balanced',
    )
    .argument('[seeds]', 'how many seeds to run', positiveInteger, 20)
    .option('--seed <n>', 'run this one seed only (to reproduce a failure)', positiveInteger)
    .option('--first-seed <n>', 'the first of the seeds', positiveInteger, 1)
    .option(
      '--faults <kinds>',
      `the kinds of fault to inject: all, none (a second clean run: checks the runner is deterministic) or a comma-separated list of ${FAULT_KINDS.join(', ')}`,
      DEFAULT_FAULT_KINDS.join(','),
    )
    .option('--days <n>', 'days of generated data', positiveInteger, DEFAULT_SCENARIO.dataDays)
    .option('--operated-days <n>', 'days the schedule operates (default: --days + 2)', positiveInteger)
    .option(
      '--events-per-hour <n>',
      'events per hour and project',
      positiveInteger,
      DEFAULT_SCENARIO.eventsPerHour,
    )
    .option('--rate-scale <x>', 'multiplies the chance of every fault', positiveNumber, 1)
    .option('--keep', "keep every seed's folders (a failed seed's are always kept)", false)
    .option('--verbose', 'print every step outcome and the faults by variant', false)
    .showHelpAfterError()
    .exitOverride();
}

async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    program.parse(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.invalid;
    throw error;
  }
  const flags = program.opts<ChaosFlags>();
  const count = program.processedArgs[0] as number;
  let faults: FaultKind[];
  try {
    faults = parseFaultKinds(flags.faults);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    return exitCodeOf(error);
  }
  const rates = Object.fromEntries(
    FAULT_KINDS.map((kind) => [kind, Math.min(1, DEFAULT_FAULT_RATES[kind] * flags.rateScale)]),
  ) as Record<FaultKind, number>;
  const scenario = {
    ...DEFAULT_SCENARIO,
    dataDays: flags.days,
    operatedDays: flags.operatedDays ?? flags.days + 2,
    eventsPerHour: flags.eventsPerHour,
  };
  const seeds =
    flags.seed === undefined ? Array.from({ length: count }, (_, i) => flags.firstSeed + i) : [flags.seed];
  const out = (line: string) => process.stdout.write(`${line}\n`);
  out(
    `chaos: ${seeds.length} seed(s), ${scenario.dataDays} day(s) of data operated for ${scenario.operatedDays}, ` +
      `faults: ${faults.length === 0 ? 'none (two clean runs)' : faults.map((k) => `${k} ${rates[k]}`).join(', ')}`,
  );

  const started = Date.now();
  const root = await mkdtemp(join(tmpdir(), 'mp-chaos-'));
  const moto = await startMoto();
  const reports: SeedReport[] = [];
  try {
    for (const seed of seeds) {
      const workDir = join(root, `seed-${seed}`);
      const report = await runChaosSeed({
        seed,
        faults,
        rates,
        scenario,
        moto,
        workDir,
        ...(flags.verbose ? { progress: (line: string) => out(`    ${line}`) } : {}),
      });
      reports.push(report);
      out(describeSeed(report));
      if (flags.verbose || report.problems.length > 0)
        out(`    faults by variant: ${report.variants.map(([variant, n]) => `${variant} ${n}`).join('; ')}`);
      if (report.unfinishedWrites.length > 0)
        out(
          `    note: ${report.unfinishedWrites.length} write(s) never completed and left their temp file, e.g. ${report.unfinishedWrites[0]}`,
        );
      if (report.problems.length > 0) {
        for (const problem of report.problems.slice(0, 8)) out(`    ${problem}`);
        out(
          `    reproduce: npm run chaos -- --seed ${seed} --faults ${faultsFlag(faults)}${reproduceFlags(flags)}`,
        );
        out(`    folders kept: ${workDir}`);
      } else if (!flags.keep) await rm(workDir, { recursive: true, force: true });
    }
  } finally {
    await moto.stop();
    if (!flags.keep && reports.every((r) => r.problems.length === 0))
      await rm(root, { recursive: true, force: true });
  }

  const failed = reports.filter((r) => r.problems.length > 0);
  const byKind = new Map<FaultKind, number>();
  for (const report of reports)
    for (const [kind, n] of report.faults) byKind.set(kind, (byKind.get(kind) ?? 0) + n);
  const total = [...byKind.values()].reduce((a, b) => a + b, 0);
  const sum = (value: (r: SeedReport) => number) => reports.reduce((n, r) => n + value(r), 0);
  out(
    `\nfaults injected: ${total} (${[...byKind].map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}), ` +
      `seeds: ${reports.length} (${reports.length - failed.length} passed, ${failed.length} failed), ` +
      `steps: ${sum((r) => r.steps)}, lost: ${sum((r) => r.lost)}, duplicated: ${sum((r) => r.duplicated)}, ` +
      `steps committed twice: ${sum((r) => r.committedTwice)}, ` +
      `landing-zone listings that missed a late object: ${sum((r) => r.lateListings)}, ` +
      `writes never completed: ${sum((r) => r.unfinishedWrites.length)}, ` +
      `${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  if (failed.length > 0) out(`FAILED seeds: ${failed.map((r) => r.seed).join(', ')}`);
  return failed.length === 0 ? EXIT.ok : EXIT.failed;
}

function describeSeed(report: SeedReport): string {
  const faults = [...report.faults].map(([kind, n]) => `${kind} ${n}`).join(', ');
  const total = [...report.faults.values()].reduce((a, b) => a + b, 0);
  return (
    `seed ${report.seed}: ${total} faults${faults === '' ? '' : ` (${faults})`}, ${report.steps} steps, ` +
    `ticks ${report.ticks.clean} clean / ${report.ticks.chaos} chaos (${report.ticks.extra} past the end), ` +
    `lost ${report.lost}, duplicated ${report.duplicated}: ` +
    `${report.problems.length === 0 ? 'ok' : 'FAILED'} in ${report.seconds.toFixed(1)} s`
  );
}

function faultsFlag(faults: readonly FaultKind[]): string {
  if (faults.length === 0) return 'none';
  return faults.length === FAULT_KINDS.length ? 'all' : faults.join(',');
}

function reproduceFlags(flags: ChaosFlags): string {
  return [
    flags.days === DEFAULT_SCENARIO.dataDays ? '' : ` --days ${flags.days}`,
    flags.operatedDays === undefined ? '' : ` --operated-days ${flags.operatedDays}`,
    flags.eventsPerHour === DEFAULT_SCENARIO.eventsPerHour ? '' : ` --events-per-hour ${flags.eventsPerHour}`,
    flags.rateScale === 1 ? '' : ` --rate-scale ${flags.rateScale}`,
  ].join('');
}

process.exitCode = await main(process.argv.slice(2));
