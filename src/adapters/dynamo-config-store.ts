import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  type TransactWriteItem,
  TransactWriteItemsCommand,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import type { PipelineConfig } from '../core/pipeline-config.js';
import { activeConfigs, readStoredPipeline, type StoredPipeline } from '../core/pipeline-rules.js';
import type {
  CatalogWrite,
  ConfigListing,
  PipelineCatalog,
  PipelineConfigStore,
  ProjectPipelines,
  ProjectRevision,
} from '../core/ports.js';
import { CONFIG_TABLE_KEYS, STATE_TABLE_KEYS } from '../core/tables.js';
import { asTransient, errorFields } from './aws-errors.js';

/** Where the configs live: the config table, and the state table that holds each project's revision. */
export interface DynamoConfigStoreOptions {
  readonly client: DynamoDBClient;
  readonly configsTable: string;
  readonly stateTable: string;
}

/**
 * Pipeline configs as plain DynamoDB items (one attribute per field, readable and editable in the
 * console) with their management attributes. Every item read is validated; an invalid one never runs.
 * Writes go through a transaction that also moves the project's revision item in the state table, so
 * two writers that decided on the same view of a project cannot both succeed.
 */
export class DynamoConfigStore implements PipelineConfigStore, PipelineCatalog {
  private readonly client: DynamoDBClient;
  private readonly configsTable: string;
  private readonly stateTable: string;

  constructor(options: DynamoConfigStoreOptions) {
    this.client = options.client;
    this.configsTable = options.configsTable;
    this.stateTable = options.stateTable;
  }

  async listActive(projectId?: string, now = Date.now()): Promise<ConfigListing> {
    const pipelines =
      projectId === undefined ? await this.listAll() : (await this.readProject(projectId)).pipelines;
    return activeConfigs(pipelines, now);
  }

  async put(config: PipelineConfig, now = Date.now()): Promise<void> {
    const at = new Date(now).toISOString();
    await this.send(`PutItem of pipeline ${config.project_id}/${config.name}`, () =>
      this.client.send(
        new PutItemCommand({
          TableName: this.configsTable,
          Item: marshall(
            { ...config, status: 'active', version: 1, created_at: at, updated_at: at },
            { removeUndefinedValues: true },
          ),
        }),
      ),
    );
  }

  async readProject(projectId: string): Promise<ProjectPipelines> {
    // The revision first: a write after this read moves it, so a decision on a stale view fails.
    const project = await this.send('GetItem of a project revision', () =>
      this.client.send(
        new GetItemCommand({ TableName: this.stateTable, Key: projectKey(projectId), ConsistentRead: true }),
      ),
    );
    const fields = project.Item === undefined ? {} : unmarshall(project.Item);
    const pipelines = await this.items(projectId);
    return {
      project_id: projectId,
      revision: typeof fields.revision === 'number' ? fields.revision : 0,
      ...(typeof fields.trial_started_at === 'string' ? { trial_started_at: fields.trial_started_at } : {}),
      pipelines,
    };
  }

  listAll(): Promise<StoredPipeline[]> {
    return this.items(undefined);
  }

  async write(project: ProjectRevision, change: CatalogWrite): Promise<boolean> {
    const pipeline =
      change.kind === 'create'
        ? createItem(this.configsTable, change.item)
        : updateItem(this.configsTable, project.project_id, change);
    try {
      await this.client.send(
        new TransactWriteItemsCommand({
          TransactItems: [pipeline, revisionUpdate(this.stateTable, project)],
        }),
      );
      return true;
    } catch (error) {
      if (errorFields(error)?.name === 'TransactionCanceledException' && conditionFailed(error)) return false;
      throw asTransient(error, `DynamoDB TransactWriteItems of pipeline configs in ${this.configsTable}`);
    }
  }

