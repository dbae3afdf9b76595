import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { z } from 'zod';
import { checkLockRequest, type Lease, LockLostError, type LockStore } from '../core/lock.js';
import { parseStoredState } from '../core/records.js';
import { STATE_TABLE_KEYS } from '../core/tables.js';
import { asTransient, errorFields } from './aws-errors.js';

const { partitionKey: PK, sortKey: SK } = STATE_TABLE_KEYS;
const LOCK_SORT_KEY = 'lock';

/** Options of a {@link DynamoLockStore}. */
export interface DynamoLockStoreOptions {
  readonly client: DynamoDBClient;
  /** The state table (keys {@link STATE_TABLE_KEYS}). */
  readonly tableName: string;
}

/**
 * Project locks in the state table: item `pk = project#<id>`, `sk = lock` with `owner`, `acquired_at`,
 * `expires_at` (epoch ms) and `token`. Every change is one conditional write, so concurrent callers
 * cannot both win. A released lock keeps its item (without an owner) and its token, and the item has no
 * TTL: the token must never start again from zero. Throttling, 5xx and network failures surface as
 * `TransientError`; anything else propagates unchanged.
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
    const expiresAt = now + leaseMs;
    // A takeover (free, released or expired lock) moves the token on; the holder itself keeps it.
    const taken =
      (await this.update(
        projectId,
        'SET #owner = :owner, acquired_at = :now, expires_at = :expires, #token = if_not_exists(#token, :zero) + :one',
        // `<`: a lease holds through its `expiresAt` millisecond (see `isLive`).
        'attribute_not_exists(#owner) OR (expires_at < :now AND #owner <> :owner)',
        { ':now': now, ':expires': expiresAt, ':zero': 0, ':one': 1 },
        owner,
      )) ??
      (await this.update(
        projectId,
        'SET acquired_at = :now, expires_at = :expires',
        '#owner = :owner',
        { ':now': now, ':expires': expiresAt },
        owner,
      ));
    return taken === undefined ? undefined : this.leaseFrom(taken, projectId);
  }

  async renew(projectId: string, owner: string, now: number, leaseMs: number): Promise<Lease> {
    checkLockRequest(projectId, owner, now, leaseMs);
    let attributes: Record<string, AttributeValue> | undefined;
    try {
      const response = await this.client.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: keyOf(projectId),
          UpdateExpression: 'SET expires_at = :expires',
          // Also false when the lock is released, so a renew never takes a released lock back.
          ConditionExpression: '#owner = :owner',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':owner': { S: owner }, ':expires': { N: String(now + leaseMs) } },
          ReturnValues: 'ALL_NEW',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      attributes = response.Attributes;
    } catch (error) {
      if (isConditionFailure(error)) throw this.lost(projectId, owner, error.Item, error);
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
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: keyOf(projectId),
          // The item stays, with its token, so the next holder's token is larger still.
          UpdateExpression: 'REMOVE #owner, acquired_at, expires_at',
          ConditionExpression: '#owner = :owner',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':owner': { S: owner } },
        }),
      );
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw this.mapError(error, 'UpdateItem', projectId);
    }
    return true;
  }

  async current(projectId: string): Promise<Lease | undefined> {
    checkLockRequest(projectId);
    return this.leaseFrom(await this.item(projectId), projectId);
  }

  async check(projectId: string, owner: string, token: number): Promise<void> {
    checkLockRequest(projectId, owner);
    const item = await this.item(projectId);
    if (item?.owner?.S !== owner || item.token?.N !== String(token))
      throw this.lost(projectId, owner, item, undefined, token);
  }

  private async item(projectId: string): Promise<Record<string, AttributeValue> | undefined> {
    try {
      const response = await this.client.send(
        new GetItemCommand({ TableName: this.tableName, Key: keyOf(projectId), ConsistentRead: true }),
      );
      return response.Item;
    } catch (error) {
      throw this.mapError(error, 'GetItem', projectId);
    }
  }

  /** Runs a conditional lock update; the item after it, or `undefined` when the condition failed. */
  private async update(
    projectId: string,
    expression: string,
    condition: string,
    numbers: Record<string, number>,
    owner: string,
  ): Promise<Record<string, AttributeValue> | undefined> {
    try {
      const response = await this.client.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: keyOf(projectId),
          UpdateExpression: expression,
          ConditionExpression: condition,
          // `token` is a reserved word in expressions.
          ExpressionAttributeNames: {
            '#owner': 'owner',
            ...(expression.includes('#token') ? { '#token': 'token' } : {}),
          },
          ExpressionAttributeValues: {
            ':owner': { S: owner },
            ...Object.fromEntries(Object.entries(numbers).map(([name, n]) => [name, { N: String(n) }])),
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return response.Attributes;
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw this.mapError(error, 'UpdateItem', projectId);
    }
  }

  private lost(
    projectId: string,
    owner: string,
    item: Record<string, AttributeValue> | undefined,
    cause?: unknown,
    token?: number,
  ): LockLostError {
    const holder = this.leaseFrom(item, projectId);
    const state =
      holder === undefined ? 'the lock is free' : `${holder.owner} holds it now (token ${holder.token})`;
    const mine = token === undefined ? '' : ` with token ${token}`;
    return new LockLostError(
      `lock of project ${projectId} in ${this.tableName} lost by ${owner}${mine}: ${state}`,
      cause === undefined ? undefined : { cause },
    );
  }

  /** The lease a lock item holds (none when released); a malformed item throws `CorruptStateError`. */
  private leaseFrom(item: Record<string, AttributeValue> | undefined, projectId: string): Lease | undefined {
    if (item?.owner === undefined) return undefined;
    const held = parseStoredState(
      `the lock item of project ${projectId} in ${this.tableName}`,
      heldLockItemSchema,
      item,
    );
    return {
      projectId,
      owner: held.owner.S,
      acquiredAt: Number(held.acquired_at.N),
      expiresAt: Number(held.expires_at.N),
      token: Number(held.token.N),
    };
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

/** By name rather than `instanceof`: a second copy of the SDK in the bundle would break `instanceof`. */
function isConditionFailure(error: unknown): error is ConditionFailure {
  return errorFields(error)?.name === 'ConditionalCheckFailedException';
}

/** A failed condition carries the item as it was (ReturnValuesOnConditionCheckFailure). */
interface ConditionFailure {
  readonly Item?: Record<string, AttributeValue>;
}

/** A number attribute holding a whole number of milliseconds or a token. */
const wholeNumber = z.object({
  N: z.string().refine((n) => Number.isSafeInteger(Number(n)), 'expected a whole number'),
});

/** The attributes of a held lock item. */
const heldLockItemSchema = z.object({
  owner: z.object({ S: z.string() }),
  acquired_at: wholeNumber,
  expires_at: wholeNumber,
  token: wholeNumber,
});
