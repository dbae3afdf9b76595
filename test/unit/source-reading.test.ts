/**
 * Reading landing-zone objects: gzip members and what trails them, limits that set an object aside,
 * and resuming a large object where an earlier piece stopped.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { FsObjectStore } from '../../src/adapters/fs-object-store.js';
import { TransientError, UnreadableSourceError } from '../../src/core/errors.js';
import { ObjectLimitError, readSourceLines, type SourceReadStats } from '../../src/engine/source-lines.js';
import { tempFolder } from '../support/fixtures.js';

let folder: { path: string; cleanup: () => Promise<void> };
let store: FsObjectStore;
before(async () => {
  folder = await tempFolder('source-reading');
  store = new FsObjectStore(folder.path);
});
after(() => folder.cleanup());

async function read(
  key: string,
  options: Parameters<typeof readSourceLines>[4] = {},
): Promise<{ lines: string[]; stats: SourceReadStats }> {
  const lines: string[] = [];
  const stats = await readSourceLines(
    store,
    key,
    {
      line: (chunk, start, end) => void lines.push(chunk.toString('utf8', start, end)),
      overlong: () => assert.fail('no overlong line'),
    },
    async () => undefined,
    options,
  );
  return { lines, stats };
}

const lines = (from: number, count: number) => Array.from({ length: count }, (_, i) => `line ${from + i}`);
const text = (ls: string[]) => `${ls.join('\n')}\n`;

describe('gzip members', () => {
  test('every member of a multi-member object is read', async () => {
    await store.put('two.gz', Buffer.concat([gzipSync(text(lines(0, 3))), gzipSync(text(lines(3, 2)))]));
    assert.deepEqual((await read('two.gz')).lines, lines(0, 5));
  });

  test('zero padding after the last member is no loss', async () => {
    await store.put('padded.gz', Buffer.concat([gzipSync(text(lines(0, 3))), Buffer.alloc(100)]));
    assert.deepEqual((await read('padded.gz')).lines, lines(0, 3));
  });

  for (const [name, tail] of [
    ['text after the last member', Buffer.from('garbage\n')],
    [
      'a later member whose header is zeroed',
      Buffer.concat([Buffer.alloc(10), gzipSync(text(lines(3, 5))).subarray(10)]),
    ],
    ['a truncated later member', gzipSync(text(lines(3, 50))).subarray(0, 20)],
  ] as const) {
    test(`${name} makes the object unreadable, never silently shorter`, async () => {
      await store.put('tail.gz', Buffer.concat([gzipSync(text(lines(0, 3))), tail]));
      await assert.rejects(read('tail.gz'), (error: unknown) => {
        assert.ok(error instanceof UnreadableSourceError, String(error));
        assert.match(error.message, /tail\.gz/);
        return true;
      });
    });
  }

  test('a missing object is unreadable unless the caller names its own error', async () => {
    await assert.rejects(read('nowhere.gz'), UnreadableSourceError);
    await assert.rejects(read('nowhere.gz', { missing: () => new TransientError('custom') }), /custom/);
  });
});

describe('limits', () => {
  test('a gzip bomb is refused once past the ratio limit, before it is read to the end', async () => {
    const bomb = gzipSync(Buffer.alloc(16 * 1024 * 1024, 'a'), { level: 9 });
    await store.put('bomb.gz', bomb);
    await assert.rejects(
      read('bomb.gz', { limits: { maxBytes: 1e12, maxRatio: 100, ratioAfterBytes: 1024 * 1024 } }),
      (error: unknown) => error instanceof ObjectLimitError && error.reason === 'compression_ratio',
    );
  });

  test('an object decoding past the size limit is refused', async () => {
    await store.put('big.txt', Buffer.from(text(lines(0, 10_000))));
    await assert.rejects(
      read('big.txt', { limits: { maxBytes: 10_000, maxRatio: 100, ratioAfterBytes: 1e12 } }),
      (error: unknown) => error instanceof ObjectLimitError && error.reason === 'too_large',
    );
  });

  test('ordinary JSON lines pass the default-like limits', async () => {
    const body = gzipSync(text(lines(0, 20_000)));
    await store.put('ok.gz', body);
    const { stats } = await read('ok.gz', {
      limits: { maxBytes: 1e12, maxRatio: 100, ratioAfterBytes: 1024 },
    });
    assert.equal(stats.lines, 20_000);
  });
});

describe('resuming where a piece stopped', () => {
  test('pieces stopping anywhere read every line exactly once, plain or gzip', async () => {
    const all = Array.from({ length: 3000 }, (_, i) => `{"n":${i},"pad":"${'x'.repeat(i % 97)}"}`);
    await store.put('plain.json', Buffer.from(text(all)));
    await store.put('packed.json.gz', gzipSync(text(all)));
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('plain.json', 'packed.json.gz'),
        fc.integer({ min: 1, max: 200_000 }),
        async (key, budget) => {
          const seen: string[] = [];
          let resume: { bytes: number; lines: number; compressed: boolean } | undefined;
          for (let pieces = 0; pieces < 10_000; pieces += 1) {
            const { lines: got, stats } = await read(key, {
              ...(resume === undefined ? {} : { resume }),
              stopAt: (resume?.bytes ?? 0) + budget,
            });
            seen.push(...got);
            if (stats.complete) break;
            assert.ok(stats.bytes > (resume?.bytes ?? 0), 'every piece moves on');
            resume = { bytes: stats.bytes, lines: stats.lines, compressed: stats.compressed };
          }
          assert.deepEqual(seen, all);
        },
      ),
      { seed: 12, numRuns: 40 },
    );
  });
});