  private async items(projectId: string | undefined): Promise<StoredPipeline[]> {
    const items: Record<string, AttributeValue>[] = [];
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.send('read of pipeline configs', () =>
        this.client.send(
          projectId === undefined
            ? new ScanCommand({
                TableName: this.configsTable,
                ConsistentRead: true,
                ExclusiveStartKey: startKey,
              })
            : new QueryCommand({
                TableName: this.configsTable,
                ConsistentRead: true,
                KeyConditionExpression: '#pk = :pk',
                ExpressionAttributeNames: { '#pk': CONFIG_TABLE_KEYS.partitionKey },
                ExpressionAttributeValues: { ':pk': { S: projectId } },
                ExclusiveStartKey: startKey,
              }),
        ),
      );
      items.push(...(page.Items ?? []));
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined);
    return items
      .map((item) => readStoredPipeline(unmarshall(item)))
      .sort((a, b) => (a.project_id + a.name < b.project_id + b.name ? -1 : 1));
  }

  private async send<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw asTransient(error, `DynamoDB ${what} (${this.configsTable})`);
    }
  }
}

function projectKey(projectId: string): Record<string, AttributeValue> {
  return {
    [STATE_TABLE_KEYS.partitionKey]: { S: `project#${projectId}` },
    [STATE_TABLE_KEYS.sortKey]: { S: 'pipelines' },
  };
}

function createItem(table: string, item: Readonly<Record<string, unknown>>): TransactWriteItem {
  return {
    Put: {
      TableName: table,
      Item: marshall(item, { removeUndefinedValues: true }),
      ConditionExpression: 'attribute_not_exists(#pk)',
      ExpressionAttributeNames: { '#pk': CONFIG_TABLE_KEYS.partitionKey },
    },
  };
}

/** Sets management attributes only: a field edited by hand meanwhile is kept (and reviewed again). */
function updateItem(
  table: string,
  projectId: string,
  change: Extract<CatalogWrite, { kind: 'update' }>,
): TransactWriteItem {
  const names: Record<string, string> = { '#pk': CONFIG_TABLE_KEYS.partitionKey, '#version': 'version' };
  const values: Record<string, unknown> = {
    ':expected': change.expectedVersion,
    ':next': change.expectedVersion + 1,
  };
  const sets = ['#version = :next'];
  for (const [index, [field, value]] of Object.entries(change.set).entries()) {
    names[`#f${index}`] = field;
    values[`:f${index}`] = value;
    sets.push(`#f${index} = :f${index}`);
  }
  const removes = (change.remove ?? []).map((field, index) => {
    names[`#r${index}`] = field;
    return `#r${index}`;
  });
  return {
    Update: {
      TableName: table,
      Key: marshall({
        [CONFIG_TABLE_KEYS.partitionKey]: projectId,
        [CONFIG_TABLE_KEYS.sortKey]: change.name,
      }),
      UpdateExpression: `SET ${sets.join(', ')}${removes.length > 0 ? ` REMOVE ${removes.join(', ')}` : ''}`,
      // Items written by hand may have no version: that reads as 0.
      ConditionExpression:
        change.expectedVersion === 0
          ? 'attribute_exists(#pk) AND (attribute_not_exists(#version) OR #version = :expected)'
          : 'attribute_exists(#pk) AND #version = :expected',
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: marshall(values, { removeUndefinedValues: true }),
    },
  };
}

function revisionUpdate(table: string, project: ProjectRevision): TransactWriteItem {
  return {
    Update: {
      TableName: table,
      Key: projectKey(project.project_id),
      UpdateExpression:
        project.trial_started_at === undefined
          ? 'SET revision = :next'
          : 'SET revision = :next, trial_started_at = if_not_exists(trial_started_at, :trial)',
      ConditionExpression: project.revision === 0 ? 'attribute_not_exists(revision)' : 'revision = :expected',
      ExpressionAttributeValues: marshall(
        {
          ':next': project.revision + 1,
          ...(project.revision === 0 ? {} : { ':expected': project.revision }),
          ...(project.trial_started_at === undefined ? {} : { ':trial': project.trial_started_at }),
        },
        { removeUndefinedValues: true },
      ),
    },
  };
}

/** True when a cancelled transaction failed a condition (another writer came first). */
function conditionFailed(error: unknown): boolean {
  const reasons = (error as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? [];
  return reasons.some((reason) => reason.Code === 'ConditionalCheckFailed');
}
