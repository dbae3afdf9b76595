/**
 * Every output format of a whole local run, read back by an independent reader (DuckDB's own gzip, zstd,
 * JSON and Parquet code): a daily pipeline with sync over Berlin's spring-forward day, with late events
 * and duplicates, and people and identity snapshots, must hold the same rows in each format as in JSON
 * gzip, with manifests whose counts match the files.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { type PipelineConfig, parsePipelineConfig } from '../../src/core/pipeline-config.js';
import type { Manifest, SnapshotManifest } from '../../src/core/records.js';
import { addDays, HOUR_MS, ZoneCalendar } from '../../src/core/windows.js';
import { partExtension, partFormatOf } from '../../src/engine/part-formats.js';
import { startControlPlane } from '../../src/local/control-plane.js';
import { generateLandingZone } from '../../src/local/generate.js';
import { generateProfileLandingZone } from '../../src/local/generate-profiles.js';
import { defaultStateFolder } from '../../src/local/local-stores.js';
import { type Moto, startMoto } from '../../src/local/moto.js';
import { type RunResult, runLocalPipeline } from '../../src/local/run.js';
import { LocalTaskPool } from '../../src/local/task-pool.js';
import { tempFolder } from '../support/fixtures.js';

let moto: Moto | undefined;
let pool: LocalTaskPool | undefined;
let instance: DuckDBInstance | undefined;
let db: DuckDBConnection;
let raw: { path: string; cleanup: () => Promise<void> };
const outs: { path: string; cleanup: () => Promise<void> }[] = [];

const PROJECT = 'formats';
const ZONE = 'Europe/Berlin';
const FIRST_DAY = '2024-03-30';
/** The spring-forward day (23 hours). */
const LAST_DAY = '2024-03-31';
const calendar = new ZoneCalendar(ZONE);
/** After every late event has been synced. */
const NOW = calendar.dayEnd(addDays(FIRST_DAY, 8)) + 3 * HOUR_MS;

before(async () => {
  moto = await startMoto();
  pool = new LocalTaskPool(2);
  instance = await DuckDBInstance.create(':memory:');
  db = await instance.connect();
  raw = await tempFolder('formats-raw');
  await generateLandingZone({
    rawDir: raw.path,
    projectId: PROJECT,
    seed: 16,
    start: calendar.dayStart(FIRST_DAY),
    hours: 48,
    eventsPerHour: 80,
    users: 40,
  });
  await generateProfileLandingZone({
    rawDir: raw.path,
    projectId: PROJECT,
    seed: 17,
    start: calendar.dayStart(FIRST_DAY),
    hours: 24,
    updatesPerHour: 40,
    users: 300,
  });
});
after(async () => {
  db?.closeSync();
  instance?.closeSync();
  await pool?.destroy();
  await moto?.stop();
  for (const out of outs) await out.cleanup();
  await raw?.cleanup();
});

