import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { UnreadableSourceError } from '../core/errors.js';
import type { ObjectStore } from '../core/object-store.js';

/** Longest line kept whole (the vendor caps an event at 1 MB); longer lines are quarantined by their head. */
export const MAX_LINE_BYTES = 1024 * 1024;
/** How much of an over-long line the quarantine keeps. */
export const OVERLONG_HEAD_BYTES = 64 * 1024;

/** Receives the lines of one object, synchronously, in order. Line numbers start at 1. */
export interface LineSink {
  line(bytes: Buffer, lineNumber: number): void;
  overlong(head: Buffer, totalBytes: number, lineNumber: number): void;
}

/**
 * Splits a byte stream on `\n` with bounded memory: a line longer than `maxLineBytes` is not
 * accumulated; only its head is kept and the rest is counted and skipped.
 */
export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private overlongHead: Buffer | undefined;
  private lineNumber = 0;

  constructor(
    private readonly sink: LineSink,
    private readonly maxLineBytes = MAX_LINE_BYTES,
  ) {}

  /** Feeds the next chunk; complete lines go to the sink before this returns. */
  push(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(10, start);
      if (newline === -1) {
        this.keep(chunk.subarray(start));
        return;
      }
      this.emit(chunk.subarray(start, newline));
      start = newline + 1;
    }
  }

  /** Flushes a last line that had no trailing newline. */
  end(): void {
    if (this.pendingBytes > 0 || this.overlongHead !== undefined) this.emit(Buffer.alloc(0));
  }

  private keep(rest: Buffer): void {
    if (rest.length === 0) return;
    this.pendingBytes += rest.length;
    if (this.overlongHead !== undefined) return;
    this.pending.push(rest);
    if (this.pendingBytes > this.maxLineBytes) {
      this.overlongHead = Buffer.concat(this.pending).subarray(0, OVERLONG_HEAD_BYTES);
      this.pending = [];
    }
  }

  private emit(tail: Buffer): void {
    this.lineNumber += 1;
    const total = this.pendingBytes + tail.length;
    if (this.overlongHead !== undefined || total > this.maxLineBytes) {
      const head =
        this.overlongHead ?? Buffer.concat([...this.pending, tail]).subarray(0, OVERLONG_HEAD_BYTES);
      this.sink.overlong(head, total, this.lineNumber);
    } else {
      const line = this.pending.length === 0 ? tail : Buffer.concat([...this.pending, tail], total);
      this.sink.line(this.lineNumber === 1 ? withoutBom(line) : line, this.lineNumber);
    }
    this.pending = [];
    this.pendingBytes = 0;
    this.overlongHead = undefined;
  }
}

function withoutBom(line: Buffer): Buffer {
  return line[0] === 0xef && line[1] === 0xbb && line[2] === 0xbf ? line.subarray(3) : line;
}

/** Size and line count of one source object, as read. */
export interface SourceReadStats {
  readonly bytes: number;
  readonly lines: number;
}

/**
 * Streams one landing-zone object line by line into `sink`, gunzipping when the object starts with the
 * gzip magic bytes (whatever its name). `afterChunk` runs after each decoded chunk so callers can wait
 * for their writers to drain; memory stays bounded by one chunk plus one line.
 * An object that cannot be decoded raises `UnreadableSourceError`: its step must fail and retry.
 */
export async function readSourceLines(
  store: ObjectStore,
  key: string,
  sink: LineSink,
  afterChunk: () => Promise<void>,
  maxLineBytes = MAX_LINE_BYTES,
): Promise<SourceReadStats> {
  const body = await store.get(key);
  if (body === undefined)
    throw new UnreadableSourceError(`source object ${key} in ${store.description} vanished`);
  let bytes = 0;
  let lines = 0;
  const counting: LineSink = {
    line: (line, n) => {
      lines = n;
      sink.line(line, n);
    },
    overlong: (head, total, n) => {
      lines = n;
      sink.overlong(head, total, n);
    },
  };
  const splitter = new LineSplitter(counting, maxLineBytes);
  try {
    for await (const chunk of decodedChunks(body)) {
      bytes += chunk.length;
      splitter.push(chunk);
      await afterChunk();
    }
    splitter.end();
  } catch (error) {
    if (error instanceof UnreadableSourceError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new UnreadableSourceError(`cannot read source object ${key} in ${store.description}: ${reason}`);
  }
  return { bytes, lines };
}

async function* decodedChunks(body: Readable): AsyncGenerator<Buffer> {
  const chunks = body[Symbol.asyncIterator]();
  const first = await chunks.next();
  if (first.done) return;
  const head = first.value as Buffer;
  if (head[0] !== 0x1f || head[1] !== 0x8b) {
    yield head;
    for (let next = await chunks.next(); !next.done; next = await chunks.next()) yield next.value as Buffer;
    return;
  }
  const raw = Readable.from(
    (async function* () {
      yield head;
      for (let next = await chunks.next(); !next.done; next = await chunks.next()) yield next.value as Buffer;
    })(),
  );
  const gunzip = createGunzip({ chunkSize: 256 * 1024 });
  raw.on('error', (error) => gunzip.destroy(error));
  raw.pipe(gunzip);
  for await (const chunk of gunzip) yield chunk as Buffer;
}
