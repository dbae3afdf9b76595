import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { FsObjectStore } from '../../src/adapters/fs-object-store.js';
import { runRecordKey } from '../../src/core/layout.js';
import type { ObjectInfo, ObjectStore } from '../../src/core/object-store.js';
import { type PipelineConfig, parsePipelineConfig } from '../../src/core/pipeline-config.js';
import { dueSteps, pendingSteps } from '../../src/core/routing.js';
import { HOUR_MS, ZoneCalendar } from '../../src/core/windows.js';
import { advanceBacklogMark, committedStepIds, pipelineBacklog } from '../../src/engine/backlog.js';
import type { EngineStores } from '../../src/engine/stores.js';
import { tempFolder } from '../support/fixtures.js';

/** A store that counts its listings. */
class CountingStore implements ObjectStore {
  lists = 0;
  constructor(private readonly inner: ObjectStore) {}
  get description() {
    return this.inner.description;
  }
  get(key: string) {
    return this.inner.get(key);
  }
  getBytes(key: string) {
    return this.inner.getBytes(key);
  }
  put(key: string, body: Parameters<ObjectStore['put']>[1]) {
    return this.inner.put(key, body);
  }
  putIfAbsent(key: string, body: Buffer) {
    return this.inner.putIfAbsent(key, body);
  }
  list(prefix: string): AsyncIterable<ObjectInfo> {
    this.lists += 1;
    return this.inner.list(prefix);
  }
  delete(keys: readonly string[]) {
    return this.inner.delete(keys);
  }
}

async function withStores<T>(work: (stores: EngineStores, state: CountingStore) => Promise<T>): Promise<T> {
  const folder = await tempFolder('backlog');
  try {
    const state = new CountingStore(new FsObjectStore(folder.path));
    return await work({ raw: state, destination: state, state, staging: state }, state);
  } finally {
    await folder.cleanup();
  }
}

const commit = (stores: EngineStores, id: string) => stores.state.put(runRecordKey(id), Buffer.from('{}'));

const CONFIGS: readonly PipelineConfig[] = [
  parsePipelineConfig({
    project_id: 'p',
    name: 'events-hourly',
    frequency: 'hourly',
    sync: true,
    time_zone: 'Asia/Kathmandu',
    from_date: '2024-03-01',
  }),
  parsePipelineConfig({
    project_id: 'p',
    name: 'people-daily',
    data_source: 'people',
    frequency: 'daily',
    time_zone: 'America/New_York',
    from_date: '2024-03-01',
  }),
];
const START = Date.parse('2024-03-01T00:00:00Z');

describe('the backlog mark', () => {
  test('the backlog with the mark equals the backlog from a listing of every run record, whatever was committed', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...CONFIGS),
        fc.array(
          fc.record({
            hours: fc.integer({ min: 1, max: 24 * 6 }),
            commits: fc.array(fc.nat(), { maxLength: 4 }),
          }),
          {
            minLength: 1,
            maxLength: 6,
          },
        ),
        async (config, rounds) =>
          withStores(async (stores) => {
            const calendar = new ZoneCalendar(config.time_zone);
            let now = START;
            for (const round of rounds) {
              now += round.hours * HOUR_MS;
              const due = dueSteps(config, calendar, now);
              // Commit some due steps, in any order (a snapshot may commit a window it skipped past).
              for (const pick of round.commits)
                if (due.length > 0) await commit(stores, due[pick % due.length]!.id);
              await advanceBacklogMark(stores, config, now);
              const truth = pendingSteps(config, due, await committedStepIds(stores));
              assert.deepEqual(await pipelineBacklog(stores, config, now), truth);
            }
          }),
      ),
      { numRuns: 40, seed: 5 },
    );
  });

  test('with the mark current, the schedule looks up the newly due steps and lists nothing', async () => {
    await withStores(async (stores, state) => {
      const config = CONFIGS[0]!;
      const now = START + 10 * 24 * HOUR_MS;
      const due = dueSteps(config, new ZoneCalendar(config.time_zone), now);
      assert.ok(due.length > 200);
      for (const d of due) await commit(stores, d.id);
      await advanceBacklogMark(stores, config, now);
      state.lists = 0;

      const later = now + 3 * HOUR_MS;
      const pending = await pipelineBacklog(stores, config, later);

      assert.equal(state.lists, 0);
      assert.deepEqual(
        pending.map((d) => d.id),
        dueSteps(config, new ZoneCalendar(config.time_zone), later)
          .slice(due.length)
          .map((d) => d.id),
      );
      assert.ok(pending.length > 0);
    });
  });

  test('a mark made with other settings is not trusted: their steps reach the check that names the differences', async () => {
    await withStores(async (stores) => {
      const config = CONFIGS[0]!;
      const now = START + 3 * 24 * HOUR_MS;
      for (const d of dueSteps(config, new ZoneCalendar(config.time_zone), now)) await commit(stores, d.id);
      await advanceBacklogMark(stores, config, now);
      assert.deepEqual(await pipelineBacklog(stores, config, now), []);

      const earlier = { ...config, from_date: '2024-02-27' };
      const pending = await pipelineBacklog(stores, earlier, now);

      assert.ok(pending.length > 0);
      assert.ok(pending[0]!.id.includes('2024-02-27'), pending[0]!.id);
    });
  });
});
