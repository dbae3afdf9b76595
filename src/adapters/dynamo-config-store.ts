import {
  type AttributeValue,
  type DynamoDBClient,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { ConfigError } from '../core/errors.js';
import { type EventsPipelineConfig, parseEventsPipelineConfig } from '../core/pipeline-config.js';
import type { ConfigListing, InvalidConfig, PipelineConfigStore } from '../core/ports.js';
import { CONFIG_TABLE_KEYS } from '../core/tables.js';
import { asTransient } from './aws-errors.js';

/** Attributes the table keeps beside the config fields (not part of the config itself). */
const STATUS_ATTRIBUTE = 'status';
const ACTIVE = 'active';

/**
 * Pipeline configs as plain DynamoDB items (one attribute per field, readable and editable in the
 * console) plus `status`. Every item read is validated; an invalid one is reported, never run.
 */
export class DynamoConfigStore implements PipelineConfigStore {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
  ) {}

  async listActive(projectId?: string): Promise<ConfigListing> {
    const configs: EventsPipelineConfig[] = [];
    const invalid: InvalidConfig[] = [];
    for (const item of await this.items(projectId)) {
      const { [STATUS_ATTRIBUTE]: status, ...fields } = unmarshall(item);
      if ((status ?? ACTIVE) !== ACTIVE) continue;
      try {
        configs.push(parseEventsPipelineConfig(fields));
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        invalid.push({
          project_id: String(fields[CONFIG_TABLE_KEYS.partitionKey]),
          name: String(fields[CONFIG_TABLE_KEYS.sortKey]),
          problem: error.message,
        });
      }
    }
    configs.sort((a, b) => (a.project_id + a.name < b.project_id + b.name ? -1 : 1));
    return { configs, invalid };
  }

  async put(config: EventsPipelineConfig): Promise<void> {
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: marshall({ ...config, [STATUS_ATTRIBUTE]: ACTIVE }, { removeUndefinedValues: true }),
        }),
      );
    } catch (error) {
      throw asTransient(
        error,
        `DynamoDB PutItem of pipeline ${config.project_id}/${config.name} in ${this.tableName}`,
      );
    }
  }

  private async items(projectId: string | undefined): Promise<Record<string, AttributeValue>[]> {
    const items: Record<string, AttributeValue>[] = [];
    let startKey: Record<string, AttributeValue> | undefined;
    try {
      do {
        const page = await this.client.send(
          projectId === undefined
            ? new ScanCommand({
                TableName: this.tableName,
                ConsistentRead: true,
                ExclusiveStartKey: startKey,
              })
            : new QueryCommand({
                TableName: this.tableName,
                ConsistentRead: true,
                KeyConditionExpression: '#pk = :pk',
                ExpressionAttributeNames: { '#pk': CONFIG_TABLE_KEYS.partitionKey },
                ExpressionAttributeValues: { ':pk': { S: projectId } },
                ExclusiveStartKey: startKey,
              }),
        );
        items.push(...(page.Items ?? []));
        startKey = page.LastEvaluatedKey;
      } while (startKey !== undefined);
    } catch (error) {
      throw asTransient(error, `DynamoDB read of pipeline configs in ${this.tableName}`);
    }
    return items;
  }
}
