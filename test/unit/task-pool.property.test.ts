/** Placement of tasks on the local run's threads: a task placed alone never shares its thread. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { chooseThread } from '../../src/local/task-pool.js';

interface SimThread {
  readonly id: number;
  currentUsage: number;
  terminating: boolean;
  destroyed: boolean;
  running: ('alone' | 'shared')[];
}

const action = fc.oneof(
  fc.record({ kind: fc.constant('submit' as const), alone: fc.boolean() }),
  fc.record({ kind: fc.constant('finish' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('terminate' as const), pick: fc.nat() }),
);

test('a task placed alone runs on an idle thread and nothing joins it; others share a thread by two; a refused task had no room', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 4 }), fc.array(action, { maxLength: 200 }), (count, actions) => {
      const threads: SimThread[] = Array.from({ length: count }, (_, id) => ({
        id,
        currentUsage: 0,
        terminating: false,
        destroyed: false,
        running: [],
      }));
      for (const step of actions) {
        if (step.kind === 'submit') {
          const busyAlone = new Set(threads.filter((t) => t.running.includes('alone')).map((t) => t.id));
          const chosen = chooseThread(threads, step.alone, busyAlone);
          const live = threads.filter((t) => !t.terminating && !t.destroyed && !busyAlone.has(t.id));
          const room = live.filter((t) => t.currentUsage < (step.alone ? 1 : 2));
          if (chosen === null) {
            assert.equal(room.length, 0, 'refused although a thread had room');
            continue;
          }
          assert.ok(room.includes(chosen), 'placed on a thread without room');
          assert.equal(
            chosen.currentUsage,
            Math.min(...room.map((t) => t.currentUsage)),
            'not the least busy',
          );
          chosen.running.push(step.alone ? 'alone' : 'shared');
          chosen.currentUsage += 1;
        } else {
          const busy = threads.filter((t) => t.running.length > 0);
          const thread = busy[step.pick % Math.max(1, busy.length)];
          if (thread === undefined) continue;
          if (step.kind === 'finish') {
            thread.running.splice(step.pick % thread.running.length, 1);
            thread.currentUsage -= 1;
          } else thread.terminating = true;
        }
        for (const thread of threads) {
          assert.ok(thread.running.length <= 2);
          if (thread.running.includes('alone'))
            assert.equal(thread.running.length, 1, 'a task joined one placed alone');
        }
      }
    }),
  );
});

test('an idle live thread takes any task', () => {
  const idle = { id: 1, currentUsage: 0, terminating: false, destroyed: false };
  const busy = { id: 2, currentUsage: 1, terminating: false, destroyed: false };
  assert.equal(chooseThread([busy, idle], true, new Set()), idle);
  assert.equal(chooseThread([busy, idle], false, new Set()), idle);
  assert.equal(chooseThread([busy], true, new Set()), null);
  assert.equal(chooseThread([busy], false, new Set([2])), null);
  assert.equal(chooseThread([{ ...idle, destroyed: true }], false, new Set()), null);
});
