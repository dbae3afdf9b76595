import assert from 'node:assert/strict';
import { createCipheriv, createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { FsObjectStore } from '../../src/adapters/fs-object-store.js';
import { S3ObjectStore } from '../../src/adapters/s3-object-store.js';
import { ConfigError, TransientError } from '../../src/core/errors.js';
import { listAll, type ObjectInfo, type ObjectStore } from '../../src/core/object-store.js';
import { type Moto, startMoto } from '../../src/local/moto.js';
import { createBucket, s3ClientFor } from '../support/moto-s3.js';

const MiB = 1024 * 1024;

/** A fresh, empty store for one test. */
interface Fixture {
  readonly store: ObjectStore;
  /** SDK command names sent since the fixture was made (S3 only), to check multipart and paging. */
  readonly commands?: readonly string[];
  dispose(): Promise<void>;
}

/**
 * Keys that trip per-directory walks and UTF-16 sorting: `-` (0x2D) < `/` (0x2F) < `0` (0x30), a folder
 * `a/c/` between files `a/c.d` and `a/c0`, and `ｚ` (U+FF5A) < `😀` in UTF-8 but not in UTF-16.
 * No key is also a folder of another key, which a filesystem cannot hold.
 */
const TRICKY_KEYS = [
  'A',
  'B9',
  'a-c',
  'a/b',
  'a/b.c',
  'a/b0',
  'a/c.d',
  'a/c/d',
  'a/c0',
  'a0',
  'day/2024-01',
  'day/2024/01/02/x',
  'day/2024/01/10/y',
  'day/2024/1/z',
  'z~',
  'é/1',
  'ｚ',
  '😀',
];

/** The order S3 lists keys in: ascending UTF-8 bytes. */
function byteSorted(keys: readonly string[]): string[] {
  return [...keys].sort((a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')));
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Runs `task` over `items` with at most `limit` in flight. */
async function forEachConcurrently<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>) {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await task(item);
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
}

/** Deterministic incompressible bytes (AES-CTR keystream), streamed in 1 MiB chunks, with their SHA-256. */
function incompressible(totalBytes: number): { stream: Readable; sha256: () => string } {
  const cipher = createCipheriv('aes-256-ctr', Buffer.alloc(32, 7), Buffer.alloc(16, 3));
  const hash = createHash('sha256');
  async function* chunks(): AsyncGenerator<Buffer> {
    for (let sent = 0; sent < totalBytes; sent += MiB) {
      const chunk = cipher.update(Buffer.alloc(Math.min(MiB, totalBytes - sent)));
      hash.update(chunk);
      yield chunk;
    }
  }
  return { stream: Readable.from(chunks()), sha256: () => hash.digest('hex') };
}

async function sha256Of(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(stream, hash);
  return hash.digest('hex');
}

/** A stream source that fails after its first chunk. */
async function* failingSource(): AsyncGenerator<Buffer> {
  yield Buffer.from('partial');
  throw new Error('source broke');
}

/** A listing without its write times, which differ from run to run. */
function keysAndSizes(listed: readonly ObjectInfo[]): { key: string; size: number }[] {
  return listed.map(({ key, size }) => ({ key, size }));
}

function count(commands: readonly string[], name: string): number {
  return commands.filter((command) => command === name).length;
}

/** The behaviour every ObjectStore adapter must share; `manyKeys` adds the 1100-key paging test. */
function objectStoreConformance(makeFixture: () => Promise<Fixture>, { manyKeys = true } = {}): void {
  let fixture: Fixture;
  beforeEach(async () => {
    fixture = await makeFixture();
  });
  afterEach(async () => {
    await fixture.dispose();
  });

  it('round-trips Buffers through put, get and getBytes, and overwrites', async () => {
    const { store } = fixture;

    const stored = await store.put('dir/hello.txt', Buffer.from('hello'));
    const emptyStored = await store.put('dir/empty', Buffer.alloc(0));
    await store.put('dir/again', Buffer.from('first'));
    await store.put('dir/again', Buffer.from('second!'));

    assert.equal(stored, 5);
    assert.equal(emptyStored, 0);
    assert.deepEqual(await store.getBytes('dir/hello.txt'), Buffer.from('hello'));
    const stream = await store.get('dir/hello.txt');
    assert.ok(stream !== undefined);
    assert.deepEqual(await readAll(stream), Buffer.from('hello'));
    assert.deepEqual(await store.getBytes('dir/empty'), Buffer.alloc(0));
    assert.deepEqual(await store.getBytes('dir/again'), Buffer.from('second!'));
  });

  it('round-trips a stream and returns the bytes stored', async () => {
    const { store } = fixture;
    const parts = [Buffer.from('line 1\n'), Buffer.from('line 2\n'), Buffer.from('ü\n')];

    const stored = await store.put('streams/small.ndjson', Readable.from(parts));

    assert.equal(stored, Buffer.concat(parts).length);
    assert.deepEqual(await store.getBytes('streams/small.ndjson'), Buffer.concat(parts));
  });

  it('writes a list of chunks as their concatenation, in order, empty chunks included', async () => {
    const { store } = fixture;
    const chunks = [Buffer.from('a'.repeat(70_000)), Buffer.alloc(0), Buffer.from('ü\n'), Buffer.from('z')];

    const stored = await store.put('chunks/obj', chunks);

    assert.equal(stored, Buffer.concat(chunks).length);
    assert.deepEqual(await store.getBytes('chunks/obj'), Buffer.concat(chunks));
    assert.equal(await store.put('chunks/none', []), 0);
    assert.deepEqual(await store.getBytes('chunks/none'), Buffer.alloc(0));
  });

  it('stores nothing when a streamed put fails', async () => {
    const { store } = fixture;

    await assert.rejects(store.put('broken/obj', Readable.from(failingSource())), /source broke/);

    assert.equal(await store.getBytes('broken/obj'), undefined);
    assert.deepEqual(await listAll(store, ''), []);
  });

  it('returns undefined for missing keys and for "folders"', async () => {
    const { store } = fixture;
    await store.put('folder/inside', Buffer.from('x'));

    assert.equal(await store.get('no/such/key'), undefined);
    assert.equal(await store.getBytes('no/such/key'), undefined);
    assert.equal(await store.get('folder'), undefined);
    assert.equal(await store.getBytes('folder'), undefined);
    assert.equal(await store.getBytes('folder/inside/deeper'), undefined);
  });

  it('streams ~20 MiB of incompressible data byte-exact (multipart on S3)', async () => {
    const { store } = fixture;
    const size = 20 * MiB + 12_345;
    const source = incompressible(size);

    const stored = await store.put('big/blob.bin', source.stream);

    assert.equal(stored, size);
    const body = await store.get('big/blob.bin');
    assert.ok(body !== undefined);
    assert.equal(await sha256Of(body), source.sha256());
    assert.deepEqual(keysAndSizes(await listAll(store, 'big/')), [{ key: 'big/blob.bin', size }]);
    if (fixture.commands !== undefined) {
      assert.equal(count(fixture.commands, 'CreateMultipartUploadCommand'), 1);
      assert.equal(count(fixture.commands, 'UploadPartCommand'), 3);
      assert.equal(count(fixture.commands, 'CompleteMultipartUploadCommand'), 1);
    }
  });

  it('lists in byte order of the full keys, including tricky ones', async () => {
    const { store } = fixture;
    const expected = byteSorted(TRICKY_KEYS);
    // Guard: the tricky keys must really tell UTF-8 order from JavaScript's UTF-16 order.
    assert.notDeepEqual([...TRICKY_KEYS].sort(), expected);
    for (const key of [...TRICKY_KEYS].reverse()) await store.put(key, Buffer.from(key, 'utf8'));

    const listed = await listAll(store, '');

    assert.deepEqual(
      keysAndSizes(listed),
      expected.map((key) => ({ key, size: Buffer.byteLength(key, 'utf8') })),
    );
  });

  it('lists when each object was last written, to the second', async () => {
    const { store } = fixture;
    const before = Math.floor(Date.now() / 1000) * 1000;
    await store.put('written/now', Buffer.from('x'));
    const after = Date.now();

    const [listed] = await listAll(store, 'written/');

    assert.ok(listed !== undefined);
    assert.ok(
      before <= listed.lastModified && listed.lastModified <= after,
      `${listed.lastModified} within [${before}, ${after}]`,
    );
  });

  it('lists under prefixes that end mid-segment, at a folder or at a key', async () => {
    const { store } = fixture;
    for (const key of TRICKY_KEYS) await store.put(key, Buffer.from(key, 'utf8'));
    const sorted = byteSorted(TRICKY_KEYS);

    for (const prefix of [
      'a',
      'a/',
      'a/b',
      'a/c',
      'day/2024',
      'day/2024/0',
      'day/2024/01/',
      'é',
      'zz',
      'none/',
    ]) {
      const listed = (await listAll(store, prefix)).map((info) => info.key);
      assert.deepEqual(
        listed,
        sorted.filter((key) => key.startsWith(prefix)),
        `prefix ${JSON.stringify(prefix)}`,
      );
    }
  });

  // moto answers one request at a time (~5 ms each, whatever the concurrency), so 1100 puts cost ~6 s:
  // the S3 suites run this once, under a prefix (the harder case: stripping across pages).
  if (manyKeys) {
    it('lists and deletes more than 1000 keys (pages and batches)', async () => {
      const { store } = fixture;
      const keys = Array.from({ length: 1100 }, (_, i) => `many/k${String(i).padStart(4, '0')}`);
      await forEachConcurrently(keys, 16, async (key) => {
        await store.put(key, Buffer.from('.'));
      });
      await store.put('other', Buffer.from('stays'));

      const listed = await listAll(store, 'many/');
      await store.delete(keys);

      assert.deepEqual(
        listed.map((info) => info.key),
        keys,
      );
      assert.deepEqual(keysAndSizes(await listAll(store, '')), [{ key: 'other', size: 5 }]);
      if (fixture.commands !== undefined) {
        assert.equal(
          count(fixture.commands, 'ListObjectsV2Command'),
          3,
          "2 pages for 'many/', 1 for the rest",
        );
        assert.equal(count(fixture.commands, 'DeleteObjectsCommand'), 2);
      }
    });
  }

  it('deletes existing keys and ignores missing ones', async () => {
    const { store } = fixture;
    for (const key of ['d/1', 'd/2', 'd/3']) await store.put(key, Buffer.from(key));

    await store.delete(['d/1', 'missing/key', 'd/3']);
    await store.delete([]);

    assert.deepEqual(keysAndSizes(await listAll(store, 'd/')), [{ key: 'd/2', size: 3 }]);
    assert.equal(await store.getBytes('d/1'), undefined);
    assert.equal(await store.getBytes('d/3'), undefined);
  });
}

/** Polls until `check` passes (for the moment a background write has started); fails after 5 s. */
async function eventually(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await sleep(10);
  }
}

describe('FsObjectStore', () => {
  describe('conformance', () => {
    objectStoreConformance(async () => {
      const root = await mkdtemp(path.join(tmpdir(), 'fs-object-store-'));
      return {
        store: new FsObjectStore(root),
        dispose: () => rm(root, { recursive: true, force: true }),
      };
    });
  });

  describe('filesystem specifics', () => {
    let root: string;
    let store: FsObjectStore;
    beforeEach(async () => {
      root = await mkdtemp(path.join(tmpdir(), 'fs-object-store-'));
      store = new FsObjectStore(root);
    });
    afterEach(async () => {
      await rm(root, { recursive: true, force: true });
    });

    it('describes itself by the absolute root folder', () => {
      assert.equal(new FsObjectStore(path.relative(process.cwd(), root)).description, root);
    });

    it('never shows a streamed put to readers before it completes', async () => {
      await store.put('slow/obj', Buffer.from('old'));
      const replacing = new PassThrough();
      const creating = new PassThrough();
      const replaced = store.put('slow/obj', replacing);
      const created = store.put('slow/new', creating);
      replacing.write(Buffer.from('new '));
      creating.write(Buffer.from('fresh '));
      const tempFiles = async () =>
        (await readdir(path.join(root, 'slow'))).filter((n) => n.includes('.tmp-'));
      await eventually('both temp files exist', async () => (await tempFiles()).length === 2);

      const oldDuringWrite = await store.getBytes('slow/obj');
      const newDuringWrite = await store.getBytes('slow/new');
      const listedDuringWrite = await listAll(store, 'slow/');
      replacing.end(Buffer.from('content'));
      creating.end(Buffer.from('object'));
      await Promise.all([replaced, created]);

      assert.deepEqual(oldDuringWrite, Buffer.from('old'));
      assert.equal(newDuringWrite, undefined);
      assert.deepEqual(keysAndSizes(listedDuringWrite), [{ key: 'slow/obj', size: 3 }]);
      assert.deepEqual(await store.getBytes('slow/obj'), Buffer.from('new content'));
      assert.deepEqual(await store.getBytes('slow/new'), Buffer.from('fresh object'));
      assert.deepEqual(await tempFiles(), []);
    });

    it('does not list hidden (dot-prefixed) files or folders', async () => {
      await mkdir(path.join(root, 'dir', '.hidden-dir'), { recursive: true });
      await writeFile(path.join(root, '.hidden'), 'x');
      await writeFile(path.join(root, 'dir', '.visible.tmp-0123'), 'x');
      await writeFile(path.join(root, 'dir', '.hidden-dir', 'inside'), 'x');
      await writeFile(path.join(root, 'dir', 'visible'), 'x');

      const all = await listAll(store, '');
      const dotted = await listAll(store, 'dir/.');

      assert.deepEqual(keysAndSizes(all), [{ key: 'dir/visible', size: 1 }]);
      assert.deepEqual(dotted, []);
    });

    it('rejects unsafe keys with a ConfigError naming the key', async () => {
      const unsafe = [
        '',
        '/etc/passwd',
        '..',
        '../outside',
        'a/../b',
        './a',
        'a/.',
        'a//b',
        'a/',
        'a\0b',
        '.hidden',
      ];
      for (const key of unsafe) {
        const namesKey = (error: unknown): boolean => {
          assert.ok(error instanceof ConfigError, `${JSON.stringify(key)} should raise a ConfigError`);
          assert.ok(error.message.includes(JSON.stringify(key)), error.message);
          return true;
        };
        await assert.rejects(store.put(key, Buffer.from('x')), namesKey);
        await assert.rejects(store.get(key), namesKey);
        await assert.rejects(store.getBytes(key), namesKey);
        await assert.rejects(store.delete(['fine', key]), namesKey);
      }
      assert.deepEqual(await readdir(root), []);
    });

    it('removes folders that delete leaves empty, as S3 "folders" vanish', async () => {
      await store.put('f/g/h/x', Buffer.from('x'));
      await store.put('f/y', Buffer.from('y'));

      await store.delete(['f/g/h/x']);
      const afterFirst = { g: existsSync(path.join(root, 'f', 'g')), f: existsSync(path.join(root, 'f')) };
      await store.delete(['f/y']);

      assert.deepEqual(afterFirst, { g: false, f: true });
      assert.equal(existsSync(path.join(root, 'f')), false);
      assert.equal(existsSync(root), true);
    });

    it('leaves no temp file behind when a streamed put fails', async () => {
      await assert.rejects(store.put('broken/obj', Readable.from(failingSource())), /source broke/);

      assert.deepEqual(await readdir(path.join(root, 'broken')), []);
    });

    it('reports a key that is also a folder of keys as a ConfigError', async () => {
      await store.put('c/d', Buffer.from('x'));
      await store.put('e', Buffer.from('x'));

      await assert.rejects(store.put('c', Buffer.from('x')), ConfigError);
      await assert.rejects(store.put('e/f', Buffer.from('x')), ConfigError);
    });
  });
});

/** Records the name of every command the client sends, into the array returned. */
function recordCommands(client: S3Client): string[] {
  const names: string[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      names.push(context.commandName ?? 'unknown');
      return next(args);
    },
    { step: 'initialize', name: 'recordCommandNames' },
  );
  return names;
}

/** A local HTTP server that answers every request with `respond`, to fake S3 failures. */
async function startFakeS3(
  respond: (request: IncomingMessage, response: ServerResponse) => void,
): Promise<{ endpoint: string; close(): Promise<void> }> {
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => respond(request, response));
  });
  server.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', resolve));
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function xmlError(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message><RequestId>r1</RequestId></Error>`;
}

describe('S3ObjectStore', () => {
  let moto: Moto;
  let client: S3Client;
  let commands: string[];
  const runId = `${Date.now().toString(36)}-${process.pid}`;
  let bucketCount = 0;
  const newBucket = async (): Promise<string> => {
    const bucket = `object-store-${runId}-${++bucketCount}`;
    await createBucket(client, bucket);
    return bucket;
  };

  before(async () => {
    moto = await startMoto();
    client = s3ClientFor(moto.endpoint);
    commands = recordCommands(client);
  });
  after(async () => {
    client?.destroy();
    await moto?.stop();
  });

  describe('conformance at the bucket root', () => {
    objectStoreConformance(
      async () => {
        const bucket = await newBucket();
        commands.length = 0;
        return { store: new S3ObjectStore({ client, bucket }), commands, dispose: async () => {} };
      },
      { manyKeys: false },
    );
  });

  describe('conformance under a prefix', () => {
    objectStoreConformance(async () => {
      const bucket = await newBucket();
      commands.length = 0;
      return {
        store: new S3ObjectStore({ client, bucket, prefix: 'exports/p1' }),
        commands,
        dispose: async () => {},
      };
    });
  });

  it('stores keys under the prefix and strips it from listings', async () => {
    const bucket = await newBucket();
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'exports/p10/neighbour', Body: 'n' }));
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'outside', Body: 'o' }));
    const store = new S3ObjectStore({ client, bucket, prefix: 'exports/p1' });

    await store.put('inside/x', Buffer.from('x'));
    const raw = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'exports/p1/inside/x' }));

    assert.equal(await raw.Body?.transformToString(), 'x');
    assert.deepEqual(keysAndSizes(await listAll(store, '')), [{ key: 'inside/x', size: 1 }]);
    assert.equal(store.description, `s3://${bucket}/exports/p1/`);
    assert.equal(new S3ObjectStore({ client, bucket }).description, `s3://${bucket}/`);
  });

  it('lets non-transient errors such as NoSuchBucket propagate', async () => {
    const store = new S3ObjectStore({ client, bucket: `missing-${runId}` });

    await assert.rejects(store.getBytes('k'), (error: unknown) => {
      assert.ok(error instanceof Error);
      assert.equal(error.name, 'NoSuchBucket');
      assert.ok(!(error instanceof TransientError));
      return true;
    });
  });

  it('maps throttling, 5xx and refused connections to TransientError naming bucket and key', async () => {
    const fake = await startFakeS3((_request, response) => {
      response
        .writeHead(503, { 'content-type': 'application/xml' })
        .end(xmlError('SlowDown', 'Reduce your rate'));
    });
    const closed = await startFakeS3(() => {});
    await closed.close();
    // One attempt: the SDK's own retries would only add backoff delays here.
    const throttled = s3ClientFor(fake.endpoint, { maxAttempts: 1 });
    const refused = s3ClientFor(closed.endpoint, { maxAttempts: 1 });
    try {
      const stores = [
        new S3ObjectStore({ client: throttled, bucket: 'b1', prefix: 'p' }),
        new S3ObjectStore({ client: refused, bucket: 'b1', prefix: 'p' }),
      ];
      for (const store of stores) {
        const transient = (error: unknown): boolean => {
          assert.ok(error instanceof TransientError, String(error));
          assert.match(error.message, /s3:\/\/b1\/p\/k/);
          return true;
        };
        await assert.rejects(store.getBytes('k'), transient);
        await assert.rejects(store.put('k', Buffer.from('x')), transient);
        await assert.rejects(store.put('k', Readable.from([Buffer.from('x')])), transient);
        await assert.rejects(store.delete(['k']), transient);
        await assert.rejects(listAll(store, 'k'), transient);
      }
    } finally {
      throttled.destroy();
      refused.destroy();
      await fake.close();
    }
  });

  it('throws when DeleteObjects reports per-key errors', async () => {
    const fake = await startFakeS3((_request, response) => {
      response
        .writeHead(200, { 'content-type': 'application/xml' })
        .end(
          '<?xml version="1.0" encoding="UTF-8"?><DeleteResult><Error><Key>p/locked</Key><Code>AccessDenied</Code>' +
            '<Message>Access Denied</Message></Error></DeleteResult>',
        );
    });
    const faked = s3ClientFor(fake.endpoint);
    try {
      const store = new S3ObjectStore({ client: faked, bucket: 'b1', prefix: 'p' });

      await assert.rejects(store.delete(['free', 'locked']), (error: unknown) => {
        assert.ok(error instanceof Error);
        assert.ok(!(error instanceof TransientError));
        assert.match(error.message, /p\/locked \(AccessDenied/);
        return true;
      });
    } finally {
      faked.destroy();
      await fake.close();
    }
  });
});

describe('startMoto', () => {
  const installMessage =
    'moto_server not found: local runs and the integration tests need the moto S3/DynamoDB emulator. Install it with: pip install "moto[server]"';

  /** Runs `startMoto` with `MOTO_SERVER` set to `command`, restoring the variable afterwards. */
  async function startMotoWith(command: string): Promise<Moto> {
    const saved = process.env.MOTO_SERVER;
    process.env.MOTO_SERVER = command;
    try {
      return await startMoto();
    } finally {
      if (saved === undefined) Reflect.deleteProperty(process.env, 'MOTO_SERVER');
      else process.env.MOTO_SERVER = saved;
    }
  }

  it('rejects with install instructions when moto_server is missing', async () => {
    await assert.rejects(startMotoWith('/nonexistent/moto_server'), (error: unknown) => {
      assert.ok(error instanceof Error);
      assert.equal(error.message, installMessage);
      return true;
    });
  });

  it('rejects with install instructions when python has no moto module', async () => {
    // -S hides site-packages, so this python cannot import moto.
    await assert.rejects(startMotoWith('python3 -S -m moto.server'), (error: unknown) => {
      assert.ok(error instanceof Error);
      assert.equal(error.message, installMessage);
      return true;
    });
  });
});
