/**
 * The local emulator answers a GetItem by key alone (every lock and config read) from the table
 * directly (`src/local/moto.ts`). It must answer exactly as moto's own handler does: the same item for
 * attribute values of every kind, nothing for a missing item, and moto's own errors for requests it
 * cannot answer. A GetItem with one more parameter (ReturnConsumedCapacity NONE, which changes nothing
 * in the answer) goes moto's way and is the reference.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  type AttributeValue,
  CreateTableCommand,
  type DynamoDBClient,
  GetItemCommand,
  type GetItemCommandInput,
  type GetItemCommandOutput,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb';
import fc from 'fast-check';
import { dynamoClientFor } from '../../src/local/dynamo-tables.js';
import { type Moto, startMoto } from '../../src/local/moto.js';
import { anyAttributeValue, anyName } from '../support/attribute-values.js';

/** The request ids of the direct answers: a uuid's 32 hex digits (moto's own are 52 characters). */
const DIRECT_ANSWER_ID = /^[0-9a-f]{32}$/;

let moto: Moto;
let client: DynamoDBClient;

before(async () => {
  moto = await startMoto();
  client = dynamoClientFor(moto.endpoint);
  await client.send(
    new CreateTableCommand({
      TableName: 'pairs',
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  await client.send(
    new CreateTableCommand({
      TableName: 'numbered',
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'N' }],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
});
after(async () => {
  client?.destroy();
  await moto?.stop();
});

/** The answer to a GetItem, or the name of the error it got. */
async function answer(input: GetItemCommandInput): Promise<GetItemCommandOutput | string> {
  try {
    return await client.send(new GetItemCommand(input));
  } catch (error) {
    return (error as Error).name;
  }
}

/** The direct answer and moto's own to the same read, checked to come from where they should. */
async function bothWays(input: GetItemCommandInput): Promise<[unknown, unknown]> {
  const direct = await answer({ ...input, ConsistentRead: true });
  const reference = await answer({ ...input, ConsistentRead: true, ReturnConsumedCapacity: 'NONE' });
  if (typeof reference !== 'string')
    assert.doesNotMatch(reference.$metadata.requestId ?? '', DIRECT_ANSWER_ID);
  return [
    typeof direct === 'string' ? direct : direct.Item,
    typeof reference === 'string' ? reference : reference.Item,
  ];
}

describe("moto's direct GetItem", () => {
  test('answers with the item moto would, for attribute values of every kind', async () => {
    const key = fc.string({ unit: 'binary', minLength: 1, maxLength: 12 });
    const attributes = fc.dictionary(
      anyName.filter((name) => name !== 'pk' && name !== 'sk'),
      anyAttributeValue,
      { maxKeys: 6 },
    );
    await fc.assert(
      fc.asyncProperty(key, key, attributes, async (pk, sk, rest) => {
        const itemKey: Record<string, AttributeValue> = { pk: { S: pk }, sk: { S: sk } };
        await client.send(new PutItemCommand({ TableName: 'pairs', Item: { ...rest, ...itemKey } }));
        const read = { TableName: 'pairs', Key: itemKey, ConsistentRead: true };
        const direct = await answer(read);
        const reference = await answer({ ...read, ReturnConsumedCapacity: 'NONE' });
        assert.ok(typeof direct !== 'string', `direct read failed: ${String(direct)}`);
        assert.ok(typeof reference !== 'string', `moto's read failed: ${String(reference)}`);
        assert.match(direct.$metadata.requestId ?? '', DIRECT_ANSWER_ID, 'answered by moto, not directly');
        assert.doesNotMatch(reference.$metadata.requestId ?? '', DIRECT_ANSWER_ID);
        assert.deepEqual(direct.Item, reference.Item);
      }),
      { numRuns: 60 },
    );
  });

  test('answers a missing item with none, on a table keyed by a number', async () => {
    await client.send(new PutItemCommand({ TableName: 'numbered', Item: { id: { N: '7' }, v: { S: 'x' } } }));
    const [found, foundByMoto] = await bothWays({ TableName: 'numbered', Key: { id: { N: '7.0' } } });
    assert.deepEqual(found, { id: { N: '7' }, v: { S: 'x' } });
    assert.deepEqual(found, foundByMoto);
    const [missing, missingByMoto] = await bothWays({ TableName: 'numbered', Key: { id: { N: '8' } } });
    assert.equal(missing, undefined);
    assert.equal(missingByMoto, undefined);
  });

  test("leaves to moto what it cannot answer, so the errors are moto's own", async () => {
    const cases: [string, GetItemCommandInput, string][] = [
      [
        'a missing table',
        { TableName: 'nowhere', Key: { pk: { S: 'a' }, sk: { S: 'b' } } },
        'ResourceNotFoundException',
      ],
      ['a key without its sort key', { TableName: 'pairs', Key: { pk: { S: 'a' } } }, 'ValidationException'],
      [
        'a key with an empty string',
        { TableName: 'pairs', Key: { pk: { S: '' }, sk: { S: 'b' } } },
        'ValidationException',
      ],
    ];
    for (const [what, input, error] of cases) {
      const [direct, reference] = await bothWays(input);
      assert.equal(direct, error, what);
      assert.equal(reference, error, what);
    }
    // A key of another type than the table declares: whatever moto answers, the direct read answers too.
    const [direct, reference] = await bothWays({ TableName: 'numbered', Key: { id: { S: '7' } } });
    assert.deepEqual(direct, reference);
  });
});
