import type { Readable } from 'node:stream';
import { CorruptStateError } from './errors.js';
import type { Fence } from './lock.js';
import { parseStoredState, stateRecordSchema } from './records.js';

/** One listed object: its key relative to the store's root, its size in bytes, when it was written. */
export interface ObjectInfo {
  readonly key: string;
  readonly size: number;
  /** Epoch ms of the last write (S3's Last-Modified, to the second; a file's modification time). */
  readonly lastModified: number;
}

/**
 * What `put` writes: bytes, the same as a list of chunks (written in order, never concatenated), or a
 * stream.
 */
export type ObjectBody = Buffer | readonly Buffer[] | Readable;

/** Whether the body is a stream (else bytes held in memory). */
export function isStream(body: ObjectBody): body is Readable {
  return !Buffer.isBuffer(body) && !Array.isArray(body);
}

/** Bytes held in memory, as a list of chunks. */
export function chunksOf(body: Buffer | readonly Buffer[]): readonly Buffer[] {
  return Buffer.isBuffer(body) ? [body] : body;
}

/**
 * The storage port. Keys are `/`-separated paths relative to the store's root (a bucket plus an
 * optional prefix, or a folder on disk). Every adapter guarantees:
 * - `put` is atomic: a reader sees the whole new object or nothing of it (never a partial write);
 * - `list` returns every object under a prefix in ascending key order (byte order, as S3 does);
 * - `get` of a missing key returns `undefined` rather than throwing.
 */
export interface ObjectStore {
  /** A human-readable location for messages, e.g. `s3://bucket/prefix` or `/data/out`. */
  readonly description: string;
  /** Streams an object's bytes from byte `from` on (default 0); `undefined` when the key does not exist. */
  get(key: string, from?: number): Promise<Readable | undefined>;
  /** Reads a whole small object (manifests, state records); `undefined` when missing. */
  getBytes(key: string): Promise<Buffer | undefined>;
  /** Writes an object atomically from bytes, chunks or a stream. Returns the number of bytes stored. */
  put(key: string, body: ObjectBody): Promise<number>;
  /**
   * Writes an object only if no object has that key (S3's `If-None-Match: *`); `false`, with nothing
   * written, when one exists. Of two racing writers exactly one wins.
   */
  putIfAbsent(key: string, body: Buffer): Promise<boolean>;
  /** Lists objects whose key starts with `prefix`, in ascending key order. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** Deletes the given keys; missing keys are not an error. */
  delete(keys: readonly string[]): Promise<void>;
  /** The object's address for other readers (`s3://bucket/prefix/key`, a `file://` URL): files that list others hold these. */
  uri(key: string): string;
}

/**
 * Reads and parses a JSON object; `undefined` when the key does not exist. A pipeline state record
 * (`stateRecordSchema`) is checked against its schema; bytes that are not JSON, or a record without
 * its shape, throw `CorruptStateError` naming the object and the field.
 */
export async function getJson<T>(store: ObjectStore, key: string): Promise<T | undefined> {
  const bytes = await store.getBytes(key);
  if (bytes === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw new CorruptStateError(store.uri(key), '(document)', `not JSON (${(error as Error).message})`);
  }
  const schema = stateRecordSchema(key);
  // The schema is the one whose type T names at each call site: the records' types derive from them.
  return (schema === undefined ? value : parseStoredState(store.uri(key), schema, value)) as T;
}

/** Writes a value as pretty-printed JSON (stable for a given value). */
export async function putJson(store: ObjectStore, key: string, value: unknown): Promise<void> {
  await store.put(key, jsonBytes(value));
}

/**
 * Writes a value as JSON unless the key exists, and returns what the key holds now: this value, or
 * the one a racing writer put first (every later reader sees that one).
 */
export async function putJsonOnce<T>(store: ObjectStore, key: string, value: T): Promise<T> {
  if (await store.putIfAbsent(key, jsonBytes(value))) return value;
  const stored = await getJson<T>(store, key);
  if (stored === undefined) throw new Error(`${key} in ${store.description} exists but cannot be read`);
  return stored;
}

function jsonBytes(value: unknown): Buffer {
  return Buffer.from(`${JSON.stringify(value, null, 2)}\n`, 'utf8');
}

/**
 * A store whose writes (puts and deletes) each check `fence` first: a holder that lost its project's
 * lock stops before it changes anything a newer holder may have made. Reads are not checked.
 */
export function fencedStore(store: ObjectStore, fence: Fence): ObjectStore {
  return {
    description: store.description,
    get: (key, from) => store.get(key, from),
    getBytes: (key) => store.getBytes(key),
    list: (prefix) => store.list(prefix),
    uri: (key) => store.uri(key),
    async put(key, body) {
      await fence.check();
      return store.put(key, body);
    },
    async putIfAbsent(key, body) {
      await fence.check();
      return store.putIfAbsent(key, body);
    },
    async delete(keys) {
      if (keys.length === 0) return;
      await fence.check();
      await store.delete(keys);
    },
  };
}

/** Collects a listing into an array (for prefixes known to hold a bounded number of keys). */
export async function listAll(store: ObjectStore, prefix: string): Promise<ObjectInfo[]> {
  const objects: ObjectInfo[] = [];
  for await (const info of store.list(prefix)) objects.push(info);
  return objects;
}
