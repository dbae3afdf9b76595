import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { TransientError, UnreadableSourceError } from '../core/errors.js';
import type { ObjectStore } from '../core/object-store.js';

/** Longest line kept whole (the vendor caps an event at 1 MB); longer lines are quarantined by their head. */
export const MAX_LINE_BYTES = 1024 * 1024;
/** How much of an over-long line the quarantine keeps. */
export const OVERLONG_HEAD_BYTES = 64 * 1024;

/**
 * Receives the lines of one object, synchronously, in order. Line numbers start at 1. A line is
 * `chunk[start, end)`: no view is made of it, which cost about 0.1 µs a line and as much again in
 * scavenges.
 */
export interface LineSink {
  line(chunk: Buffer, start: number, end: number, lineNumber: number): void;
  overlong(head: Buffer, totalBytes: number, lineNumber: number): void;
}

/**
 * Splits a byte stream on `\n` with bounded memory: a line longer than `maxLineBytes` is not
 * accumulated; only its head is kept and the rest is counted and skipped.
 */
export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytesCount = 0;
  private overlongHead: Buffer | undefined;
  constructor(
    private readonly sink: LineSink,
    private readonly maxLineBytes = MAX_LINE_BYTES,
    private lineNumber = 0,
  ) {}

  /** Bytes of a line not ended yet (a piece that stops here resumes before them). */
  get pendingBytes(): number {
    return this.pendingBytesCount;
  }

  /** Feeds the next chunk; complete lines go to the sink before this returns. */
  push(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(10, start);
      if (newline === -1) {
        this.keep(chunk.subarray(start));
        return;
      }
      this.emit(chunk, start, newline);
      start = newline + 1;
    }
  }

  /** Flushes a last line that had no trailing newline. */
  end(): void {
    if (this.pendingBytesCount > 0 || this.overlongHead !== undefined) this.emit(EMPTY, 0, 0);
  }

  private keep(rest: Buffer): void {
    if (rest.length === 0) return;
    this.pendingBytesCount += rest.length;
    if (this.overlongHead !== undefined) return;
    this.pending.push(rest);
    if (this.pendingBytesCount > this.maxLineBytes) {
      this.overlongHead = Buffer.concat(this.pending).subarray(0, OVERLONG_HEAD_BYTES);
      this.pending = [];
    }
  }

  /** Ends the line `chunk[start, end)` (after what is pending) and hands it to the sink. */
  private emit(chunk: Buffer, start: number, end: number): void {
    this.lineNumber += 1;
    if (this.pendingBytesCount === 0 && this.overlongHead === undefined) {
      if (end - start > this.maxLineBytes)
        this.sink.overlong(
          Buffer.from(chunk.subarray(start, start + OVERLONG_HEAD_BYTES)),
          end - start,
          this.lineNumber,
        );
      else
        this.sink.line(
          chunk,
          this.lineNumber === 1 ? afterBom(chunk, start, end) : start,
          end,
          this.lineNumber,
        );
      return;
    }
    const tail = chunk.subarray(start, end);
    const total = this.pendingBytesCount + tail.length;
    if (this.overlongHead !== undefined || total > this.maxLineBytes) {
      const head =
        this.overlongHead ?? Buffer.concat([...this.pending, tail]).subarray(0, OVERLONG_HEAD_BYTES);
      this.sink.overlong(head, total, this.lineNumber);
    } else {
      const line = Buffer.concat([...this.pending, tail], total);
      this.sink.line(line, this.lineNumber === 1 ? afterBom(line, 0, total) : 0, total, this.lineNumber);
    }
    this.pending = [];
    this.pendingBytesCount = 0;
    this.overlongHead = undefined;
  }
}

const EMPTY = Buffer.alloc(0);

/** Where a first line starts once its UTF-8 byte order mark, if any, is skipped. */
function afterBom(chunk: Buffer, start: number, end: number): number {
  return end - start >= 3 && chunk[start] === 0xef && chunk[start + 1] === 0xbb && chunk[start + 2] === 0xbf
    ? start + 3
    : start;
}

/** Where an earlier piece stopped reading an object: decoded bytes and lines consumed (a line boundary). */
export interface ReadPosition {
  readonly bytes: number;
  readonly lines: number;
}

