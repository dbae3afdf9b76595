import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { gunzipSync } from 'node:zlib';
import { FsObjectStore } from '../../src/adapters/fs-object-store.js';
import { NdjsonObjectWriter, RollingWriters } from '../../src/engine/object-writers.js';
import { tempFolder } from '../support/fixtures.js';

describe('NdjsonObjectWriter', () => {
  let folder: { path: string; cleanup: () => Promise<void> };
  let store: FsObjectStore;
  before(async () => {
    folder = await tempFolder('gzip');
    store = new FsObjectStore(folder.path);
  });
  after(() => folder.cleanup());

  test('drain() returns when gzip already drained before it was called (no lost wake-up)', async () => {
    // Arrange: enough data to overflow gzip's buffer, then let it drain with nobody listening.
    const writer = new NdjsonObjectWriter(store, 'big.gz', 0);
    const line = Buffer.alloc(999, 97);
    for (let i = 0; i < 3000; i += 1) writer.add(line);
    await sleep(200);

    // Act
    const drained = await Promise.race([
      writer.drain().then(() => 'drained'),
      sleep(3000).then(() => 'hung'),
    ]);

    // Assert
    assert.equal(drained, 'drained');
    const written = await writer.close();
    assert.equal(written.records, 3000);
    assert.equal(gunzipSync((await store.getBytes('big.gz'))!).length, 3000 * 1000);
  });

  test('an object smaller than one chunk is stored whole and reads back', async () => {
    const writer = new NdjsonObjectWriter(store, 'small.gz', 6);
    writer.add(Buffer.from('{"a":1}'));
    writer.addWithPrefix('1\tk\t', Buffer.from('{"b":2}'));
    writer.addAscii('key');
    const written = await writer.close();
    assert.equal(gunzipSync((await store.getBytes('small.gz'))!).toString(), '{"a":1}\n1\tk\t{"b":2}\nkey\n');
    assert.deepEqual([written.records, written.uncompressedBytes], [3, 24]);
  });
});

describe('RollingWriters', () => {
  let folder: { path: string; cleanup: () => Promise<void> };
  let store: FsObjectStore;
  before(async () => {
    folder = await tempFolder('rolling');
    store = new FsObjectStore(folder.path);
  });
  after(() => folder.cleanup());

  function pool(maxOpen: number, maxUncompressedBytes: number) {
    let open = 0;
    let peakOpen = 0;
    const writers = new RollingWriters<string, NdjsonObjectWriter, { key: string; bytes: number }>({
      maxOpen,
      maxUncompressedBytes,
      open: (key, seq) => {
        open += 1;
        peakOpen = Math.max(peakOpen, open);
        return new NdjsonObjectWriter(store, `${key}-${seq}.gz`, 1);
      },
      close: async (writer) => {
        open -= 1;
        const written = await writer.close();
        return { key: written.key, bytes: written.uncompressedBytes };
      },
    });
    return { writers, peak: () => peakOpen };
  }

  test('a segment is closed before it would exceed the size cap, and numbered in order', async () => {
    const { writers } = pool(4, 100);
    const line = Buffer.alloc(29, 98); // 30 bytes with its newline
    for (let i = 0; i < 10; i += 1) writers.segmentFor('day', line.length + 1).add(line);
    const closed = await writers.finish();
    assert.deepEqual(
      closed.map((c) => [c.key, c.bytes]),
      [
        ['day-0.gz', 90],
        ['day-1.gz', 90],
        ['day-2.gz', 90],
        ['day-3.gz', 30],
      ],
    );
  });

  test('never more than maxOpen segments are open; a reopened key continues its numbering', async () => {
    const { writers, peak } = pool(2, 1 << 20);
    for (const key of ['a', 'b', 'c', 'a', 'b', 'c']) writers.segmentFor(key, 2).add(Buffer.from('x'));
    const closed = await writers.finish();
    assert.equal(peak(), 2);
    assert.deepEqual(closed.map((c) => c.key).sort(), [
      'a-0.gz',
      'a-1.gz',
      'b-0.gz',
      'b-1.gz',
      'c-0.gz',
      'c-1.gz',
    ]);
  });
});
