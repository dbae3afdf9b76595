/**
 * DynamoLockStore against moto's DynamoDB: the lease rules one by one, concurrent acquires (exactly one
 * winner per project), error mapping, and a seeded random sequence of operations checked against an
 * in-test model of the lease semantics. Fails loudly when moto is missing.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { type DynamoDBClient, GetItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import fc from 'fast-check';
import { DynamoLockStore } from '../../src/adapters/dynamo-lock-store.js';
import { ConfigError, TransientError } from '../../src/core/errors.js';
import { isLive, type Lease, LockLostError } from '../../src/core/lock.js';
import { createStateTable, dynamoClientFor } from '../../src/local/dynamo-tables.js';
import { type Moto, startMoto } from '../../src/local/moto.js';

const T0 = Date.UTC(2026, 0, 1);
const LEASE_MS = 60_000;

let moto: Moto;
let client: DynamoDBClient;

before(async () => {
  moto = await startMoto();
  client = dynamoClientFor(moto.endpoint);
});

after(async () => {
  client?.destroy();
  await moto?.stop();
});

let tableCount = 0;
/** A fresh state table (unique name) and a store over it. */
async function freshStore(): Promise<{ store: DynamoLockStore; tableName: string }> {
  tableCount += 1;
  const tableName = `state-lock-${tableCount}-${randomUUID().slice(0, 8)}`;
  await createStateTable(client, tableName);
  return { store: new DynamoLockStore({ client, tableName }), tableName };
}

