import { Readable } from 'node:stream';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { ConfigError, TransientError } from '../core/errors.js';
import {
  chunksOf,
  isStream,
  type ObjectBody,
  type ObjectInfo,
  type ObjectStore,
} from '../core/object-store.js';
import { asTransient, errorFields, isTransientCode } from './aws-errors.js';

/** Streams larger than one part go multipart; memory stays near PART_BYTES x QUEUE_SIZE per upload. */
const PART_BYTES = 8 * 1024 * 1024;
const QUEUE_SIZE = 4;
/** DeleteObjects accepts at most this many keys per request. */
const DELETE_BATCH = 1000;

/** Options of an {@link S3ObjectStore}. */
export interface S3ObjectStoreOptions {
  readonly client: S3Client;
  readonly bucket: string;
  /** Prepended to every key (a `/` is added when missing) and stripped from listed keys. */
  readonly prefix?: string;
  /**
   * Server-side encryption requested on every write: `aes` is SSE-S3, `kms` SSE-KMS with that key and an
   * S3 bucket key (fewer KMS requests, as a bucket's own SSE-KMS default does).
   * @default none requested: the bucket's default encryption applies
   */
  readonly encryption?: { readonly kind: 'aes' } | { readonly kind: 'kms'; readonly kmsKeyId: string };
}

/**
 * An object store in an S3 bucket, optionally under a key prefix. Throttling, 5xx and network failures
 * (after the SDK's own retries) surface as `TransientError`; anything else propagates unchanged.
 */
export class S3ObjectStore implements ObjectStore {
  readonly description: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly encryption: {
    ServerSideEncryption?: 'AES256' | 'aws:kms';
    SSEKMSKeyId?: string;
    BucketKeyEnabled?: boolean;
  };

  constructor(options: S3ObjectStoreOptions) {
    this.client = options.client;
    this.bucket = options.bucket;
    this.encryption =
      options.encryption === undefined
        ? {}
        : options.encryption.kind === 'aes'
          ? { ServerSideEncryption: 'AES256' }
          : {
              ServerSideEncryption: 'aws:kms',
              SSEKMSKeyId: options.encryption.kmsKeyId,
              BucketKeyEnabled: true,
            };
    const prefix = options.prefix ?? '';
    this.prefix = prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
    this.description = `s3://${this.bucket}/${this.prefix}`;
  }

