import assert from 'node:assert/strict';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { adoptionKey, hourIso, ingestRecordKey, rawHourPrefix } from '../../src/core/layout.js';
import { getJson, putJson } from '../../src/core/object-store.js';
import { parsePipelineConfig } from '../../src/core/pipeline-config.js';
import type { IngestRecord } from '../../src/core/records.js';
import { HOUR_MS } from '../../src/core/windows.js';
import { assignLateObjects } from '../../src/engine/adoption.js';
import type { HourObject } from '../../src/engine/arrival-hour.js';
import { defaultStateFolder, localStores } from '../../src/local/local-stores.js';
import { runLocalPipeline } from '../../src/local/run.js';
import { ingestRecord, outputRecords, tempFolder } from '../support/fixtures.js';

const config = parsePipelineConfig({
  project_id: 'shop',
  name: 'events-daily',
  frequency: 'daily',
  sync: true,
  time_zone: 'UTC',
  from_date: '2024-03-01',
});
const at = (iso: string) => Date.parse(iso);
/** The start of an hour written `YYYY-MM-DDTHH`. */
const hourOf = (hour: string) => at(`${hour}:00:00Z`);

function eventLine(name: string, time: string, insertId: string): string {
  return JSON.stringify({
    event: name,
    properties: { time: at(time) / 1000, distinct_id: 'u1', $insert_id: insertId },
  });
}

/** Writes an object into the folder of `folderHour`, as written at `writtenAt`. */
async function land(raw: string, folderHour: string, name: string, lines: string[], writtenAt: string) {
  const folder = join(raw, rawHourPrefix(config.project_id, hourOf(folderHour)));
  await mkdir(folder, { recursive: true });
  const file = join(folder, name);
  await writeFile(file, `${lines.join('\n')}\n`);
  await utimes(file, new Date(writtenAt), new Date(writtenAt));
}

describe('objects written into a folder after it was read', () => {
  let raw: { path: string; cleanup: () => Promise<void> };
  let out: { path: string; cleanup: () => Promise<void> };
  const folders = () => ({
    raw: raw.path,
    out: out.path,
    state: defaultStateFolder(out.path, config.project_id, config.name),
  });
  before(async () => {
    raw = await tempFolder('late-raw');
    out = await tempFolder('late-out');
  });
  after(async () => {
    await raw.cleanup();
    await out.cleanup();
  });

  test('arrive in the hour they were written: exported once by sync, duplicates dropped, nothing lost', async () => {
    // Day 03-01 is exported at 02:20 on 03-02, after reading the folders up to hour 01 of 03-02.
    const purchase = eventLine('Purchase', '2024-03-01T10:30:00Z', 'i1');
    await land(raw.path, '2024-03-01T10', 'a.json', [purchase], '2024-03-01T10:40:00Z');
    const first = await runLocalPipeline({ folders: folders(), config, now: at('2024-03-02T02:20:00Z') });
    assert.ok(first.ok, first.failures.join('\n'));
    assert.deepEqual(
      [...(await outputRecords(out.path, config.project_id)).values()]
        .flat()
        .map((r) => JSON.parse(r).insert_id),
      ['i1'],
    );

    // A retried delivery lands in the folder of 23:00 on 03-01 at 05:20 on 03-02, with a copy of i1.
    const signup = eventLine('Signup', '2024-03-01T23:10:00Z', 'i2');
    await land(
      raw.path,
      '2024-03-01T23',
      'retried.json',
      [signup, purchase, 'not json'],
      '2024-03-02T05:20:00Z',
    );
    // One written late into a folder not read yet is read with its own folder, not twice.
    const search = eventLine('Search', '2024-03-02T10:05:00Z', 'i3');
    await land(raw.path, '2024-03-02T10', 'slow.json', [search], '2024-03-02T12:30:00Z');

    const second = await runLocalPipeline({ folders: folders(), config, now: at('2024-03-03T02:20:00Z') });
    assert.ok(second.ok, second.failures.join('\n'));

    const days = await outputRecords(out.path, config.project_id);
    const ids = (day: string) => (days.get(day) ?? []).map((r) => JSON.parse(r).insert_id).sort();
    assert.deepEqual(ids('2024-03-01'), ['i1', 'i2']);
    assert.deepEqual(ids('2024-03-02'), ['i3']);
    assert.ok(
      second.steps.some((s) => s.step_id === 'sync-2024-03-02' && s.exported === 1),
      'the sync of the day it was written exports it',
    );
    const state = localStores(folders()).state;
    const adopter = await getJson<IngestRecord>(state, ingestRecordKey(at('2024-03-02T05:00:00Z')));
    assert.deepEqual(adopter?.sources, [
      {
        key: 'shop/events/2024/03/01/23/retried.json',
        bytes: adopter?.sources[0]?.bytes,
        lines: 3,
        folder_hour: hourIso(at('2024-03-01T23:00:00Z')),
      },
    ]);
    assert.equal(adopter?.quarantined, 1);
    const ownFolder = await getJson<IngestRecord>(state, ingestRecordKey(at('2024-03-02T10:00:00Z')));
    assert.deepEqual(
      ownFolder?.sources.map((s) => s.key),
      ['shop/events/2024/03/02/10/slow.json'],
    );
    const written = await getJson<IngestRecord>(state, ingestRecordKey(at('2024-03-02T12:00:00Z')));
    assert.deepEqual(written?.sources, []);
    assert.deepEqual(second.reconciliation.problems, []);
  });
});

