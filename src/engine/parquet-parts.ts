/**
 * Parquet parts (README "Output formats"), loaded by `partOpener` only for a Parquet pipeline: rows are
 * split into typed columns as they come and written out a row group at a time.
 */
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { ByteWriter, type ColumnSource, ParquetWriter, type SchemaElement } from 'hyparquet-writer';
import { snappyCompressor } from 'hysnappy';
import type { ObjectStore } from '../core/object-store.js';
import { type RecordField, type RecordShape, RecordSplitter } from '../core/record-columns.js';
import type { WrittenObject } from './object-writers.js';
import type { OpenPart, PartWriter, RowGroupLimits } from './part-formats.js';
import { loadZstd, type ZstdBackend } from './zstd.js';

/** An opener of Parquet parts holding records of `shape`, their pages compressed by `compression`. */
export async function parquetOpener(
  shape: RecordShape,
  compression: 'snappy' | 'gzip' | 'zstd',
  level: number,
  rowGroup: RowGroupLimits,
  zstdBackend: ZstdBackend | undefined,
): Promise<OpenPart> {
  const codec = await pageCodec(compression, level, zstdBackend);
  return (store, key) => new ParquetPartWriter(store, key, shape, codec, rowGroup);
}

type ParquetCodec = 'SNAPPY' | 'GZIP' | 'ZSTD';

interface PageCodec {
  readonly name: ParquetCodec;
  readonly compress: (page: Uint8Array) => Uint8Array;
}

async function pageCodec(
  compression: 'snappy' | 'gzip' | 'zstd',
  level: number,
  zstdBackend: ZstdBackend | undefined,
): Promise<PageCodec> {
  if (compression === 'snappy') return { name: 'SNAPPY', compress: snappyCompressor() };
  if (compression === 'gzip') return { name: 'GZIP', compress: (page) => gzipSync(page, { level }) };
  const zstd = await loadZstd(zstdBackend);
  return { name: 'ZSTD', compress: (page) => zstd.compress(page, level) };
}

/** The Parquet schema of records of `shape`: strings as UTF8, `time` as a UTC millisecond timestamp. */
export function parquetSchema(shape: RecordShape): SchemaElement[] {
  return [{ name: 'schema', num_children: shape.fields.length }, ...shape.fields.map(schemaElement)];
}

function schemaElement(field: RecordField): SchemaElement {
  if (field.kind === 'time') {
    return {
      name: field.name,
      type: 'INT64',
      repetition_type: 'REQUIRED',
      converted_type: 'TIMESTAMP_MILLIS',
      logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MILLIS' },
    };
  }
  // An object is its JSON text, exactly as in the JSON output: a string column every engine reads.
  return {
    name: field.name,
    type: 'BYTE_ARRAY',
    repetition_type: field.kind === 'nullable_string' ? 'OPTIONAL' : 'REQUIRED',
    converted_type: 'UTF8',
    logical_type: { type: 'STRING' },
  };
}

/** Parquet bytes produced so far, handed out after each row group (hyparquet calls `flush`). */
class ChunkedByteWriter extends ByteWriter {
  private readonly chunks: Buffer[] = [];

  flush(): void {
    if (this.index === 0) return;
    this.chunks.push(Buffer.from(this.buffer.slice(0, this.index)));
    this.index = 0;
  }

  take(): Buffer[] {
    return this.chunks.splice(0);
  }
}

/** The first block of a string column: a small part's columns stay small. */
const FIRST_BLOCK_BYTES = 64 * 1024;
/** Later blocks: large enough that a value rarely spans one, small enough to waste little. */
const BLOCK_BYTES = 1024 * 1024;

/**
 * The values of one string column of the buffered row group, in blocks that are filled in turn and
 * kept for the next group: a growing group never copies what it holds, and holds at most one block
 * more than its values (one contiguous buffer doubled as it grew, briefly holding three times them).
 */
