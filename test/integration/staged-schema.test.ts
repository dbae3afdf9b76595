/**
 * The warehouse schema of a run is the schema of the records it exported, whether the export adds the
 * staged objects' schema headers (less the records it drops: duplicates, events of the other day in an
 * hour a zone's half-hour offset splits) or reads the properties of what it writes (no headers: objects
 * staged by an earlier version, syncs).
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { rawHourPrefix } from '../../src/core/layout.js';
import { parsePipelineConfig } from '../../src/core/pipeline-config.js';
import type { EngineStores } from '../../src/core/ports.js';
import { completeArrivalHours } from '../../src/core/routing.js';
import { PropertySchema } from '../../src/core/warehouse/property-schema.js';
import { HOUR_MS, ZoneCalendar } from '../../src/core/windows.js';
import { ingestEventsPiece } from '../../src/engine/ingest.js';
import { SCHEMA_HEADER_PREFIX } from '../../src/engine/staging.js';
import { readWarehouseSchema } from '../../src/engine/warehouse.js';
import { generateLandingZone } from '../../src/local/generate.js';
import { defaultStateFolder, localStores } from '../../src/local/local-stores.js';
import { runLocalPipeline } from '../../src/local/run.js';
import { readTree, tempFolder } from '../support/fixtures.js';

// India's day starts at 18:30 UTC: the event hour 18:00-19:00 UTC holds events of two days.
const config = parsePipelineConfig({
  project_id: 'typed',
  name: 'events-daily',
  frequency: 'daily',
  sync: true,
  time_zone: 'Asia/Kolkata',
  from_date: '2024-03-09',
});
const calendar = new ZoneCalendar(config.time_zone);
const now = calendar.dayEnd('2024-03-11') + 3 * HOUR_MS;
const start = calendar.dayStart('2024-03-09');

/** Property shapes the scanner must type as the schema reads them in the exported record. */
function oddLines(): string[] {
  const time = (start + 37 * HOUR_MS + 20 * 60_000) / 1000;
  const lines = [
    `{"event":"Odd","properties":{"time":${time},"distinct_id":"u1","$insert_id":"odd-1","a\\"b":1,"x\\\\y":[1],"\\u0041":true}}`,
    `{"event":"Odd","properties":{"time":${time},"distinct_id":"u1","$insert_id":"odd-2","big":9223372036854775808,"small":-9223372036854775808,"f":1e2,"g":-0,"h":1.0}}`,
    `{"event":"Odd","properties":{"time":${time},"distinct_id":"u1","$insert_id":"odd-3","twice":1,"twice":"one","nested":{"time":"x","twice":null},"empty":{},"list":[]}}`,
    `{"event":"Odd","properties":{"time":1,"only":"replaced"},"properties":{"time":${time},"$insert_id":"odd-4","kept":null,"東京":"x"}}`,
    ` { "event" : "Odd" , "properties" : { "time" : ${time} , "$insert_id" : "odd-5" , "spaced" : [ 1 , { } ] } } `,
  ];
  // Each again (the same dedup key): the copies are dropped, and so are their properties.
  return [...lines, ...lines.filter((line) => line.includes('"odd-'))];
}

function folders(raw: string, out: string) {
  return { raw, out, state: defaultStateFolder(out, config.project_id, config.name) };
}

/** The schema of the records a run exported, read from its parts byte for byte. */
async function exportedSchema(out: string): Promise<PropertySchema> {
  const schema = new PropertySchema();
  for (const [path, bytes] of await readTree(join(out, config.project_id, 'mp_master_event'))) {
    if (!path.endsWith('.json.gz')) continue;
    for (const line of gunzipSync(bytes).toString('utf8').split('\n'))
      if (line !== '') schema.addRecord(Buffer.from(line, 'utf8'));
  }
  return schema;
}

async function ingestAll(stores: EngineStores): Promise<void> {
  for (const hour of completeArrivalHours(config, calendar, now))
    while (!(await ingestEventsPiece(stores, config, hour)).done);
}

