/**
 * Output part formats read back by independent readers: DuckDB (its own gzip, zstd, JSON and Parquet
 * code), fzstd (a pure-JS zstd decoder) and node:zlib. Records written through each format's parts
 * must read back as the same rows as the JSON gzip parts, with `time` as a timestamp, and the Parquet
 * files must have the intended column types, row groups and statistics.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import zlib, { gunzipSync } from 'node:zlib';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { decompress as fzstdDecompress } from 'fzstd';
import { FsObjectStore } from '../../src/adapters/fs-object-store.js';
import { parseEventLine } from '../../src/core/event-line.js';
import { isStream, type ObjectInfo, type ObjectStore } from '../../src/core/object-store.js';
import {
  EVENT_RECORD,
  IDENTITY_RECORD,
  PROFILE_RECORD,
  type RecordShape,
  RecordSplitter,
} from '../../src/core/record-columns.js';
import { RollingWriters, type WrittenObject } from '../../src/engine/object-writers.js';
import {
  type PartFormat,
  type PartOpenerOptions,
  type PartWriter,
  partExtension,
  partOpener,
  type RowGroupLimits,
} from '../../src/engine/part-formats.js';
import { defaultZstdBackend, FRAME_BYTES } from '../../src/engine/zstd.js';
import { eventLine, Random } from '../../src/local/generate.js';
import { tempFolder } from '../support/fixtures.js';

// ---- data --------------------------------------------------------------------------------------

const DAY = Date.UTC(2026, 2, 29); // a DST day in Europe

/** Realistic events plus lines with escapes, unicode, number and missing ids, and big integers. */
function eventRecords(count: number): Buffer[] {
  const rng = new Random(16);
  const lines: string[] = [
    '{"event":"Tab\\tand \\"quote\\" \\u00e9\\ud83d\\ude00","properties":{"time":1774742400.5,' +
      '"distinct_id":"\\u6771\\u4eac","$insert_id":12345678901234567890,"$user_id":null,' +
      '"big":123456789012345678901234567890,"f":1.50,"nested":{"a":[1,{"b":"\\/"}]}}}',
    '{"event":"東京 😀","properties":{"time":1774796399999,"distinct_id":42,"$device_id":"dév",' +
      '"$insert_id":"x","k":1,"k":2}}',
    '{"event":"Bare","properties":{"time":0}}',
  ];
  for (let i = lines.length; i < count; i++) {
    const user = rng.int(1, 500);
    const time = DAY + rng.int(0, 86_399_999);
    lines.push(
      eventLine(rng, rng.pick(['Page View', 'Purchase', 'Sign Up']), time, {
        distinctId: `user-${user}`,
        deviceId: `device-${user}`,
        userId: rng.chance(0.6) ? `user-${user}` : undefined,
        insertId: rng.chance(0.9) ? rng.hex(32) : undefined,
        accountId: `9${String(user).padStart(18, '0')}`,
      }),
    );
  }
  return lines.map((line) => {
    const event = parseEventLine(Buffer.from(line, 'utf8'));
    assert.ok(event.ok, line);
    return event.record;
  });
}

function profileRecords(count: number): Buffer[] {
  return Array.from({ length: count }, (_, i) => {
    const profile = {
      $name: `Nützer ${i}`,
      $email: `u${i}@example.com`,
      plan: i % 3 === 0 ? 'pro' : 'free',
      n: i,
    };
    return Buffer.from(
      `{"distinct_id":${JSON.stringify(`user-${i}`)},"properties":${JSON.stringify(profile)}}`,
    );
  });
}

function identityRecords(count: number): Buffer[] {
  return Array.from({ length: count }, (_, i) =>
    Buffer.from(`{"distinct_id":${JSON.stringify(`device-${i}`)},"resolved_distinct_id":"user-${i % 7}"}`),
  );
}

// ---- writing -----------------------------------------------------------------------------------

