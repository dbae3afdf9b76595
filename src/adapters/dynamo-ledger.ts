import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import type { ProjectLedger } from '../core/ports.js';
import { parseStoredState, STORED_RECORDS, type StepRunEntry } from '../core/records.js';
import { STATE_TABLE_KEYS } from '../core/tables.js';
import { asTransient } from './aws-errors.js';

const { partitionKey: PK, sortKey: SK } = STATE_TABLE_KEYS;

/**
 * Run log and fairness cursor in the state table: a step's latest outcome is item
 * `pk = runs#<project>#<pipeline>`, `sk = <step id>` (plain attributes, for the console), and the cursor
 * is `pk = project#<project>`, `sk = cursor` beside the project's lock.
 */
export class DynamoLedger implements ProjectLedger {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
  ) {}

  async recordRun(entry: StepRunEntry): Promise<void> {
    await this.send('PutItem', () =>
      this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: marshall(
            { [PK]: runsKey(entry.project_id, entry.pipeline), [SK]: entry.step_id, ...entry },
            { removeUndefinedValues: true },
          ),
        }),
      ),
    );
  }

  async listRuns(projectId: string, pipeline: string): Promise<StepRunEntry[]> {
    const entries: StepRunEntry[] = [];
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.send('Query', () =>
        this.client.send(
          new QueryCommand({
            TableName: this.tableName,
            ConsistentRead: true,
            KeyConditionExpression: '#pk = :pk',
            ExpressionAttributeNames: { '#pk': PK },
            ExpressionAttributeValues: { ':pk': { S: runsKey(projectId, pipeline) } },
            ExclusiveStartKey: startKey,
          }),
        ),
      );
      for (const item of page.Items ?? []) {
        const { [PK]: pk, [SK]: sk, ...entry } = unmarshall(item);
        const location = `the run log item ${String(pk)} / ${String(sk)} in ${this.tableName}`;
        entries.push(parseStoredState(location, STORED_RECORDS.stepRunEntry, entry));
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined);
    return entries;
  }

  async lastPipeline(projectId: string): Promise<string | undefined> {
    const response = await this.send('GetItem', () =>
      this.client.send(
        new GetItemCommand({ TableName: this.tableName, Key: cursorKey(projectId), ConsistentRead: true }),
      ),
    );
    return response.Item?.last_pipeline?.S;
  }

  async setLastPipeline(projectId: string, pipeline: string): Promise<void> {
    await this.send('PutItem', () =>
      this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: { ...cursorKey(projectId), last_pipeline: { S: pipeline } },
        }),
      ),
    );
  }

  private async send<T>(operation: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw asTransient(error, `DynamoDB ${operation} in ${this.tableName}`);
    }
  }
}

function runsKey(projectId: string, pipeline: string): string {
  return `runs#${projectId}#${pipeline}`;
}

function cursorKey(projectId: string): Record<string, AttributeValue> {
  return { [PK]: { S: `project#${projectId}` }, [SK]: { S: 'cursor' } };
}
