/**
 * `mp-pipelines warehouse`: a project's exports as tables, queried through an embedded DuckDB over the
 * local output (a `local run --out` folder, or the local home's destination). The same tables and
 * views as the Glue catalog a deployment keeps (docs/warehouse.md).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { UsageError } from '../core/errors.js';
import type { ExportFormat } from '../core/warehouse/sql.js';
import { LocalHome } from '../local/local-home.js';
import type { LocalWarehouseSource, OpenedWarehouse } from '../local/warehouse-source.js';
import { table } from './format.js';
import { day, EXIT, print } from './shared.js';
import { localTarget } from './target.js';

interface WarehouseFlags {
  readonly project: string;
  readonly out?: string;
  readonly home?: string;
  readonly format: ExportFormat;
  readonly json: boolean;
}

interface RangeFlags extends WarehouseFlags {
  readonly from?: string;
  readonly to?: string;
}

/** The options every `warehouse` command takes. */
function warehouseOptions(command: Command): Command {
  return command
    .requiredOption('--project <id>', 'project id')
    .option(
      '--out <dir>',
      'a destination root holding <project>/mp_master_event/ (e.g. `local run --out`); default: the local home',
    )
    .option('--home <dir>', 'the local home (default: .mp-pipelines, or MP_PIPELINES_HOME)')
    .addOption(
      new Option('--format <format>', 'how the event parts are written')
        .choices(['json', 'parquet'])
        .default('json'),
    )
    .option('--json', 'print JSON instead of tables', false);
}

/** Adds `warehouse sql|tables|schema|count|verify`. */
export function addWarehouseCommands(program: Command): void {
  const warehouse = program
    .command('warehouse')
    .description(
      "a project's exports as tables (mp_master_event, mp_master_event_raw, _view, _typed, people and identity) " +
        'in an embedded DuckDB over the local output',
    );

  warehouseOptions(
    warehouse
      .command('sql')
      .description('run one SQL query and print its rows')
      .argument('<query>', 'the SQL'),
  ).action(async (query: string, flags: WarehouseFlags) => {
    await withWarehouse(flags, async ({ warehouse: w }) => {
      const rows = await w.sql(query);
      print(flags, rows, () => {
        const headers = Object.keys(rows[0] ?? {});
        return rows.length === 0
          ? '(no rows)'
          : table(
              headers,
              rows.map((row) => headers.map((h) => cell(row[h]))),
            );
      });
    });
  });

  warehouseOptions(
    warehouse.command('tables').description('list the tables and views with their columns'),
  ).action(async (flags: WarehouseFlags) => {
    await withWarehouse(flags, async ({ warehouse: w }) => {
      const relations = await w.tables();
      print(flags, relations, () =>
        relations
          .map(
            (r) =>
              `${r.name} (${r.kind})\n${table(
                ['column', 'type'],
                r.columns.map((c) => [c.name, c.type]),
              )}`,
          )
          .join('\n\n'),
      );
    });
  });

  warehouseOptions(
    warehouse
      .command('schema')
      .description(
        'the properties the events pipelines saw while exporting, with the JSON types of their values, and the typed columns',
      ),
  ).action(async (flags: WarehouseFlags) => {
    await withWarehouse(flags, async ({ warehouse: w, schema }) => {
      const columns = schema?.columns ?? w.columns;
      print(flags, { schema: schema?.schema ?? null, columns }, () => {
        const types =
          schema === undefined
            ? 'no events step has committed: the typed view was inferred from the files'
            : `${schema.schema.records} events recorded\n\n${table(
                ['property', 'types'],
                Object.entries(schema.schema.properties).map(([property, counts]) => [
                  property,
                  Object.entries(counts)
                    .map(([type, n]) => `${type} ${n}`)
                    .join(', '),
                ]),
              )}`;
        return `${types}\n\nmp_master_event_typed\n${table(
          ['column', 'property', 'type'],
          columns.map((c) => [c.name, c.property, c.sql_type]),
        )}`;
      });
    });
  });

  warehouseOptions(
    warehouse
      .command('count')
      .description('events per day read through SQL (the published per-day count)')
      .requiredOption('--from <date>', 'first day (YYYY-MM-DD)', day)
      .requiredOption('--to <date>', 'last day (YYYY-MM-DD)', day),
  ).action(async (flags: RangeFlags & { from: string; to: string }) => {
    await withWarehouse(flags, async ({ warehouse: w }) => {
      const counts = await w.dailyCounts({ from: flags.from, to: flags.to });
      print(flags, counts, () =>
        table(
          ['day', 'events'],
          counts.map((c) => [c.day, c.events]),
        ),
      );
    });
  });

  warehouseOptions(
    warehouse
      .command('verify')
      .description(
        'count the rows of every exported part through DuckDB and compare them with the manifests and the run ' +
          'records, per day; exits 1 on any difference, naming the file',
      )
      .option('--from <date>', 'first day (YYYY-MM-DD); default: every day folder', day)
      .option('--to <date>', 'last day (YYYY-MM-DD)', day),
  ).action(async (flags: RangeFlags) => {
    if ((flags.from === undefined) !== (flags.to === undefined))
      throw new UsageError('--from and --to go together');
    await withWarehouse(flags, async ({ warehouse: w, runRecords }) => {
      const report = await w.verify({
        runRecords,
        ...(flags.from === undefined || flags.to === undefined
          ? {}
          : { range: { from: flags.from, to: flags.to } }),
      });
      print(flags, report, () => {
        const days = table(
          ['day', 'parts', 'manifest records', 'rows read', 'run records'],
          report.days.map((d) => [d.day, d.parts, d.manifest_records, d.rows, d.run_records ?? '-']),
        );
        const problems = report.problems.map(
          (p) => `${p.day}: ${p.file ?? ''}${p.file === undefined ? '' : ': '}${p.problem}`,
        );
        return `${days}\n\n${report.ok ? 'verified: every part reads as its manifest and run records say' : `NOT VERIFIED:\n${problems.join('\n')}`}`;
      });
      if (!report.ok) process.exitCode = EXIT.failed;
    });
  });
}

