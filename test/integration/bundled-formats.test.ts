/**
 * The part writers as the Lambda bundle carries them (esbuild with the stack's options): Parquet snappy
 * (WebAssembly inlined in the JavaScript) works anywhere; zstd works where `node:zlib` has it (Node 22.15
 * and later, the Lambda runtime) and elsewhere fails with an error saying what it needs, since the
 * bundle does not ship the WebAssembly zstd file.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { decompress } from 'fzstd';
import { FsObjectStore } from '../../src/adapters/fs-object-store.js';
import type { PROFILE_RECORD as ProfileRecord } from '../../src/core/record-columns.js';
import type { partOpener as PartOpener } from '../../src/engine/part-formats.js';
import { defaultZstdBackend } from '../../src/engine/zstd.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

interface Bundle {
  readonly partOpener: typeof PartOpener;
  readonly PROFILE_RECORD: typeof ProfileRecord;
}

describe('part writers in the Lambda bundle', () => {
  let dir: string;
  let bundle: Bundle;
  const records = Array.from({ length: 500 }, (_, i) =>
    Buffer.from(`{"distinct_id":"u${i}","properties":{"plan":"pro","n":${i}}}`),
  );

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mp-bundled-formats-'));
    const entry = join(dir, 'entry.ts');
    writeFileSync(
      entry,
      `export { partOpener } from ${JSON.stringify(join(ROOT, 'src/engine/part-formats.ts'))};\n` +
        `export { PROFILE_RECORD } from ${JSON.stringify(join(ROOT, 'src/core/record-columns.ts'))};\n`,
    );
    const outfile = join(dir, 'bundle.mjs');
    await build({
      entryPoints: [entry],
      outfile,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node22',
      minify: true,
      mainFields: ['module', 'main'],
      banner: {
        js: "import { createRequire } from 'module'; const require = createRequire(import.meta.url);",
      },
      logLevel: 'silent',
    });
    bundle = (await import(pathToFileURL(outfile).href)) as Bundle;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function write(format: Parameters<typeof PartOpener>[0], key: string): Promise<Buffer> {
    const store = new FsObjectStore(dir);
    const open = await bundle.partOpener(format, bundle.PROFILE_RECORD);
    const part = open(store, key);
    for (const record of records) part.add(record);
    const written = await part.close();
    assert.equal(written.records, records.length);
    return (await store.getBytes(key)) as Buffer;
  }

  test('Parquet snappy and JSON gzip parts are written by the bundle', async () => {
    const parquet = await write({ format: 'parquet', compression: 'snappy' }, 'p.parquet');
    assert.equal(parquet.subarray(0, 4).toString('latin1'), 'PAR1');
    const json = await write({ format: 'json', compression: 'gzip' }, 'p.json.gz');
    assert.equal(gunzipSync(json).toString('utf8'), records.map((r) => `${r}\n`).join(''));
  });

  test(`zstd in the bundle on Node ${process.version}: node:zlib's where it has it, else a clear error`, async () => {
    if (defaultZstdBackend() === 'node:zlib') {
      const json = await write({ format: 'json', compression: 'zstd' }, 'p.json.zst');
      assert.equal(Buffer.from(decompress(json)).toString('utf8'), records.map((r) => `${r}\n`).join(''));
      const parquet = await write({ format: 'parquet', compression: 'zstd' }, 'z.parquet');
      assert.equal(parquet.subarray(-4).toString('latin1'), 'PAR1');
    } else {
      await assert.rejects(
        bundle.partOpener({ format: 'json', compression: 'zstd' }, bundle.PROFILE_RECORD),
        /zstd needs Node 22\.15 or later, or the zstd\.wasm file of @bokuweb\/zstd-wasm/,
      );
    }
  });
});