/** Records every put, to see whether a part was stored whole or streamed. */
class RecordingStore implements ObjectStore {
  readonly puts: { key: string; streamed: boolean }[] = [];
  constructor(private readonly inner: ObjectStore) {}
  get description() {
    return this.inner.description;
  }
  get(key: string, from?: number) {
    return this.inner.get(key, from);
  }
  getBytes(key: string) {
    return this.inner.getBytes(key);
  }
  uri(key: string) {
    return this.inner.uri(key);
  }
  put(key: string, body: Parameters<ObjectStore['put']>[1]) {
    this.puts.push({ key, streamed: isStream(body) });
    return this.inner.put(key, body);
  }
  putIfAbsent(key: string, body: Buffer) {
    return this.inner.putIfAbsent(key, body);
  }
  list(prefix: string): AsyncIterable<ObjectInfo> {
    return this.inner.list(prefix);
  }
  delete(keys: readonly string[]) {
    return this.inner.delete(keys);
  }
}

/** Writes `records` through rolling parts of `format` under `prefix`; returns the parts in order. */
async function writeParts(
  store: ObjectStore,
  prefix: string,
  format: PartFormat,
  shape: RecordShape,
  records: readonly Buffer[],
  maxPartBytes: number,
  options: PartOpenerOptions = {},
): Promise<WrittenObject[]> {
  const open = await partOpener(format, shape, options);
  const parts = new RollingWriters<string, PartWriter, WrittenObject>({
    maxOpen: 2,
    maxUncompressedBytes: maxPartBytes,
    open: (_, seq) => open(store, `${prefix}/p${String(seq).padStart(3, '0')}${partExtension(format)}`),
    close: (writer) => writer.close(),
  });
  for (const [i, record] of records.entries()) {
    parts.segmentFor('day', record.length + 1).add(record);
    if (i % 100 === 99) await parts.settle();
  }
  return parts.finish();
}

// ---- reading -----------------------------------------------------------------------------------

const EVENT_JSON_COLUMNS =
  "{event_name:'VARCHAR',time:'BIGINT',distinct_id:'VARCHAR',device_id:'VARCHAR',user_id:'VARCHAR'," +
  "insert_id:'VARCHAR',properties:'JSON'}";

function fileList(root: string, parts: readonly WrittenObject[]): string {
  return `[${parts.map((p) => `'${root}/${p.key}'`).join(',')}]`;
}

async function rows(db: DuckDBConnection, sql: string): Promise<Record<string, unknown>[]> {
  return (await db.runAndReadAll(sql)).getRowObjectsJS();
}

/** Rows that one query has and the other has not, both ways (multisets). */
async function difference(db: DuckDBConnection, a: string, b: string): Promise<number> {
  const [row] = await rows(
    db,
    `select (select count(*) from ((${a}) except all (${b}))) + (select count(*) from ((${b}) except all (${a}))) as n`,
  );
  return Number(row?.n);
}

function lines(bytes: Buffer): Buffer[] {
  const text = bytes.toString('utf8');
  assert.ok(text.endsWith('\n'));
  return text
    .slice(0, -1)
    .split('\n')
    .map((line) => Buffer.from(line, 'utf8'));
}

// ---- tests -------------------------------------------------------------------------------------

