import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { PipelineStateBucket } from './pipeline-state-bucket.js';

/** Props of the data pipelines stack. */
export interface DataPipelinesStackProps extends StackProps {
  /**
   * Days staged events are kept (late duplicates are recognised this long).
   * @default 35
   */
  readonly stagingRetentionDays?: number;
}

/** Everything a deployment of the data pipelines needs; composes constructs and holds no logic. */
export class DataPipelinesStack extends Stack {
  /** The pipelines' private state and staging. */
  public readonly state: PipelineStateBucket;

  constructor(scope: Construct, id: string, props: DataPipelinesStackProps = {}) {
    super(scope, id, props);
    this.state = new PipelineStateBucket(this, 'State', {
      ...(props.stagingRetentionDays === undefined
        ? {}
        : { stagingRetentionDays: props.stagingRetentionDays }),
    });
    new CfnOutput(this, 'StateBucketName', { value: this.state.bucket.bucketName });
  }
}
