import { RemovalPolicy } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';

/** Props of a data bucket the stack creates when the user names none. */
export interface DataBucketProps {
  /** Receives the server access logs. */
  readonly accessLogsBucket: s3.IBucket;
  /** Prefix of this bucket's access logs. */
  readonly accessLogsPrefix: string;
  /** @default SSE-S3 */
  readonly encryptionKey?: kms.IKey;
}

/** What every bucket of the stack is: encrypted (SSE-S3 or SSE-KMS with a bucket key), SSL-only, private, versioned, retained. */
export function secureBucketProps(encryptionKey: kms.IKey | undefined): s3.BucketProps {
  return {
    ...(encryptionKey === undefined
      ? { encryption: s3.BucketEncryption.S3_MANAGED }
      : { encryption: s3.BucketEncryption.KMS, encryptionKey, bucketKeyEnabled: true }),
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    enforceSSL: true,
    versioned: true,
    removalPolicy: RemovalPolicy.RETAIN,
  };
}

/** An encrypted, SSL-only, private, versioned bucket for the landing zone or the exports. */
export class DataBucket extends Construct {
  public readonly bucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: DataBucketProps) {
    super(scope, id);
    this.bucket = new s3.Bucket(this, 'Bucket', {
      ...secureBucketProps(props.encryptionKey),
      serverAccessLogsBucket: props.accessLogsBucket,
      serverAccessLogsPrefix: props.accessLogsPrefix,
    });
  }
}
