import { randomBytes } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  createWriteStream,
  type Dirent,
  fstatSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../core/errors.js';
import {
  chunksOf,
  isStream,
  type ObjectBody,
  type ObjectInfo,
  type ObjectStore,
} from '../core/object-store.js';

/** Writes all of `chunk` at the file's position (a write may take less than asked). */
function writeWhole(fd: number, chunk: Buffer): number {
  for (let done = 0; done < chunk.length; ) done += writeSync(fd, chunk, done);
  return chunk.length;
}

/** Errors that mean "no object at this key" (the path or one of its parents is missing or not a file). */
const MISSING_CODES = new Set(['ENOENT', 'ENOTDIR', 'EISDIR']);

/** Bytes of a file name copied into its temp file's name. */
const TEMP_NAME_KEEP_BYTES = 200;

/**
 * An object store in a folder: key `a/b/c` is the file `<root>/a/b/c`. Writes go to a hidden temp file
 * beside the target and are renamed into place, so readers never see a partial object. Hidden
 * (dot-prefixed) names are never listed and cannot be key segments; only regular files and folders are
 * listed (not symlinks).
 *
 * Metadata calls (open, stat, readdir, mkdir, rename, small reads and writes) are synchronous: a step
 * makes hundreds of them and an async call costs ~10x more in thread-pool hand-offs than the syscall;
 * the stores run in a batch CLI and its worker threads, never in a latency-sensitive server. Object
 * bodies still stream.
 */
export class FsObjectStore implements ObjectStore {
  readonly description: string;
  private readonly root: string;

  /**
   * @param clock the write time objects get (their listed `lastModified`), e.g. a simulated clock;
   * default: the file system's own (the real time)
   */
  constructor(
    rootDir: string,
    private readonly clock?: () => number,
  ) {
    this.root = path.resolve(rootDir);
    this.description = this.root;
  }

  /** Sets a written file's modification time from the clock, as S3 stamps Last-Modified. */
  private stampWriteTime(file: string): void {
    if (this.clock === undefined) return;
    const seconds = this.clock() / 1000;
    utimesSync(file, seconds, seconds);
  }

