import { once } from 'node:events';
import { PassThrough, type Transform } from 'node:stream';
import { createGzip, gzipSync } from 'node:zlib';
import type { ObjectStore } from '../core/object-store.js';

const CHUNK_BYTES = 256 * 1024;
/** Most objects are small: the chunk starts here and doubles up to CHUNK_BYTES. */
const FIRST_CHUNK_BYTES = 8 * 1024;

/** gzip level 1-9, or `none` for plain NDJSON (internal staging, where deflate is wasted CPU). */
export type Compression = number | 'none';

/** What one finished object holds. */
export interface WrittenObject {
  readonly key: string;
  readonly records: number;
  /** Bytes stored (compressed). */
  readonly bytes: number;
  readonly uncompressedBytes: number;
}

/**
 * Writes newline-terminated records into one object, gzip or plain. `add` is synchronous and copies
 * into a chunk buffer (per-line stream writes are slow). An object that fits in one chunk is stored
 * with one put; a larger one streams chunk by chunk, and callers `drain()` when `backpressured`, so
 * memory stays bounded by a few chunks per writer either way.
 */
export class NdjsonObjectWriter {
  records = 0;
  uncompressedBytes = 0;
  private chunk = Buffer.allocUnsafe(FIRST_CHUNK_BYTES);
  private used = 0;
  private stream: { readonly body: Transform; readonly stored: Promise<number> } | undefined;

  constructor(
    private readonly store: ObjectStore,
    readonly key: string,
    private readonly compression: Compression,
  ) {}

  /** True when gzip's buffer is full: await `drain()` before adding much more. */
  get backpressured(): boolean {
    return this.stream?.body.writableNeedDrain ?? false;
  }

  /** Appends bytes `[start, end)` of `source` (all of it by default) as a line. */
  add(source: Buffer, start = 0, end = source.length): void {
    const length = end - start + 1;
    this.reserve(length);
    if (length > this.chunk.length) {
      this.push(Buffer.concat([source.subarray(start, end), NEWLINE]));
    } else {
      this.used += source.copy(this.chunk, this.used, start, end);
      this.chunk[this.used++] = 10;
    }
    this.records += 1;
    this.uncompressedBytes += length;
  }

  /** Appends an ASCII `prefix`, then `line` and a newline (a staged record and its header). */
  addWithPrefix(prefix: string, line: Buffer): void {
    const length = prefix.length + line.length + 1;
    this.reserve(length);
    if (length > this.chunk.length) {
      this.push(Buffer.concat([Buffer.from(prefix, 'latin1'), line, NEWLINE]));
    } else {
      this.used += this.chunk.write(prefix, this.used, 'latin1');
      this.used += line.copy(this.chunk, this.used);
      this.chunk[this.used++] = 10;
    }
    this.records += 1;
    this.uncompressedBytes += length;
  }

  /** Appends a line of text, UTF-8 encoded. */
  addText(text: string): void {
    this.add(Buffer.from(text, 'utf8'));
  }

  /** Appends an ASCII text line (dedup keys) without allocating a Buffer. */
  addAscii(text: string): void {
    this.reserve(text.length + 1);
    this.used += this.chunk.write(text, this.used, 'latin1');
    this.chunk[this.used++] = 10;
    this.records += 1;
    this.uncompressedBytes += text.length + 1;
  }

  /** Waits until gzip accepts more input. */
  async drain(): Promise<void> {
    // Asked of the stream, not remembered: a 'drain' emitted before this call must not be waited for.
    if (this.stream?.body.writableNeedDrain) await once(this.stream.body, 'drain');
  }

  /** Flushes, finishes the gzip stream and waits until the object is stored. */
  async close(): Promise<WrittenObject> {
    let bytes: number;
    if (this.stream === undefined) {
      const content = this.chunk.subarray(0, this.used);
      bytes = await this.store.put(
        this.key,
        this.compression === 'none' ? content : gzipSync(content, { level: this.compression }),
      );
    } else {
      if (this.used > 0) this.push(this.chunk.subarray(0, this.used));
      this.stream.body.end();
      bytes = await this.stream.stored;
    }
    return { key: this.key, records: this.records, bytes, uncompressedBytes: this.uncompressedBytes };
  }