/** Limits past which an object is not read at all (set aside whole): they never depend on timing. */
export interface ObjectLimits {
  /** Most decoded bytes of one object. */
  readonly maxBytes: number;
  /** Most decoded bytes per stored byte (a gzip bomb decodes to thousands), checked past `ratioAfterBytes`. */
  readonly maxRatio: number;
  readonly ratioAfterBytes: number;
}

/** How one read of a source object goes. */
export interface SourceReadOptions {
  /** Longest line kept whole. @default MAX_LINE_BYTES */
  readonly maxLineBytes?: number;
  /** Continue after this position (skipped: decoded again, or read from there when not compressed). */
  readonly resume?: ReadPosition & { readonly compressed: boolean };
  /** Stop at the first line end at or past this decoded position (a piece's budget). */
  readonly stopAt?: number;
  readonly limits?: ObjectLimits;
  /** The error when the object does not exist. @default UnreadableSourceError */
  readonly missing?: (description: string) => Error;
}

/** How far one read got. */
export interface SourceReadStats extends ReadPosition {
  /** False when the read stopped at `stopAt` before the end of the object. */
  readonly complete: boolean;
  /** Whether the object is gzip (a later piece resumes it by decoding it again from the start). */
  readonly compressed: boolean;
}

/**
 * Streams one landing-zone object line by line into `sink`, gunzipping when the object starts with the
 * gzip magic bytes (whatever its name). `afterChunk` runs after each decoded chunk so callers can wait
 * for their writers to drain; memory stays bounded by one chunk plus one line.
 * An object that cannot be decoded raises `UnreadableSourceError`; one past `limits` raises
 * `ObjectLimitError`. Bytes after the last gzip member that are not another member (other than zero
 * padding) make the object unreadable: it is never silently shorter.
 */
export async function readSourceLines(
  store: ObjectStore,
  key: string,
  sink: LineSink,
  afterChunk: () => Promise<void>,
  options: SourceReadOptions = {},
): Promise<SourceReadStats> {
  const resume = options.resume;
  const ranged = resume !== undefined && !resume.compressed && resume.bytes > 0;
  const body = await store.get(key, ranged ? resume.bytes : 0);
  if (body === undefined)
    throw (
      options.missing?.(store.description) ??
      new UnreadableSourceError(`source object ${key} in ${store.description} vanished`)
    );
  let lines = resume?.lines ?? 0;
  let lineEnd = resume?.bytes ?? 0;
  const counting: LineSink = {
    line: (chunk, start, end, n) => {
      lines = n;
      sink.line(chunk, start, end, n);
    },
    overlong: (head, total, n) => {
      lines = n;
      sink.overlong(head, total, n);
    },
  };
  const splitter = new LineSplitter(counting, options.maxLineBytes ?? MAX_LINE_BYTES, lines);
  const decoded = new DecodedStream(body, ranged ? resume.bytes : 0);
  let skip = ranged ? 0 : (resume?.bytes ?? 0);
  let position = ranged ? resume.bytes : 0;
  // Errors of the object's bytes are classified here; the sink's and `afterChunk`'s pass unchanged.
  const chunks = decoded.chunks();
  const nextChunk = async (): Promise<IteratorResult<Buffer>> => {
    try {
      return await chunks.next();
    } catch (error) {
      throw classifyReadError(error, `cannot read source object ${key} in ${store.description}`);
    }
  };
  try {
    for (let next = await nextChunk(); !next.done; next = await nextChunk()) {
      checkLimits(options.limits, decoded, key);
      let chunk = next.value;
      if (skip > 0) {
        const skipped = Math.min(skip, chunk.length);
        skip -= skipped;
        position += skipped;
        chunk = chunk.subarray(skipped);
        if (chunk.length === 0) continue;
      }
      position += chunk.length;
      splitter.push(chunk);
      lineEnd = position - splitter.pendingBytes;
      await afterChunk();
      if (options.stopAt !== undefined && lineEnd >= options.stopAt)
        return { bytes: lineEnd, lines, complete: false, compressed: decoded.compressed };
    }
  } finally {
    // Ends the decoder's own iteration (closing gunzip cleanly), then the body, if we stopped early.
    await chunks.return(undefined).catch(() => undefined);
    decoded.stop();
  }
  if (skip > 0)
    throw new UnreadableSourceError(`source object ${key} in ${store.description} is shorter than before`);
  splitter.end();
  return { bytes: position, lines, complete: true, compressed: decoded.compressed };
}