async function stagedObjects(stores: EngineStores): Promise<string[]> {
  const keys: string[] = [];
  for await (const object of stores.staging.list('stage/'))
    if (object.key.endsWith('.ndjson')) keys.push(object.key);
  return keys;
}

describe('staged schema headers', () => {
  let raw: { path: string; cleanup: () => Promise<void> };
  before(async () => {
    raw = await tempFolder('typed-raw');
    await generateLandingZone({
      rawDir: raw.path,
      projectId: config.project_id,
      seed: 5,
      start,
      hours: 48,
      eventsPerHour: 120,
    });
    const folder = join(raw.path, rawHourPrefix(config.project_id, start + 38 * HOUR_MS));
    await mkdir(folder, { recursive: true });
    await writeFile(join(folder, 'odd.json'), `${oddLines().join('\n')}\n`);
  });
  after(() => raw.cleanup());

  test('the schema is the exported records’ schema, with the headers and without them', async () => {
    const headed = await tempFolder('typed-headed');
    const bare = await tempFolder('typed-bare');
    try {
      const schemas = [];
      for (const [out, strip] of [
        [headed.path, false],
        [bare.path, true],
      ] as const) {
        const stores = localStores(folders(raw.path, out));
        await runLocalPipeline({ folders: folders(raw.path, out), config, now: start, workers: 1 });
        await ingestAll(stores);
        const staged = await stagedObjects(stores);
        const heads = await Promise.all(staged.map(async (key) => (await stores.staging.getBytes(key))!));
        // Every object the scanner typed in full carries its header; the bare run removes them all.
        assert.ok(staged.length > 20, `${staged.length} staged objects`);
        for (const [i, bytes] of heads.entries()) {
          assert.ok(bytes.toString('latin1').startsWith(SCHEMA_HEADER_PREFIX), staged[i]);
          if (strip) await stores.staging.put(staged[i]!, bytes.subarray(bytes.indexOf(10) + 1));
        }

        const result = await runLocalPipeline({ folders: folders(raw.path, out), config, now, workers: 2 });

        assert.ok(result.ok, [...result.failures, ...result.reconciliation.problems].join('\n'));
        const schema = await readWarehouseSchema(stores.state);
        assert.ok(schema !== undefined);
        assert.deepEqual(schema.schema, (await exportedSchema(out)).toJSON());
        schemas.push(schema.schema);
      }
      assert.deepEqual(schemas[0], schemas[1]);
      const [headedSchema] = schemas;
      assert.ok(headedSchema!.records > 5000, `${headedSchema!.records} records`);
      assert.deepEqual(headedSchema!.properties.twice, { string: 1, integer: 1 });
      assert.deepEqual(headedSchema!.properties.big, { float: 1 });
      assert.deepEqual(headedSchema!.properties.small, { integer: 1 });
      assert.equal(headedSchema!.properties.only, undefined, 'the replaced properties object is not counted');
      assert.deepEqual(headedSchema!.properties.A, { boolean: 1 });
    } finally {
      await headed.cleanup();
      await bare.cleanup();
    }
  });

  test('a staged line that is not <time>\\t<key>\\t<record> fails its step, naming the object', async () => {
    const out = await tempFolder('typed-corrupt');
    try {
      const stores = localStores(folders(raw.path, out.path));
      await runLocalPipeline({ folders: folders(raw.path, out.path), config, now: start, workers: 1 });
      await ingestAll(stores);
      const [victim] = await stagedObjects(stores);
      const lines = (await stores.staging.getBytes(victim!))!.toString('utf8').split('\n');
      lines[1] = `17x${lines[1]}`;
      await stores.staging.put(victim!, Buffer.from(lines.join('\n')));

      const result = await runLocalPipeline({
        folders: folders(raw.path, out.path),
        config,
        now,
        workers: 2,
      });

      assert.equal(result.ok, false);
      assert.match(result.failures.join('\n'), new RegExp(`staged line 2 of ${victim}.*staging is corrupt`));
    } finally {
      await out.cleanup();
    }
  });
});
