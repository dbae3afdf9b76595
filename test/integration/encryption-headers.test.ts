import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { awsStores } from '../../src/adapters/aws-stores.js';
import { S3ObjectStore } from '../../src/adapters/s3-object-store.js';
import { rawHourPrefix } from '../../src/core/layout.js';
import { type PipelineConfig, parsePipelineConfig } from '../../src/core/pipeline-config.js';
import { HOUR_MS, ZoneCalendar } from '../../src/core/windows.js';
import { generateLandingZone } from '../../src/local/generate.js';
import { type Moto, startMoto } from '../../src/local/moto.js';
import { pipelineId, runPipelines } from '../../src/local/run.js';
import { readTree, tempFolder } from '../support/fixtures.js';
import { createBucket, s3ClientFor } from '../support/moto-s3.js';

/** The requests that create objects, and the encryption headers S3 reads on them. */
const WRITE_COMMANDS = new Set(['PutObjectCommand', 'CreateMultipartUploadCommand']);
const SSE = 'x-amz-server-side-encryption';
const SSE_KEY = 'x-amz-server-side-encryption-aws-kms-key-id';
const BUCKET_KEY = 'x-amz-server-side-encryption-bucket-key-enabled';

/** One object-creating request as the SDK sent it. */
interface Write {
  readonly command: string;
  readonly bucket: string;
  readonly key: string;
  /** The encryption headers it carried (lower-case names), and nothing else. */
  readonly encryption: Readonly<Record<string, string>>;
}

/** Records every object-creating request the client sends, with its encryption headers, as signed. */
function recordWrites(client: S3Client): Write[] {
  const writes: Write[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (WRITE_COMMANDS.has(context.commandName ?? '')) {
        const input = args.input as { Bucket?: string; Key?: string };
        const headers = (args.request as { headers?: Record<string, string> }).headers ?? {};
        writes.push({
          command: context.commandName ?? '',
          bucket: input.Bucket ?? '',
          key: input.Key ?? '',
          encryption: Object.fromEntries(
            Object.entries(headers)
              .map(([name, value]): [string, string] => [name.toLowerCase(), value])
              .filter(([name]) => name.startsWith(SSE)),
          ),
        });
      }
      return next(args);
    },
    { step: 'finalizeRequest', name: 'recordWrites' },
  );
  return writes;
}

const KMS_KEY_ID = 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';

/** One pipeline per `s3_encryption` setting, each under its own destination prefix. */
const SETTINGS = [
  { name: 'enc-absent', fields: {}, expected: {} },
  { name: 'enc-none', fields: { s3_encryption: 'none' }, expected: {} },
  { name: 'enc-aes', fields: { s3_encryption: 'aes' }, expected: { [SSE]: 'AES256' } },
  {
    name: 'enc-kms',
    fields: { s3_encryption: 'kms', s3_kms_key_id: KMS_KEY_ID },
    expected: { [SSE]: 'aws:kms', [SSE_KEY]: KMS_KEY_ID, [BUCKET_KEY]: 'true' },
  },
] as const;

const calendar = new ZoneCalendar('UTC');
const start = calendar.dayStart('2024-11-03');
const configs: PipelineConfig[] = SETTINGS.map(({ name, fields }) =>
  parsePipelineConfig({
    project_id: 'acme',
    name,
    frequency: 'hourly',
    time_zone: 'UTC',
    from_date: '2024-11-03',
    s3_prefix: name,
    ...fields,
  }),
);

describe('encryption headers of the requests a run sends to S3 (moto)', () => {
  let moto: Moto;
  let client: S3Client;
  let writes: Write[];
  before(async () => {
    moto = await startMoto();
    client = s3ClientFor(moto.endpoint);
    for (const bucket of ['landing', 'customer', 'pipelines']) await createBucket(client, bucket);
    const raw = await tempFolder('encryption-raw');
    try {
      await generateLandingZone({
        rawDir: raw.path,
        projectId: 'acme',
        seed: 13,
        start,
        hours: 3,
        eventsPerHour: 40,
        filesPerHour: 2,
      });
      const landing = new S3ObjectStore({ client, bucket: 'landing' });
      for (const [key, bytes] of await readTree(raw.path)) await landing.put(key, bytes);
      // A line each pipeline quarantines, whatever the generator drew.
      await landing.put(`${rawHourPrefix('acme', start)}bad.json`, Buffer.from('not json\n'));
    } finally {
      await raw.cleanup();
    }
    // Recorded from here on: the run's own writes only.
    writes = recordWrites(client);
  });
  after(async () => {
    client?.destroy();
    await moto?.stop();
  });

  test('sends no header unless the pipeline asks, AES256 for aes, the key and a bucket key for kms', async () => {
    // Arrange: the stores a deployment's functions build, over moto
    const buckets = { raw: 'landing', destination: 'customer', state: 'pipelines' };
    const stores = (config: PipelineConfig) => awsStores(client, buckets, config, () => client);
    // Act: ingest, plan, export and commit every pipeline
    const { results } = await runPipelines({
      configs,
      stores,
      now: start + 4 * HOUR_MS,
    });
    // Assert: every pipeline exported, and quarantined some lines, so each kind of write was made
    for (const config of configs) {
      const result = results.get(pipelineId(config));
      assert.deepEqual(result?.failures, [], config.name);
      assert.ok((result?.steps.length ?? 0) > 0, `${config.name} committed nothing`);
    }
    const state = writes.filter((w) => w.bucket === 'pipelines');
    assert.ok(
      state.some((w) => w.key.startsWith('staging/')) && state.some((w) => w.key.startsWith('state/')),
    );
    assert.deepEqual(
      state.filter((w) => Object.keys(w.encryption).length > 0),
      [],
      'state and staging writes must leave encryption to the bucket (the stack key with kmsKeyArn)',
    );
    for (const { name, expected } of SETTINGS) {
      const destination = writes.filter((w) => w.bucket === 'customer' && w.key.startsWith(`${name}/`));
      for (const folder of ['/mp_master_event/', '/_quarantine/'])
        assert.ok(
          destination.some((w) => w.key.includes(folder)),
          `${name}: no write under ${folder}`,
        );
      for (const write of destination) assert.deepEqual(write.encryption, expected, `${name}: ${write.key}`);
    }
    assert.equal(
      writes.filter((w) => w.bucket !== 'pipelines' && w.bucket !== 'customer').length,
      0,
      'the run wrote somewhere else',
    );
  });

  test('asks for the key and a bucket key when it starts a multipart upload, for nothing otherwise', async () => {
    // Arrange: a body larger than one part goes multipart
    const body = () => Readable.from([Buffer.alloc(9 * 1024 * 1024, 'x')]);
    const kms = new S3ObjectStore({
      client,
      bucket: 'customer',
      encryption: { kind: 'kms', kmsKeyId: KMS_KEY_ID },
    });
    const plain = new S3ObjectStore({ client, bucket: 'pipelines' });
    const before = writes.length;
    // Act
    await kms.put('multipart/kms.bin', body());
    await plain.put('multipart/plain.bin', body());
    // Assert
    assert.deepEqual(
      writes.slice(before).map((w) => [w.command, w.key, w.encryption]),
      [
        ['CreateMultipartUploadCommand', 'multipart/kms.bin', SETTINGS[3].expected],
        ['CreateMultipartUploadCommand', 'multipart/plain.bin', {}],
      ],
    );
  });
});