describe('DynamoLockStore lease rules', () => {
  let store: DynamoLockStore;
  let tableName: string;

  beforeEach(async () => {
    ({ store, tableName } = await freshStore());
  });

  it('acquires a free lock and stores the documented item', async () => {
    const lease = await store.acquire('p1', 'owner-a', T0, LEASE_MS);

    const expected: Lease = {
      projectId: 'p1',
      owner: 'owner-a',
      acquiredAt: T0,
      expiresAt: T0 + LEASE_MS,
      token: 1,
    };
    assert.deepEqual(lease, expected);
    assert.deepEqual(await store.current('p1'), expected);
    const raw = await client.send(
      new GetItemCommand({
        TableName: tableName,
        Key: { pk: { S: 'project#p1' }, sk: { S: 'lock' } },
        ConsistentRead: true,
      }),
    );
    assert.deepEqual(raw.Item, {
      pk: { S: 'project#p1' },
      sk: { S: 'lock' },
      owner: { S: 'owner-a' },
      acquired_at: { N: String(T0) },
      expires_at: { N: String(T0 + LEASE_MS) },
      token: { N: '1' },
    });
  });

  it('refuses a second owner while the lease is live, up to and including expiresAt', async () => {
    const held = await store.acquire('p1', 'owner-a', T0, LEASE_MS);

    const early = await store.acquire('p1', 'owner-b', T0 + 1, LEASE_MS);
    const atExpiry = await store.acquire('p1', 'owner-b', T0 + LEASE_MS, LEASE_MS);

    assert.equal(early, undefined);
    assert.equal(atExpiry, undefined);
    assert.deepEqual(await store.current('p1'), held);
  });

  it('lets the same owner re-acquire its live lease, extending it', async () => {
    await store.acquire('p1', 'owner-a', T0, LEASE_MS);

    const again = await store.acquire('p1', 'owner-a', T0 + 1_000, LEASE_MS);

    assert.equal(again?.owner, 'owner-a');
    assert.equal(again?.expiresAt, T0 + 1_000 + LEASE_MS);
    assert.equal(again?.token, 1, 'the holder keeps its token');
    assert.deepEqual(await store.current('p1'), again);
  });

  it('replaces a holder that died once its lease has expired', async () => {
    await store.acquire('p1', 'dead-owner', T0, LEASE_MS);
    const now = T0 + LEASE_MS + 1;

    const taken = await store.acquire('p1', 'owner-b', now, LEASE_MS);

    assert.deepEqual(taken, {
      projectId: 'p1',
      owner: 'owner-b',
      acquiredAt: now,
      expiresAt: now + LEASE_MS,
      token: 2,
    });
    assert.deepEqual(await store.current('p1'), taken);
  });

  it('renew extends the lease and keeps acquiredAt', async () => {
    await store.acquire('p1', 'owner-a', T0, LEASE_MS);

    const renewed = await store.renew('p1', 'owner-a', T0 + 30_000, LEASE_MS);

    const expected: Lease = {
      projectId: 'p1',
      owner: 'owner-a',
      acquiredAt: T0,
      expiresAt: T0 + 30_000 + LEASE_MS,
      token: 1,
    };
    assert.deepEqual(renewed, expected);
    assert.deepEqual(await store.current('p1'), expected);
    assert.equal(await store.acquire('p1', 'owner-b', T0 + LEASE_MS + 1, LEASE_MS), undefined);
  });

  it('renew by an owner whose expired lease nobody took still succeeds', async () => {
    await store.acquire('p1', 'owner-a', T0, LEASE_MS);

    const renewed = await store.renew('p1', 'owner-a', T0 + 2 * LEASE_MS, LEASE_MS);

    assert.equal(renewed.expiresAt, T0 + 3 * LEASE_MS);
  });

  it('renew by the old holder after a takeover throws LockLostError naming the new holder', async () => {
    await store.acquire('p1', 'owner-a', T0, LEASE_MS);
    const takeover = await store.acquire('p1', 'owner-b', T0 + LEASE_MS + 1, LEASE_MS);

    await assert.rejects(store.renew('p1', 'owner-a', T0 + LEASE_MS + 2, LEASE_MS), (error: unknown) => {
      assert.ok(error instanceof LockLostError);
      assert.equal(error.name, 'LockLostError');
      assert.match(error.message, /project p1/);
      assert.match(error.message, /owner-b holds it now \(token 2\)/);
      return true;
    });
    assert.deepEqual(await store.current('p1'), takeover);
  });

  it('renew of a released lock throws LockLostError and does not recreate the item', async () => {
    await store.acquire('p1', 'owner-a', T0, LEASE_MS);
    await store.release('p1', 'owner-a');

    await assert.rejects(store.renew('p1', 'owner-a', T0 + 1, LEASE_MS), (error: unknown) => {
      assert.ok(error instanceof LockLostError);
      assert.match(error.message, /the lock is free/);
      return true;
    });
    assert.equal(await store.current('p1'), undefined);
  });

  it('release by a non-owner returns false and leaves the lock', async () => {
    const held = await store.acquire('p1', 'owner-a', T0, LEASE_MS);

    const released = await store.release('p1', 'owner-b');

    assert.equal(released, false);
    assert.deepEqual(await store.current('p1'), held);
  });

  it('release by the owner frees the lock for anyone; a second release returns false', async () => {
    await store.acquire('p1', 'owner-a', T0, LEASE_MS);

    const released = await store.release('p1', 'owner-a');
    const releasedAgain = await store.release('p1', 'owner-a');

    assert.equal(released, true);
    assert.equal(releasedAgain, false);
    assert.equal(await store.current('p1'), undefined);
    const next = await store.acquire('p1', 'owner-b', T0 + 1, LEASE_MS);
    assert.equal(next?.owner, 'owner-b');
    assert.equal(next?.token, 2, 'a released lock keeps its token for the next holder');
  });

  it('check passes for the holder and its token only, expired or not, and names the new holder', async () => {
    await store.acquire('p1', 'owner-a', T0, LEASE_MS);

    await store.check('p1', 'owner-a', 1);
    await assert.rejects(store.check('p1', 'owner-a', 2), LockLostError);
    await assert.rejects(store.check('p1', 'owner-b', 1), LockLostError);
    await store.acquire('p1', 'owner-b', T0 + LEASE_MS + 1, LEASE_MS);
    await assert.rejects(store.check('p1', 'owner-a', 1), (error: unknown) => {
      assert.ok(error instanceof LockLostError);
      assert.match(error.message, /owner-a with token 1: owner-b holds it now \(token 2\)/);
      return true;
    });
    await store.check('p1', 'owner-b', 2);
    await store.release('p1', 'owner-b');
    await assert.rejects(store.check('p1', 'owner-b', 2), /the lock is free/);
  });

  it('current reports the holder, live or expired, and undefined when free', async () => {
    const before = await store.current('p1');
    const held = await store.acquire('p1', 'owner-a', T0, LEASE_MS);

    const after = await store.current('p1');

    assert.equal(before, undefined);
    assert.deepEqual(after, held);
    assert.ok(after !== undefined && isLive(after, T0 + LEASE_MS));
    assert.ok(!isLive(after, T0 + LEASE_MS + 1), 'an expired holder is still reported, just not live');
  });

  it('two projects never block each other', async () => {
    const a = await store.acquire('p1', 'owner-a', T0, LEASE_MS);

    const b = await store.acquire('p2', 'owner-b', T0, LEASE_MS);
    const releasedB = await store.release('p2', 'owner-b');
    const c = await store.acquire('p2', 'owner-c', T0 + 1, LEASE_MS);

    assert.equal(a?.owner, 'owner-a');
    assert.equal(b?.owner, 'owner-b');
    assert.equal(releasedB, true);
    assert.equal(c?.owner, 'owner-c');
    assert.deepEqual(await store.current('p1'), a);
  });

  it('rejects bad arguments with ConfigError before any request', async () => {
    await assert.rejects(store.acquire('', 'owner-a', T0, LEASE_MS), ConfigError);
    await assert.rejects(store.acquire('p1', '', T0, LEASE_MS), ConfigError);
    await assert.rejects(store.acquire('p1', 'owner-a', T0, 0), ConfigError);
    await assert.rejects(store.renew('p1', 'owner-a', Number.NaN, LEASE_MS), ConfigError);
    await assert.rejects(store.release('p1', ''), ConfigError);
    await assert.rejects(store.current(''), ConfigError);
  });
});

