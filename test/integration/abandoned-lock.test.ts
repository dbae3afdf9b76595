import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoLockStore } from '../../src/adapters/dynamo-lock-store.js';
import { projectExecutionName } from '../../src/core/workflow.js';
import { createStateTable, dynamoClientFor } from '../../src/local/dynamo-tables.js';
import { type Moto, startMoto } from '../../src/local/moto.js';
import { type ExecutionStatusChange, releaseAbandonedLock } from '../../src/workflow/abandoned-lock.js';
import type { Log } from '../../src/workflow/runtime.js';

const T0 = Date.UTC(2026, 0, 1, 6, 15);
const LEASE_MS = 135 * 60_000;
const quiet: Log = { info: () => undefined, warn: () => undefined };

/** The event EventBridge delivers when a project workflow execution ends with `status`. */
function ended(name: string, status: string): ExecutionStatusChange {
  return {
    detail: { name, status, executionArn: `arn:aws:states:us-east-1:123456789012:execution:pw:${name}` },
  };
}

describe('releaseAbandonedLock against DynamoDB (moto)', () => {
  let moto: Moto;
  let client: DynamoDBClient;
  let locks: DynamoLockStore;
  const owner = projectExecutionName('acme', T0);
  before(async () => {
    moto = await startMoto();
    client = dynamoClientFor(moto.endpoint);
  });
  after(async () => {
    client?.destroy();
    await moto?.stop();
  });
  beforeEach(async () => {
    const tableName = `state-${randomUUID().slice(0, 8)}`;
    await createStateTable(client, tableName);
    locks = new DynamoLockStore({ client, tableName });
  });

  for (const status of ['TIMED_OUT', 'ABORTED', 'FAILED']) {
    it(`releases the lock an execution that ended ${status} still holds`, async () => {
      // Arrange
      await locks.acquire('acme', owner, T0, LEASE_MS);
      // Act
      const outcome = await releaseAbandonedLock({ locks, log: quiet }, ended(owner, status));
      // Assert: the next tick can take the lock at once, not after the lease
      assert.deepEqual(outcome, { project_id: 'acme', owner, released: true });
      assert.equal(await locks.current('acme'), undefined);
      assert.ok(
        await locks.acquire('acme', projectExecutionName('acme', T0 + 15 * 60_000), T0 + 1, LEASE_MS),
      );
    });
  }

  it('leaves a lock another execution took since untouched', async () => {
    // Arrange: the failed execution released its lock itself; the next tick's run holds it now
    const next = projectExecutionName('acme', T0 + 15 * 60_000);
    await locks.acquire('acme', next, T0 + 15 * 60_000, LEASE_MS);
    // Act
    const outcome = await releaseAbandonedLock({ locks, log: quiet }, ended(owner, 'FAILED'));
    // Assert
    assert.deepEqual(outcome, { project_id: 'acme', owner, released: false });
    assert.equal((await locks.current('acme'))?.owner, next);
  });

  it('releases nothing after a success, or for an execution named by no tick', async () => {
    // Arrange
    await locks.acquire('acme', owner, T0, LEASE_MS);
    // Act
    const succeeded = await releaseAbandonedLock({ locks, log: quiet }, ended(owner, 'SUCCEEDED'));
    const unnamed = await releaseAbandonedLock({ locks, log: quiet }, ended('started-by-hand', 'ABORTED'));
    // Assert
    assert.equal(succeeded.released, false);
    assert.equal(unnamed.released, false);
    assert.equal((await locks.current('acme'))?.owner, owner);
  });
});
