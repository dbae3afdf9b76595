/**
 * The warehouse on a laptop: an embedded DuckDB (in memory) whose views have the names and columns of
 * the Glue tables and Athena views (`core/warehouse`), over a local destination folder:
 * - `mp_master_event`: the day folders' parts read as JSON (or Parquet), with `mp_date` from the
 *   folder (`YYYY/MM/DD`) and the part's path as `"$path"` (Athena's hidden column);
 * - `mp_master_event_raw`: every line exactly as written (`line`), with `mp_date` and `"$path"`;
 * - `mp_master_event_view`, `mp_master_event_typed`: the same SQL as the Athena views, DuckDB dialect;
 * - `mp_people_data`, `mp_identity_mappings_data` and their `_view`s: exactly the parts the current
 *   snapshot manifest lists (a snapshot being written, its manifest not yet replaced, is not seen).
 * The day-folder views read the folders at query time; the snapshot views and the typed columns are
 * fixed when the warehouse opens. `verify` counts every part through DuckDB and compares with the
 * manifests and the run records.
 */
import { access, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { snapshotFolder } from '../core/layout.js';
import type { SnapshotSource } from '../core/pipeline-config.js';
import {
  type Manifest,
  parseStoredState,
  type RunRecord,
  type SnapshotManifest,
  STORED_RECORDS,
} from '../core/records.js';
import { PropertySchema } from '../core/warehouse/property-schema.js';
import {
  DATE_COLUMN,
  type DayRange,
  dailyCountsSql,
  dateValue,
  type ExportFormat,
  eventViewSql,
  quoteIdentifier,
  quoteLiteral,
  snapshotColumns,
  snapshotViewSql,
  TABLES,
  typedViewSql,
} from '../core/warehouse/sql.js';
import { type TypedColumn, typedLayout } from '../core/warehouse/typed-columns.js';

/** Options of {@link DuckDbWarehouse.open}. */
export interface DuckDbWarehouseOptions {
  /** The local destination root (`local run --out`): it holds `<project>/mp_master_event/...`. */
  readonly out: string;
  readonly projectId: string;
  /** How the event parts are written. @default 'json' */
  readonly format?: ExportFormat;
  /**
   * The typed view's columns: the pipeline state's `WarehouseSchemaState.columns`.
   * @default inferred from every exported record when the warehouse opens
   */
  readonly columns?: readonly TypedColumn[];
}

/** One relation of the warehouse and its columns. */
export interface WarehouseRelation {
  readonly name: string;
  /** `table`: reads files; `view`: reads other relations. */
  readonly kind: 'table' | 'view';
  readonly columns: readonly { readonly name: string; readonly type: string }[];
}

/** A result row: column name to a JSON value (64-bit integers as numbers when exact, else text). */
export type Row = Record<string, unknown>;

/** One difference `verify` found, named with the file it concerns. */
export interface VerifyProblem {
  /** `YYYY-MM-DD`, or the snapshot's table for a snapshot part. */
  readonly day: string;
  /** The file, relative to the destination root. */
  readonly file?: string;
  readonly problem: string;
}

/** What `verify` counted for one day. */
export interface VerifiedDay {
  readonly day: string;
  readonly parts: number;
  /** Records the day's manifests list. */
  readonly manifest_records: number;
  /** Rows DuckDB reads from the day's parts (every line). */
  readonly rows: number;
  /** Events the given run records say their steps exported into the day (when run records were given). */
  readonly run_records?: number;
}

/** The outcome of `verify`: `ok` when nothing differs. */
export interface VerifyReport {
  readonly ok: boolean;
  readonly days: readonly VerifiedDay[];
  readonly problems: readonly VerifyProblem[];
}

/** Options of `verify`. */
export interface VerifyOptions {
  /** Only these event days (inclusive); default every day folder. */
  readonly range?: DayRange;
  /** The run records of the project's events pipelines: each step's per-day counts are checked too. */
  readonly runRecords?: readonly RunRecord[];
}

const EVENT_COLUMNS =
  "{event_name: 'VARCHAR', time: 'BIGINT', distinct_id: 'VARCHAR', device_id: 'VARCHAR', user_id: 'VARCHAR', insert_id: 'VARCHAR', properties: 'JSON'}";
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** A DuckDB warehouse over one project's local exports. */
export class DuckDbWarehouse {
  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly connection: DuckDBConnection,
    private readonly options: Required<Omit<DuckDbWarehouseOptions, 'columns'>>,
    /** The typed view's columns. */
    readonly columns: readonly TypedColumn[],
  ) {}

  /** Opens an in-memory DuckDB and defines every table and view over the project's folders. */
  static async open(options: DuckDbWarehouseOptions): Promise<DuckDbWarehouse> {
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    const settings = { out: options.out, projectId: options.projectId, format: options.format ?? 'json' };
    const warehouse = new DuckDbWarehouse(instance, connection, settings, []);
    try {
      await warehouse.defineEventTables();
      await warehouse.run(
        `CREATE VIEW ${quoteIdentifier(TABLES.eventsView)} AS ${eventViewSql('duckdb', settings.format)}`,
      );
      const columns = options.columns ?? (await warehouse.inferColumns());
      await warehouse.run(
        `CREATE VIEW ${quoteIdentifier(TABLES.eventsTyped)} AS ${typedViewSql('duckdb', columns)}`,
      );
      for (const source of ['people', 'identity'] as const) await warehouse.defineSnapshot(source);
      return new DuckDbWarehouse(instance, connection, settings, columns);
    } catch (error) {
      connection.closeSync();
      instance.closeSync();
      throw error;
    }
  }

  /** Runs one SQL statement and returns its rows. */
  async sql(query: string): Promise<Row[]> {
    const reader = await this.connection.runAndReadAll(query);
    return reader
      .getRowObjects()
      .map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, plain(v)])));
  }

  /** The warehouse's tables and views with their columns. */
  async tables(): Promise<WarehouseRelation[]> {
    const rows = await this.sql(
      `SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'main' ORDER BY table_name, ordinal_position`,
    );
    const fileTables = new Set<string>([TABLES.events, TABLES.eventsRaw, TABLES.people, TABLES.identity]);
    const relations = new Map<string, { name: string; type: string }[]>();
    for (const row of rows) {
      const name = String(row.table_name);
      relations.set(name, [
        ...(relations.get(name) ?? []),
        { name: String(row.column_name), type: String(row.data_type) },
      ]);
    }
    return [...relations].map(([name, columns]) => ({
      name,
      kind: fileTables.has(name) ? 'table' : 'view',
      columns,
    }));
  }

  /** Events per day (`YYYY-MM-DD`) read through SQL: the published per-day count query. */
  async dailyCounts(range: DayRange): Promise<{ day: string; events: number }[]> {
    const rows = await this.sql(dailyCountsSql(this.options.format, range));
    return rows.map((row) => ({
      day: String(row[DATE_COLUMN]).replaceAll('/', '-'),
      events: Number(row.events),
    }));
  }

  /**
   * Counts the rows of every part of every day folder (in `range`) through DuckDB and compares them
   * with the manifests (each listed part, each day's total, parts no manifest lists) and, when given,
   * with the run records (each step's count per day), and checks each current snapshot's parts
   * against its manifest. Every difference is a problem naming the file.
   */
  async verify(options: VerifyOptions = {}): Promise<VerifyReport> {
    const problems: VerifyProblem[] = [];
    const days: VerifiedDay[] = [];
    const root = join(this.options.out, this.options.projectId, TABLES.events);
    const relative = (day: string, name: string) =>
      `${this.options.projectId}/${TABLES.events}/${dateValue(day)}/${name}`;
    const stepsByDay = new Map<string, { pipeline: string; step: string; exported: number }[]>();
    for (const record of options.runRecords ?? [])
      for (const [day, counts] of Object.entries(record.days))
        stepsByDay.set(day, [
          ...(stepsByDay.get(day) ?? []),
          { pipeline: record.pipeline, step: record.step_id, exported: counts.exported },
        ]);
    const checkedPipelines = new Set((options.runRecords ?? []).map((r) => r.pipeline));

    const folders = await dayFolders(root);
    const allDays = [...new Set([...folders.keys(), ...stepsByDay.keys()])]
      .filter((day) => options.range === undefined || (day >= options.range.from && day <= options.range.to))
      .sort();
    for (const day of allDays) {
      const names = folders.get(day) ?? [];
      const parts = names.filter((name) => !name.startsWith('_') && this.isPart(name));
      const manifests: Manifest[] = [];
      for (const name of names.filter((n) => /^_manifest-.*\.json$/.test(n))) {
        try {
          const path = join(root, dateValue(day), name);
          manifests.push(
            parseStoredState(path, STORED_RECORDS.manifest, JSON.parse(await readFile(path, 'utf8'))),
          );
        } catch (error) {
          problems.push({
            day,
            file: relative(day, name),
            problem: `unreadable manifest: ${(error as Error).message}`,
          });
        }
      }
      const counts = await this.countRows(parts.map((name) => join(root, dateValue(day), name)));
      const listed = new Set<string>();
      for (const manifest of manifests) {
        const manifestFile = relative(day, `_manifest-${manifest.pipeline}.${manifest.step_id}.json`);
        const total = manifest.parts.reduce((n, p) => n + p.records, 0);
        if (total !== manifest.records)
          problems.push({
            day,
            file: manifestFile,
            problem: `lists parts of ${total} records but says ${manifest.records}`,
          });
        for (const part of manifest.parts) {
          listed.add(part.file);
          const counted = counts.get(join(root, dateValue(day), part.file));
          if (counted === undefined)
            problems.push({
              day,
              file: relative(day, part.file),
              problem: `listed by ${manifestFile} but missing`,
            });
          else if (typeof counted === 'string')
            problems.push({
              day,
              file: relative(day, part.file),
              problem: `DuckDB cannot read it: ${counted}`,
            });
          else if (counted !== part.records)
            problems.push({
              day,
              file: relative(day, part.file),
              problem: `${manifestFile} lists ${part.records} records, DuckDB reads ${counted}`,
            });
        }
      }
      for (const name of parts.filter((n) => !listed.has(n))) {
        const counted = counts.get(join(root, dateValue(day), name));
        problems.push({
          day,
          file: relative(day, name),
          problem: `no manifest lists it (${typeof counted === 'number' ? `${counted} rows` : 'unreadable'}): tables read it, the counts do not`,
        });
      }

      const manifestRecords = manifests.reduce((n, m) => n + m.records, 0);
      const rows = [...counts.values()].reduce<number>((n, c) => n + (typeof c === 'number' ? c : 0), 0);
      let runRecords: number | undefined;
      if (options.runRecords !== undefined) {
        const steps = stepsByDay.get(day) ?? [];
        runRecords = steps.reduce((n, s) => n + s.exported, 0);
        for (const step of steps) {
          const manifest = manifests.find((m) => m.pipeline === step.pipeline && m.step_id === step.step);
          const file = relative(day, `_manifest-${step.pipeline}.${step.step}.json`);
          if (manifest === undefined)
            problems.push({
              day,
              file,
              problem: `missing, though the run record of ${step.step} counts ${step.exported} events in this day`,
            });
          else if (manifest.records !== step.exported)
            problems.push({
              day,
              file,
              problem: `says ${manifest.records} records, the run record of ${step.step} ${step.exported}`,
            });
        }
        for (const manifest of manifests.filter((m) => checkedPipelines.has(m.pipeline)))
          if (!steps.some((s) => s.pipeline === manifest.pipeline && s.step === manifest.step_id))
            problems.push({
              day,
              file: relative(day, `_manifest-${manifest.pipeline}.${manifest.step_id}.json`),
              problem: `no run record of ${manifest.pipeline} counts step ${manifest.step_id} in this day`,
            });
      }
      if (manifestRecords !== rows && !problems.some((p) => p.day === day))
        problems.push({
          day,
          problem: `manifests list ${manifestRecords} records, DuckDB reads ${rows} rows`,
        });
      days.push({
        day,
        parts: parts.length,
        manifest_records: manifestRecords,
        rows,
        ...(runRecords === undefined ? {} : { run_records: runRecords }),
      });
    }
    for (const source of ['people', 'identity'] as const)
      problems.push(...(await this.verifySnapshot(source)));
    return { ok: problems.length === 0, days, problems };
  }

  /** Closes DuckDB. */
  close(): void {
    this.connection.closeSync();
    this.instance.closeSync();
  }

  private async run(statement: string): Promise<void> {
    await this.connection.run(statement);
  }

  /** The glob of a part's name, and the test of one: JSON parts are gzip or zstd (DuckDB reads both by their extension). */
  private partSuffix(): string {
    return this.options.format === 'json' ? '.json.*' : '.parquet';
  }

  private isPart(name: string): boolean {
    return this.options.format === 'json' ? /\.json\.(gz|zst)$/.test(name) : name.endsWith('.parquet');
  }

  /** `mp_master_event` and `mp_master_event_raw` over the day folders (empty when there are none yet). */
  private async defineEventTables(): Promise<void> {
    const root = join(this.options.out, this.options.projectId, TABLES.events);
    const glob = quoteLiteral(join(root, '*', '*', '*', `*${this.partSuffix()}`));
    const hasParts = [...(await dayFolders(root)).values()].some((names) =>
      names.some((n) => !n.startsWith('_') && this.isPart(n)),
    );
    const date = `regexp_extract(filename, '/([0-9]{4}/[0-9]{2}/[0-9]{2})/[^/]*$', 1) AS "${DATE_COLUMN}", filename AS "$path"`;
    const json = this.options.format === 'json';
    const events = !hasParts
      ? `SELECT NULL::VARCHAR AS event_name, NULL::${json ? 'BIGINT' : 'TIMESTAMP'} AS time, NULL::VARCHAR AS distinct_id, NULL::VARCHAR AS device_id, NULL::VARCHAR AS user_id, NULL::VARCHAR AS insert_id, NULL::JSON AS properties, NULL::VARCHAR AS "${DATE_COLUMN}", NULL::VARCHAR AS "$path" WHERE false`
      : json
        ? `SELECT event_name, time, distinct_id, device_id, user_id, insert_id, properties, ${date} FROM read_json(${glob}, format = 'newline_delimited', columns = ${EVENT_COLUMNS}, filename = true)`
        : `SELECT event_name, time, distinct_id, device_id, user_id, insert_id, properties, ${date} FROM read_parquet(${glob}, filename = true)`;
    await this.run(`CREATE VIEW ${quoteIdentifier(TABLES.events)} AS ${events}`);
    if (!json) return;
    const raw = hasParts
      ? `SELECT CAST(json AS VARCHAR) AS line, ${date} FROM read_json_objects(${glob}, format = 'newline_delimited', filename = true)`
      : `SELECT NULL::VARCHAR AS line, NULL::VARCHAR AS "${DATE_COLUMN}", NULL::VARCHAR AS "$path" WHERE false`;
    await this.run(`CREATE VIEW ${quoteIdentifier(TABLES.eventsRaw)} AS ${raw}`);
  }

  /** A snapshot table over exactly the parts of its current manifest, and its `_view`. */
  private async defineSnapshot(source: SnapshotSource): Promise<void> {
    const manifest = await this.currentSnapshot(source);
    const table = source === 'people' ? TABLES.people : TABLES.identity;
    const columns = snapshotColumns(source);
    const files = (manifest?.parts ?? []).map((part) =>
      quoteLiteral(join(this.options.out, snapshotFolder(this.options.projectId, source), part.file)),
    );
    const body =
      files.length === 0
        ? `SELECT ${columns.map((c) => `NULL::VARCHAR AS ${quoteIdentifier(c.name)}`).join(', ')} WHERE false`
        : this.options.format === 'json'
          ? `SELECT ${columns.map((c) => quoteIdentifier(c.name)).join(', ')} FROM read_json([${files.join(', ')}], format = 'newline_delimited', columns = {${columns
              .map((c) => `${c.name}: '${c.name === 'properties' ? 'JSON' : 'VARCHAR'}'`)
              .join(', ')}})`
          : `SELECT ${columns.map((c) => quoteIdentifier(c.name)).join(', ')} FROM read_parquet([${files.join(', ')}])`;
    await this.run(`CREATE VIEW ${quoteIdentifier(table)} AS ${body}`);
    await this.run(
      `CREATE VIEW ${quoteIdentifier(source === 'people' ? TABLES.peopleView : TABLES.identityView)} AS ${snapshotViewSql(source)}`,
    );
  }

  /**
   * The manifest of the current snapshot: the one in the folder (a destination holds one pipeline of
   * each snapshot source); when several are there, the one folded through the latest hour.
   */
  private async currentSnapshot(source: SnapshotSource): Promise<SnapshotManifest | undefined> {
    const folder = join(this.options.out, snapshotFolder(this.options.projectId, source));
    const names = (await readdir(folder).catch(() => [] as string[])).filter((n) =>
      /^_manifest-.*\.json$/.test(n),
    );
    const manifests = await Promise.all(
      names.map(async (n) => {
        const path = join(folder, n);
        return parseStoredState(
          path,
          STORED_RECORDS.snapshotManifest,
          JSON.parse(await readFile(path, 'utf8')),
        );
      }),
    );
    return manifests.sort((a, b) =>
      a.through_hour < b.through_hour ? 1 : a.through_hour > b.through_hour ? -1 : 0,
    )[0];
  }

  private async verifySnapshot(source: SnapshotSource): Promise<VerifyProblem[]> {
    const manifest = await this.currentSnapshot(source);
    if (manifest === undefined) return [];
    const folder = snapshotFolder(this.options.projectId, source);
    const paths = manifest.parts.map((p) => join(this.options.out, folder, p.file));
    const counts = await this.countRows(paths);
    const table = source === 'people' ? TABLES.people : TABLES.identity;
    return manifest.parts.flatMap((part, i) => {
      const counted = counts.get(paths[i]!);
      const file = `${folder}${part.file}`;
      if (counted === undefined)
        return [{ day: table, file, problem: 'listed by the snapshot manifest but missing' }];
      if (typeof counted === 'string')
        return [{ day: table, file, problem: `DuckDB cannot read it: ${counted}` }];
      return counted === part.records
        ? []
        : [
            {
              day: table,
              file,
              problem: `the snapshot manifest lists ${part.records} records, DuckDB reads ${counted}`,
            },
          ];
    });
  }

  /**
   * Rows of each file through DuckDB (lines for JSON, rows for Parquet): one query for all, and when
   * that fails, one per file, so the unreadable ones are named with their error. Missing files are
   * left out of the map.
   */
  private async countRows(paths: readonly string[]): Promise<Map<string, number | string>> {
    const counts = new Map<string, number | string>();
    const present = (await Promise.all(paths.map(async (p) => ((await exists(p)) ? p : undefined)))).filter(
      (p): p is string => p !== undefined,
    );
    if (present.length === 0) return counts;
    const reader = (files: readonly string[]) =>
      this.options.format === 'json'
        ? `read_json_objects([${files.map(quoteLiteral).join(', ')}], format = 'newline_delimited', filename = true)`
        : `read_parquet([${files.map(quoteLiteral).join(', ')}], filename = true)`;
    try {
      for (const row of await this.sql(
        `SELECT filename, count(*) AS n FROM ${reader(present)} GROUP BY filename`,
      ))
        counts.set(String(row.filename), Number(row.n));
      for (const path of present) if (!counts.has(path)) counts.set(path, 0);
    } catch {
      for (const path of present) {
        try {
          const [row] = await this.sql(`SELECT count(*) AS n FROM ${reader([path])}`);
          counts.set(path, Number(row?.n ?? 0));
        } catch (error) {
          counts.set(path, (error as Error).message.split('\n')[0] ?? 'unreadable');
        }
      }
    }
    return counts;
  }

  /** The typed layout of every exported record (when the caller has no stored layout). */
  private async inferColumns(): Promise<readonly TypedColumn[]> {
    const schema = new PropertySchema();
    for (const row of await this.sql(`SELECT properties FROM ${quoteIdentifier(TABLES.eventsView)}`))
      schema.addProperties(String(row.properties));
    return typedLayout(schema).columns;
  }
}

/** Day folders under `root` (`YYYY/MM/DD`) by day (`YYYY-MM-DD`), with the names of their files. */
async function dayFolders(root: string): Promise<Map<string, string[]>> {
  const days = new Map<string, string[]>();
  const list = (path: string) => readdir(path).catch(() => [] as string[]);
  for (const year of (await list(root)).filter((n) => /^\d{4}$/.test(n)))
    for (const month of (await list(join(root, year))).filter((n) => /^\d{2}$/.test(n)))
      for (const day of (await list(join(root, year, month))).filter((n) => /^\d{2}$/.test(n)))
        days.set(`${year}-${month}-${day}`, (await list(join(root, year, month, day))).sort());
  return days;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** A DuckDB value as plain JSON-friendly data: 64-bit integers as numbers when exact. */
function plain(value: unknown): unknown {
  if (typeof value === 'bigint')
    return value <= MAX_SAFE && value >= -MAX_SAFE ? Number(value) : value.toString();
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(plain);
  if ('toString' in value && value.constructor.name.startsWith('DuckDB')) return String(value);
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
}
