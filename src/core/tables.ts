/**
 * The DynamoDB tables' key schema, shared by the CDK stack, the adapters and the test setup so the
 * three cannot drift apart.
 */

/** Pipeline configs: one item per pipeline, editable in the console. */
export const CONFIG_TABLE_KEYS = { partitionKey: 'project_id', sortKey: 'name' } as const;

/** Operational state: project locks, run records, cursors. Generic keys, items told apart by prefix. */
export const STATE_TABLE_KEYS = { partitionKey: 'pk', sortKey: 'sk' } as const;

/** The state table's TTL attribute (epoch seconds): DynamoDB allows one, shared by every item kind. */
export const STATE_TABLE_TTL_ATTRIBUTE = 'expires_at_s';

/** The stack's outputs: the CLI finds a deployment's tables and buckets by these names. */
export const STACK_OUTPUTS = {
  stateBucketName: 'StateBucketName',
  configsTableName: 'ConfigsTableName',
  stateTableName: 'StateTableName',
  rawBucketName: 'RawBucketName',
  destinationBucketName: 'DestinationBucketName',
  dispatcherArn: 'DispatcherArn',
  projectWorkflowArn: 'ProjectWorkflowArn',
  stepWorkflowArn: 'StepWorkflowArn',
  warehouseWorkGroupName: 'WarehouseWorkGroupName',
} as const;