/** Runs one pipeline with `fields` until `NOW` into a fresh folder; returns the folder. */
async function runInto(
  fields: Record<string, unknown>,
): Promise<{ out: string; config: PipelineConfig; result: RunResult }> {
  const config = parsePipelineConfig({
    project_id: PROJECT,
    name: 'main',
    frequency: 'daily',
    time_zone: ZONE,
    from_date: FIRST_DAY,
    ...fields,
  });
  const out = await tempFolder('formats-out');
  outs.push(out);
  const control = await startControlPlane(moto);
  let result: RunResult;
  try {
    result = await runLocalPipeline({
      folders: { raw: raw.path, out: out.path, state: defaultStateFolder(out.path, PROJECT, config.name) },
      config,
      now: NOW,
      control,
      ...(pool === undefined ? {} : { pool }),
    });
  } finally {
    await control.stop();
  }
  assert.deepEqual([result.failures, result.reconciliation.problems], [[], []]);
  return { out: out.path, config, result };
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

async function rows(sql: string): Promise<Record<string, unknown>[]> {
  return (await db.runAndReadAll(sql)).getRowObjectsJS();
}

/** Rows one query has and the other has not, both ways (multisets). */
async function difference(a: string, b: string): Promise<number> {
  const [row] = await rows(
    `select (select count(*) from ((${a}) except all (${b}))) + (select count(*) from ((${b}) except all (${a}))) as n`,
  );
  return Number(row?.n);
}

const COLUMNS = {
  events: [
    ['event_name', 'VARCHAR'],
    ['time', 'BIGINT'],
    ['distinct_id', 'VARCHAR'],
    ['device_id', 'VARCHAR'],
    ['user_id', 'VARCHAR'],
    ['insert_id', 'VARCHAR'],
    ['properties', 'JSON'],
  ],
  people: [
    ['distinct_id', 'VARCHAR'],
    ['properties', 'JSON'],
  ],
  identity: [
    ['distinct_id', 'VARCHAR'],
    ['resolved_distinct_id', 'VARCHAR'],
  ],
} as const;

/**
 * A query over `files` in `config`'s format giving the rows with their folder: `time` as milliseconds
 * and `properties` as DuckDB's own JSON text, so every format compares as data.
 */
function rowsQuery(config: PipelineConfig, files: readonly string[]): string {
  const columns = COLUMNS[config.data_source];
  const list = `[${files.map((f) => `'${f}'`).join(',')}]`;
  const select = columns
    .map(([name]) =>
      name === 'properties'
        ? 'json(properties)::VARCHAR as properties'
        : name === 'time' && config.format === 'parquet'
          ? 'epoch_ms(time) as time'
          : name,
    )
    .join(', ');
  const folder = "regexp_extract(filename, '(mp_[a-z_]+/(\\d{4}/\\d{2}/\\d{2}/)?)', 1) as folder";
  if (config.format === 'parquet')
    return `select ${folder}, ${select} from read_parquet(${list}, filename=true)`;
  const types = columns.map(([name, type]) => `${name}:'${type}'`).join(',');
  return (
    `select ${folder}, ${select} from read_json(${list}, format='newline_delimited', ` +
    `compression='${config.compression}', columns={${types}}, filename=true)`
  );
}

/**
 * The parts every manifest of a run lists, checked against the files: each listed part exists with the
 * format's extension, no other part is there, and DuckDB counts the records the manifest says.
 */
async function manifestParts(out: string, config: PipelineConfig): Promise<string[]> {
  const files = await filesUnder(join(out, PROJECT));
  const manifests = files.filter((f) => /\/_manifest-[^/]*\.json$/.test(f));
  assert.ok(manifests.length > 0, 'the run wrote manifests');
  const listed: string[] = [];
  for (const path of manifests) {
    const manifest = JSON.parse(await readFile(path, 'utf8')) as Manifest | SnapshotManifest;
    const folder = path.slice(0, path.lastIndexOf('/') + 1);
    const parts = manifest.parts.map((p) => folder + p.file);
    for (const part of parts) assert.ok(part.endsWith(partExtension(partFormatOf(config))), part);
    if (parts.length > 0) {
      const [count] = await rows(`select count(*) as n from (${rowsQuery(config, parts)})`);
      assert.equal(Number(count?.n), manifest.records, relative(out, path));
    } else assert.equal(manifest.records, 0);
    listed.push(...parts);
  }
  const parts = files.filter((f) => !f.includes('/_') && !relative(out, f).startsWith('_'));
  assert.deepEqual(parts.sort(), [...listed].sort(), 'the manifests list exactly the parts');
  return listed;
}

describe('output formats of a local run, read back by DuckDB', () => {
  test('events over a DST day with late data and duplicates: zstd and Parquet parts hold the rows of the JSON gzip parts', async () => {
    // Arrange / Act
    const reference = await runInto({ sync: true, to_date: LAST_DAY });
    const referenceParts = await manifestParts(reference.out, reference.config);
    const referenceRows = rowsQuery(reference.config, referenceParts);

    // Assert: the scenario has what it must prove, and every format reads back as the same rows.
    const days = await rows(`select distinct folder from (${referenceRows}) order by folder`);
    assert.ok(
      days.some((d) => d.folder === 'mp_master_event/2024/03/31/'),
      'the DST day was exported',
    );
    const [stats] = await rows(`select count(*) as n from (${referenceRows})`);
    assert.ok(Number(stats?.n) > 3000, `${stats?.n} events exported`);
    assert.ok(
      reference.result.steps.some((step) => step.step_id.startsWith('sync-') && step.exported > 0),
      'late events were exported by sync steps',
    );
    assert.ok(
      reference.result.reconciliation.eventDays.some((day) => day.duplicates > 0),
      'duplicates were dropped',
    );
    for (const fields of [
      { format: 'json', compression: 'zstd' },
      { format: 'parquet' },
      { format: 'parquet', compression: 'snappy' },
      { format: 'parquet', compression: 'gzip', compression_level: 6 },
    ]) {
      const run = await runInto({ sync: true, to_date: LAST_DAY, ...fields });
      const parts = await manifestParts(run.out, run.config);
      assert.equal(parts.length, referenceParts.length, JSON.stringify(fields));
      assert.equal(await difference(referenceRows, rowsQuery(run.config, parts)), 0, JSON.stringify(fields));
    }
  });

  test('people and identity snapshots as Parquet and zstd hold the rows of their JSON gzip snapshots', async () => {
    for (const [data_source, formats] of [
      ['people', [{ format: 'parquet' }, { format: 'json', compression: 'zstd' }]],
      ['identity', [{ format: 'parquet', compression: 'snappy' }]],
    ] as const) {
      const reference = await runInto({ data_source });
      const referenceRows = rowsQuery(reference.config, await manifestParts(reference.out, reference.config));
      const [count] = await rows(`select count(*) as n from (${referenceRows})`);
      assert.ok(Number(count?.n) > 100, `${data_source}: ${count?.n} rows`);
      for (const fields of formats) {
        const run = await runInto({ data_source, ...fields });
        const query = rowsQuery(run.config, await manifestParts(run.out, run.config));
        assert.equal(await difference(referenceRows, query), 0, `${data_source} ${JSON.stringify(fields)}`);
      }
    }
  });
});
