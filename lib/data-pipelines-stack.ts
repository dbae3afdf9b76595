import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import type { Construct } from 'constructs';
import { PipelineStateBucket } from './pipeline-state-bucket.js';
import { PipelineTables } from './pipeline-tables.js';

/** Logical ids of the stack outputs, shared with the CLI that reads them (`describe-stacks`). */
export const STACK_OUTPUTS = {
  stateBucketName: 'StateBucketName',
  configsTableName: 'ConfigsTableName',
  stateTableName: 'StateTableName',
} as const;

/** Props of the data pipelines stack. */
export interface DataPipelinesStackProps extends StackProps {
  /**
   * Days staged events are kept (late duplicates are recognised this long).
   * @default 35
   */
  readonly stagingRetentionDays?: number;
  /**
   * ARN of an existing customer-managed KMS key encrypting the tables and the state bucket (SSE-KMS).
   * Its key policy must let DynamoDB and S3 use it in this account.
   * @default no customer key: AWS-managed encryption for the tables, SSE-S3 for the bucket
   */
  readonly kmsKeyArn?: string;
}

/** Everything a deployment of the data pipelines needs; composes constructs and holds no logic. */
export class DataPipelinesStack extends Stack {
  /** The pipelines' private state and staging. */
  public readonly state: PipelineStateBucket;
  /** The pipeline configs table and the operational state table. */
  public readonly tables: PipelineTables;
  /** The customer-managed key, when `kmsKeyArn` was given. */
  public readonly encryptionKey: kms.IKey | undefined;

  constructor(scope: Construct, id: string, props: DataPipelinesStackProps = {}) {
    super(scope, id, props);
    this.encryptionKey =
      props.kmsKeyArn === undefined ? undefined : kms.Key.fromKeyArn(this, 'EncryptionKey', props.kmsKeyArn);
    const encryption = this.encryptionKey === undefined ? {} : { encryptionKey: this.encryptionKey };

    this.state = new PipelineStateBucket(this, 'State', {
      ...encryption,
      ...(props.stagingRetentionDays === undefined
        ? {}
        : { stagingRetentionDays: props.stagingRetentionDays }),
    });
    this.tables = new PipelineTables(this, 'Tables', encryption);

    new CfnOutput(this, STACK_OUTPUTS.stateBucketName, {
      description: 'Bucket holding pipeline state and staging',
      value: this.state.bucket.bucketName,
    });
    new CfnOutput(this, STACK_OUTPUTS.configsTableName, {
      description: 'DynamoDB table of pipeline configs',
      value: this.tables.configs.tableName,
    });
    new CfnOutput(this, STACK_OUTPUTS.stateTableName, {
      description: 'DynamoDB table of project locks, run records and cursors',
      value: this.tables.state.tableName,
    });
  }
}
