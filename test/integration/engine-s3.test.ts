import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { S3ObjectStore } from '../../src/adapters/s3-object-store.js';
import { listAll } from '../../src/core/object-store.js';
import { parsePipelineConfig } from '../../src/core/pipeline-config.js';
import type { EngineStores } from '../../src/core/ports.js';
import { HOUR_MS, ZoneCalendar } from '../../src/core/windows.js';
import { generateLandingZone } from '../../src/local/generate.js';
import { defaultStateFolder } from '../../src/local/local-stores.js';
import { type Moto, startMoto } from '../../src/local/moto.js';
import { pipelineId, runLocalPipeline, runPipelines } from '../../src/local/run.js';
import { assertSameTree, outputTree, readTree, tempFolder } from '../support/fixtures.js';
import { createBucket, s3ClientFor } from '../support/moto-s3.js';

const config = parsePipelineConfig({
  project_id: 'acme',
  name: 'events-daily',
  frequency: 'daily',
  sync: true,
  time_zone: 'America/New_York',
  from_date: '2024-11-03',
});
const calendar = new ZoneCalendar(config.time_zone);

describe('the engine on S3 (moto)', () => {
  let moto: Moto;
  let client: S3Client;
  let raw: { path: string; cleanup: () => Promise<void> };
  before(async () => {
    moto = await startMoto();
    client = s3ClientFor(moto.endpoint);
    for (const bucket of ['landing', 'customer', 'pipelines']) await createBucket(client, bucket);
    raw = await tempFolder('s3-raw');
    await generateLandingZone({
      rawDir: raw.path,
      projectId: config.project_id,
      seed: 9,
      start: calendar.dayStart('2024-11-03'),
      hours: 25,
      eventsPerHour: 40,
      filesPerHour: 2,
    });
    const landing = new S3ObjectStore({ client, bucket: 'landing' });
    for (const [key, bytes] of await readTree(raw.path)) await landing.put(key, bytes);
  });
  after(async () => {
    client?.destroy();
    await moto?.stop();
    await raw?.cleanup();
  });

  test('writes byte for byte what the folder run writes, under a destination prefix', async () => {
    // Arrange
    const stores: EngineStores = {
      raw: new S3ObjectStore({ client, bucket: 'landing' }),
      destination: new S3ObjectStore({ client, bucket: 'customer', prefix: 'exports' }),
      state: new S3ObjectStore({ client, bucket: 'pipelines', prefix: 'state/acme/events-daily' }),
      staging: new S3ObjectStore({ client, bucket: 'pipelines', prefix: 'staging/acme/events-daily' }),
    };
    const now = calendar.dayEnd('2024-11-06') + 3 * HOUR_MS;
    const folders = await tempFolder('s3-compare');

    try {
      // Act
      const onS3 = (await runPipelines({ configs: [config], stores: () => stores, now })).results.get(
        pipelineId(config),
      )!;
      const onDisk = await runLocalPipeline({
        folders: {
          raw: raw.path,
          out: folders.path,
          state: defaultStateFolder(folders.path, config.project_id, config.name),
        },
        config,
        now,
        workers: 1,
      });

      // Assert
      assert.deepEqual([onS3.failures, onS3.reconciliation.problems], [[], []]);
      assert.deepEqual(onS3.reconciliation, onDisk.reconciliation);
      const written = await listAll(stores.destination, '');
      const onS3Tree = new Map<string, Buffer>();
      for (const { key } of written) onS3Tree.set(key, (await stores.destination.getBytes(key))!);
      assertSameTree(onS3Tree, await outputTree(folders.path));
      assert.ok((await listAll(stores.staging, 'stage/')).length > 0, 'staging lives in its own prefix');
      assert.equal((await listAll(stores.state, 'stage/')).length, 0);
      assert.ok(written.some((o) => o.key.includes('/_quarantine/')));
      assert.ok(written.some((o) => o.key.includes('.sync-')));
      assert.deepEqual(
        JSON.parse(
          await readFile(`${defaultStateFolder(folders.path, 'acme', 'events-daily')}/pipeline.json`, 'utf8'),
        ),
        config,
      );
    } finally {
      await folders.cleanup();
    }
  });
});
