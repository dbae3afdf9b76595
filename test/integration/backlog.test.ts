import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { FsObjectStore } from '../../src/adapters/fs-object-store.js';
import { BACKLOG_MARK_KEY, PIPELINE_STATE_KEY, runRecordKey } from '../../src/core/layout.js';
import { getJson, type ObjectInfo, type ObjectStore, putJson } from '../../src/core/object-store.js';
import { type PipelineConfig, parsePipelineConfig } from '../../src/core/pipeline-config.js';
import type { EngineStores } from '../../src/core/ports.js';
import { dueSteps, pendingSteps, snapshotCovered } from '../../src/core/routing.js';
import { DAY_MS, HOUR_MS, ZoneCalendar } from '../../src/core/windows.js';
import {
  advanceBacklogMark,
  checkStateConfig,
  committedStepIds,
  firstPendingDue,
  pipelineBacklog,
  writeBacklogMark,
} from '../../src/engine/backlog.js';
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
  uri(key: string) {
    return this.inner.uri(key);
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

/** More shapes for the mark property: daily events with a closed range, hourly identity. */
const MORE_CONFIGS: readonly PipelineConfig[] = [
  parsePipelineConfig({
    project_id: 'p',
    name: 'events-daily-closed',
    frequency: 'daily',
    time_zone: 'Australia/Lord_Howe',
    from_date: '2024-03-01',
    to_date: '2024-03-04',
  }),
  parsePipelineConfig({
    project_id: 'p',
    name: 'identity-hourly',
    data_source: 'identity',
    frequency: 'hourly',
    time_zone: 'Pacific/Chatham',
    from_date: '2024-03-01',
  }),
];

interface MarkFile {
  readonly settled_through: number;
  readonly config: string;
}

/**
 * What the backlog functions answered before they skipped the steps at or before the mark: every due
 * step from `from_date` enumerated, those up to a trusted mark counted as committed, and the rest by
 * their run records.
 */
async function fullEnumeration(stores: EngineStores, config: PipelineConfig, now: number) {
  const due = dueSteps(config, new ZoneCalendar(config.time_zone), now);
  const mark = await getJson<MarkFile>(stores.state, BACKLOG_MARK_KEY);
  // A mark that is not a number (no writer makes one) vouches for nothing.
  const settled =
    mark?.config === JSON.stringify(config) && typeof mark.settled_through === 'number'
      ? mark.settled_through
      : Number.NEGATIVE_INFINITY;
  const committed = await committedStepIds(stores);
  for (const d of due) if (d.dueAt <= settled) committed.add(d.id);
  const pending = pendingSteps(config, due, committed);
  const covered = snapshotCovered(due, committed);
  const events = config.data_source === 'events';
  const settledNow = events
    ? (pending[0]?.dueAt ?? Number.POSITIVE_INFINITY) - 1
    : (due[covered - 1]?.dueAt ?? Number.NEGATIVE_INFINITY);
  const through = Math.min(settledNow, due.at(-1)?.dueAt ?? Number.NEGATIVE_INFINITY);
  return {
    pending,
    firstDue: events ? pending[0]?.dueAt : due[covered]?.dueAt,
    markAfterAdvance:
      through > settled && Number.isFinite(through)
        ? { settled_through: through, config: JSON.stringify(config) }
        : mark,
  };
}

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

  test('with any mark, of this config or another, the answers equal those of the full enumeration', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...CONFIGS, ...MORE_CONFIGS),
        fc.integer({ min: 0, max: 24 * 7 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        fc.constantFrom(
          'none',
          'anywhere',
          'at a due step',
          'beside a due step',
          'another config',
          'unreadable',
        ),
        fc.integer({ min: -3 * DAY_MS, max: 10 * DAY_MS }),
        fc.nat(),
        fc.constantFrom(-1, 1),
        async (config, hours, commits, markKind, offset, pick, side) =>
          withStores(async (stores) => {
            const now = START + hours * HOUR_MS;
            // Some steps are committed, some of them due only later.
            const later = dueSteps(config, new ZoneCalendar(config.time_zone), now + 2 * DAY_MS);
            for (const c of commits) if (later.length > 0) await commit(stores, later[c % later.length]!.id);
            const picked = later.length === 0 ? START : later[pick % later.length]!.dueAt;
            const value =
              markKind === 'anywhere'
                ? START + offset
                : markKind === 'beside a due step'
                  ? picked + side
                  : picked;
            // A mark vouches for more than the run records show when it lies: both must still agree.
            if (markKind === 'another config')
              await writeBacklogMark(stores, { ...config, name: 'other' }, now + DAY_MS);
            else if (markKind === 'unreadable')
              await putJson(stores.state, BACKLOG_MARK_KEY, {
                settled_through: 'soon',
                config: JSON.stringify(config),
              });
            else if (markKind !== 'none') await writeBacklogMark(stores, config, value);

            const expected = await fullEnumeration(stores, config, now);
            assert.deepEqual(await pipelineBacklog(stores, config, now), expected.pending);
            assert.equal(await firstPendingDue(stores, config, now), expected.firstDue);
            await advanceBacklogMark(stores, config, now);
            assert.deepEqual(await getJson(stores.state, BACKLOG_MARK_KEY), expected.markAfterAdvance);
          }),
      ),
      { numRuns: 120, seed: 11 },
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

  test('state saved before format and compression existed matches a config that leaves them out; another format is refused', async () => {
    await withStores(async (stores) => {
      const config = CONFIGS[0]!;
      const { format: _format, compression: _compression, ...saved } = config;
      await putJson(stores.state, PIPELINE_STATE_KEY, saved);
      await checkStateConfig(stores, config);
      await checkStateConfig(stores, parsePipelineConfig({ ...saved, format: 'json', compression: 'gzip' }));
      await assert.rejects(
        checkStateConfig(
          stores,
          parsePipelineConfig({ ...saved, format: 'parquet', compression_level: undefined }),
        ),
        /format: "json" then, "parquet" now; compression: "gzip" then, "zstd" now; compression_level: 1 then, 3 now/,
      );
      await assert.rejects(
        checkStateConfig(
          stores,
          parsePipelineConfig({ ...saved, compression: 'zstd', compression_level: undefined }),
        ),
        /compression: "gzip" then, "zstd" now; compression_level: 1 then, 3 now/,
      );
    });
  });
});
