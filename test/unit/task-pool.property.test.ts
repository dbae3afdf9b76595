/**
 * Placement of tasks on the local run's threads, against a model of piscina: it asks for a thread when
 * a task is submitted and each time a task ends (the ended task no longer counted), placing queued tasks
 * in order until one finds no thread.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ThreadPlacement } from '../../src/local/task-pool.js';

interface SimThread {
  readonly id: number;
  terminating: boolean;
  destroyed: boolean;
  running: boolean[];
  readonly currentUsage: number;
}

function simThread(id: number): SimThread {
  return {
    id,
    terminating: false,
    destroyed: false,
    running: [],
    get currentUsage() {
      return this.running.length;
    },
  };
}

const action = fc.oneof(
  fc.record({ kind: fc.constant('submit' as const), alone: fc.boolean() }),
  fc.record({ kind: fc.constant('finish' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('terminate' as const), pick: fc.nat() }),
);

/** Whether a task could run now, from what the threads really run. */
function hasRoom(threads: readonly SimThread[], alone: boolean): boolean {
  return threads.some(
    (t) => !t.terminating && !t.destroyed && !t.running.includes(true) && t.running.length < (alone ? 1 : 2),
  );
}

test('a task placed alone never shares its thread, no thread runs more than two, and a waiting task has no room', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 4 }), fc.array(action, { maxLength: 300 }), (count, actions) => {
      const threads = Array.from({ length: count }, (_, id) => simThread(id));
      const placement = new ThreadPlacement();
      const queue: boolean[] = [];
      const drain = () => {
        while (queue.length > 0) {
          const chosen = placement.place(queue[0]!, threads);
          if (chosen === null) break;
          chosen.running.push(queue.shift()!);
        }
      };
      for (const step of actions) {
        if (step.kind === 'submit') queue.push(step.alone);
        else {
          const busy = threads.filter((t) => t.running.length > 0);
          const thread = busy[step.pick % Math.max(1, busy.length)];
          if (thread === undefined) continue;
          if (step.kind === 'finish') thread.running.splice(step.pick % thread.running.length, 1);
          else {
            // A thread that dies fails its tasks; piscina replaces it with a new one.
            thread.terminating = true;
            thread.running = [];
            threads.push(simThread(threads.length));
          }
        }
        drain();
        for (const thread of threads) {
          assert.ok(thread.running.length <= 2, 'more than two tasks on a thread');
          if (thread.running.includes(true))
            assert.equal(thread.running.length, 1, 'a task joined one placed alone');
        }
        if (queue.length > 0)
          assert.ok(!hasRoom(threads, queue[0]!), 'a task waits while a thread has room for it');
      }
    }),
  );
});

test('the least busy thread takes a task; a task placed alone only an idle one', () => {
  const placement = new ThreadPlacement();
  const idle = simThread(1);
  const busy = simThread(2);
  busy.running.push(false);
  assert.equal(placement.place(false, [busy, idle]), idle);
  idle.running.push(false);
  assert.equal(placement.place(true, [busy, idle]), null);
  assert.equal(placement.place(false, [busy, idle]), busy);
  const gone = simThread(3);
  gone.destroyed = true;
  assert.equal(placement.place(true, [gone]), null);
});
