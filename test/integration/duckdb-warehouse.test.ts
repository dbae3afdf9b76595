/**
 * The local warehouse over a real export: events of three days across New York's fall-back day with
 * late data and sync files, a hand-written type conflict, and people and identity snapshots. Counts,
 * typed columns and snapshots are checked against the files themselves (read without DuckDB).
 */
import assert from 'node:assert/strict';
import { cp, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import { rawHourPrefix, snapshotFolder } from '../../src/core/layout.js';
import { type PipelineConfig, parsePipelineConfig } from '../../src/core/pipeline-config.js';
import type { Manifest, RunRecord, SnapshotManifest } from '../../src/core/records.js';
import {
  dailyCountsSql,
  duplicatesSql,
  OVERFLOW_COLUMN,
  PropertySchema,
  propertyFilterSql,
  symlinkKey,
  type TypedColumn,
  uniqueUsersSql,
} from '../../src/core/warehouse/index.js';
import { addDays, ZoneCalendar } from '../../src/core/windows.js';
import { readWarehouseSchema } from '../../src/engine/warehouse.js';
import { startControlPlane } from '../../src/local/control-plane.js';
import { DuckDbWarehouse } from '../../src/local/duckdb-warehouse.js';
import { generateLandingZone } from '../../src/local/generate.js';
import { generateProfileLandingZone } from '../../src/local/generate-profiles.js';
import { defaultStateFolder, localStores } from '../../src/local/local-stores.js';
import { type Moto, startMoto } from '../../src/local/moto.js';
import { runLocalPipelines } from '../../src/local/run.js';
import { LocalTaskPool } from '../../src/local/task-pool.js';
import { readTree, tempFolder } from '../support/fixtures.js';

const HOUR = 3_600_000;
const PROJECT = 'acme';
const ZONE = 'America/New_York';
const FIRST = '2024-11-02';
const DAYS = { from: '2024-10-25', to: '2024-11-15' };
const calendar = new ZoneCalendar(ZONE);

const config = (fields: Record<string, unknown>): PipelineConfig =>
  parsePipelineConfig({
    project_id: PROJECT,
    frequency: 'daily',
    time_zone: ZONE,
    from_date: FIRST,
    ...fields,
  });
const events = config({ name: 'events-daily', sync: true });
const people = config({ name: 'people-daily', data_source: 'people' });
const identity = config({ name: 'identity-daily', data_source: 'identity' });

/** Lines whose properties take other types than the generator's (a type conflict), arriving on time. */
function conflictLines(): string[] {
  const time = Date.parse('2024-11-02T14:30:00Z') / 1000;
  return [
    { plan: 42, price: 'cheap', experiment: [1, 2], referrer: true },
    { plan: 7.5, price: 'free', experiment: ['x'], extra: { deep: [null] } },
    { plan: null, price: null, lonely: null },
  ].map((extra, i) =>
    JSON.stringify({
      event: 'Conflict',
      properties: { time: time + i, distinct_id: `user-${i + 1}`, $insert_id: `conflict-${i}`, ...extra },
    }),
  );
}

let moto: Moto;
let raw: { path: string; cleanup: () => Promise<void> };
let out: { path: string; cleanup: () => Promise<void> };
let columns: readonly TypedColumn[];
let warehouse: DuckDbWarehouse;

/** Every exported record of the events pipeline, read from the part files, by day (`YYYY-MM-DD`). */
async function recordsByDay(root: string): Promise<Map<string, Record<string, unknown>[]>> {
  const days = new Map<string, Record<string, unknown>[]>();
  for (const [path, bytes] of await readTree(join(root, PROJECT, 'mp_master_event'))) {
    if (!path.endsWith('.json.gz')) continue;
    const day = path.split('/').slice(0, 3).join('-');
    const lines = gunzipSync(bytes).toString('utf8').split('\n').filter(Boolean);
    days.set(day, [...(days.get(day) ?? []), ...lines.map((l) => JSON.parse(l) as Record<string, unknown>)]);
  }
  return days;
}

async function manifestsOf(root: string): Promise<Map<string, Manifest[]>> {
  const byDay = new Map<string, Manifest[]>();
  for (const [path, bytes] of await readTree(join(root, PROJECT, 'mp_master_event'))) {
    if (!path.split('/').at(-1)!.startsWith('_manifest-')) continue;
    const day = path.split('/').slice(0, 3).join('-');
    byDay.set(day, [...(byDay.get(day) ?? []), JSON.parse(bytes.toString('utf8')) as Manifest]);
  }
  return byDay;
}

async function runRecords(root: string, pipeline: PipelineConfig): Promise<RunRecord[]> {
  const folder = join(defaultStateFolder(root, PROJECT, pipeline.name), 'runs');
  const names = await readdir(folder);
  return Promise.all(
    names.map(async (n) => JSON.parse(await readFile(join(folder, n), 'utf8')) as RunRecord),
  );
}

async function snapshotManifest(
  root: string,
  source: 'people' | 'identity',
  name: string,
): Promise<SnapshotManifest> {
  return JSON.parse(
    await readFile(join(root, snapshotFolder(PROJECT, source), `_manifest-${name}.json`), 'utf8'),
  ) as SnapshotManifest;
}

before(async () => {
  moto = await startMoto();
  raw = await tempFolder('warehouse-raw');
  out = await tempFolder('warehouse-out');
  await generateLandingZone({
    rawDir: raw.path,
    projectId: PROJECT,
    seed: 14,
    start: calendar.dayStart(FIRST),
    hours: 3 * 24,
    eventsPerHour: 30,
    users: 40,
  });
  const folder = join(raw.path, rawHourPrefix(PROJECT, Date.parse('2024-11-02T15:00:00Z')));
  await mkdir(folder, { recursive: true });
  await writeFile(join(folder, 'conflict.json'), `${conflictLines().join('\n')}\n`);
  await generateProfileLandingZone({
    rawDir: raw.path,
    projectId: PROJECT,
    seed: 15,
    start: calendar.dayStart(FIRST),
    hours: 3 * 24,
    updatesPerHour: 8,
    users: 40,
  });
  const control = await startControlPlane(moto);
  const pool = new LocalTaskPool(2);
  try {
    const { results } = await runLocalPipelines({
      configs: [events, people, identity],
      folders: (c) => ({
        raw: raw.path,
        out: out.path,
        state: defaultStateFolder(out.path, PROJECT, c.name),
      }),
      now: calendar.dayEnd(addDays(FIRST, 8)) + 3 * HOUR,
      control,
      pool,
    });
    for (const result of results.values()) assert.ok(result.ok, result.failures.join('; '));
  } finally {
    await pool.destroy();
    await control.stop();
  }
  // The schema the pipeline recorded while exporting is the schema of every exported record, read from the files.
  const fromFiles = new PropertySchema();
  for (const records of (await recordsByDay(out.path)).values())
    for (const record of records) fromFiles.addProperties(record.properties as Record<string, unknown>);
  const stored = await readWarehouseSchema(
    localStores({ raw: raw.path, out: out.path, state: defaultStateFolder(out.path, PROJECT, events.name) })
      .state,
  );
  assert.deepEqual(stored?.schema, fromFiles.toJSON());
  columns = stored.columns;
  warehouse = await DuckDbWarehouse.open({ out: out.path, projectId: PROJECT, columns });
});

after(async () => {
  warehouse?.close();
  await raw?.cleanup();
  await out?.cleanup();
  await moto?.stop();
});

describe('DuckDB warehouse over a generated export', () => {
  test('per-day counts read through SQL equal the manifests, on the fall-back day and with sync parts', async () => {
    const manifests = await manifestsOf(out.path);
    const expected = [...manifests]
      .map(([day, list]) => ({ day, events: list.reduce((n, m) => n + m.records, 0) }))
      .filter((d) => d.events > 0)
      .sort((a, b) => (a.day < b.day ? -1 : 1));
    assert.ok(
      expected.some((d) => d.day === '2024-11-03'),
      'the 25-hour day has events',
    );
    assert.ok(
      [...manifests.values()].flat().some((m) => m.kind === 'sync' && m.records > 0),
      'late events were exported by sync steps',
    );
    assert.ok(expected.some((d) => d.day < FIRST) === false);
    assert.deepEqual(await warehouse.dailyCounts(DAYS), expected);
    // The table of parsed records counts the same.
    const parsed = await warehouse.sql(
      'SELECT mp_date, count(*) AS events FROM mp_master_event GROUP BY mp_date ORDER BY mp_date',
    );
    assert.deepEqual(
      parsed.map((r) => ({ day: String(r.mp_date).replaceAll('/', '-'), events: r.events })),
      expected,
    );
  });

  test('mp_master_event_view has time as a timestamp and properties byte for byte', async () => {
    const lines = new Map<string, string>();
    for (const [path, bytes] of await readTree(join(out.path, PROJECT, 'mp_master_event')))
      if (path.endsWith('.json.gz'))
        for (const line of gunzipSync(bytes).toString('utf8').split('\n').filter(Boolean)) {
          const record = JSON.parse(line) as { insert_id: string | null; event_name: string; time: number };
          const at = line.indexOf(',"properties":');
          lines.set(`${record.event_name}|${record.time}|${record.insert_id}`, line.slice(at + 14, -1));
        }
    const rows = await warehouse.sql(
      'SELECT event_name, epoch_ms(time) AS ms, typeof(time) AS type, insert_id, properties FROM mp_master_event_view',
    );
    assert.equal(rows.length, [...(await recordsByDay(out.path)).values()].flat().length);
    for (const row of rows) {
      assert.equal(row.type, 'TIMESTAMP');
      const exact = lines.get(`${row.event_name}|${row.ms}|${row.insert_id}`);
      // Copies without insert id share a key: then any of them matches.
      if (row.insert_id !== null) assert.equal(row.properties, exact);
    }
    assert.ok(
      rows.some((r) => String(r.properties).includes('"account_id":9')),
      'integers beyond 2^53 kept',
    );
  });

  test('typed columns and the overflow column keep every value, type conflicts included', async () => {
    const plan = columns.filter((c) => c.property === 'plan').map((c) => `${c.name}:${c.sql_type}`);
    assert.deepEqual(plan, ['plan:varchar', 'plan_number:double']);
    assert.ok(columns.some((c) => c.name === 'mp_os' && c.property === '$os'));
    assert.ok(columns.some((c) => c.name === 'time_2' && c.property === 'time'));
    const rows = await warehouse.sql('SELECT * FROM mp_master_event_typed');
    let conflicts = 0;
    for (const row of rows) {
      const properties = JSON.parse(String(row.properties)) as Record<string, unknown>;
      const rebuilt: Record<string, unknown> = {};
      for (const column of columns) {
        const value = row[column.name];
        if (value === null || value === undefined) continue;
        assert.ok(!(column.property in rebuilt), `${column.property} is held by one column per row`);
        rebuilt[column.property] = column.kind === 'json' ? JSON.parse(String(value)) : value;
      }
      const overflow =
        row[OVERFLOW_COLUMN] === null ? {} : (JSON.parse(String(row[OVERFLOW_COLUMN])) as object);
      Object.assign(rebuilt, overflow);
      for (const [key, value] of Object.entries(properties)) {
        if (value === null && !(key in rebuilt)) {
          // A null is a null in the property's columns, or kept in the overflow when it has none.
          assert.ok(
            columns.some((c) => c.property === key),
            `null ${key} is somewhere`,
          );
          continue;
        }
        const got = rebuilt[key];
        if (typeof value === 'number') assert.equal(Number(got), value, key);
        else assert.deepEqual(got, value, key);
      }
      if (row.event_name === 'Conflict') conflicts += 1;
    }
    assert.equal(conflicts, 3);
    const [conflict] = await warehouse.sql(
      `SELECT plan, plan_number, price, price_string, ${OVERFLOW_COLUMN} AS overflow FROM mp_master_event_typed WHERE event_name = 'Conflict' AND plan_number = 42`,
    );
    assert.deepEqual(
      { ...conflict, overflow: JSON.parse(String(conflict?.overflow)) },
      { plan: null, plan_number: 42, price: null, price_string: 'cheap', overflow: null },
    );
  });

  test('snapshot tables show exactly the current manifest, also while a new snapshot is being written', async () => {
    const manifest = await snapshotManifest(out.path, 'people', people.name);
    const [count] = await warehouse.sql('SELECT count(*) AS n FROM mp_people_data');
    assert.equal(count?.n, manifest.records);
    assert.ok(manifest.records > 0);
    // The symlink file Athena's snapshot table reads lists the same parts, as the commit wrote it.
    for (const [source, name] of [
      ['people', people.name],
      ['identity', identity.name],
    ] as const) {
      const listed = await readFile(join(out.path, symlinkKey(PROJECT, source)), 'utf8');
      const parts = (await snapshotManifest(out.path, source, name)).parts.map(
        (part) => pathToFileURL(join(out.path, snapshotFolder(PROJECT, source), part.file)).href,
      );
      assert.deepEqual(listed.split('\n').filter(Boolean), parts, source);
    }
    // A step wrote the parts of the next snapshot; its manifest is not replaced yet.
    const folder = join(out.path, snapshotFolder(PROJECT, 'people'));
    const next = `${people.name}.daily-2099-01-01-t000-p000.json.gz`;
    await writeFile(join(folder, next), gzipSync('{"distinct_id":"not-yet","properties":{}}\n'));
    const during = await DuckDbWarehouse.open({ out: out.path, projectId: PROJECT, columns });
    try {
      const [n] = await during.sql('SELECT count(*) AS n FROM mp_people_data_view');
      assert.equal(n?.n, manifest.records);
      const [notYet] = await during.sql(
        `SELECT count(*) AS n FROM mp_people_data WHERE distinct_id = 'not-yet'`,
      );
      assert.equal(notYet?.n, 0);
      const ids = await snapshotManifest(out.path, 'identity', identity.name);
      const [mapped] = await during.sql('SELECT count(*) AS n FROM mp_identity_mappings_data_view');
      assert.equal(mapped?.n, ids.records);
    } finally {
      during.close();
    }
  });

  test('the published DuckDB queries run and agree with the files', async () => {
    const all = [...(await recordsByDay(out.path)).values()].flat();
    assert.deepEqual(await warehouse.sql(duplicatesSql(DAYS)), [], 'the pipeline dropped every copy');
    const [counts] = [await warehouse.sql(dailyCountsSql('json', DAYS))];
    assert.equal(
      counts.reduce((n, r) => n + Number(r.events), 0),
      all.length,
    );
    const mapping = new Map<string, string>();
    const folder = join(out.path, snapshotFolder(PROJECT, 'identity'));
    for (const part of (await snapshotManifest(out.path, 'identity', identity.name)).parts)
      for (const line of gunzipSync(await readFile(join(folder, part.file)))
        .toString('utf8')
        .split('\n')
        .filter(Boolean)) {
        const { distinct_id, resolved_distinct_id } = JSON.parse(line) as Record<string, string>;
        mapping.set(distinct_id!, resolved_distinct_id!);
      }
    const users = new Set(
      all.flatMap((r) =>
        r.distinct_id === null ? [] : [mapping.get(r.distinct_id as string) ?? r.distinct_id],
      ),
    );
    assert.deepEqual(await warehouse.sql(uniqueUsersSql(DAYS)), [{ users: users.size }]);
    const pro = all.filter((r) => (r.properties as Record<string, unknown>).plan === 'pro');
    const byName = new Map<string, number>();
    for (const r of pro) byName.set(r.event_name as string, (byName.get(r.event_name as string) ?? 0) + 1);
    const rows = await warehouse.sql(propertyFilterSql('duckdb', DAYS, 'plan', 'pro'));
    assert.deepEqual(
      Object.fromEntries(rows.map((r) => [r.event_name, r.events])),
      Object.fromEntries(byName),
    );
  });

  test('tables() lists the tables and views of the Glue catalog', async () => {
    const tables = await warehouse.tables();
    assert.deepEqual(tables.map((t) => `${t.name}:${t.kind}`).sort(), [
      'mp_identity_mappings_data:table',
      'mp_identity_mappings_data_view:view',
      'mp_master_event:table',
      'mp_master_event_raw:table',
      'mp_master_event_typed:view',
      'mp_master_event_view:view',
      'mp_people_data:table',
      'mp_people_data_view:view',
    ]);
  });

  test('Parquet parts (same columns, time a timestamp) give the same counts and typed values', async () => {
    const copy = await tempFolder('warehouse-parquet');
    try {
      // Each JSON part rewritten as Parquet beside where it was, by DuckDB itself.
      for (const [path] of await readTree(join(out.path, PROJECT, 'mp_master_event'))) {
        if (!path.endsWith('.json.gz')) continue;
        const target = join(copy.path, PROJECT, 'mp_master_event', path.replace(/\.json\.gz$/, '.parquet'));
        await mkdir(join(target, '..'), { recursive: true });
        await warehouse.sql(
          `COPY (SELECT event_name, epoch_ms(time) AS time, distinct_id, device_id, user_id, insert_id, CAST(properties AS VARCHAR) AS properties FROM mp_master_event WHERE "$path" = '${join(out.path, PROJECT, 'mp_master_event', path)}') TO '${target}' (FORMAT parquet)`,
        );
      }
      const parquet = await DuckDbWarehouse.open({
        out: copy.path,
        projectId: PROJECT,
        format: 'parquet',
        columns,
      });
      try {
        assert.deepEqual(await parquet.dailyCounts(DAYS), await warehouse.dailyCounts(DAYS));
        const [typed] = await parquet.sql(
          `SELECT any_value(typeof(time)) AS type, count(plan_number) AS numbers, count(mp_os) AS oses FROM mp_master_event_typed`,
        );
        const [json] = await warehouse.sql(
          'SELECT count(plan_number) AS numbers, count(mp_os) AS oses FROM mp_master_event_typed',
        );
        assert.deepEqual(typed, { type: 'TIMESTAMP', ...json });
        assert.ok(!(await parquet.tables()).some((t) => t.name === 'mp_master_event_raw'));
      } finally {
        parquet.close();
      }
    } finally {
      await copy.cleanup();
    }
  });

  test('verify agrees with the manifests and run records, then names a part truncated by hand', async () => {
    const records = [...(await runRecords(out.path, events))];
    const report = await warehouse.verify({ runRecords: records, range: DAYS });
    assert.deepEqual(report.problems, []);
    assert.ok(report.ok);
    assert.ok(report.days.every((d) => d.rows === d.manifest_records && d.run_records === d.rows));

    const copy = await tempFolder('warehouse-truncated');
    try {
      await cp(out.path, copy.path, { recursive: true });
      const dayFolder = join(copy.path, PROJECT, 'mp_master_event', '2024', '11', '03');
      const parts = (await readdir(dayFolder)).filter((n) => n.endsWith('.json.gz')).sort();
      assert.ok(parts.length >= 2, 'the day has a regular part and sync parts');
      // One part loses its last line (re-compressed), another is cut short mid-stream.
      const [shortened, cut] = [parts[0]!, parts.at(-1)!];
      const lines = gunzipSync(await readFile(join(dayFolder, shortened)))
        .toString('utf8')
        .split('\n')
        .filter(Boolean);
      await writeFile(join(dayFolder, shortened), gzipSync(`${lines.slice(0, -1).join('\n')}\n`));
      const bytes = await readFile(join(dayFolder, cut));
      await writeFile(join(dayFolder, cut), bytes.subarray(0, Math.floor(bytes.length / 2)));
      const broken = await DuckDbWarehouse.open({ out: copy.path, projectId: PROJECT, columns });
      try {
        const result = await broken.verify({ runRecords: records, range: DAYS });
        assert.ok(!result.ok);
        const files = result.problems.map((p) => p.file);
        assert.ok(
          files.includes(`${PROJECT}/mp_master_event/2024/11/03/${shortened}`),
          JSON.stringify(result.problems),
        );
        assert.ok(
          files.includes(`${PROJECT}/mp_master_event/2024/11/03/${cut}`),
          JSON.stringify(result.problems),
        );
        assert.ok(result.problems.every((p) => p.day === '2024-11-03'));
        assert.match(
          result.problems.find((p) => p.file?.endsWith(shortened))!.problem,
          new RegExp(`lists ${lines.length} records, DuckDB reads ${lines.length - 1}`),
        );
      } finally {
        broken.close();
      }
    } finally {
      await copy.cleanup();
    }
  });
});
