import { Duration, Stack } from 'aws-cdk-lib';
import * as athena from 'aws-cdk-lib/aws-athena';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { DEFAULT_NONCURRENT_VERSION_DAYS, retentionRules, secureBucketProps } from './data-bucket.js';

/** Days query results are kept unless the deployment says otherwise. */
export const DEFAULT_QUERY_RESULT_DAYS = 30;

/** Props of the warehouse's Athena workgroup. */
export interface WarehouseWorkgroupProps {
  /** Receives the results bucket's server access logs. */
  readonly accessLogsBucket: s3.IBucket;
  /**
   * Encrypts the query results (SSE-KMS) and their bucket.
   * @default SSE-S3
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * Days a replaced or deleted result version is kept.
   * @default DEFAULT_NONCURRENT_VERSION_DAYS
   */
  readonly noncurrentVersionDays?: number;
  /**
   * Days a query's result files are kept.
   * @default DEFAULT_QUERY_RESULT_DAYS
   */
  readonly queryResultDays?: number;
  /**
   * The most a query may scan, in bytes (Athena cancels it beyond).
   * @default 1 TiB
   */
  readonly bytesScannedCutoffPerQuery?: number;
}

/**
 * The Athena workgroup people query the exports in: engine 3, results in a bucket of their own,
 * encrypted and expiring, and settings the workgroup enforces (a client cannot send results elsewhere
 * or unencrypted). The tables themselves are in the projects' Glue databases, which the commits keep.
 */
export class WarehouseWorkgroup extends Construct {
  public readonly workGroup: athena.CfnWorkGroup;
  public readonly resultsBucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: WarehouseWorkgroupProps) {
    super(scope, id);
    const days = props.queryResultDays ?? DEFAULT_QUERY_RESULT_DAYS;
    if (!Number.isInteger(days) || days < 1)
      throw new Error(`queryResultDays must be a whole number of days, at least 1 (got ${days})`);
    this.resultsBucket = new s3.Bucket(this, 'Results', {
      ...secureBucketProps(props.encryptionKey),
      serverAccessLogsBucket: props.accessLogsBucket,
      serverAccessLogsPrefix: 'query-results/',
      lifecycleRules: [
        { id: 'query-results', expiration: Duration.days(days) },
        ...retentionRules(props.noncurrentVersionDays ?? DEFAULT_NONCURRENT_VERSION_DAYS),
      ],
    });
    const stack = Stack.of(this);
    this.workGroup = new athena.CfnWorkGroup(this, 'WorkGroup', {
      name: `${stack.stackName}-warehouse`,
      description: 'Queries over the exported events, people and identity mappings (mp-pipelines)',
      state: 'ENABLED',
      workGroupConfiguration: {
        enforceWorkGroupConfiguration: true,
        publishCloudWatchMetricsEnabled: true,
        bytesScannedCutoffPerQuery: props.bytesScannedCutoffPerQuery ?? 1024 ** 4,
        engineVersion: { selectedEngineVersion: 'Athena engine version 3' },
        resultConfiguration: {
          outputLocation: this.resultsBucket.s3UrlForObject('results/'),
          expectedBucketOwner: stack.account,
          encryptionConfiguration:
            props.encryptionKey === undefined
              ? { encryptionOption: 'SSE_S3' }
              : { encryptionOption: 'SSE_KMS', kmsKey: props.encryptionKey.keyArn },
        },
      },
    });
  }
}
