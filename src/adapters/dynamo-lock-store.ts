import {
  type AttributeValue,
  DeleteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { checkLockRequest, type Lease, LockLostError, type LockStore } from '../core/lock.js';
import { STATE_TABLE_KEYS, STATE_TABLE_TTL_ATTRIBUTE } from '../core/tables.js';
import { asTransient, errorFields } from './aws-errors.js';

const { partitionKey: PK, sortKey: SK } = STATE_TABLE_KEYS;
const LOCK_SORT_KEY = 'lock';

/** Options of a {@link DynamoLockStore}. */
export interface DynamoLockStoreOptions {
  readonly client: DynamoDBClient;
  /** The state table (keys {@link STATE_TABLE_KEYS}, TTL on {@link STATE_TABLE_TTL_ATTRIBUTE}). */
  readonly tableName: string;
}

/**
 * Project locks in the state table: item `pk = project#<id>`, `sk = lock` with `owner`, `acquired_at`,
 * `expires_at` (epoch ms) and `expires_at_s` (epoch s, for DynamoDB TTL). Every change is one
 * conditional write, so concurrent callers cannot both win. Throttling, 5xx and network failures
 * surface as `TransientError`; anything else propagates unchanged.
 */
export class DynamoLockStore implements LockStore {
  private readonly client: DynamoDBClient;
  private readonly tableName: string;

  constructor(options: DynamoLockStoreOptions) {
    this.client = options.client;
    this.tableName = options.tableName;
  }

  async acquire(projectId: string, owner: string, now: number, leaseMs: number): Promise<Lease | undefined> {
    checkLockRequest(projectId, owner, now, leaseMs);
    const lease: Lease = { projectId, owner, acquiredAt: now, expiresAt: now + leaseMs };
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: {
            ...keyOf(projectId),
            owner: { S: owner },
            acquired_at: { N: String(lease.acquiredAt) },
            expires_at: { N: String(lease.expiresAt) },
            [STATE_TABLE_TTL_ATTRIBUTE]: { N: String(ttlSeconds(lease.expiresAt)) },
          },
          // `<`: a lease holds through its `expiresAt` millisecond (see `isLive`).
          ConditionExpression: 'attribute_not_exists(#pk) OR expires_at < :now OR #owner = :owner',
          ExpressionAttributeNames: { '#pk': PK, '#owner': 'owner' },
          ExpressionAttributeValues: { ':now': { N: String(now) }, ':owner': { S: owner } },
        }),
      );
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw this.mapError(error, 'PutItem', projectId);
    }
    return lease;
  }

  async renew(projectId: string, owner: string, now: number, leaseMs: number): Promise<Lease> {
    checkLockRequest(projectId, owner, now, leaseMs);
    const expiresAt = now + leaseMs;
    let attributes: Record<string, AttributeValue> | undefined;
    try {
      const response = await this.client.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: keyOf(projectId),
          UpdateExpression: `SET expires_at = :expires, ${STATE_TABLE_TTL_ATTRIBUTE} = :expires_s`,
          // Also false when the item is gone, so a renew never recreates a released lock.
          ConditionExpression: '#owner = :owner',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: {
            ':owner': { S: owner },
            ':expires': { N: String(expiresAt) },
            ':expires_s': { N: String(ttlSeconds(expiresAt)) },
          },
          ReturnValues: 'ALL_NEW',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      attributes = response.Attributes;
    } catch (error) {
      if (isConditionFailure(error)) {
        const holder = this.leaseFrom(error.Item, projectId);
        const state = holder === undefined ? 'the lock is free' : `${holder.owner} holds it now`;
        throw new LockLostError(
          `lock of project ${projectId} in ${this.tableName} lost by ${owner}: ${state}`,
          { cause: error },
        );
      }
      throw this.mapError(error, 'UpdateItem', projectId);
    }
    const lease = this.leaseFrom(attributes, projectId);
    if (lease === undefined) {
      throw new Error(`UpdateItem of the lock of project ${projectId} in ${this.tableName} returned no item`);
    }
    return lease;
  }

  async release(projectId: string, owner: string): Promise<boolean> {
    checkLockRequest(projectId, owner);
    try {
      await this.client.send(
        new DeleteItemCommand({
          TableName: this.tableName,
          Key: keyOf(projectId),
          ConditionExpression: '#owner = :owner',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':owner': { S: owner } },
        }),
      );
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw this.mapError(error, 'DeleteItem', projectId);
    }
    return true;
  }

  async current(projectId: string): Promise<Lease | undefined> {
    checkLockRequest(projectId);
    let item: Record<string, AttributeValue> | undefined;
    try {
      const response = await this.client.send(
        new GetItemCommand({ TableName: this.tableName, Key: keyOf(projectId), ConsistentRead: true }),
      );
      item = response.Item;
    } catch (error) {
      throw this.mapError(error, 'GetItem', projectId);
    }
    return this.leaseFrom(item, projectId);
  }

  /** The lease a lock item holds; a malformed item is a bug elsewhere, so it throws. */
  private leaseFrom(item: Record<string, AttributeValue> | undefined, projectId: string): Lease | undefined {
    if (item === undefined) return undefined;
    const owner = item.owner?.S;
    const acquiredAt = Number(item.acquired_at?.N);
    const expiresAt = Number(item.expires_at?.N);
    if (owner === undefined || !Number.isSafeInteger(acquiredAt) || !Number.isSafeInteger(expiresAt)) {
      throw new Error(
        `malformed lock item of project ${projectId} in ${this.tableName}: ${JSON.stringify(item)}`,
      );
    }
    return { projectId, owner, acquiredAt, expiresAt };
  }

  /** Wraps retryable failures in `TransientError` (naming table and project); returns others unchanged. */
  private mapError(error: unknown, operation: string, projectId: string): unknown {
    return asTransient(
      error,
      `DynamoDB ${operation} of the lock of project ${projectId} in ${this.tableName}`,
    );
  }
}

function keyOf(projectId: string): Record<string, AttributeValue> {
  return { [PK]: { S: `project#${projectId}` }, [SK]: { S: LOCK_SORT_KEY } };
}

/** TTL is in seconds; round up so TTL never removes a lease before it ends. */
function ttlSeconds(epochMs: number): number {
  return Math.ceil(epochMs / 1000);
}

/** By name rather than `instanceof`: a second copy of the SDK in the bundle would break `instanceof`. */
function isConditionFailure(error: unknown): error is ConditionFailure {
  return errorFields(error)?.name === 'ConditionalCheckFailedException';
}

/** A failed condition carries the item as it was (ReturnValuesOnConditionCheckFailure). */
interface ConditionFailure {
  readonly Item?: Record<string, AttributeValue>;
}
