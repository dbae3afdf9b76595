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
import { marshall } from '@aws-sdk/util-dynamodb';
import type { PipelineConfig } from '../core/pipeline-config.js';
import {
  activeConfigs,
  readStoredPipeline,
  type StoredPipeline,
  storedNumber,
  UnreadableValue,
} from '../core/pipeline-rules.js';
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
 * console) with their management attributes. Every item read is validated; an invalid one never runs,
 * and no value an item holds makes reading fail (see `plainItem`).
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
    const fields = project.Item === undefined ? {} : plainItem(project.Item);
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

  async readPipeline(projectId: string, name: string): Promise<StoredPipeline | undefined> {
    const response = await this.send(`GetItem of pipeline ${projectId}/${name}`, () =>
      this.client.send(
        new GetItemCommand({
          TableName: this.configsTable,
          Key: {
            [CONFIG_TABLE_KEYS.partitionKey]: { S: projectId },
            [CONFIG_TABLE_KEYS.sortKey]: { S: name },
          },
          ConsistentRead: true,
        }),
      ),
    );
    return response.Item === undefined ? undefined : readStoredPipeline(plainItem(response.Item));
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
      .map((item) => readStoredPipeline(plainItem(item)))
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

/**
 * An item's attributes as plain values, never throwing (`unmarshall` throws on numbers beyond 2^53 such
 * as `1E+125`, and turns a map key "__proto__" into a prototype): strings, booleans, null, binary as
 * `Uint8Array`, sets as `Set`, lists, maps as objects with own keys, numbers through `storedNumber`,
 * and a value of a kind this code does not know, or that the SDK did not read, as an `UnreadableValue`.
 */
export function plainItem(item: Readonly<Record<string, AttributeValue>>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(item).map(([name, value]) => [name, plainValue(value)]));
}

function plainValue(value: AttributeValue | undefined): unknown {
  // The SDK's reader loses the value of an attribute named "__proto__" (it reads as undefined).
  if (value === undefined)
    return new UnreadableValue('holds a value the AWS SDK did not read', '(unread)', undefined);
  if (value.S !== undefined) return value.S;
  if (value.N !== undefined) return storedNumber(value.N);
  if (value.BOOL !== undefined) return value.BOOL;
  if (value.NULL !== undefined) return null;
  if (value.B !== undefined) return value.B;
  if (value.SS !== undefined) return new Set(value.SS);
  if (value.NS !== undefined) return new Set(value.NS.map((text) => storedNumber(text)));
  if (value.BS !== undefined) return new Set(value.BS);
  if (value.L !== undefined) return value.L.map(plainValue);
  if (value.M !== undefined) return plainItem(value.M);
  const kind = Object.keys(value).join(', ');
  return new UnreadableValue(
    `holds a value of a kind this software does not read (${kind})`,
    `(${kind})`,
    value,
  );
}

/** The inverse of `plainValue`: a value as `plainItem` read it, back in DynamoDB's form. */
export function attributeValueOf(value: unknown): AttributeValue {
  if (value instanceof UnreadableValue) return value.stored as AttributeValue;
  if (typeof value === 'string') return { S: value };
  if (typeof value === 'number') return { N: String(value) };
  if (typeof value === 'boolean') return { BOOL: value };
  if (value === null) return { NULL: true };
  if (value instanceof Uint8Array) return { B: value };
  if (Array.isArray(value)) return { L: value.map(attributeValueOf) };
  if (value instanceof Set) {
    const members = [...value];
    if (typeof members[0] === 'string') return { SS: members };
    if (members[0] instanceof Uint8Array) return { BS: members };
    return { NS: members.map((member) => String(attributeValueOf(member).N)) };
  }
  return {
    M: Object.fromEntries(
      Object.entries(value as Record<string, unknown>).map(([name, member]) => [
        name,
        attributeValueOf(member),
      ]),
    ),
  };
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

/**
 * Sets management attributes only: a field edited by hand meanwhile is kept (and reviewed again). An
 * item whose version is not one is written if it still holds that value, and counts again from 1.
 */
function updateItem(
  table: string,
  projectId: string,
  change: Extract<CatalogWrite, { kind: 'update' }>,
): TransactWriteItem {
  const names: Record<string, string> = { '#pk': CONFIG_TABLE_KEYS.partitionKey, '#version': 'version' };
  const values: Record<string, unknown> = { ':next': change.expectedVersion + 1 };
  if (change.invalidVersion === undefined) values[':expected'] = change.expectedVersion;
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
        change.expectedVersion === 0 && change.invalidVersion === undefined
          ? 'attribute_exists(#pk) AND (attribute_not_exists(#version) OR #version = :expected)'
          : 'attribute_exists(#pk) AND #version = :expected',
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: {
        ...marshall(values, { removeUndefinedValues: true }),
        ...(change.invalidVersion === undefined
          ? {}
          : { ':expected': attributeValueOf(change.invalidVersion) }),
      },
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