describe('assignLateObjects', () => {
  test('assigns objects written into folders already read to the first hour about to be ingested from when they were written, once', async () => {
    const raw = await tempFolder('adopt-raw');
    const stateDir = await tempFolder('adopt-state');
    try {
      const stores = localStores({ raw: raw.path, out: stateDir.path, state: stateDir.path });
      const hour = at('2024-03-02T05:00:00Z');
      const read = async (folderHour: string, keys: string[]) =>
        putJson(
          stores.state,
          ingestRecordKey(hourOf(folderHour)),
          ingestRecord({
            arrival_hour: hourIso(hourOf(folderHour)),
            arrival_day: folderHour.slice(0, 10),
            sources: keys.map((key) => ({ key, bytes: 1, lines: 1 })),
          }),
        );
      const key = (folderHour: string, name: string) =>
        `${rawHourPrefix(config.project_id, hourOf(folderHour))}${name}`;
      await land(raw.path, '2024-03-01T05', 'day-old.json', ['{}'], '2024-03-02T05:59:59Z');
      await land(raw.path, '2024-03-01T04', 'too-old.json', ['{}'], '2024-03-02T05:10:00Z');
      await land(raw.path, '2024-03-02T03', 'read.json', ['{}'], '2024-03-02T05:10:00Z');
      await land(raw.path, '2024-03-02T03', 'other-hour.json', ['{}'], '2024-03-02T06:00:00Z');
      await land(raw.path, '2024-03-02T02', 'unread-folder.json', ['{}'], '2024-03-02T05:01:00Z');
      // An upload begun in its folder's own hour, finished after the folder was read: the next hour's.
      await land(raw.path, '2024-03-02T04', 'began-in-own-hour.json', ['{}'], '2024-03-02T04:59:00Z');
      // A multipart upload begun at 01:10 (S3 stamps the start) and completed after hours 01 and 02 were
      // read: the first hour ingested after it appeared takes it.
      await land(raw.path, '2024-03-02T01', 'slow-upload.json', ['{}'], '2024-03-02T01:10:00Z');
      // Taken by an hour in between already, then rewritten in place: not read twice.
      await land(raw.path, '2024-03-01T20', 'taken-before.json', ['{}'], '2024-03-02T05:30:00Z');
      await land(raw.path, '2024-03-02T05', 'own.json', ['{}'], '2024-03-02T07:00:00Z');
      await read('2024-03-01T05', []);
      await read('2024-03-01T04', []);
      await read('2024-03-01T20', []);
      await read('2024-03-01T23', [key('2024-03-01T20', 'taken-before.json')]);
      await read('2024-03-02T01', []);
      await read('2024-03-02T03', [key('2024-03-02T03', 'read.json')]);
      await read('2024-03-02T04', []);

      await assignLateObjects(stores, config, [hour, hour + HOUR_MS]);
      await assignLateObjects(stores, config, [hour, hour + HOUR_MS]);

      const assigned = async (at: number) =>
        ((await getJson<{ objects: HourObject[] }>(stores.state, adoptionKey(at)))?.objects ?? []).map(
          (o) => [o.key, o.folder_hour],
        );
      assert.deepEqual(await assigned(hour), [
        [key('2024-03-01T05', 'day-old.json'), hourIso(hour - 24 * HOUR_MS)],
        [key('2024-03-02T01', 'slow-upload.json'), hourIso(hour - 4 * HOUR_MS)],
        [key('2024-03-02T04', 'began-in-own-hour.json'), hourIso(hour - HOUR_MS)],
      ]);
      assert.deepEqual(await assigned(hour + HOUR_MS), [
        [key('2024-03-02T03', 'other-hour.json'), hourIso(hour - 2 * HOUR_MS)],
      ]);
    } finally {
      await raw.cleanup();
      await stateDir.cleanup();
    }
  });
});
