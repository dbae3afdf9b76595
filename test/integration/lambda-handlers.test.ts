/**
 * The Lambda handlers as deployed: bundled by esbuild with the options the stack gives NodejsFunction,
 * loaded as a module and invoked with the environment the stack sets, against DynamoDB on moto.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { createConfigTable, createStateTable, dynamoClientFor } from '../../src/local/dynamo-tables.js';
import { type Moto, startMoto } from '../../src/local/moto.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

type Handler = (event: unknown, context: object) => Promise<unknown>;

/** Bundles one handler as `cdk synth` does (ESM, Node 22, a `require` shim) and imports it. */
async function bundled(name: string, outdir: string): Promise<Handler> {
  const outfile = join(outdir, `${name}.mjs`);
  await build({
    entryPoints: [join(ROOT, 'functions', `${name}.ts`)],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    mainFields: ['module', 'main'],
    banner: { js: "import { createRequire } from 'module'; const require = createRequire(import.meta.url);" },
    logLevel: 'silent',
  });
  return ((await import(pathToFileURL(outfile).href)) as { handler: Handler }).handler;
}

describe('bundled Lambda handlers', () => {
  let moto: Moto;
  let outdir: string;
  const saved = { ...process.env };

  before(async () => {
    moto = await startMoto();
    outdir = mkdtempSync(join(tmpdir(), 'mp-handlers-'));
    const dynamo = dynamoClientFor(moto.endpoint);
    await createStateTable(dynamo, 'state');
    await createConfigTable(dynamo, 'configs');
    // The environment the stack sets, and the SDK pointed at the emulator.
    Object.assign(process.env, {
      RAW_BUCKET: 'raw-bucket',
      DESTINATION_BUCKET: 'destination-bucket',
      STATE_BUCKET: 'state-bucket',
      CONFIGS_TABLE: 'configs',
      STATE_TABLE: 'state',
      EVENT_BUS_NAME: 'default',
      LEASE_SECONDS: '600',
      AWS_ENDPOINT_URL: moto.endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      POWERTOOLS_SERVICE_NAME: 'mp-pipelines',
      POWERTOOLS_METRICS_DISABLED: 'true',
      POWERTOOLS_LOG_LEVEL: 'WARN',
    });
  });
  after(async () => {
    process.env = saved;
    rmSync(outdir, { recursive: true, force: true });
    await moto?.stop();
  });

  test('acquire-lock and release-lock take, refuse and release a project lock', async () => {
    // Arrange
    const acquire = await bundled('acquire-lock', outdir);
    const release = await bundled('release-lock', outdir);
    const context = { awsRequestId: 'test', functionName: 'acquire-lock' };
    // Act
    const first = await acquire({ project_id: 'acme', owner: 'acme-20240101T0000' }, context);
    const second = await acquire({ project_id: 'acme', owner: 'acme-20240101T0015' }, context);
    const wrongRelease = await release({ project_id: 'acme', owner: 'acme-20240101T0015' }, context);
    const released = await release({ project_id: 'acme', owner: 'acme-20240101T0000' }, context);
    const third = await acquire({ project_id: 'acme', owner: 'acme-20240101T0030' }, context);
    // Assert
    assert.deepEqual(first, { acquired: true });
    assert.deepEqual(second, { acquired: false, holder: 'acme-20240101T0000' });
    assert.deepEqual(wrongRelease, { released: false });
    assert.deepEqual(released, { released: true });
    assert.deepEqual(third, { acquired: true });
  });

  test('release-abandoned-lock gives back the lock a timed-out execution still holds, and only that', async () => {
    // Arrange
    const acquire = await bundled('acquire-lock', outdir);
    const releaseAbandoned = await bundled('release-abandoned-lock', outdir);
    const owner = 'shop-20240101T0000';
    await acquire({ project_id: 'shop', owner }, {});
    const ended = (status: string) => ({ detail: { name: owner, status } });
    // Act
    const afterSuccess = await releaseAbandoned(ended('SUCCEEDED'), {});
    const afterTimeout = await releaseAbandoned(ended('TIMED_OUT'), {});
    const again = await releaseAbandoned(ended('TIMED_OUT'), {});
    // Assert
    assert.equal((afterSuccess as { released: boolean }).released, false);
    assert.deepEqual(afterTimeout, { project_id: 'shop', owner, released: true });
    assert.deepEqual(again, { project_id: 'shop', owner, released: false });
    assert.deepEqual(await acquire({ project_id: 'shop', owner: 'shop-20240101T0015' }, {}), {
      acquired: true,
    });
  });

  test('find-due-projects reads the configs table and reports no project when none is configured', async () => {
    const find = await bundled('find-due-projects', outdir);
    assert.deepEqual(await find({ time: '2024-01-01T00:15:00Z' }, {}), {
      tick: '2024-01-01T00:15:00.000Z',
      projects: [],
    });
  });

  test('a malformed state input fails the invocation with InvalidInputError naming the field', async () => {
    const plan = await bundled('plan-step', outdir);
    const acquire = await bundled('acquire-lock', outdir);
    await assert.rejects(plan({ project_id: 'acme', pipeline: 'events', step_id: 'daily-2024-01-01' }, {}), {
      name: 'InvalidInputError',
      message: 'invalid input of plan-step: owner: expected string, received undefined',
    });
    await assert.rejects(acquire({ project_id: 'acme/../x', owner: 'o' }, {}), {
      name: 'InvalidInputError',
      message: /^invalid input of acquire-lock: project_id: must be 1-64 letters/,
    });
  });

  test('a missing environment variable fails the invocation with its name', async () => {
    const pick = await bundled('pick-next-step', outdir);
    const lease = process.env.LEASE_SECONDS;
    delete process.env.LEASE_SECONDS;
    try {
      await assert.rejects(
        pick({ project_id: 'acme', owner: 'x', tick: '2024-01-01T00:15:00Z', steps_run: 0 }, {}),
        {
          name: 'ConfigError',
          message: /LEASE_SECONDS/,
        },
      );
    } finally {
      process.env.LEASE_SECONDS = lease;
    }
  });
});
