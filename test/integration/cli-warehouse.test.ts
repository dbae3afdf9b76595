/**
 * `mp-pipelines warehouse` over a `local run --out` folder: the per-day counts, the stored schema, a
 * query, and `verify`, which exits 1 naming a part truncated by hand.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { Manifest } from '../../src/core/records.js';
import { generateLandingZone } from '../../src/local/generate.js';
import { runCli as cli } from '../support/cli.js';
import { tempFolder } from '../support/fixtures.js';

const DAYS = ['2024-05-01', '2024-05-02'];

describe('mp-pipelines warehouse over a local run', () => {
  let raw: { path: string; cleanup: () => Promise<void> };
  let out: { path: string; cleanup: () => Promise<void> };
  const warehouse = (...args: string[]) =>
    cli(['warehouse', ...args, '--project', 'shop', '--out', out.path]);

  before(async () => {
    raw = await tempFolder('cli-warehouse-raw');
    out = await tempFolder('cli-warehouse-out');
    await generateLandingZone({
      rawDir: raw.path,
      projectId: 'shop',
      seed: 3,
      start: Date.parse('2024-05-01T00:00:00Z'),
      hours: 48,
      eventsPerHour: 20,
      users: 30,
    });
    const run = await cli([
      'local',
      'run',
      '--raw',
      raw.path,
      '--out',
      out.path,
      '--project',
      'shop',
      '--timezone',
      'UTC',
      '--frequency',
      'daily',
      '--from',
      DAYS[0]!,
      '--now',
      '2024-05-05T00:00:00Z',
      '--workers',
      '1',
    ]);
    assert.equal(run.code, 0, run.stderr);
  });
  after(async () => {
    await raw.cleanup();
    await out.cleanup();
  });

  /** Records per day, from the manifests. */
  async function manifestCounts(): Promise<{ day: string; events: number }[]> {
    const counts = [];
    for (const day of DAYS) {
      const folder = join(out.path, 'shop', 'mp_master_event', ...day.split('-'));
      let events = 0;
      for (const name of await readdir(folder))
        if (name.startsWith('_manifest-'))
          events += (JSON.parse(await readFile(join(folder, name), 'utf8')) as Manifest).records;
      counts.push({ day, events });
    }
    return counts;
  }

  test('count --json gives the manifests per-day counts; the text form is a table', async () => {
    const json = await warehouse('count', '--from', DAYS[0]!, '--to', DAYS[1]!, '--json');
    assert.equal(json.code, 0, json.stderr);
    const expected = await manifestCounts();
    assert.ok(expected.every((d) => d.events > 0));
    assert.deepEqual(JSON.parse(json.stdout), expected);
    const text = await warehouse('count', '--from', DAYS[0]!, '--to', DAYS[1]!);
    assert.match(text.stdout, new RegExp(`${DAYS[1]}\\s+${expected[1]!.events}`));
  });

  test('schema shows what the pipeline recorded while exporting; sql reads the typed view by it', async () => {
    const schema = await warehouse('schema', '--json');
    assert.equal(schema.code, 0, schema.stderr);
    const { schema: stored, columns } = JSON.parse(schema.stdout) as {
      schema: { records: number; properties: Record<string, Record<string, number>> };
      columns: { name: string; property: string }[];
    };
    const total = (await manifestCounts()).reduce((n, d) => n + d.events, 0);
    assert.equal(stored.records, total);
    assert.ok(columns.some((c) => c.name === 'mp_os' && c.property === '$os'));
    const sql = await warehouse(
      'sql',
      'SELECT count(*) AS n, count(mp_os) AS os FROM mp_master_event_typed',
      '--json',
    );
    assert.equal(sql.code, 0, sql.stderr);
    const [row] = JSON.parse(sql.stdout) as { n: number; os: number }[];
    assert.equal(row?.n, total);
    assert.equal(row?.os, stored.properties.$os?.string);
    const tables = await warehouse('tables', '--json');
    assert.ok(
      (JSON.parse(tables.stdout) as { name: string }[]).some((t) => t.name === 'mp_master_event_typed'),
    );
  });

  test('a project with no exports and a bad date are errors naming the flag (exit 2)', async () => {
    const none = await cli(['warehouse', 'tables', '--project', 'nobody', '--out', out.path]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /--project nobody: nothing exported under/);
    const date = await warehouse('count', '--from', '2024-02-30', '--to', DAYS[1]!);
    assert.equal(date.code, 2);
    assert.match(date.stderr, /--from/);
  });

  test('a bad query names the problem and exits 1; verify passes, then exits 1 naming a truncated part', async () => {
    const bad = await warehouse('sql', 'SELECT nope FROM mp_master_event');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /nope/);
    const ok = await warehouse('verify', '--json');
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.equal((JSON.parse(ok.stdout) as { ok: boolean }).ok, true);

    const folder = join(out.path, 'shop', 'mp_master_event', '2024', '05', '02');
    const part = (await readdir(folder)).find((name) => name.endsWith('.json.gz'))!;
    const lines = gunzipSync(await readFile(join(folder, part)))
      .toString('utf8')
      .split('\n');
    await writeFile(join(folder, part), gzipSync(lines.slice(1).join('\n')));
    const truncated = await warehouse('verify', '--from', DAYS[0]!, '--to', DAYS[1]!);
    assert.equal(truncated.code, 1);
    assert.match(truncated.stdout, new RegExp(`NOT VERIFIED[\\s\\S]*${part}`));
  });
});