class StringColumn {
  private readonly blocks: Buffer[] = [Buffer.allocUnsafe(FIRST_BLOCK_BYTES)];
  private block = 0;
  private used = 0;
  /** Per row: its block, its start in the block, and its length (-1 for null). */
  private blockOf = new Int32Array(1024);
  private starts = new Int32Array(1024);
  private lengths = new Int32Array(1024);

  /** Sets row `row` to `source[start, end)`, or to null when `start` is negative. */
  add(row: number, source: Uint8Array, start: number, end: number): void {
    if (row === this.starts.length) {
      this.blockOf = grown(this.blockOf);
      this.starts = grown(this.starts);
      this.lengths = grown(this.lengths);
    }
    if (start < 0) {
      this.lengths[row] = -1;
      return;
    }
    const length = end - start;
    let bytes = this.blocks[this.block]!;
    if (this.used + length > bytes.length) {
      this.block += 1;
      this.used = 0;
      bytes = this.blocks[this.block] ?? Buffer.allocUnsafe(0);
      if (bytes.length < length) {
        // A value longer than a block gets a block of its own size (replacing a smaller kept one).
        bytes = Buffer.allocUnsafe(Math.max(BLOCK_BYTES, length));
        this.blocks[this.block] = bytes;
      }
    }
    this.blockOf[row] = this.block;
    this.starts[row] = this.used;
    this.lengths[row] = length;
    let o = this.used;
    if (length > 64) bytes.set(new Uint8Array(source.buffer, source.byteOffset + start, length), o);
    // A loop beats a native call for short values.
    else for (let i = start; i < end; i++) bytes[o++] = source[i]!;
    this.used += length;
  }

  /** The first `rows` values as views of the blocks (valid until `clear`). */
  values(rows: number): (Uint8Array | null)[] {
    const out = new Array<Uint8Array | null>(rows);
    const blocks = this.blocks;
    for (let row = 0; row < rows; row++) {
      const length = this.lengths[row]!;
      if (length < 0) {
        out[row] = null;
        continue;
      }
      const { buffer, byteOffset } = blocks[this.blockOf[row]!]!;
      out[row] = new Uint8Array(buffer, byteOffset + this.starts[row]!, length);
    }
    return out;
  }

  clear(): void {
    this.block = 0;
    this.used = 0;
  }
}

function grown<T extends Int32Array | Float64Array>(array: T): T {
  const bigger = new (array.constructor as new (length: number) => T)(array.length * 2);
  bigger.set(array);
  return bigger;
}

/**
 * Writes records of one shape as a Parquet file: rows are split into typed columns as they come and
 * written out a row group at a time (`RowGroupLimits`), so memory holds one group, never the part.
 * A part of one row group is stored with one put; a longer one streams group by group.
 */
class ParquetPartWriter implements PartWriter {
  records = 0;
  uncompressedBytes = 0;
  private readonly splitter: RecordSplitter;
  private readonly strings: (StringColumn | undefined)[];
  /** Per field: whether its value is taken as raw JSON text (an object) rather than a decoded string. */
  private readonly rawText: readonly boolean[];
  private readonly timeField: number;
  private times = new Float64Array(1024);
  private rows = 0;
  /** Bytes of values in the buffered row group. */
  private heldBytes = 0;
  private readonly out = new ChunkedByteWriter(1024 * 1024);
  private readonly parquet: ParquetWriter;
  private stream: { readonly body: PassThrough; readonly stored: Promise<number> } | undefined;

  constructor(
    private readonly store: ObjectStore,
    readonly key: string,
    private readonly shape: RecordShape,
    codec: PageCodec,
    private readonly limits: RowGroupLimits,
  ) {
    this.splitter = new RecordSplitter(shape);
    this.strings = shape.fields.map((field) => (field.kind === 'time' ? undefined : new StringColumn()));
    this.rawText = shape.fields.map((field) => field.kind === 'object');
    this.timeField = shape.fields.findIndex((field) => field.kind === 'time');
    this.parquet = new ParquetWriter({
      writer: this.out,
      schema: parquetSchema(shape),
      codec: codec.name,
      compressors: { [codec.name]: codec.compress },
      createdBy: 'mp-pipelines',
    });
  }

