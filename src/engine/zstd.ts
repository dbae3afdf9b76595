/**
 * zstd on both runtimes. Node's own zlib has zstd from 22.15 (the Lambda runtime): streaming, one frame
 * per object, native speed. Node 20 has none, so there the WASM build of `@bokuweb/zstd-wasm` does the
 * work; it only compresses whole buffers, so a stream becomes one frame per `FRAME_BYTES` of input.
 * Both are standard zstd; a multi-frame object is read whole by the zstd CLI, DuckDB, Spark and Trino,
 * but Node's own zstd decompressor (22.x) silently stops after the first frame.
 */
import { Transform, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';

/** Where the zstd code comes from. */
export type ZstdBackend = 'node:zlib' | 'wasm';

/** A zstd encoder. */
export interface ZstdCodec {
  readonly backend: ZstdBackend;
  /** One frame holding `data`. */
  compress(data: Uint8Array, level: number): Uint8Array;
  /** A stream that compresses what is written to it. */
  compressStream(level: number): Transform;
}

/** Input bytes per frame of the WASM stream: larger frames compress better, and each one is held whole. */
export const FRAME_BYTES = 4 * 1024 * 1024;

const STREAM_CHUNK_BYTES = 256 * 1024;

/** The zstd part of `node:zlib` (Node 22.15 and later), typed here because Node 20's types lack it. */
interface ZlibZstd {
  zstdCompressSync(data: Uint8Array, options: { params: Record<number, number> }): Buffer;
  createZstdCompress(options: { params: Record<number, number>; chunkSize: number }): Transform;
  readonly constants: { readonly ZSTD_c_compressionLevel: number };
}

function zlibZstd(): ZlibZstd | undefined {
  const candidate = zlib as unknown as Partial<ZlibZstd>;
  return typeof candidate.zstdCompressSync === 'function' &&
    typeof candidate.createZstdCompress === 'function'
    ? (candidate as ZlibZstd)
    : undefined;
}

/** The backend `loadZstd` picks on this runtime. */
export function defaultZstdBackend(): ZstdBackend {
  return zlibZstd() === undefined ? 'wasm' : 'node:zlib';
}

let wasm: Promise<ZstdCodec> | undefined;

/**
 * Loads a zstd codec: `node:zlib`'s where the runtime has it, else the WASM one (loaded once).
 * @param backend force one (tests run both on Node 22); default: `defaultZstdBackend()`
 */
export async function loadZstd(backend: ZstdBackend = defaultZstdBackend()): Promise<ZstdCodec> {
  if (backend === 'wasm') {
    wasm ??= loadWasm();
    return wasm;
  }
  const native = zlibZstd();
  if (native === undefined)
    throw new Error(`node:zlib has no zstd in Node ${process.version} (it has from 22.15)`);
  const params = (level: number) => ({ [native.constants.ZSTD_c_compressionLevel]: level });
  return {
    backend,
    compress: (data, level) => native.zstdCompressSync(data, { params: params(level) }),
    compressStream: (level) =>
      native.createZstdCompress({ params: params(level), chunkSize: STREAM_CHUNK_BYTES }),
  };
}

async function loadWasm(): Promise<ZstdCodec> {
  // Imported only where needed: the Lambda bundle never loads (or ships) the .wasm file.
  const module = await import('@bokuweb/zstd-wasm');
  try {
    await module.init();
  } catch (error) {
    // E.g. a bundle without the package's zstd.wasm file beside it.
    throw new Error(
      `zstd needs Node 22.15 or later, or the zstd.wasm file of @bokuweb/zstd-wasm (Node ${process.version})`,
      { cause: error },
    );
  }
  const compress = (data: Uint8Array, level: number) => module.compress(data, level);
  return { backend: 'wasm', compress, compressStream: (level) => new FramedZstdStream(compress, level) };
}

/** Compresses its input as a sequence of zstd frames of `FRAME_BYTES` each (the last one shorter). */
class FramedZstdStream extends Transform {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private frames = 0;

  constructor(
    private readonly compressFrame: (data: Uint8Array, level: number) => Uint8Array,
    private readonly level: number,
  ) {
    super({ highWaterMark: STREAM_CHUNK_BYTES });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    callback(this.pendingBytes >= FRAME_BYTES ? this.pushFrame() : undefined);
  }

  override _flush(callback: TransformCallback): void {
    // An empty input still gets a frame: an empty file is not zstd.
    callback(this.pendingBytes > 0 || this.frames === 0 ? this.pushFrame() : undefined);
  }

  private pushFrame(): Error | undefined {
    try {
      const input = Buffer.concat(this.pending, this.pendingBytes);
      this.pending = [];
      this.pendingBytes = 0;
      const frame = this.compressFrame(input, this.level);
      this.frames += 1;
      this.push(Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength));
      return undefined;
    } catch (error) {
      return error instanceof Error ? error : new Error(String(error));
    }
  }
}