  async get(key: string, from = 0): Promise<Readable | undefined> {
    const fullKey = this.fullKey(key);
    try {
      const response = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: fullKey,
          ...(from > 0 ? { Range: `bytes=${from}-` } : {}),
        }),
      );
      const body = response.Body;
      if (body === undefined) return Readable.from([]);
      if (!(body instanceof Readable))
        throw new Error(`GetObject of ${this.at(fullKey)} did not return a Node stream`);
      return body;
    } catch (error) {
      if (isMissingKey(error)) return undefined;
      throw this.mapError(error, 'GetObject', fullKey);
    }
  }

  async getBytes(key: string): Promise<Buffer | undefined> {
    const body = await this.get(key);
    if (body === undefined) return undefined;
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of body) chunks.push(toBuffer(chunk));
    } catch (error) {
      throw this.mapError(error, 'GetObject (reading the body)', this.fullKey(key));
    }
    return Buffer.concat(chunks);
  }

  async putIfAbsent(key: string, body: Buffer): Promise<boolean> {
    const fullKey = this.fullKey(key);
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: fullKey,
          Body: body,
          IfNoneMatch: '*',
          ...this.encryption,
        }),
      );
      return true;
    } catch (error) {
      // 412: the key exists. (409 is a racing conditional write: retried as transient.)
      if (errorFields(error)?.$metadata?.httpStatusCode === 412) return false;
      throw this.mapError(error, 'PutObject (if absent)', fullKey);
    }
  }

  async put(key: string, body: ObjectBody): Promise<number> {
    const fullKey = this.fullKey(key);
    if (!isStream(body)) {
      const chunks = chunksOf(body);
      // One request: a chunk list is at most a few MiB (staging's buffers).
      const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      try {
        await this.client.send(
          new PutObjectCommand({ Bucket: this.bucket, Key: fullKey, Body: bytes, ...this.encryption }),
        );
      } catch (error) {
        throw this.mapError(error, 'PutObject', fullKey);
      }
      return bytes.length;
    }
    // Count bytes as they pass; Upload only reports progress, which is not the stored size.
    let bytes = 0;
    async function* counted(source: Readable): AsyncGenerator<Buffer> {
      for await (const chunk of source) {
        const buffer = toBuffer(chunk);
        bytes += buffer.length;
        yield buffer;
      }
    }
    const counting = Readable.from(counted(body), { objectMode: false });
    try {
      await new Upload({
        client: this.client,
        params: { Bucket: this.bucket, Key: fullKey, Body: counting, ...this.encryption },
        partSize: PART_BYTES,
        queueSize: QUEUE_SIZE,
        leavePartsOnError: false,
      }).done();
    } catch (error) {
      // Like `pipeline`: a failed write also ends the source, so its producer stops waiting on it.
      counting.destroy();
      body.destroy();
      throw this.mapError(error, 'Upload', fullKey);
    }
    return bytes;
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const fullPrefix = `${this.prefix}${prefix}`;
    let continuationToken: string | undefined;
    do {
      let page: ListObjectsV2CommandOutput;
      try {
        page = await this.listPage(fullPrefix, continuationToken);
      } catch (error) {
        throw this.mapError(error, 'ListObjectsV2', fullPrefix);
      }
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined || !object.Key.startsWith(this.prefix)) continue;
        yield {
          key: object.Key.slice(this.prefix.length),
          size: object.Size ?? 0,
          lastModified: object.LastModified?.getTime() ?? 0,
        };
      }
      continuationToken = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (continuationToken !== undefined);
  }

  async delete(keys: readonly string[]): Promise<void> {
    const fullKeys = keys.map((key) => this.fullKey(key));
    for (let start = 0; start < fullKeys.length; start += DELETE_BATCH) {
      const batch = fullKeys.slice(start, start + DELETE_BATCH);
      let errors: { Key?: string | undefined; Code?: string | undefined; Message?: string | undefined }[];
      try {
        const response = await this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
          }),
        );
        errors = response.Errors ?? [];
      } catch (error) {
        throw this.mapError(error, 'DeleteObjects', batch[0] ?? '');
      }
      // DeleteObjects answers 200 even when some keys failed; those are only listed in `Errors`.
      if (errors.length > 0) {
        const shown = errors
          .slice(0, 5)
          .map((e) => `${e.Key ?? '?'} (${e.Code ?? 'unknown'}: ${e.Message ?? ''})`)
          .join(', ');
        const message = `DeleteObjects in s3://${this.bucket} failed for ${errors.length} key(s): ${shown}`;
        const transient = errors.every((e) => isTransientCode(e.Code));
        throw transient ? new TransientError(message) : new Error(message);
      }
    }
  }

  private listPage(
    prefix: string,
    continuationToken: string | undefined,
  ): Promise<ListObjectsV2CommandOutput> {
    return this.client.send(
      new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: continuationToken }),
    );
  }

  uri(key: string): string {
    return `s3://${this.bucket}/${this.fullKey(key)}`;
  }

  private fullKey(key: string): string {
    if (key === '') throw new ConfigError(`empty object key for ${this.description}`);
    return `${this.prefix}${key}`;
  }

  private at(fullKey: string): string {
    return `s3://${this.bucket}/${fullKey}`;
  }

  /** Wraps retryable failures in `TransientError` (naming bucket and key); returns others unchanged. */
  private mapError(error: unknown, operation: string, fullKey: string): unknown {
    return asTransient(error, `S3 ${operation} of ${this.at(fullKey)}`);
  }
}

function isMissingKey(error: unknown): boolean {
  const fields = errorFields(error);
  if (fields === undefined) return false;
  if (fields.name === 'NoSuchKey' || fields.Code === 'NoSuchKey') return true;
  // A 404 without NoSuchKey (e.g. a HEAD-style NotFound) is a missing key too; a missing bucket is not.
  return fields.$metadata?.httpStatusCode === 404 && fields.name !== 'NoSuchBucket';
}

function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (typeof chunk === 'string') return Buffer.from(chunk, 'utf8');
  throw new TypeError(`object bodies must be byte streams, got a chunk of type ${typeof chunk}`);
}
