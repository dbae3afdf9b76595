import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { runCli as cli } from '../support/cli.js';
import { tempFolder } from '../support/fixtures.js';

function event(name: string, time: number, distinctId: string, insertId?: string, extra = ''): string {
  const insert = insertId === undefined ? '' : `,"$insert_id":"${insertId}"`;
  return `{"event":"${name}","properties":{"time":${time},"distinct_id":"${distinctId}"${insert}${extra}}}`;
}

/** Writes one landing-zone object. */
async function land(
  raw: string,
  utcHour: string,
  file: string,
  lines: string[],
  gzip = false,
): Promise<void> {
  const [date, hour] = utcHour.split('T') as [string, string];
  const folder = join(raw, 'shop', 'events', ...date.split('-'), hour);
  await mkdir(folder, { recursive: true });
  const text = `${lines.join('\n')}\n`;
  await writeFile(join(folder, file), gzip ? gzipSync(text) : text);
}

async function readParts(
  out: string,
  day: string,
): Promise<{ files: string[]; records: Record<string, unknown>[] }> {
  const folder = join(out, 'shop', 'mp_master_event', ...day.split('-'));
  const files = (await readdir(folder)).sort();
  const records = [];
  for (const file of files.filter((f) => f.endsWith('.json.gz'))) {
    const text = gunzipSync(await readFile(join(folder, file))).toString('utf8');
    records.push(
      ...text
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    );
  }
  return { files, records };
}

/** `local run` over a landing zone and an output folder, for the UTC project `shop`. */
function localRun(raw: string, out: string): string[] {
  return ['local', 'run', '--raw', raw, '--out', out, '--project', 'shop', '--timezone', 'UTC'];
}

const T_JAN1_NOON_UTC = Date.parse('2024-01-01T12:00:00Z') / 1000;