  get backpressured(): boolean {
    return this.stream?.body.writableNeedDrain ?? false;
  }

  async drain(): Promise<void> {
    if (this.stream?.body.writableNeedDrain) await once(this.stream.body, 'drain');
  }

  add(source: Buffer, start = 0, end = source.length): void {
    const record = start === 0 && end === source.length ? source : source.subarray(start, end);
    const splitter = this.splitter;
    splitter.split(record);
    const row = this.rows;
    const strings = this.strings;
    let bytes = 0;
    for (let i = 0; i < strings.length; i++) {
      const column = strings[i];
      if (column === undefined) continue;
      const start = splitter.start(i);
      const end = splitter.end(i);
      if (start >= 0 && !this.rawText[i] && splitter.escapedAt(i)) {
        // A string with escapes: its decoded value's UTF-8, not its JSON spelling.
        const value = splitter.utf8(i) as Uint8Array;
        column.add(row, value, 0, value.length);
        bytes += value.length;
        continue;
      }
      column.add(row, record, start, end);
      if (start >= 0) bytes += end - start;
    }
    if (this.timeField >= 0) {
      if (row === this.times.length) this.times = grown(this.times);
      this.times[row] = splitter.timeMs;
      bytes += 8;
    }
    this.rows = row + 1;
    this.records += 1;
    this.uncompressedBytes += record.length + 1;
    this.heldBytes += bytes;
    if (this.heldBytes >= this.limits.maxBytes || this.rows >= this.limits.maxRows) {
      this.writeRowGroup();
      this.push(this.out.take());
    }
  }

  async close(): Promise<WrittenObject> {
    if (this.rows > 0) this.writeRowGroup();
    this.parquet.finish();
    this.out.flush();
    const tail = this.out.take();
    let bytes: number;
    if (this.stream === undefined) {
      bytes = await this.store.put(this.key, tail);
    } else {
      this.push(tail);
      this.stream.body.end();
      bytes = await this.stream.stored;
    }
    return { key: this.key, records: this.records, bytes, uncompressedBytes: this.uncompressedBytes };
  }

  private writeRowGroup(): void {
    const rows = this.rows;
    const columnData: ColumnSource[] = this.shape.fields.map((field, i) => ({
      name: field.name,
      data:
        field.kind === 'time' ? this.times.subarray(0, rows) : (this.strings[i] as StringColumn).values(rows),
    }));
    // One group, written synchronously: hyparquet encodes it and calls the writer's flush().
    this.parquet.write({ columnData, rowGroupSize: rows });
    // hyparquet keeps each column's min and max for the footer; ours are views of buffers reused below.
    for (const column of this.parquet.row_groups.at(-1)?.columns ?? []) {
      const statistics = column.meta_data?.statistics;
      if (statistics === undefined) continue;
      if (statistics.min_value instanceof Uint8Array) statistics.min_value = statistics.min_value.slice();
      if (statistics.max_value instanceof Uint8Array) statistics.max_value = statistics.max_value.slice();
    }
    for (const column of this.strings) column?.clear();
    this.rows = 0;
    this.heldBytes = 0;
  }

  private push(chunks: readonly Buffer[]): void {
    if (chunks.length === 0) return;
    if (this.stream === undefined) {
      const body = new PassThrough({ highWaterMark: 1024 * 1024 });
      const stored = this.store.put(this.key, body);
      // A failed upload must wake a writer waiting for 'drain'.
      stored.catch((error: unknown) =>
        body.destroy(error instanceof Error ? error : new Error(String(error))),
      );
      this.stream = { body, stored };
    }
    for (const chunk of chunks) this.stream.body.write(chunk);
  }
}
