/**
 * The management CLI on a local home, one process per command as a person would type them: `local up`,
 * `pipelines create`, `local schedule`, `runs`, `status`, pause, the state surviving `local down` /
 * `local up`, and `local run --home` on the home's emulator. Exit codes and messages are part of the
 * interface.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { ZoneCalendar } from '../../src/core/windows.js';
import { dynamoClientFor } from '../../src/local/dynamo-tables.js';
import { generateLandingZone } from '../../src/local/generate.js';
import { runCli } from '../support/cli.js';
import { tempFolder } from '../support/fixtures.js';

let home: { path: string; cleanup: () => Promise<void> };

const QUIET = { env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } };

function cli(...args: string[]) {
  return runCli([...args, '--home', home.path], QUIET);
}

async function json<T>(...args: string[]): Promise<T> {
  const result = await cli(...args, '--json');
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as T;
}

const pipeline = ['--project', 'shop', '--name', 'daily'];

/** `local run` of the home's landing zone into `out`: the days of 8 and 9 March are due. */
function localRun(out: string): string[] {
  return [
    ...['local', 'run', '--raw', `${home.path}/raw`, '--out', out, '--project', 'shop'],
    ...['--frequency', 'daily', '--timezone', 'UTC', '--from', '2024-03-08', '--now', '2024-03-10T03:00:00Z'],
  ];
}