describe('mp-pipelines local run', () => {
  let raw: { path: string; cleanup: () => Promise<void> };
  before(async () => {
    raw = await tempFolder('cli-raw');
    // UTC project. On Jan 1 at 12:xx: an event, its re-sent copy, an id-less pair and a malformed line.
    await land(raw.path, '2024-01-01T12', 'a.json', [
      event('Purchase', T_JAN1_NOON_UTC, 'u1', 'ins-1', ',"big":12345678901234567890123'),
      event('Purchase', T_JAN1_NOON_UTC, 'u1', 'ins-1', ',"big":12345678901234567890123'),
      event('Ping', T_JAN1_NOON_UTC + 1, 'u2'),
      event('Ping', T_JAN1_NOON_UTC + 1, 'u2'),
      '{"event":"Broken","properties":{"time":',
    ]);
    // Jan 1 data that arrives on Jan 3, and a late copy of ins-1 arriving the same day.
    await land(
      raw.path,
      '2024-01-03T09',
      'late.json.gz',
      [
        event('Signup', T_JAN1_NOON_UTC + 60, 'u3', 'ins-2'),
        event('Purchase', T_JAN1_NOON_UTC, 'u1', 'ins-1'),
      ],
      true,
    );
    // A line that is not valid UTF-8: quarantined with its exact bytes.
    const folder = join(raw.path, 'shop', 'events', '2024', '01', '01', '13');
    await mkdir(folder, { recursive: true });
    await writeFile(
      join(folder, 'latin1.json'),
      Buffer.concat([Buffer.from('{"event":"Caf'), Buffer.from([0xe9]), Buffer.from('"}\n')]),
    );
    // Another copy of the late event, arriving a day later still.
    await land(raw.path, '2024-01-04T01', 'later.json', [
      event('Signup', T_JAN1_NOON_UTC + 60, 'u3', 'ins-2'),
    ]);
  });
  after(() => raw.cleanup());

  test('exports Jan 1 data arriving Jan 3 in the sync run on Jan 4 into the Jan 1 folder, once', async () => {
    const out = await tempFolder('cli-out');
    try {
      const flags = [
        ...localRun(raw.path, out.path),
        '--frequency',
        'daily',
        '--sync',
        '--from',
        '2024-01-01',
      ];

      // On Jan 2 at 03:00 the regular run of Jan 1 is due.
      const day2 = await cli([...flags, '--now', '2024-01-02T03:00:00Z']);
      assert.equal(day2.code, 0, day2.stderr);
      const regular = await readParts(out.path, '2024-01-01');
      assert.deepEqual(regular.records.map((r) => r.event_name).sort(), ['Ping', 'Ping', 'Purchase']);
      assert.ok(regular.files.includes('_manifest-events-daily.daily-2024-01-01.json'));

      // On Jan 4 at 02:20 (2 h after Jan 3, and the last arrival hour settled) the sync of Jan 3 has run;
      // the copies are dropped, the late event is extra files.
      const day4 = await cli([...flags, '--now', '2024-01-04T02:20:00Z']);
      assert.equal(day4.code, 0, day4.stderr);
      const synced = await readParts(out.path, '2024-01-01');
      assert.deepEqual(synced.records.map((r) => r.event_name).sort(), [
        'Ping',
        'Ping',
        'Purchase',
        'Signup',
      ]);
      assert.ok(synced.files.some((f) => f.startsWith('events-daily.sync-2024-01-03-t000-p000')));
      assert.ok(synced.files.includes('_manifest-events-daily.sync-2024-01-03.json'));

      // On Jan 5 the copy that arrived on Jan 4 is a duplicate too.
      const day5 = await cli([...flags, '--now', '2024-01-05T02:20:00Z']);
      assert.equal(day5.code, 0, day5.stderr);
      assert.equal((await readParts(out.path, '2024-01-01')).records.length, 4);
      assert.match(day5.stdout, /reconciliation: balanced/);
      // Every due window has a manifest, even an empty one: readers wait for it.
      const emptyDay = JSON.parse(
        await readFile(
          join(out.path, 'shop/mp_master_event/2024/01/04/_manifest-events-daily.daily-2024-01-04.json'),
          'utf8',
        ),
      ) as { records: number; parts: unknown[] };
      assert.equal(emptyDay.records, 0);
      assert.deepEqual(emptyDay.parts, []);

      // The record shape, and properties passed through byte for byte.
      const purchase = (await readParts(out.path, '2024-01-01')).records.find(
        (r) => r.event_name === 'Purchase',
      )!;
      assert.deepEqual(Object.keys(purchase), [
        'event_name',
        'time',
        'distinct_id',
        'device_id',
        'user_id',
        'insert_id',
        'properties',
      ]);
      assert.equal(purchase.time, T_JAN1_NOON_UTC * 1000);
      assert.equal(purchase.insert_id, 'ins-1');
      assert.equal(purchase.device_id, null);
      const partText = gunzipSync(
        await readFile(
          join(out.path, 'shop/mp_master_event/2024/01/01/events-daily.daily-2024-01-01-t000-p000.json.gz'),
        ),
      ).toString('utf8');
      assert.ok(partText.includes('"big":12345678901234567890123'));

      // The malformed line is quarantined with its reason and source.
      const quarantineDir = join(out.path, 'shop/_quarantine/events-daily/events/2024/01/01/12');
      const [quarantineFile] = await readdir(quarantineDir);
      const quarantined = JSON.parse(
        gunzipSync(await readFile(join(quarantineDir, quarantineFile!)))
          .toString('utf8')
          .trim(),
      );
      assert.equal(quarantined.reason, 'invalid_json');
      assert.deepEqual(quarantined.source, { key: 'shop/events/2024/01/01/12/a.json', line: 5 });
      assert.equal(quarantined.line, '{"event":"Broken","properties":{"time":');
      assert.equal(quarantined.line_base64, undefined, 'valid UTF-8 needs no copy of its bytes');
      const invalidDir = join(out.path, 'shop/_quarantine/events-daily/events/2024/01/01/13');
      const [invalidFile] = await readdir(invalidDir);
      const invalid = JSON.parse(
        gunzipSync(await readFile(join(invalidDir, invalidFile!)))
          .toString('utf8')
          .trim(),
      );
      assert.equal(invalid.reason, 'invalid_utf8');
      assert.deepEqual([...Buffer.from(invalid.line_base64, 'base64')].slice(13, 15), [0xe9, 0x22]);
    } finally {
      await out.cleanup();
    }
  });

  test('without --sync the late event is counted, not exported', async () => {
    const out = await tempFolder('cli-nosync');
    try {
      const result = await cli([
        ...localRun(raw.path, out.path),
        '--frequency',
        'hourly',
        '--from',
        '2024-01-01',
        '--now',
        '2024-01-06T00:00:00Z',
        '--json',
      ]);
      assert.equal(result.code, 0, result.stderr);
      const parsed = JSON.parse(result.stdout) as {
        reconciliation: { eventDays: { day: string; late_not_synced: number; on_time: number }[] };
      };
      const jan1 = parsed.reconciliation.eventDays.find((d) => d.day === '2024-01-01')!;
      assert.equal(jan1.late_not_synced, 3);
      assert.equal(jan1.on_time, 3);
      assert.ok(
        (await readParts(out.path, '2024-01-01')).files.includes(
          '_manifest-events-hourly.hourly-2024-01-01T1200+0000.json',
        ),
      );
    } finally {
      await out.cleanup();
    }
  });

  test('--help works on every command', async () => {
    for (const args of [['--help'], ['local', '--help'], ['local', 'run', '--help']]) {
      const result = await cli(args);
      assert.equal(result.code, 0);
      assert.match(result.stdout, /Usage: mp-pipelines/);
    }
  });

  const valid = [
    'local',
    'run',
    '--raw',
    '/tmp/r',
    '--out',
    '/tmp/o',
    '--project',
    'p',
    '--timezone',
    'UTC',
    '--frequency',
    'daily',
    '--from',
    '2024-01-01',
    '--now',
    '2024-01-02T03:00:00Z',
  ];
  const replace = (flag: string, value: string) => valid.map((v, i) => (valid[i - 1] === flag ? value : v));
  for (const [flag, bad, expected] of [
    ['--now', '2024-01-02', /--now/],
    ['--timezone', 'Mars/Olympus', /--timezone: .*Mars\/Olympus/],
    ['--from', '2024-02-30', /--from: must be a calendar date/],
    ['--frequency', 'weekly', /--frequency/],
    ['--project', 'a/b', /--project: must be/],
  ] as const) {
    test(`a bad ${flag} is an error that names the flag`, async () => {
      const result = await cli(replace(flag, bad));
      assert.notEqual(result.code, 0);
      assert.match(result.stderr, expected);
    });
  }

  test('a bad --where is an error that names the flag and the character', async () => {
    const result = await cli([...valid, '--where', 'properties["plan"] == "pro" && true']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--where: at character 29: unexpected "&": use "and"/);
  });

  test('--data-source identity writes the mapping snapshot; --sync with it names the flag', async () => {
    const out = await tempFolder('cli-identity');
    const identityRaw = await tempFolder('cli-identity-raw');
    try {
      const folder = join(identityRaw.path, 'shop', 'identity', '2024', '01', '01', '12');
      await mkdir(folder, { recursive: true });
      await writeFile(
        join(folder, 'ids.json'),
        [
          '{"event":"$identify","properties":{"$anon_id":"d1","$identified_id":"u1"}}',
          '{"distinct_id":"d2","resolved_distinct_id":"d1"}',
          '{"event":"$identify"}',
        ].join('\n'),
      );
      const args = [
        ...localRun(identityRaw.path, out.path),
        ...['--data-source', 'identity', '--frequency', 'daily', '--from', '2024-01-01'],
        ...['--now', '2024-01-02T03:00:00Z'],
      ];
      const result = await cli(args);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /shop\/identity-daily: ingested 24 arrival hours, ran 1 steps/);
      assert.match(result.stdout, /mp_identity_mappings_data/);
      const dir = join(out.path, 'shop', 'mp_identity_mappings_data');
      const manifest = JSON.parse(await readFile(join(dir, '_manifest-identity-daily.json'), 'utf8')) as {
        parts: { file: string }[];
        records: number;
      };
      assert.equal(manifest.records, 3);
      const rows = gunzipSync(await readFile(join(dir, manifest.parts[0]!.file)))
        .toString('utf8')
        .trimEnd()
        .split('\n');
      assert.deepEqual(rows, [
        '{"distinct_id":"d1","resolved_distinct_id":"u1"}',
        '{"distinct_id":"d2","resolved_distinct_id":"u1"}',
        '{"distinct_id":"u1","resolved_distinct_id":"u1"}',
      ]);
      const refused = await cli([...args, '--sync']);
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, /--sync: must be false for people and identity pipelines/);
    } finally {
      await out.cleanup();
      await identityRaw.cleanup();
    }
  });

  test('--format and --compression: Parquet zstd parts; a codec or level the format has not is named', async () => {
    const out = await tempFolder('cli-parquet');
    try {
      const args = [
        ...localRun(raw.path, out.path),
        ...['--frequency', 'daily', '--from', '2024-01-01', '--now', '2024-01-02T03:00:00Z'],
      ];
      const result = await cli([...args, '--format', 'parquet', '--compression', 'zstd']);
      assert.equal(result.code, 0, result.stderr);
      const { files } = await readParts(out.path, '2024-01-01');
      assert.deepEqual(
        files.map((f) => f.replace(/\.daily-2024-01-01-t\d+-p\d+/, '')),
        ['_manifest-events-daily.daily-2024-01-01.json', 'events-daily.parquet'],
      );
      const parquet = await readFile(
        join(out.path, 'shop', 'mp_master_event', '2024', '01', '01', files[1]!),
      );
      assert.equal(parquet.subarray(0, 4).toString('latin1'), 'PAR1');
      for (const [extra, expected] of [
        [
          ['--compression', 'snappy'],
          /--compression: "snappy" is not a codec of json parts: use "gzip", "zstd"/,
        ],
        [
          ['--format', 'parquet', '--compression', 'snappy', '--compression-level', '3'],
          /--compression-level: snappy has no levels/,
        ],
        [
          ['--compression', 'zstd', '--compression-level', '20'],
          /--compression-level: must be 1-19 for zstd/,
        ],
        [['--format', 'csv'], /--format.*csv.*json, parquet/],
      ] as const) {
        const refused = await cli([...args, ...extra]);
        assert.equal(refused.code, 2, extra.join(' '));
        assert.match(refused.stderr, expected);
      }
    } finally {
      await out.cleanup();
    }
  });

  test('a missing required flag is named', async () => {
    const result = await cli(valid.filter((_, i) => valid[i] !== '--raw' && valid[i - 1] !== '--raw'));
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /--raw/);
  });
});
