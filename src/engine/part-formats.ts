/**
 * Output part formats (README "Output formats"): one `PartWriter` shape that `RollingWriters` drives, with three
 * implementations: NDJSON with gzip (`NdjsonObjectWriter` as it is), NDJSON with zstd, and Parquet
 * with snappy, zstd or gzip pages. Every format counts `uncompressedBytes` as the NDJSON bytes of its
 * records, so a part cap splits the same records into the same parts whatever the format.
 */
import { pipeline } from 'node:stream/promises';
import { ConfigError } from '../core/errors.js';
import type { ObjectStore } from '../core/object-store.js';
import { COMPRESSION_LEVELS, type PipelineConfig } from '../core/pipeline-config.js';
import type { RecordShape } from '../core/record-columns.js';
import { NdjsonObjectWriter, type Segment, type WrittenObject } from './object-writers.js';
import { loadZstd, type ZstdBackend, type ZstdCodec } from './zstd.js';

/** One output part being written: a `RollingWriters` segment that takes records and is closed once. */
export interface PartWriter extends Segment {
  readonly key: string;
  /** Appends one record (its canonical JSON, no newline): bytes `[start, end)` of `source`, all by default. */
  add(source: Buffer, start?: number, end?: number): void;
  /** Finishes the part and waits until it is stored. */
  close(): Promise<WrittenObject>;
}

/** How parts are written: NDJSON or Parquet, and the compression. */
export type PartFormat =
  | {
      readonly format: 'json';
      readonly compression: 'gzip' | 'zstd';
      /** Default and range: `COMPRESSION_LEVELS`. */
      readonly level?: number;
    }
  | {
      readonly format: 'parquet';
      /** Codec of the pages. */
      readonly compression: 'snappy' | 'gzip' | 'zstd';
      /** Default and range: `COMPRESSION_LEVELS` (snappy has none). */
      readonly level?: number;
      /** When a row group is written out; default `DEFAULT_ROW_GROUP`. */
      readonly rowGroup?: RowGroupLimits;
    };

/** A Parquet row group is written out when its records reach either limit. */
export interface RowGroupLimits {
  /** Bytes of column values held (about the records' NDJSON size). */
  readonly maxBytes: number;
  readonly maxRows: number;
}

/**
 * Row groups of 4 MiB of values (about 5,000 events): column chunks of a few hundred KB of compressed
 * `properties`, still one request each for an engine, which skips groups by their statistics. Each
 * open part holds its group while encoding it about four times over, so the group size sets the
 * memory of a task: a 1M-event local run (four export tasks at once) peaked at 604 MB with 16 MiB
 * groups, 514 MB with 8 MiB and 459-466 MB with these, for 1% more bytes than 8 MiB (README, Output
 * formats).
 */
export const DEFAULT_ROW_GROUP: RowGroupLimits = { maxBytes: 4 * 1024 * 1024, maxRows: 1_000_000 };

/** Opens part `key` in `store`. */
export type OpenPart = (store: ObjectStore, key: string) => PartWriter;

/** How a pipeline's parts are written, from its config (the schema filled in the codec and level). */
export function partFormatOf(config: PipelineConfig): PartFormat {
  const level = config.compression_level === undefined ? {} : { level: config.compression_level };
  if (config.format === 'json') {
    if (config.compression === 'snappy') throw new ConfigError('json parts have no snappy codec');
    return { format: 'json', compression: config.compression, ...level };
  }
  return { format: 'parquet', compression: config.compression, ...level };
}

/** The ending of a part's file name in `format`. */
export function partExtension(format: PartFormat): string {
  if (format.format === 'parquet') return '.parquet';
  return format.compression === 'gzip' ? '.json.gz' : '.json.zst';
}

/** Options of `partOpener`. */
export interface PartOpenerOptions {
  /** Which zstd to use; default: the runtime's (`defaultZstdBackend`). Tests run both on Node 22. */
  readonly zstdBackend?: ZstdBackend;
}

/**
 * Loads what `format` needs (the zstd codec, the snappy WASM) and returns an opener of parts holding
 * records of `shape` (Parquet columns follow the shape; NDJSON ignores it).
 */
export async function partOpener(
  format: PartFormat,
  shape: RecordShape,
  options: PartOpenerOptions = {},
): Promise<OpenPart> {
  const level = levelOf(format);
  if (format.format === 'json') {
    if (format.compression === 'gzip') return (store, key) => new NdjsonObjectWriter(store, key, level);
    const zstd = await loadZstd(options.zstdBackend);
    // NdjsonObjectWriter writes plain NDJSON into a store that compresses on the way in.
    return (store, key) => new NdjsonObjectWriter(zstdStore(store, zstd, level), key, 'none');
  }
  const rowGroup = format.rowGroup ?? DEFAULT_ROW_GROUP;
  if (!(rowGroup.maxBytes >= 1 && rowGroup.maxRows >= 1))
    throw new ConfigError(`row group limits must be positive, got ${JSON.stringify(rowGroup)}`);
  // Loaded only for Parquet: its writer's modules are about 0.05 s of every thread's start.
  const { parquetOpener } = await import('./parquet-parts.js');
  return parquetOpener(shape, format.compression, level, rowGroup, options.zstdBackend);
}

function levelOf(format: PartFormat): number {
  const levels = COMPRESSION_LEVELS[format.compression];
  if (levels === undefined) {
    if (format.level !== undefined) throw new ConfigError(`${format.compression} has no compression level`);
    return 0;
  }
  const level = format.level ?? levels.default;
  const { min, max } = levels;
  if (!Number.isInteger(level) || level < min || level > max)
    throw new ConfigError(
      `${format.compression} compression level must be an integer ${min}-${max}, got ${level}`,
    );
  return level;
}

/**
 * `store` with puts compressed by zstd: a whole buffer as one frame, a stream through the codec's
 * stream. Reads return what is stored (compressed).
 */
function zstdStore(store: ObjectStore, zstd: ZstdCodec, level: number): ObjectStore {
  return {
    description: store.description,
    uri: (key) => store.uri(key),
    get: (key, from) => store.get(key, from),
    getBytes: (key) => store.getBytes(key),
    list: (prefix) => store.list(prefix),
    delete: (keys) => store.delete(keys),
    putIfAbsent: (key, body) => store.putIfAbsent(key, Buffer.from(zstd.compress(body, level))),
    async put(key, body) {
      if (Buffer.isBuffer(body)) return store.put(key, Buffer.from(zstd.compress(body, level)));
      const compressed = zstd.compressStream(level);
      const [, bytes] = await Promise.all([pipeline(body, compressed), store.put(key, compressed)]);
      return bytes;
    },
  };
}
