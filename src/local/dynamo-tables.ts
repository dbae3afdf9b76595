import {
  CreateTableCommand,
  DynamoDBClient,
  type DynamoDBClientConfig,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import { CONFIG_TABLE_KEYS, STATE_TABLE_KEYS } from '../core/tables.js';

const TABLE_READY_SECONDS = 30;

/**
 * A DynamoDB client for a moto endpoint with dummy credentials and no SDK retries, so a test sees the
 * emulator's first answer (`overrides` win).
 */
export function dynamoClientFor(endpoint: string, overrides: DynamoDBClientConfig = {}): DynamoDBClient {
  return new DynamoDBClient({
    region: 'us-east-1',
    endpoint,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
    ...overrides,
  });
}

/** Creates the state table (keys from STATE_TABLE_KEYS, on-demand) and waits until it is ACTIVE. */
export async function createStateTable(client: DynamoDBClient, name: string): Promise<void> {
  await createTable(client, name, STATE_TABLE_KEYS);
}

/**
 * Creates the config table (keys from CONFIG_TABLE_KEYS, on-demand, with the change stream the
 * console-edit validator reads, as in the stack) and waits until it is ACTIVE.
 */
export async function createConfigTable(client: DynamoDBClient, name: string): Promise<void> {
  await createTable(client, name, CONFIG_TABLE_KEYS, true);
}

async function createTable(
  client: DynamoDBClient,
  name: string,
  keys: { readonly partitionKey: string; readonly sortKey: string },
  stream = false,
): Promise<void> {
  await client.send(
    new CreateTableCommand({
      TableName: name,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: keys.partitionKey, AttributeType: 'S' },
        { AttributeName: keys.sortKey, AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: keys.partitionKey, KeyType: 'HASH' },
        { AttributeName: keys.sortKey, KeyType: 'RANGE' },
      ],
      ...(stream
        ? { StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' } }
        : {}),
    }),
  );
  // Throws unless ACTIVE in time. Short delays: the default first wait is 20 s; moto is ACTIVE at once.
  await waitUntilTableExists(
    { client, maxWaitTime: TABLE_READY_SECONDS, minDelay: 1, maxDelay: 2 },
    { TableName: name },
  );
}