describe('part formats read back by independent readers', () => {
  let folder: { path: string; cleanup: () => Promise<void> };
  let recording: RecordingStore;
  let instance: DuckDBInstance;
  let db: DuckDBConnection;
  const events = eventRecords(3000);
  const eventBytes = events.reduce((n, r) => n + r.length + 1, 0);
  /** About three parts of the events. */
  const maxPartBytes = Math.ceil(eventBytes / 3) + 4096;
  const smallGroups: RowGroupLimits = { maxBytes: 200 * 1024, maxRows: 1_000_000 };
  let reference: WrittenObject[];

  before(async () => {
    folder = await tempFolder('formats');
    recording = new RecordingStore(new FsObjectStore(folder.path));
    instance = await DuckDBInstance.create(':memory:');
    db = await instance.connect();
    reference = await writeParts(
      recording,
      'json-gzip',
      { format: 'json', compression: 'gzip' },
      EVENT_RECORD,
      events,
      maxPartBytes,
    );
  });
  after(async () => {
    db.closeSync();
    instance.closeSync();
    await folder.cleanup();
  });

  const referenceQuery = () =>
    'select event_name, time, distinct_id, device_id, user_id, insert_id, json(properties)::VARCHAR as properties ' +
    `from read_json(${fileList(folder.path, reference)}, format='newline_delimited', columns=${EVENT_JSON_COLUMNS})`;

  test('JSON gzip parts hold the records byte for byte, split by the part cap', async () => {
    assert.equal(reference.length, 3);
    assert.equal(
      reference.reduce((n, p) => n + p.records, 0),
      events.length,
    );
    const read = (await Promise.all(reference.map((p) => recording.getBytes(p.key)))).flatMap((bytes) =>
      lines(gunzipSync(bytes!)),
    );
    assert.deepEqual(read, events);
  });

  for (const backend of ['wasm', 'node:zlib'] as const) {
    test(`JSON zstd parts (${backend}) read back whole by DuckDB, fzstd and node:zlib`, async (t) => {
      if (backend === 'node:zlib' && defaultZstdBackend() !== 'node:zlib') {
        t.skip(`node:zlib has no zstd in Node ${process.version}`);
        return;
      }
      // Arrange / Act: four times the events, so a part spans several WASM frames (FRAME_BYTES).
      const many = [...events, ...events, ...events, ...events];
      const parts = await writeParts(
        recording,
        `json-zstd-${backend.replace(':', '-')}`,
        { format: 'json', compression: 'zstd' },
        EVENT_RECORD,
        many,
        Math.ceil((4 * eventBytes) / 2),
        { zstdBackend: backend },
      );

      // Assert: exact bytes through independent decoders, the same rows as the gzip parts through DuckDB.
      assert.equal(parts.length, 2);
      assert.ok(parts.every((p) => p.uncompressedBytes > FRAME_BYTES));
      const stored = await Promise.all(parts.map(async (p) => (await recording.getBytes(p.key))!));
      assert.deepEqual(
        stored.flatMap((bytes) => lines(Buffer.from(fzstdDecompress(bytes)))),
        many,
      );
      // node:zlib reads a single frame only, which is what it writes.
      if (backend === 'node:zlib') {
        const { zstdDecompressSync } = zlib as unknown as { zstdDecompressSync: (b: Buffer) => Buffer };
        assert.deepEqual(
          stored.flatMap((bytes) => lines(zstdDecompressSync(bytes))),
          many,
        );
      }
      const zstdQuery =
        'select event_name, time, distinct_id, device_id, user_id, insert_id, json(properties)::VARCHAR as properties ' +
        `from read_json(${fileList(folder.path, parts)}, format='newline_delimited', compression='zstd', ` +
        `columns=${EVENT_JSON_COLUMNS})`;
      const fourTimes = [1, 2, 3, 4].map(() => referenceQuery()).join(' union all ');
      assert.equal(await difference(db, fourTimes, zstdQuery), 0);
      const [count] = await rows(db, `select count(*) as n from (${zstdQuery})`);
      assert.equal(Number(count?.n), many.length);
    });
  }

  for (const backend of ['wasm', 'node:zlib'] as const) {
    test(`Parquet zstd pages (${backend}) read back by DuckDB`, async (t) => {
      if (backend === 'node:zlib' && defaultZstdBackend() !== 'node:zlib') {
        t.skip(`node:zlib has no zstd in Node ${process.version}`);
        return;
      }
      const parts = await writeParts(
        recording,
        `parquet-zstd-${backend.replace(':', '-')}`,
        { format: 'parquet', compression: 'zstd', rowGroup: smallGroups },
        EVENT_RECORD,
        events,
        maxPartBytes,
        { zstdBackend: backend },
      );
      const parquetQuery =
        'select event_name, epoch_ms(time) as time, distinct_id, device_id, user_id, insert_id, ' +
        `json(properties)::VARCHAR as properties from read_parquet(${fileList(folder.path, parts)})`;
      assert.equal(await difference(db, referenceQuery(), parquetQuery), 0);
    });
  }

  for (const compression of ['snappy', 'zstd', 'gzip'] as const) {
    test(`Parquet ${compression}: same rows as JSON gzip, typed columns, row groups and statistics`, async () => {
      // Arrange / Act
      const parts = await writeParts(
        recording,
        `parquet-${compression}`,
        { format: 'parquet', compression, rowGroup: smallGroups },
        EVENT_RECORD,
        events,
        maxPartBytes,
      );
      const files = fileList(folder.path, parts);

      // Same parts as the JSON output: the cap counts NDJSON bytes whatever the format.
      assert.deepEqual(
        parts.map((p) => [p.records, p.uncompressedBytes]),
        reference.map((p) => [p.records, p.uncompressedBytes]),
      );

      // Same rows as the JSON gzip parts, compared as data, `time` read as a timestamp.
      const parquetQuery =
        'select event_name, epoch_ms(time) as time, distinct_id, device_id, user_id, insert_id, ' +
        `json(properties)::VARCHAR as properties from read_parquet(${files})`;
      assert.equal(await difference(db, referenceQuery(), parquetQuery), 0);

      // Exact values in input order: strings decoded, properties the input's bytes.
      const read = await rows(
        db,
        'select event_name, epoch_ms(time) as time, distinct_id, device_id, user_id, insert_id, properties ' +
          `from read_parquet(${files}, filename=true, file_row_number=true) order by filename, file_row_number`,
      );
      const splitter = new RecordSplitter(EVENT_RECORD);
      assert.equal(read.length, events.length);
      events.forEach((record, i) => {
        splitter.split(record);
        const row = read[i]!;
        assert.deepEqual(
          [row.event_name, Number(row.time), row.distinct_id, row.device_id, row.user_id, row.insert_id],
          [
            splitter.string(0),
            splitter.timeMs,
            splitter.string(2),
            splitter.string(3),
            splitter.string(4),
            splitter.string(5),
          ],
        );
        assert.equal(row.properties, Buffer.from(splitter.bytes(6)).toString('utf8'));
      });

      // Column types as intended.
      const types = await rows(
        db,
        `select name, type, converted_type, logical_type, repetition_type from parquet_schema('${folder.path}/${parts[0]!.key}') where type is not null`,
      );
      assert.deepEqual(
        types.map((t) => [t.name, t.type, t.converted_type, t.repetition_type]),
        [
          ['event_name', 'BYTE_ARRAY', 'UTF8', 'REQUIRED'],
          ['time', 'INT64', 'TIMESTAMP_MILLIS', 'REQUIRED'],
          ['distinct_id', 'BYTE_ARRAY', 'UTF8', 'OPTIONAL'],
          ['device_id', 'BYTE_ARRAY', 'UTF8', 'OPTIONAL'],
          ['user_id', 'BYTE_ARRAY', 'UTF8', 'OPTIONAL'],
          ['insert_id', 'BYTE_ARRAY', 'UTF8', 'OPTIONAL'],
          ['properties', 'BYTE_ARRAY', 'UTF8', 'REQUIRED'],
        ],
      );
      assert.match(
        String(types[1]!.logical_type),
        /TimestampType\(isAdjustedToUTC=1, unit=.*MILLIS=MilliSeconds/,
      );
      const [described] = await rows(db, `select typeof(time) as t from read_parquet(${files}) limit 1`);
      assert.equal(described?.t, 'TIMESTAMP WITH TIME ZONE');

      for (const part of parts)
        await assertRowGroupsAndStatistics(db, `${folder.path}/${part.key}`, compression);
    });
  }

  /**
   * Row groups as designed (each closed at the first record that brings its values to `maxBytes`)
   * and statistics that bound every group's values, with exact null counts.
   */
  async function assertRowGroupsAndStatistics(db: DuckDBConnection, file: string, compression: string) {
    const meta = await rows(
      db,
      'select row_group_id, row_group_num_rows, path_in_schema, stats_min_value, stats_max_value, ' +
        `stats_null_count, compression from parquet_metadata('${file}') order by row_group_id, column_id`,
    );
    assert.ok(meta.every((m) => m.compression === compression.toUpperCase()));
    const groups = [...new Set(meta.map((m) => Number(m.row_group_id)))];
    assert.ok(groups.length > 1, 'several row groups per part');
    const values = await rows(
      db,
      `select * exclude (time), epoch_ms(time) as time from read_parquet('${file}', file_row_number=true) order by file_row_number`,
    );
    const bytesOf = (row: Record<string, unknown>) =>
      8 +
      EVENT_RECORD.fields.reduce(
        (n, f) =>
          n + (f.kind === 'time' || row[f.name] === null ? 0 : Buffer.byteLength(String(row[f.name]))),
        0,
      );
    let first = 0;
    for (const group of groups) {
      const columns = meta.filter((m) => Number(m.row_group_id) === group);
      const count = Number(columns[0]!.row_group_num_rows);
      const inGroup = values.slice(first, first + count);
      first += count;
      const held = inGroup.reduce((n, row) => n + bytesOf(row), 0);
      if (group < groups.length - 1) {
        assert.ok(held >= 200 * 1024, `group ${group} closed at ${held} bytes`);
        assert.ok(held - bytesOf(inGroup.at(-1)!) < 200 * 1024, `group ${group} closed late`);
      } else assert.ok(held < 200 * 1024 + bytesOf(inGroup.at(-1)!));
      for (const column of columns) {
        const name = String(column.path_in_schema);
        const present = inGroup.map((row) => row[name]).filter((v) => v !== null);
        assert.equal(Number(column.stats_null_count), count - present.length, `${name} null count`);
        if (name === 'time') {
          const times = present.map(Number);
          const [bounds] = await rows(
            db,
            `select epoch_ms('${column.stats_min_value}'::TIMESTAMPTZ) as lo, epoch_ms('${column.stats_max_value}'::TIMESTAMPTZ) as hi`,
          );
          assert.deepEqual(
            [Number(bounds?.lo), Number(bounds?.hi)],
            [Math.min(...times), Math.max(...times)],
          );
          continue;
        }
        const sorted = present.map((v) => Buffer.from(String(v), 'utf8')).sort(Buffer.compare);
        const min = Buffer.from(String(column.stats_min_value), 'utf8');
        const max = Buffer.from(String(column.stats_max_value), 'utf8');
        const lowest = sorted[0]!;
        const highest = sorted.at(-1)!;
        // Bounds are cut to 16 bytes: a prefix of the lowest value, at least the highest one.
        assert.deepEqual(min, lowest.subarray(0, min.length), `${name} min`);
        assert.ok(min.length === lowest.length || min.length === 16, `${name} min length`);
        assert.ok(Buffer.compare(max, highest) >= 0, `${name} max`);
        if (highest.length <= 16) assert.deepEqual(max, highest, `${name} max`);
      }
    }
  }

  test('Parquet row groups also close at maxRows', async () => {
    const parts = await writeParts(
      recording,
      'parquet-rows',
      { format: 'parquet', compression: 'snappy', rowGroup: { maxBytes: 1 << 30, maxRows: 700 } },
      EVENT_RECORD,
      events,
      1 << 30,
    );
    const groups = await rows(
      db,
      `select distinct row_group_id, row_group_num_rows from parquet_metadata('${folder.path}/${parts[0]!.key}') order by 1`,
    );
    assert.deepEqual(
      groups.map((g) => Number(g.row_group_num_rows)),
      [700, 700, 700, 700, 200],
    );
  });

  test('a Parquet part of one row group is stored with one put; a longer one streams', async () => {
    recording.puts.length = 0;
    const open = await partOpener(
      { format: 'parquet', compression: 'zstd', rowGroup: smallGroups },
      EVENT_RECORD,
    );
    const small = open(recording, 'stream/small.parquet');
    for (const record of events.slice(0, 10)) small.add(record);
    await small.close();
    const large = open(recording, 'stream/large.parquet');
    for (const record of events) {
      large.add(record);
      if (large.backpressured) await large.drain();
    }
    const written = await large.close();
    assert.deepEqual(recording.puts, [
      { key: 'stream/small.parquet', streamed: false },
      { key: 'stream/large.parquet', streamed: true },
    ]);
    const [count] = await rows(db, `select count(*) as n from '${folder.path}/stream/large.parquet'`);
    assert.equal(Number(count?.n), events.length);
    assert.equal(written.bytes, (await recording.getBytes('stream/large.parquet'))!.length);
  });

  test('Parquet values longer than a column block, between short ones, over groups that reuse the blocks', async () => {
    // Profiles of 5 bytes to 2.5 MiB of properties: some span the 1 MiB blocks, some need their own.
    const sizes = [5, 3 << 20, 10, (5 << 20) / 2, 200_000, 7, 1 << 20, 900_000, 12, 2 << 20];
    const records = [...sizes, ...sizes.toReversed()].map((size, i) =>
      Buffer.from(`{"distinct_id":"u${i}","properties":{"p":"${'x'.repeat(size)}"}}`),
    );
    const parts = await writeParts(
      recording,
      'parquet-long',
      { format: 'parquet', compression: 'snappy', rowGroup: { maxBytes: 4 << 20, maxRows: 1_000_000 } },
      PROFILE_RECORD,
      records,
      1 << 30,
    );
    const file = `${folder.path}/${parts[0]!.key}`;
    const read = await rows(
      db,
      `select distinct_id, properties from read_parquet('${file}', file_row_number=true) order by file_row_number`,
    );
    assert.deepEqual(
      read.map((r) => Buffer.from(`{"distinct_id":"${r.distinct_id}","properties":${r.properties}}`)),
      records,
    );
    const [groups] = await rows(
      db,
      `select count(distinct row_group_id) as n from parquet_metadata('${file}')`,
    );
    assert.ok(Number(groups?.n) >= 4, `${groups?.n} row groups`);
  });

  test('an empty Parquet part is a valid file with the schema and no rows', async () => {
    const open = await partOpener({ format: 'parquet', compression: 'gzip' }, EVENT_RECORD);
    const written = await open(recording, 'empty.parquet').close();
    assert.equal(written.records, 0);
    const [count] = await rows(db, `select count(*) as n from '${folder.path}/empty.parquet'`);
    assert.equal(Number(count?.n), 0);
  });

  test('people and identity snapshots as Parquet: their columns, the same rows as their JSON', async () => {
    for (const [shape, records, columns] of [
      [PROFILE_RECORD, profileRecords(2000), "{distinct_id:'VARCHAR',properties:'JSON'}"],
      [IDENTITY_RECORD, identityRecords(2000), "{distinct_id:'VARCHAR',resolved_distinct_id:'VARCHAR'}"],
    ] as const) {
      const name = shape.fields.map((f) => f.name).join('-');
      const json = await writeParts(
        recording,
        `${name}-json`,
        { format: 'json', compression: 'gzip' },
        shape,
        records,
        1 << 30,
      );
      const parquet = await writeParts(
        recording,
        `${name}-parquet`,
        { format: 'parquet', compression: 'zstd', rowGroup: { maxBytes: 16 * 1024, maxRows: 1000 } },
        shape,
        records,
        1 << 30,
      );
      const cast = (column: string) => (column === 'properties' ? 'json(properties)::VARCHAR' : column);
      const select = shape.fields.map((f) => `${cast(f.name)} as ${f.name}`).join(', ');
      const fromJson = `select ${select} from read_json(${fileList(folder.path, json)}, format='newline_delimited', columns=${columns})`;
      const parquetSelect = shape.fields
        .map((f) => (f.name === 'properties' ? 'json(properties)::VARCHAR as properties' : f.name))
        .join(', ');
      const fromParquet = `select ${parquetSelect} from read_parquet(${fileList(folder.path, parquet)})`;
      assert.equal(await difference(db, fromJson, fromParquet), 0, name);
      const types = await rows(
        db,
        `select name, converted_type, repetition_type from parquet_schema('${folder.path}/${parquet[0]!.key}') where type is not null`,
      );
      assert.deepEqual(
        types.map((t) => [t.name, t.converted_type, t.repetition_type]),
        shape.fields.map((f) => [f.name, 'UTF8', 'REQUIRED']),
      );
      const [groups] = await rows(
        db,
        `select count(distinct row_group_id) as n from parquet_metadata('${folder.path}/${parquet[0]!.key}')`,
      );
      assert.ok(Number(groups?.n) >= 2, `${name} row groups`);
    }
  });

  test('formats are checked: a clear error for a level out of range or a level for snappy', async () => {
    await assert.rejects(
      partOpener({ format: 'json', compression: 'zstd', level: 20 }, EVENT_RECORD),
      /zstd compression level must be an integer 1-19, got 20/,
    );
    await assert.rejects(
      partOpener({ format: 'parquet', compression: 'gzip', level: 0 }, EVENT_RECORD),
      /gzip compression level must be an integer 1-9, got 0/,
    );
    await assert.rejects(
      partOpener({ format: 'parquet', compression: 'snappy', level: 3 }, EVENT_RECORD),
      /snappy has no compression level/,
    );
    await assert.rejects(
      partOpener(
        { format: 'parquet', compression: 'zstd', rowGroup: { maxBytes: 0, maxRows: 10 } },
        EVENT_RECORD,
      ),
      /row group limits must be positive/,
    );
  });
});
