import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { FsObjectStore } from '../../src/adapters/fs-object-store.js';
import {
  DEFAULT_FAULT_RATES,
  FAULT_KINDS,
  FaultInterceptor,
  FaultPlan,
  FaultyObjectStore,
  parseFaultKinds,
} from '../../src/chaos/faults.js';
import { TransientError, UsageError } from '../../src/core/errors.js';
import { RETRYABLE_ERRORS, TASK_STATES } from '../../src/core/workflow.js';
import { tempFolder } from '../support/fixtures.js';

/** Every kind off but `kind`, which strikes every call. */
function always(kind: (typeof FAULT_KINDS)[number], seed = 1): FaultPlan {
  return new FaultPlan(seed, new Set([kind]), { ...DEFAULT_FAULT_RATES, [kind]: 1 });
}

describe('parseFaultKinds', () => {
  test('reads all, none and lists in the canonical order', () => {
    assert.deepEqual(parseFaultKinds('all'), [...FAULT_KINDS]);
    assert.deepEqual(parseFaultKinds('none'), []);
    assert.deepEqual(parseFaultKinds('clock-skew, s3-errors'), ['s3-errors', 'clock-skew']);
  });

  test('refuses an unknown kind, naming the flag and the kind', () => {
    assert.throws(
      () => parseFaultKinds('s3-errors,s3-eror'),
      (error: unknown) =>
        error instanceof UsageError && /--faults/.test(error.message) && /"s3-eror"/.test(error.message),
    );
  });
});

describe('FaultPlan', () => {
  test('decides the same calls the same way for a seed, whatever else was asked in between', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1000 }),
        fc.array(fc.constantFrom('a', 'b', 'c', 'd'), { minLength: 1, maxLength: 60 }),
        (seed, calls) => {
          const rates = { ...DEFAULT_FAULT_RATES, 's3-errors': 0.5 };
          const plan = new FaultPlan(seed, new Set(['s3-errors']), rates);
          const other = new FaultPlan(seed, new Set(['s3-errors']), rates);
          const decisions = calls.map((c) => plan.strikes('s3-errors', c) !== undefined);
          // The same calls of identity `a`, with the others left out, get the same decisions.
          const onlyA = calls
            .filter((c) => c === 'a')
            .map((c) => other.strikes('s3-errors', c) !== undefined);
          assert.deepEqual(
            decisions.filter((_, i) => calls[i] === 'a'),
            onlyA,
          );
        },
      ),
    );
  });

  test('strikes at about its rate, and never for a kind it does not inject', () => {
    const plan = new FaultPlan(7, new Set(['dynamodb-errors']), {
      ...DEFAULT_FAULT_RATES,
      'dynamodb-errors': 0.1,
    });
    let strikes = 0;
    for (let i = 0; i < 20_000; i += 1) {
      if (plan.strikes('dynamodb-errors', `call-${i}`) !== undefined) strikes += 1;
      assert.equal(plan.strikes('s3-errors', `call-${i}`), undefined);
    }
    assert.ok(strikes > 1_800 && strikes < 2_200, `${strikes} strikes in 20,000 calls at 10%`);
  });
});

describe('FaultyObjectStore', () => {
  test('throws what the S3 adapter throws, before or after the call, and only inside a function', async () => {
    const folder = await tempFolder('chaos-store');
    try {
      const plan = always('s3-errors');
      const landed: string[] = [];
      const store = new FaultyObjectStore(new FsObjectStore(folder.path), 'state', plan, (key) =>
        landed.push(key),
      );
      const { intercept } = new FaultInterceptor({ plan });
      const keys = Array.from({ length: 40 }, (_, i) => `k/${i}`);
      for (const key of keys) {
        await assert.rejects(
          intercept(TASK_STATES.commitStep, {}, async () => {
            await store.put(key, Buffer.from(key));
            return null;
          }),
          (error: unknown) =>
            error instanceof TransientError && /S3 PutObject of .*\(chaos\)/.test(error.message),
        );
      }
      // Outside a function (the harness), nothing strikes.
      await store.put('harness', Buffer.from('x'));
      const after = plan
        .byVariant()
        .filter(([variant]) => variant.includes(' after '))
        .reduce((n, [, c]) => n + c, 0);
      assert.ok(after > 0 && after < keys.length, `${after} of ${keys.length} faults came after the write`);
      assert.equal(landed.length, after + 1);
      for (const key of landed) assert.ok(await store.getBytes(key));
      assert.equal(plan.total(), keys.length);
    } finally {
      await folder.cleanup();
    }
  });
});

describe('FaultInterceptor', () => {
  test('a killed function fails its Task with an error the definitions retry, before or after its work', async () => {
    const plan = always('lambda-kills');
    const { intercept } = new FaultInterceptor({ plan });
    const retried = new Set<string>([...RETRYABLE_ERRORS, 'States.Timeout']);
    let worked = 0;
    for (let i = 0; i < 30; i += 1) {
      await assert.rejects(
        intercept(TASK_STATES.exportTask, { task: i }, async () => {
          worked += 1;
          return null;
        }),
        (error: unknown) => error instanceof Error && retried.has(error.name),
      );
    }
    const after = plan
      .byVariant()
      .filter(([variant]) => variant.includes(' after '))
      .reduce((n, [, c]) => n + c, 0);
    assert.equal(worked, after);
    assert.ok(after > 0 && after < 30);
  });

  test('a Map item delivered twice runs twice and returns the second delivery', async () => {
    const plan = always('duplicate-delivery');
    const { intercept } = new FaultInterceptor({ plan });
    let runs = 0;
    const output = await intercept(
      TASK_STATES.ingestHour,
      { arrival_hour: '2024-11-01T00:00Z' },
      async () => {
        runs += 1;
        return runs;
      },
    );
    assert.equal(runs, 2);
    assert.equal(output, 2);
    // Tasks that are not Map items are never delivered twice.
    await intercept(TASK_STATES.commitStep, {}, async () => {
      runs += 1;
      return null;
    });
    assert.equal(runs, 3);
  });
});
