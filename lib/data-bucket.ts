import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';

/** Days after which a multipart upload nobody completed is aborted: a function's upload ends within its 15 minutes. */
export const INCOMPLETE_UPLOAD_DAYS = 3;

/** Days a replaced or deleted object version is kept unless the deployment says otherwise. */
export const DEFAULT_NONCURRENT_VERSION_DAYS = 7;

/**
 * The lifecycle rules of every versioned bucket of the stack: a replaced or deleted version expires
 * after `noncurrentVersionDays` (with it the data it held, a `$delete`d profile's included), the delete
 * markers left with no version behind them go, and parts of abandoned multipart uploads are aborted.
 */
export function retentionRules(noncurrentVersionDays: number): s3.LifecycleRule[] {
  if (!Number.isInteger(noncurrentVersionDays) || noncurrentVersionDays < 1) {
    throw new Error(
      `noncurrentVersionDays must be a whole number of days, at least 1 (got ${noncurrentVersionDays})`,
    );
  }
  return [
    {
      id: 'noncurrent-versions',
      noncurrentVersionExpiration: Duration.days(noncurrentVersionDays),
      expiredObjectDeleteMarker: true,
    },
    incompleteUploadsRule(),
  ];
}

/** Aborts multipart uploads left incomplete (their parts are stored and billed until then). */
export function incompleteUploadsRule(): s3.LifecycleRule {
  return {
    id: 'incomplete-uploads',
    abortIncompleteMultipartUploadAfter: Duration.days(INCOMPLETE_UPLOAD_DAYS),
  };
}

/** Props of a data bucket the stack creates when the user names none. */
export interface DataBucketProps {
  /** Receives the server access logs. */
  readonly accessLogsBucket: s3.IBucket;
  /** Prefix of this bucket's access logs. */
  readonly accessLogsPrefix: string;
  /** @default SSE-S3 */
  readonly encryptionKey?: kms.IKey;
  /**
   * Days a replaced or deleted object version is kept.
   * @default DEFAULT_NONCURRENT_VERSION_DAYS
   */
  readonly noncurrentVersionDays?: number;
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

/**
 * An encrypted, SSL-only, private, versioned bucket for the landing zone or the exports, whose old
 * versions expire (see {@link retentionRules}).
 */
export class DataBucket extends Construct {
  public readonly bucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: DataBucketProps) {
    super(scope, id);
    this.bucket = new s3.Bucket(this, 'Bucket', {
      ...secureBucketProps(props.encryptionKey),
      serverAccessLogsBucket: props.accessLogsBucket,
      serverAccessLogsPrefix: props.accessLogsPrefix,
      lifecycleRules: retentionRules(props.noncurrentVersionDays ?? DEFAULT_NONCURRENT_VERSION_DAYS),
    });
  }
}
