import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import {
  DEFAULT_NONCURRENT_VERSION_DAYS,
  incompleteUploadsRule,
  retentionRules,
  secureBucketProps,
} from './data-bucket.js';

/**
 * Fewest days before the sweep of staged data no step removed: well past the dedup horizon (35 days of
 * arrival), so the keys a sync still reads are never swept while the pipeline runs.
 */
export const MIN_STAGING_ORPHAN_DAYS = 90;

/** Props of the pipelines' state bucket. */
export interface PipelineStateBucketProps {
  /**
   * Days after which staged data that no step removed is swept: what a deleted pipeline left, or an
   * attempt that was restarted. Staged events are removed by the commit of the last step that exports
   * them and dedup keys once past the syncs' horizon, whatever their age, so only a pipeline paused
   * longer than this loses staged events (its steps then fail, naming the missing objects).
   * A whole number, at least {@link MIN_STAGING_ORPHAN_DAYS}.
   * @default 400
   */
  readonly stagingOrphanDays?: number;
  /**
   * Days a replaced or deleted object version is kept.
   * @default DEFAULT_NONCURRENT_VERSION_DAYS
   */
  readonly noncurrentVersionDays?: number;
  /**
   * Customer-managed KMS key for SSE-KMS on the state bucket (with an S3 bucket key, to keep KMS
   * requests few). The access log bucket stays SSE-S3: S3 server access logging cannot write to SSE-KMS.
   * @default SSE-S3 (S3-managed keys)
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * Bucket receiving the server access logs.
   * @default a dedicated, encrypted log bucket
   */
  readonly accessLogsBucket?: s3.IBucket;
  /**
   * Days server access logs are kept in the dedicated log bucket (ignored when `accessLogsBucket` is given).
   * @default 90
   */
  readonly accessLogsRetentionDays?: number;
}

/**
 * The private bucket holding every pipeline's state: ingest records, the staging index, step work files
 * and run records (under `state/`), and staged events (under `staging/`, removed by the steps that use
 * them; a long expiry sweeps what no step will). Encrypted, SSL-only, never public, versioned so a bad
 * write can be undone.
 *
 * Access logs are delivered through a bucket policy with ACLs disabled, which needs the feature flag
 * `@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy` (set in `cdk.json`).
 */
export class PipelineStateBucket extends Construct {
  /** The state bucket. */
  public readonly bucket: s3.Bucket;
  /** The bucket receiving the state bucket's server access logs (the given one, or one made here). */
  public readonly accessLogsBucket: s3.IBucket;

  constructor(scope: Construct, id: string, props: PipelineStateBucketProps = {}) {
    super(scope, id);
    const stagingOrphanDays = props.stagingOrphanDays ?? 400;
    if (!Number.isInteger(stagingOrphanDays) || stagingOrphanDays < MIN_STAGING_ORPHAN_DAYS) {
      throw new Error(
        `stagingOrphanDays must be a whole number of days, at least ${MIN_STAGING_ORPHAN_DAYS} (got ${stagingOrphanDays})`,
      );
    }
    this.accessLogsBucket =
      props.accessLogsBucket ?? this.makeAccessLogsBucket(props.accessLogsRetentionDays ?? 90);
    this.bucket = new s3.Bucket(this, 'Bucket', {
      ...secureBucketProps(props.encryptionKey),
      serverAccessLogsBucket: this.accessLogsBucket,
      serverAccessLogsPrefix: 'state/',
      lifecycleRules: [
        { id: 'staging-orphans', prefix: 'staging/', expiration: Duration.days(stagingOrphanDays) },
        ...retentionRules(props.noncurrentVersionDays ?? DEFAULT_NONCURRENT_VERSION_DAYS),
      ],
    });
  }

  private makeAccessLogsBucket(retentionDays: number): s3.Bucket {
    const logs = new s3.Bucket(this, 'AccessLogs', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      lifecycleRules: [
        { id: 'expire-logs', expiration: Duration.days(retentionDays) },
        incompleteUploadsRule(),
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // cdk-nag 3 acknowledgement (v2's NagSuppressions.addResourceSuppressions).
    Validations.of(logs).acknowledge({
      id: 'AwsSolutions-S1',
      reason:
        'This bucket receives the state bucket server access logs; logging it to itself would loop, and logging it to another bucket only moves the finding there.',
    });
    return logs;
  }
}
