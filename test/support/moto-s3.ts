/** S3 on the moto server of a test: a client for its endpoint, and buckets. */
import { CreateBucketCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';

/** An S3 client for a moto endpoint: path-style addressing and dummy credentials (`overrides` win). */
export function s3ClientFor(endpoint: string, overrides: S3ClientConfig = {}): S3Client {
  return new S3Client({
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    ...overrides,
  });
}

/** Creates a bucket (in us-east-1, which needs no location constraint). */
export async function createBucket(client: S3Client, name: string): Promise<void> {
  await client.send(new CreateBucketCommand({ Bucket: name }));
}
