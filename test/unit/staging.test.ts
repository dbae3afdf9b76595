/**
 * Staging buffers: however an arrival hour's lines interleave, the number of staged objects stays a
 * small multiple of the event hours they cover, lines keep their order, and memory stays within budget.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { FsObjectStore } from '../../src/adapters/fs-object-store.js';
import { stagedEventOf } from '../../src/core/event-line.js';
import { HOUR_MS } from '../../src/core/windows.js';
import { StagingBuffers } from '../../src/engine/staging.js';
import { tempFolder } from '../support/fixtures.js';

let folder: { path: string; cleanup: () => Promise<void> };
before(async () => {
  folder = await tempFolder('staging');
});
after(() => folder.cleanup());

describe('StagingBuffers', () => {
  test('100,000 lines round-robin over 500 event hours stage at most twice as many objects as hours', async () => {
    const store = new FsObjectStore(`${folder.path}/round-robin`);
    const staging = new StagingBuffers(store, 1000 * HOUR_MS, 0, true);
    const record = Buffer.from(`{"event_name":"x","properties":{"pad":"${'p'.repeat(150)}"}}`);
    for (let i = 0; i < 100_000; i += 1) {
      staging.add((i % 500) * HOUR_MS, event(i, `key-${i}`, record), 'daily-x', false);
      if (i % 1000 === 999) await staging.settle();
    }
    const objects = await staging.finish();
    assert.equal(new Set(objects.map((o) => o.event_hour)).size, 500);
    assert.ok(objects.length <= 1000, `${objects.length} objects`);
    assert.equal(
      objects.reduce((sum, o) => sum + o.records, 0),
      100_000,
    );
  });

  test('lines of each event hour come back in arrival order, split over objects in key order; owners and late counts kept', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 30 }), fc.boolean(), fc.constantFrom('a', 'b')), {
          minLength: 1,
          maxLength: 400,
        }),
        fc.integer({ min: 64, max: 4096 }),
        async (lines, budget) => {
          const store = new FsObjectStore(`${folder.path}/order-${budget}-${lines.length}-${Math.random()}`);
          const staging = new StagingBuffers(store, 10_000 * HOUR_MS, 3, false, {
            bufferedBytes: budget,
            uploadsInFlight: 2,
          });
          for (const [i, [hour, late, owner]] of lines.entries()) {
            staging.add(hour * HOUR_MS, event(i, undefined, Buffer.from(`{"i":${i}}`)), owner, late);
            await staging.settle();
          }
          const objects = await staging.finish();
          for (const hour of new Set(lines.map(([h]) => h))) {
            const stamp = objects.find(
              (o) => o.records > 0 && o.key.includes(`/${stampOf(hour)}/`),
            )?.event_hour;
            const ofHour = objects.filter((o) => o.event_hour === stamp);
            assert.deepEqual(
              ofHour.map((o) => o.key),
              [...ofHour.map((o) => o.key)].sort(),
              'objects of one hour in key order',
            );
            const read: number[] = [];
            for (const object of ofHour) {
              const text = (await store.getBytes(object.key))!.toString('utf8');
              for (const line of text.split('\n').filter(Boolean)) read.push(Number(line.split('\t')[0]));
            }
            const expected = lines.flatMap(([h], i) => (h === hour ? [i] : []));
            assert.deepEqual(read, expected);
            assert.equal(
              ofHour.reduce((sum, o) => sum + o.late, 0),
              lines.filter(([h, late]) => h === hour && late).length,
            );
            assert.deepEqual(
              [...new Set(ofHour.flatMap((o) => o.owners))].sort(),
              [...new Set(lines.filter(([h]) => h === hour).map(([, , owner]) => owner))].sort(),
            );
          }
        },
      ),
      { seed: 7, numRuns: 60 },
    );
  });
});

describe('StagingBuffers reusing its chunks', () => {
  test('objects written before a chunk is reused keep their bytes, line for line', async () => {
    const store = new FsObjectStore(`${folder.path}/reuse`);
    // 1 MiB buffered: each flush fills several 256 KiB chunks, which later flushes take again.
    const staging = new StagingBuffers(store, 2000 * HOUR_MS, 0, true, {
      bufferedBytes: 1024 * 1024,
      uploadsInFlight: 2,
    });
    const expected = new Map<number, string[]>();
    for (let i = 0; i < 6000; i += 1) {
      const hour = i % 3;
      const record = Buffer.from(`{"i":${i},"pad":"${String(i % 10).repeat(1000 + (i % 700))}"}`);
      staging.add(hour * HOUR_MS, event(i, `key-${i}`, record), 'daily-x', false);
      const lines = expected.get(hour) ?? [];
      lines.push(`${i}\tkey-${i}\t${record.toString('latin1')}`);
      expected.set(hour, lines);
      if (i % 50 === 49) await staging.settle();
    }
    const objects = await staging.finish();
    assert.ok(objects.length > 12, `${objects.length} objects: the test must flush many times`);
    for (const [hour, lines] of expected) {
      const ofHour = objects.filter((o) => o.event_hour === stampOf(hour));
      const read: string[] = [];
      for (const object of ofHour) {
        const bytes = (await store.getBytes(object.key))!;
        assert.equal(bytes.length, object.bytes);
        read.push(...bytes.toString('latin1').split('\n').slice(0, -1));
        const keys = (await store.getBytes(object.keys_key!))!.toString('latin1').split('\n').slice(0, -1);
        assert.deepEqual(
          keys,
          read.slice(-object.records).map((line) => line.split('\t')[1]),
        );
      }
      assert.deepEqual(read, lines);
    }
  });
});

/** A staged event of time `timeMs` holding `record`. */
function event(timeMs: number, dedupKey: string | undefined, record: Buffer) {
  return stagedEventOf({ ok: true, timeMs, eventName: 'e', dedupKey, record });
}

function stampOf(hour: number): string {
  const d = new Date(hour * HOUR_MS);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}${pad(d.getUTCHours())}`;
}
