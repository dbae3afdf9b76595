/**
 * A holder's fence shares a read of the lock among the checks asked for together, and never lets a
 * check pass on a read that started before it was asked for.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { LockLostError, type LockStore, lockFence } from '../../src/core/lock.js';

/** A lock store whose reads the test settles one by one; it records when each read started. */
class ControlledLocks {
  readonly reads: { started: number; settle: (lost: boolean) => void }[] = [];
  inFlight = 0;
  maxInFlight = 0;
  step = 0;

  readonly store = {
    check: () => {
      this.inFlight += 1;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
      return new Promise<void>((resolve, reject) => {
        this.reads.push({
          started: this.step,
          settle: (lost) => {
            this.inFlight -= 1;
            if (lost) reject(new LockLostError('taken over'));
            else resolve();
          },
        });
      });
    },
  } as unknown as LockStore;
}

const settled = () => new Promise((resolve) => setImmediate(resolve));

describe('lockFence', () => {
  test('every check passes or fails on a read that started after it was asked for, one read at a time', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(fc.constant('ask' as const), fc.boolean()), { minLength: 1, maxLength: 40 }),
        async (actions) => {
          const locks = new ControlledLocks();
          const fence = lockFence(locks.store, 'p', 'owner', 7);
          const asks: { at: number; outcome?: 'passed' | 'lost' }[] = [];
          let settledReads = 0;
          const outcomes = new Map<number, boolean>();
          for (const action of [...actions, ...Array.from({ length: 45 }, () => false)]) {
            locks.step += 1;
            if (action === 'ask') {
              const ask: (typeof asks)[number] = { at: locks.step };
              asks.push(ask);
              fence.check().then(
                () => {
                  ask.outcome = 'passed';
                },
                () => {
                  ask.outcome = 'lost';
                },
              );
            } else if (settledReads < locks.reads.length) {
              outcomes.set(settledReads, action);
              locks.reads[settledReads]!.settle(action);
              settledReads += 1;
            }
            await settled();
          }
          assert.ok(locks.maxInFlight <= 1, 'one read at a time');
          assert.ok(locks.reads.length <= asks.length);
          for (const ask of asks) {
            assert.notEqual(ask.outcome, undefined, 'every check is answered');
            // The read that answered it: the first read started at or after the ask.
            const index = locks.reads.findIndex((read) => read.started >= ask.at);
            assert.ok(index >= 0, `no read started after the check asked at step ${ask.at}`);
            assert.equal(ask.outcome, outcomes.get(index) ? 'lost' : 'passed');
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  test('checks asked for in the same turn share one read', async () => {
    const locks = new ControlledLocks();
    const fence = lockFence(locks.store, 'p', 'owner', 7);
    const checks = [fence.check(), fence.check(), fence.check()];
    await settled();
    assert.equal(locks.reads.length, 1);
    locks.reads[0]!.settle(true);
    for (const check of checks) await assert.rejects(check, LockLostError);
  });
});
