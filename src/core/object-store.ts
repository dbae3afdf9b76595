import type { Readable } from 'node:stream';

/** One listed object: its key relative to the store's root, its size in bytes, when it was written. */
export interface ObjectInfo {
  readonly key: string;
  readonly size: number;
  /** Epoch ms of the last write (S3's Last-Modified, to the second; a file's modification time). */
  readonly lastModified: number;
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
  /** Streams an object's bytes; `undefined` when the key does not exist. */
  get(key: string): Promise<Readable | undefined>;
  /** Reads a whole small object (manifests, state records); `undefined` when missing. */
  getBytes(key: string): Promise<Buffer | undefined>;
  /** Writes an object atomically from bytes or a stream. Returns the number of bytes stored. */
  put(key: string, body: Buffer | Readable): Promise<number>;
  /** Lists objects whose key starts with `prefix`, in ascending key order. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** Deletes the given keys; missing keys are not an error. */
  delete(keys: readonly string[]): Promise<void>;
}

/** Reads and parses a JSON object; `undefined` when the key does not exist. */
export async function getJson<T>(store: ObjectStore, key: string): Promise<T | undefined> {
  const bytes = await store.getBytes(key);
  return bytes === undefined ? undefined : (JSON.parse(bytes.toString('utf8')) as T);
}

/** Writes a value as pretty-printed JSON (stable for a given value). */
export async function putJson(store: ObjectStore, key: string, value: unknown): Promise<void> {
  await store.put(key, Buffer.from(`${JSON.stringify(value, null, 2)}\n`, 'utf8'));
}

/** Collects a listing into an array (for prefixes known to hold a bounded number of keys). */
export async function listAll(store: ObjectStore, prefix: string): Promise<ObjectInfo[]> {
  const objects: ObjectInfo[] = [];
  for await (const info of store.list(prefix)) objects.push(info);
  return objects;
}