describe('mp-pipelines management on a local home', () => {
  before(async () => {
    home = await tempFolder('cli-home');
    await generateLandingZone({
      rawDir: `${home.path}/raw`,
      projectId: 'shop',
      seed: 11,
      start: new ZoneCalendar('UTC').dayStart('2024-03-08'),
      hours: 72,
      eventsPerHour: 5,
    });
  });
  after(async () => {
    await cli('local', 'down');
    await home?.cleanup();
  });

  test('commands before `local up` say how to start it', async () => {
    const result = await cli('pipelines', 'list');
    assert.equal(result.code, 2);
    assert.match(result.stderr, /is not up: start it with `mp-pipelines local up`/);
  });

  test('create, run the schedule, inspect runs and status, pause; the state survives down and up', async () => {
    const up = await cli('local', 'up');
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stdout, /started/);

    const created = await json<{ status: string; version: number; s3_encryption?: string }>(
      'pipelines',
      'create',
      ...pipeline,
      '--frequency',
      'daily',
      '--timezone',
      'UTC',
      '--from',
      '2024-03-08',
    );
    assert.deepEqual([created.status, created.version, created.s3_encryption], ['active', 1, undefined]);

    const invalid = await cli(
      'pipelines',
      'create',
      '--project',
      'shop',
      '--name',
      'bad',
      '--frequency',
      'daily',
      '--timezone',
      'Mars/Olympus',
      '--from',
      '2024-03-08',
      '--s3-encryption',
      'kms',
      '--where',
      'plan == "pro"',
    );
    assert.equal(invalid.code, 2);
    assert.match(invalid.stderr, /--timezone: unknown time zone "Mars\/Olympus"/);
    assert.match(
      invalid.stderr,
      /--where: at character 1: unknown name "plan": write a property as properties\["plan"\]/,
    );
    assert.match(invalid.stderr, /--s3-kms-key-id: is required when s3_encryption is "kms"/);

    const overlapping = await cli(
      'pipelines',
      'create',
      '--project',
      'shop',
      '--name',
      'copy',
      '--frequency',
      'hourly',
      '--timezone',
      'UTC',
      '--from',
      '2024-03-09',
    );
    assert.equal(overlapping.code, 4, 'a rule refuses it');
    assert.match(overlapping.stderr, /overlap "daily"/);

    // A people pipeline is not an events pipeline: it does not overlap; a second one to the same place does.
    const snapshot = [
      '--data-source',
      'people',
      '--frequency',
      'daily',
      '--timezone',
      'UTC',
      '--from',
      '2024-03-08',
    ];
    const people = await json<{ data_source: string; status: string; format: string; compression: string }>(
      'pipelines',
      'create',
      '--project',
      'shop',
      '--name',
      'people',
      ...snapshot,
      ...['--format', 'parquet', '--compression', 'zstd'],
    );
    assert.deepEqual(
      [people.data_source, people.status, people.format, people.compression],
      ['people', 'active', 'parquet', 'zstd'],
    );
    const twin = await cli('pipelines', 'create', '--project', 'shop', '--name', 'people-2', ...snapshot);
    assert.equal(twin.code, 4);
    assert.match(twin.stderr, /"people" already writes the people snapshot/);

    const run = await cli('local', 'schedule', '--until', '2024-03-11T06:00:00Z');
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /shop\/daily: 3 steps committed/);
    assert.match(run.stdout, /shop\/people: 3 steps committed/, 'one snapshot per daily tick');
    assert.match(run.stdout, /reconciliation: balanced/);

    // The reconciliation from the records alone, as for a deployment; a planted difference fails it.
    const reconciled = await json<{ pipeline: string; reconciliation: { problems: string[] } }[]>(
      'reconcile',
      '--project',
      'shop',
    );
    assert.deepEqual(
      reconciled.map((r) => [r.pipeline, r.reconciliation.problems]),
      [
        ['daily', []],
        ['people', []],
      ],
    );
    const oneDay = await cli('reconcile', ...pipeline, '--from', '2024-03-09', '--to', '2024-03-09');
    assert.equal(oneDay.code, 0, oneDay.stderr);
    assert.match(oneDay.stdout, /2024-03-09/);
    assert.doesNotMatch(oneDay.stdout, /2024-03-08/);
    const badDate = await cli('reconcile', '--project', 'shop', '--from', 'March');
    assert.equal(badDate.code, 2);
    assert.match(badDate.stderr, /--from/);
    const recordFile = `${home.path}/state/shop/daily/runs/daily-2024-03-09.json`;
    const original = await readFile(recordFile, 'utf8');
    const record = JSON.parse(original) as { days: Record<string, { exported: number }> };
    record.days['2024-03-09']!.exported -= 1;
    await writeFile(recordFile, JSON.stringify(record));
    const unbalanced = await cli('reconcile', ...pipeline);
    assert.equal(unbalanced.code, 1);
    assert.match(
      unbalanced.stdout,
      /daily-2024-03-09, event day 2024-03-09: ingest routed \d+ events to it but it exported/,
    );
    await writeFile(recordFile, original);

    const runs = await json<{ step_id: string; status: string; exported: number }[]>(
      'runs',
      'list',
      ...pipeline,
    );
    assert.deepEqual(
      runs.map((r) => [r.step_id, r.status]),
      [
        ['daily-2024-03-10', 'succeeded'],
        ['daily-2024-03-09', 'succeeded'],
        ['daily-2024-03-08', 'succeeded'],
      ],
    );
    assert.ok(runs.every((r) => r.exported > 0));
    const one = await json<{ step_id: string; kind: string }>(
      'runs',
      'show',
      ...pipeline,
      '--step',
      'daily-2024-03-09',
    );
    assert.equal(one.kind, 'regular');
    const missing = await cli('runs', 'show', ...pipeline, '--step', 'daily-1999-01-01');
    assert.equal(missing.code, 3);

    const status = await json<{
      now: string;
      pipelines: {
        sla: string;
        windows: { exported: number; due: number };
        next_step: { step_id: string };
      }[];
    }>('status');
    assert.equal(status.now, '2024-03-11T06:00:00.000Z', 'status reads the simulated clock');
    assert.equal(status.pipelines[0]?.sla, 'ok');
    assert.deepEqual(status.pipelines[0]?.windows, { exported: 3, due: 3 });
    assert.equal(status.pipelines[0]?.next_step.step_id, 'daily-2024-03-11');

    assert.equal((await cli('pipelines', 'pause', ...pipeline)).code, 0);
    const noSuch = await cli('pipelines', 'pause', '--project', 'shop', '--name', 'nope');
    assert.equal(noSuch.code, 3);
    assert.match(noSuch.stderr, /no pipeline shop\/nope/);

    assert.equal((await cli('local', 'down')).code, 0);
    assert.equal((await cli('pipelines', 'list')).code, 2, 'down means down');
    assert.equal((await cli('local', 'up')).code, 0);
    const listed = await json<{ name: string; status: string; version: number }[]>('pipelines', 'list');
    assert.deepEqual(
      listed.map((p) => [p.name, p.status, p.version]),
      [
        ['daily', 'paused', 2],
        ['people', 'active', 1],
      ],
    );
    const after = await json<{ pipelines: { windows: { exported: number } }[] }>('status');
    assert.equal(after.pipelines[0]?.windows.exported, 3, 'the run history survived too');
  });

  test("`local run --home` runs on the home's emulator and leaves the home's tables as they were", async () => {
    const server = JSON.parse(await readFile(`${home.path}/local.json`, 'utf8')) as { endpoint: string };
    const dynamo = dynamoClientFor(server.endpoint);
    const tables = async () => (await dynamo.send(new ListTablesCommand({}))).TableNames ?? [];
    try {
      const before = await tables();
      const run = await json<{
        ok: boolean;
        steps: { exported: number }[];
        reconciliation: { problems: unknown[] };
      }>(...localRun(`${home.path}/run-out`));
      assert.equal(run.ok, true);
      assert.deepEqual(run.reconciliation.problems, []);
      assert.equal(run.steps.length, 2, 'the days of 8 and 9 March');
      assert.ok(run.steps.every((step) => step.exported > 0));
      assert.deepEqual(await tables(), before, "the run dropped its own tables and kept the home's");
      const listed = await json<{ name: string }[]>('pipelines', 'list');
      assert.deepEqual(
        listed.map((p) => p.name),
        ['daily', 'people'],
        "the run's config went to its own tables",
      );
    } finally {
      dynamo.destroy();
    }

    const down = await tempFolder('cli-home-down');
    try {
      const refused = await runCli([...localRun(`${down.path}/out`), '--home', down.path], QUIET);
      assert.equal(refused.code, 2);
      assert.match(
        refused.stderr,
        /--home: the local home .* is not up: start it with `mp-pipelines local up`/,
      );
    } finally {
      await down.cleanup();
    }
  });
});