/** A cell of a query's row: strings as they are, anything else as JSON. */
function cell(value: unknown): string {
  return typeof value === 'string' ? value : (JSON.stringify(value) ?? 'null');
}

/** Finds the project's exports, opens DuckDB over them, runs `work`, and closes it. */
async function withWarehouse(
  flags: WarehouseFlags,
  work: (opened: OpenedWarehouse) => Promise<void>,
): Promise<void> {
  // DuckDB's native module loads only for the commands that query it.
  const { localRunSource, openLocalWarehouse } = await import('../local/warehouse-source.js');
  const source =
    flags.out === undefined
      ? await homeSource(flags)
      : await localRunSource(resolve(flags.out), flags.project);
  if (!existsSync(join(source.out, flags.project)))
    throw new UsageError(
      `--project ${flags.project}: nothing exported under ${source.out}${flags.out === undefined ? '' : ' (--out)'}`,
    );
  const opened = await openLocalWarehouse(source, flags.format);
  try {
    await work(opened);
  } finally {
    opened.warehouse.close();
  }
}

/** The local home's destination of the project's events pipelines, and their state. */
async function homeSource(flags: WarehouseFlags): Promise<LocalWarehouseSource> {
  const home = new LocalHome(flags.home);
  const server = await home.server();
  if (server === undefined)
    throw new UsageError(
      `the local home ${home.dir} is not up: start it with \`mp-pipelines local up\`, or give --out <dir>`,
    );
  const target = localTarget(home, server);
  try {
    const pipelines = (await target.configs.readProject(flags.project)).pipelines.flatMap((p) =>
      p.config?.data_source === 'events' ? [p.config] : [],
    );
    const folders = pipelines.map((config) => home.folders(server, config));
    const outs = [...new Set(folders.map((f) => f.out))];
    if (outs.length > 1)
      throw new UsageError(
        `--project ${flags.project}: its events pipelines write to ${outs.join(' and ')}; choose one with --out`,
      );
    return {
      out: outs[0] ?? server.out,
      projectId: flags.project,
      states: pipelines.map((config) => target.stores(config).state),
    };
  } finally {
    await target.close();
  }
}
