import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { CONFIG_TABLE_KEYS, STATE_TABLE_KEYS, STATE_TABLE_TTL_ATTRIBUTE } from '../src/core/tables.js';

/** Props of the pipelines' DynamoDB tables. */
export interface PipelineTablesProps {
  /**
   * Customer-managed KMS key encrypting both tables (and their streams).
   * @default AWS-managed encryption (the `aws/dynamodb` key)
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * What happens to the tables when they leave the stack. Deletion protection stays on either way.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The pipelines' two DynamoDB tables: `configs` (one item per pipeline, editable in the console, with a
 * stream so hand edits can be validated again) and `state` (project locks, run records, cursors, with a
 * TTL). Both on-demand, point-in-time recovery on, deletion protection on, encrypted at rest.
 */
export class PipelineTables extends Construct {
  /** Pipeline configs, keyed by {@link CONFIG_TABLE_KEYS}; stream of new and old images. */
  public readonly configs: dynamodb.Table;
  /** Operational state, keyed by {@link STATE_TABLE_KEYS}; TTL on {@link STATE_TABLE_TTL_ATTRIBUTE}. */
  public readonly state: dynamodb.Table;

  constructor(scope: Construct, id: string, props: PipelineTablesProps = {}) {
    super(scope, id);
    const common = {
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: true,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
      ...(props.encryptionKey === undefined
        ? { encryption: dynamodb.TableEncryption.AWS_MANAGED }
        : { encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED, encryptionKey: props.encryptionKey }),
    } satisfies Partial<dynamodb.TableProps>;

    this.configs = new dynamodb.Table(this, 'Configs', {
      ...common,
      partitionKey: { name: CONFIG_TABLE_KEYS.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: CONFIG_TABLE_KEYS.sortKey, type: dynamodb.AttributeType.STRING },
      stream: dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
    });
    this.state = new dynamodb.Table(this, 'State', {
      ...common,
      partitionKey: { name: STATE_TABLE_KEYS.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: STATE_TABLE_KEYS.sortKey, type: dynamodb.AttributeType.STRING },
      timeToLiveAttribute: STATE_TABLE_TTL_ATTRIBUTE,
    });
  }
}