  private reserve(bytes: number): void {
    if (this.used + bytes <= this.chunk.length) return;
    if (this.chunk.length < CHUNK_BYTES) {
      const grown = Buffer.allocUnsafe(
        Math.min(CHUNK_BYTES, Math.max(2 * this.chunk.length, this.used + bytes)),
      );
      this.chunk.copy(grown, 0, 0, this.used);
      this.chunk = grown;
      if (this.used + bytes <= this.chunk.length) return;
    }
    if (this.used > 0) {
      this.push(this.chunk.subarray(0, this.used));
      this.chunk = Buffer.allocUnsafe(CHUNK_BYTES);
      this.used = 0;
    }
  }

  private push(bytes: Buffer): void {
    this.streaming().write(bytes);
  }

  private streaming(): Transform {
    if (this.stream === undefined) {
      const body =
        this.compression === 'none'
          ? new PassThrough({ highWaterMark: CHUNK_BYTES })
          : createGzip({ level: this.compression, chunkSize: CHUNK_BYTES });
      const stored = this.store.put(this.key, body);
      // A failed upload must wake a writer waiting for 'drain'.
      stored.catch((error: unknown) =>
        body.destroy(error instanceof Error ? error : new Error(String(error))),
      );
      this.stream = { body, stored };
    }
    return this.stream.body;
  }
}

const NEWLINE = Buffer.from('\n');

/** One open output of a `RollingWriters` pool. */
export interface Segment {
  readonly records: number;
  readonly uncompressedBytes: number;
  readonly backpressured: boolean;
  drain(): Promise<void>;
}

/** Options of a `RollingWriters` pool. */
export interface RollingWritersOptions<K, S extends Segment, R> {
  /** Most segments open at once; the least recently used is closed beyond it (bounds memory). */
  readonly maxOpen: number;
  /** A segment holding records is closed and a new one opened before it would exceed this size. */
  readonly maxUncompressedBytes: number;
  /** Opens segment number `seq` (0, 1, ...) of `key`. */
  open(key: K, seq: number): S;
  /** Closes a segment and describes what it wrote. */
  close(segment: S, key: K, seq: number): Promise<R>;
}

/**
 * A set of outputs keyed by K (an event hour, a day folder), each split into numbered segments by a
 * size cap or when closed to bound the number of open streams. Segment numbers follow the order of
 * the records, so names are deterministic for a given input.
 */
export class RollingWriters<K, S extends Segment, R> {
  private readonly open = new Map<K, { segment: S; seq: number }>();
  private readonly nextSeq = new Map<K, number>();
  private readonly closing: Promise<R>[] = [];

  constructor(private readonly options: RollingWritersOptions<K, S, R>) {}

  /** The open segment for `key` that can take `bytes` more, opening or rotating as needed. */
  segmentFor(key: K, bytes: number): S {
    const current = this.open.get(key);
    if (current !== undefined) {
      const full =
        current.segment.records > 0 &&
        current.segment.uncompressedBytes + bytes > this.options.maxUncompressedBytes;
      if (!full) {
        // Re-insert to mark as most recently used.
        this.open.delete(key);
        this.open.set(key, current);
        return current.segment;
      }
      this.retire(key, current);
    }
    if (this.open.size >= this.options.maxOpen) {
      const [oldestKey, oldest] = this.open.entries().next().value as [K, { segment: S; seq: number }];
      this.retire(oldestKey, oldest);
    }
    const seq = this.nextSeq.get(key) ?? 0;
    this.nextSeq.set(key, seq + 1);
    const opened = { segment: this.options.open(key, seq), seq };
    this.open.set(key, opened);
    return opened.segment;
  }

  /** Waits for every backpressured segment to drain; call between input chunks. */
  async settle(): Promise<void> {
    for (const { segment } of this.open.values()) if (segment.backpressured) await segment.drain();
  }

  /** Closes everything and returns what each segment wrote, in the order segments were closed. */
  async finish(): Promise<R[]> {
    for (const [key, entry] of [...this.open]) this.retire(key, entry);
    return Promise.all(this.closing);
  }

  private retire(key: K, entry: { segment: S; seq: number }): void {
    this.open.delete(key);
    const closed = this.options.close(entry.segment, key, entry.seq);
    closed.catch(() => undefined); // surfaced by finish()
    this.closing.push(closed);
  }
}