describe('DynamoLockStore under concurrency', () => {
  it('25 owners racing for each of 5 projects: exactly one winner per project', async () => {
    const { store } = await freshStore();
    const projects = ['r1', 'r2', 'r3', 'r4', 'r5'];
    const owners = Array.from({ length: 25 }, (_, i) => `owner-${i}`);

    const results = await Promise.all(
      projects.map((projectId) =>
        Promise.all(owners.map((owner) => store.acquire(projectId, owner, T0, LEASE_MS))),
      ),
    );

    for (const [i, projectId] of projects.entries()) {
      const winners = (results[i] ?? []).filter((lease) => lease !== undefined);
      assert.equal(winners.length, 1, `project ${projectId}: ${winners.map((w) => w.owner).join(', ')}`);
      assert.deepEqual(await store.current(projectId), winners[0]);
    }
  });
});

describe('DynamoLockStore error mapping', () => {
  /** A fake DynamoDB endpoint answering every request with `status` and a JSON error of `type`. */
  async function fakeDynamo(status: number, type: string): Promise<{ endpoint: string; server: Server }> {
    const server = createServer((request, response) => {
      request.resume();
      request.on('end', () => {
        response.writeHead(status, { 'content-type': 'application/x-amz-json-1.0' });
        response.end(JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${type}`, message: 'fake' }));
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    return { endpoint: `http://127.0.0.1:${port}`, server };
  }

  for (const [status, type] of [
    [400, 'ProvisionedThroughputExceededException'],
    [400, 'ThrottlingException'],
    [400, 'RequestLimitExceeded'],
    [500, 'InternalServerError'],
  ] as const) {
    it(`maps ${type} (${status}) to TransientError naming table and project`, async () => {
      const { endpoint, server } = await fakeDynamo(status, type);
      const fakeClient = dynamoClientFor(endpoint);
      const store = new DynamoLockStore({ client: fakeClient, tableName: 'state-fake' });
      try {
        await assert.rejects(store.acquire('p9', 'owner-a', T0, LEASE_MS), (error: unknown) => {
          assert.ok(error instanceof TransientError);
          assert.match(error.message, /state-fake/);
          assert.match(error.message, /project p9/);
          assert.match(error.message, new RegExp(type));
          return true;
        });
        await assert.rejects(store.renew('p9', 'owner-a', T0, LEASE_MS), TransientError);
        await assert.rejects(store.release('p9', 'owner-a'), TransientError);
        await assert.rejects(store.current('p9'), TransientError);
      } finally {
        fakeClient.destroy();
        server.close();
        await once(server, 'close');
      }
    });
  }

  it('maps a refused connection to TransientError', async () => {
    // Bind then close a port so nothing listens on it.
    const server = createServer().listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    server.close();
    await once(server, 'close');
    const deadClient = dynamoClientFor(`http://127.0.0.1:${port}`);
    const store = new DynamoLockStore({ client: deadClient, tableName: 'state-gone' });
    try {
      await assert.rejects(store.current('p9'), (error: unknown) => {
        assert.ok(error instanceof TransientError);
        assert.match(error.message, /state-gone/);
        return true;
      });
    } finally {
      deadClient.destroy();
    }
  });

  it('lets other errors (a missing table) propagate unchanged', async () => {
    const store = new DynamoLockStore({ client, tableName: `missing-${randomUUID().slice(0, 8)}` });

    await assert.rejects(store.acquire('p1', 'owner-a', T0, LEASE_MS), (error: unknown) => {
      assert.ok(error instanceof Error);
      assert.ok(!(error instanceof TransientError));
      assert.equal(error.name, 'ResourceNotFoundException');
      return true;
    });
  });
});

describe('DynamoLockStore reading a corrupt lock item', () => {
  it('names the project, the table and the attribute, and changes nothing', async () => {
    // Arrange: a held lock whose token was edited into text by hand
    const { store, tableName } = await freshStore();
    await store.acquire('p1', 'owner-a', T0, LEASE_MS);
    const key = { pk: { S: 'project#p1' }, sk: { S: 'lock' } };
    await client.send(
      new UpdateItemCommand({
        TableName: tableName,
        Key: key,
        UpdateExpression: 'SET #token = :text',
        ExpressionAttributeNames: { '#token': 'token' },
        ExpressionAttributeValues: { ':text': { S: 'seven' } },
      }),
    );
    const before = await client.send(
      new GetItemCommand({ TableName: tableName, Key: key, ConsistentRead: true }),
    );

    // Act and Assert: every read of the holder fails the same way
    for (const read of [() => store.current('p1'), () => store.check('p1', 'owner-a', 1)]) {
      await assert.rejects(read(), {
        name: 'CorruptStateError',
        message: `corrupt state in the lock item of project p1 in ${tableName}: token.N: expected string, received undefined`,
      });
    }
    const after = await client.send(
      new GetItemCommand({ TableName: tableName, Key: key, ConsistentRead: true }),
    );
    assert.deepEqual(after.Item, before.Item);
  });
});

// ---- model-based sequence -----------------------------------------------------------------------

/** What the lock should hold, by the lease rules alone. */
type ModelState = { owner: string; acquiredAt: number; expiresAt: number; token: number } | undefined;

type Op =
  | { readonly kind: 'acquire'; readonly owner: string; readonly advanceMs: number }
  | { readonly kind: 'renew'; readonly owner: string; readonly advanceMs: number }
  | { readonly kind: 'release'; readonly owner: string; readonly advanceMs: number };

/** A short lease and steps in quarters of it, so `now` often lands exactly on an `expiresAt`. */
const MODEL_LEASE_MS = 1_000;
const opArbitrary: fc.Arbitrary<Op> = fc.record({
  kind: fc.constantFrom('acquire', 'renew', 'release'),
  owner: fc.constantFrom('a', 'b', 'c'),
  advanceMs: fc.integer({ min: 0, max: 6 }).map((quarters) => quarters * (MODEL_LEASE_MS / 4)),
});

describe('DynamoLockStore against a model of the lease rules', () => {
  it('agrees with the model on seeded random sequences of acquire/renew/release', async () => {
    const { store } = await freshStore();
    let run = 0;

    await fc.assert(
      fc.asyncProperty(fc.array(opArbitrary, { minLength: 1, maxLength: 20 }), async (ops) => {
        run += 1;
        const projectId = `model-${run}`; // each run (and each shrink) starts from a free lock
        let model: ModelState;
        let token = 0;
        let now = T0;
        for (const [step, op] of ops.entries()) {
          now += op.advanceMs;
          const where = `step ${step} ${op.kind}(${op.owner}) at +${now - T0} ms, model ${JSON.stringify(model)}`;
          if (op.kind === 'acquire') {
            const free = model === undefined || model.expiresAt < now || model.owner === op.owner;
            const lease = await store.acquire(projectId, op.owner, now, MODEL_LEASE_MS);
            if (free) {
              if (model?.owner !== op.owner) token += 1;
              model = { owner: op.owner, acquiredAt: now, expiresAt: now + MODEL_LEASE_MS, token };
            }
            assert.deepEqual(lease, free ? { projectId, ...model } : undefined, where);
          } else if (op.kind === 'renew') {
            if (model?.owner === op.owner) {
              model = { ...model, expiresAt: now + MODEL_LEASE_MS };
              const lease = await store.renew(projectId, op.owner, now, MODEL_LEASE_MS);
              assert.deepEqual(lease, { projectId, ...model }, where);
            } else {
              await assert.rejects(
                store.renew(projectId, op.owner, now, MODEL_LEASE_MS),
                LockLostError,
                where,
              );
            }
          } else {
            const owned = model?.owner === op.owner;
            if (owned) model = undefined;
            assert.equal(await store.release(projectId, op.owner), owned, where);
          }
          const expected = model === undefined ? undefined : { projectId, ...model };
          assert.deepEqual(await store.current(projectId), expected, `${where}: current`);
          for (const owner of ['a', 'b', 'c']) {
            const checked = store.check(projectId, owner, token);
            if (model?.owner === owner) await checked;
            else await assert.rejects(checked, LockLostError, `${where}: check(${owner})`);
          }
        }
      }),
      { seed: 20261125, numRuns: 30, endOnFailure: true },
    );
  });
});
