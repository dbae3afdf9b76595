/** The shard count of a first snapshot: the smallest power of two from 32 that keeps shards small. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { firstSnapshotShards, PROFILE_SHARDS } from '../../src/engine/snapshot-plan.js';

test('a first snapshot gets the fewest shards (32 to 1,024, a power of two) of at most 8,192 updates each', () => {
  fc.assert(
    fc.property(fc.nat({ max: 50_000_000 }), (updates) => {
      const shards = firstSnapshotShards(updates);
      assert.ok(shards >= PROFILE_SHARDS && shards <= 1024);
      assert.equal(shards & (shards - 1), 0, `${shards} is a power of two`);
      if (shards < 1024) assert.ok(shards * 8192 >= updates, `${updates} updates over ${shards} shards`);
      if (shards > PROFILE_SHARDS) assert.ok((shards / 2) * 8192 < updates, 'half as many would do');
    }),
  );
  assert.equal(firstSnapshotShards(0), 32);
  assert.equal(firstSnapshotShards(1_000_000), 128);
});
