import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';

/** Props of the pipelines' state bucket. */
export interface PipelineStateBucketProps {
  /**
   * Days staged events and their dedup keys are kept: late duplicates are recognised this long.
   * @default 35 (DESIGN 4b asks for at least 30)
   */
  readonly stagingRetentionDays?: number;
  /**
   * Bucket receiving the server access logs.
   * @default a dedicated, encrypted log bucket
   */
  readonly accessLogsBucket?: s3.IBucket;
}

/**
 * The private bucket holding every pipeline's state: ingest records, staging, step work files and
 * run records (under `state/`), and staged events (under `staging/`, which expire after the retention
 * period). Encrypted, SSL-only, never public, versioned so a bad write can be undone.
 */
export class PipelineStateBucket extends Construct {
  /** The state bucket. */
  public readonly bucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: PipelineStateBucketProps = {}) {
    super(scope, id);
    const logs =
      props.accessLogsBucket ??
      new s3.Bucket(this, 'AccessLogs', {
        encryption: s3.BucketEncryption.S3_MANAGED,
        blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
        enforceSSL: true,
        objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
        lifecycleRules: [{ expiration: Duration.days(90) }],
        removalPolicy: RemovalPolicy.RETAIN,
      });
    this.bucket = new s3.Bucket(this, 'Bucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: true,
      serverAccessLogsBucket: logs,
      serverAccessLogsPrefix: 'state/',
      lifecycleRules: [
        { prefix: 'staging/', expiration: Duration.days(props.stagingRetentionDays ?? 35), id: 'staging' },
        { noncurrentVersionExpiration: Duration.days(7), id: 'noncurrent' },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }
}