  async get(key: string, from = 0): Promise<Readable | undefined> {
    const file = this.pathOf(key);
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
    // Opening a directory succeeds on Linux; a folder is not an object (as in S3).
    let isFile: boolean;
    try {
      isFile = fstatSync(fd).isFile();
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    if (!isFile) {
      closeSync(fd);
      return undefined;
    }
    // The open descriptor keeps reading this version even if a put renames a new one over it.
    return createReadStream('', { fd, highWaterMark: 256 * 1024, start: from });
  }

  async getBytes(key: string): Promise<Buffer | undefined> {
    try {
      return readFileSync(this.pathOf(key));
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async put(key: string, body: ObjectBody): Promise<number> {
    const target = this.pathOf(key);
    const dir = path.dirname(target);
    const temp = path.join(dir, tempNameFor(path.basename(target)));
    const fd = this.openTemp(dir, temp, key);
    try {
      let bytes = 0;
      if (isStream(body)) {
        const out = createWriteStream('', { fd });
        await pipeline(body, out);
        bytes = out.bytesWritten;
      } else {
        try {
          for (const chunk of chunksOf(body)) bytes += writeWhole(fd, chunk);
        } finally {
          closeSync(fd);
        }
      }
      try {
        renameSync(temp, target);
      } catch (error) {
        // A folder where the file must go.
        throw this.conflictOr(error, key, ['EISDIR', 'ENOTEMPTY']);
      }
      this.stampWriteTime(target);
      return bytes;
    } catch (error) {
      try {
        unlinkSync(temp);
      } catch {
        // Already gone.
      }
      throw error;
    }
  }

  async putIfAbsent(key: string, body: Buffer): Promise<boolean> {
    const target = this.pathOf(key);
    const dir = path.dirname(target);
    const temp = path.join(dir, tempNameFor(path.basename(target)));
    const fd = this.openTemp(dir, temp, key);
    try {
      try {
        writeFileSync(fd, body);
      } finally {
        closeSync(fd);
      }
      // A hard link is created whole or not at all, and fails when the name exists: one racer wins.
      try {
        linkSync(temp, target);
      } catch (error) {
        if (isErrorCode(error, 'EEXIST')) return false;
        throw this.conflictOr(error, key, ['EISDIR', 'EPERM']);
      }
      this.stampWriteTime(target);
      return true;
    } finally {
      try {
        unlinkSync(temp);
      } catch {
        // Already gone.
      }
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    // Walk only the folder named by the prefix's complete segments; its last, partial segment filters names.
    const slash = prefix.lastIndexOf('/');
    const dirKey = prefix.slice(0, slash + 1);
    const namePrefix = prefix.slice(slash + 1);
    const dirSegments = dirKey === '' ? [] : dirKey.slice(0, -1).split('/');
    // No valid key lies under an unsafe folder, so such a prefix matches nothing (S3 would also list nothing).
    if (dirSegments.some((segment) => unsafeSegment(segment) !== undefined)) return;
    yield* this.walk(path.join(this.root, ...dirSegments), dirKey, namePrefix);
  }

  async delete(keys: readonly string[]): Promise<void> {
    const files = keys.map((key) => this.pathOf(key));
    for (const file of files) {
      try {
        unlinkSync(file);
      } catch (error) {
        if (!isMissing(error)) throw error;
      }
      this.removeEmptyParents(path.dirname(file));
    }
  }

  /** Yields the objects under `dir` (whose key prefix is `keyPrefix`) in byte order of their keys. */
  private async *walk(dir: string, keyPrefix: string, namePrefix: string): AsyncGenerator<ObjectInfo> {
    let entries: Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch (error) {
      if (isMissing(error)) return;
      throw error;
    }
    // A folder `n` sorts as `n/` among its siblings: all its keys start with that, and names hold no `/`.
    const children = entries
      .filter((entry) => !entry.name.startsWith('.') && entry.name.startsWith(namePrefix))
      .filter((entry) => entry.isFile() || entry.isDirectory())
      .map((entry) => ({
        name: entry.name,
        isDir: entry.isDirectory(),
        sortKey: Buffer.from(entry.isDirectory() ? `${entry.name}/` : entry.name, 'utf8'),
      }))
      .sort((a, b) => Buffer.compare(a.sortKey, b.sortKey));
    for (const child of children) {
      const full = path.join(dir, child.name);
      if (child.isDir) {
        yield* this.walk(full, `${keyPrefix}${child.name}/`, '');
        continue;
      }
      try {
        const stats = statSync(full);
        yield { key: `${keyPrefix}${child.name}`, size: stats.size, lastModified: Math.floor(stats.mtimeMs) };
      } catch (error) {
        // Deleted since readdir: it is simply no longer there.
        if (!isMissing(error)) throw error;
      }
    }
  }

  /** Removes empty folders from `dir` up to (not including) the root, as S3 "folders" vanish with their last key. */
  private removeEmptyParents(dir: string): void {
    for (
      let current = dir;
      current !== this.root && current.startsWith(this.root);
      current = path.dirname(current)
    ) {
      try {
        rmdirSync(current);
      } catch (error) {
        if (isErrorCode(error, 'ENOTEMPTY') || isErrorCode(error, 'EEXIST') || isMissing(error)) return;
        throw error;
      }
    }
  }

  /** Creates the temp file and its folder; retries when a concurrent delete removed the empty folder. */
  private openTemp(dir: string, temp: string, key: string): number {
    for (let attempt = 1; ; attempt++) {
      try {
        mkdirSync(dir, { recursive: true });
      } catch (error) {
        // A file where one of the folders must go: ENOTDIR above the last level, EEXIST at it.
        throw this.conflictOr(error, key, ['ENOTDIR', 'EEXIST']);
      }
      try {
        return openSync(temp, 'wx');
      } catch (error) {
        if (!isErrorCode(error, 'ENOENT') || attempt >= 5) throw error;
      }
    }
  }

  /** A clear error for the one S3 layout a filesystem cannot hold: both `a` and `a/b` as objects. */
  private conflictOr(error: unknown, key: string, codes: readonly string[]): unknown {
    if (!codes.some((code) => isErrorCode(error, code))) return error;
    return new ConfigError(
      `cannot store key ${JSON.stringify(key)} in ${this.description}: a folder cannot also be a file ` +
        `(an object and a folder of objects share that name)`,
      { cause: error },
    );
  }

  uri(key: string): string {
    return pathToFileURL(this.pathOf(key)).href;
  }

  private pathOf(key: string): string {
    const problem = keyProblem(key);
    if (problem !== undefined) {
      throw new ConfigError(`unsafe object key ${JSON.stringify(key)} for ${this.description}: ${problem}`);
    }
    return path.join(this.root, ...key.split('/'));
  }
}

/** `.<name>.tmp-<random>`, with the name cut to keep the temp name within NAME_MAX (255 bytes). */
function tempNameFor(name: string): string {
  const kept = Buffer.from(name, 'utf8').subarray(0, TEMP_NAME_KEEP_BYTES).toString('utf8');
  return `.${kept}.tmp-${randomBytes(6).toString('hex')}`;
}

/** Why a key cannot name a file safely, or `undefined` when it can. */
function keyProblem(key: string): string | undefined {
  if (key === '') return 'it is empty';
  if (key.includes('\0')) return 'it contains a NUL character';
  if (key.startsWith('/')) return 'it starts with "/"';
  for (const segment of key.split('/')) {
    const problem = unsafeSegment(segment);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

function unsafeSegment(segment: string): string | undefined {
  if (segment === '') return 'it has an empty segment';
  if (segment === '.' || segment === '..') return `it has a "${segment}" segment`;
  if (segment.includes('\0')) return 'it contains a NUL character';
  // Dot names are reserved for temp files and are never listed, so such an object would be invisible.
  if (segment.startsWith('.'))
    return `its segment "${segment}" starts with "." (hidden names are not listed)`;
  return undefined;
}

function isErrorCode(error: unknown, code: string): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === code;
}

function isMissing(error: unknown): boolean {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' && MISSING_CODES.has(code);
}