/** zlib's own errors mean the bytes are bad; anything else (a dropped connection) may pass next time. */
function classifyReadError(error: unknown, what: string): Error {
  if (error instanceof TransientError) return error;
  const reason = error instanceof Error ? error.message : String(error);
  if (isZlibError(error)) return new UnreadableSourceError(`${what}: ${reason}`, { cause: error });
  return new TransientError(`${what}: ${reason}`, { cause: error });
}

function isZlibError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('Z_');
}

function checkLimits(limits: ObjectLimits | undefined, decoded: DecodedStream, key: string): void {
  if (limits === undefined) return;
  if (decoded.decodedBytes > limits.maxBytes)
    throw new ObjectLimitError('too_large', `${key} decodes to more than ${limits.maxBytes} bytes`);
  const ratio = decoded.decodedBytes / Math.max(1, decoded.storedBytes);
  if (decoded.decodedBytes > limits.ratioAfterBytes && ratio > limits.maxRatio)
    throw new ObjectLimitError(
      'compression_ratio',
      `${key} decodes to ${Math.round(ratio)} times its stored size (limit ${limits.maxRatio})`,
    );
}

/** An object past a limit of {@link ObjectLimits}: reading it again cannot help, it is set aside. */
export class ObjectLimitError extends Error {
  override readonly name = 'ObjectLimitError';
  constructor(
    readonly reason: 'too_large' | 'compression_ratio',
    message: string,
  ) {
    super(message);
  }
}

/** An object's bytes, gunzipped when they start with the gzip magic, counting stored and decoded bytes. */
class DecodedStream {
  storedBytes = 0;
  decodedBytes = 0;
  compressed = false;
  private readonly body: Readable;
  /** Offset (in the stored object) after the last non-zero stored byte: what trails a member must be zeros. */
  private lastNonZeroEnd = 0;

  constructor(
    body: Readable,
    private readonly storedOffset: number,
  ) {
    this.body = body;
  }

  stop(): void {
    this.body.destroy();
  }

  async *chunks(): AsyncGenerator<Buffer> {
    const raw = this.counted();
    const first = await raw.next();
    if (first.done) return;
    const head = first.value;
    this.compressed = this.storedOffset === 0 && head[0] === 0x1f && head[1] === 0x8b;
    if (!this.compressed) {
      this.decodedBytes += head.length;
      yield head;
      for (let next = await raw.next(); !next.done; next = await raw.next()) {
        this.decodedBytes += next.value.length;
        yield next.value;
      }
      return;
    }
    const gunzip = createGunzip({ chunkSize: 256 * 1024 });
    const input = Readable.from(
      (async function* () {
        yield head;
        for (let next = await raw.next(); !next.done; next = await raw.next()) yield next.value;
      })(),
    );
    input.on('error', (error) => gunzip.destroy(error));
    input.pipe(gunzip);
    for await (const chunk of gunzip) {
      this.decodedBytes += (chunk as Buffer).length;
      yield chunk as Buffer;
    }
    // zlib stops at a member followed by bytes that do not start another one: only zero padding may.
    if (gunzip.bytesWritten < this.storedBytes && this.lastNonZeroEnd > gunzip.bytesWritten)
      throw Object.assign(
        new Error(`${this.storedBytes - gunzip.bytesWritten} bytes after the last gzip member are not gzip`),
        { code: 'Z_TRAILING_BYTES' },
      );
  }

  private async *counted(): AsyncGenerator<Buffer> {
    for await (const chunk of this.body) {
      const bytes = chunk as Buffer;
      let end = bytes.length;
      while (end > 0 && bytes[end - 1] === 0) end -= 1;
      if (end > 0) this.lastNonZeroEnd = this.storedBytes + end;
      this.storedBytes += bytes.length;
      yield bytes;
    }
  }
}
