import { ConfigError } from '../core/errors.js';
import { BACKLOG_MARK_KEY, PIPELINE_STATE_KEY, RUN_RECORDS_PREFIX, runRecordKey } from '../core/layout.js';
import { getJson, listAll, putJson } from '../core/object-store.js';
import type { PipelineConfig } from '../core/pipeline-config.js';
import { type DueStep, dueSteps, pendingSteps, snapshotCovered } from '../core/routing.js';
import { ZoneCalendar } from '../core/windows.js';
import type { EngineStores } from './stores.js';

/** Ids of the steps a pipeline has committed (each has a run record). */
export async function committedStepIds(stores: EngineStores): Promise<Set<string>> {
  const ids = new Set<string>();
  for (const { key } of await listAll(stores.state, RUN_RECORDS_PREFIX)) {
    if (key.endsWith('.json')) ids.add(key.slice(RUN_RECORDS_PREFIX.length, -'.json'.length));
  }
  return ids;
}

/**
 * Every due step with `dueAt` at or before `settled_through` is committed (for a snapshot pipeline:
 * covered by a committed snapshot). Steps never become uncommitted, so the mark only moves forward;
 * it spares the schedule a listing of every run record on every tick. It holds for the config it was
 * computed with only: a run with other settings must reach the check that names the differences.
 */
interface BacklogMark {
  readonly settled_through: number;
  readonly config: string;
}

/** Above this many due steps past the mark, one listing of the run records beats a lookup per step. */
const LOOKUPS_BEFORE_LISTING = 32;

/** The steps of a pipeline due at `now` and still to run, oldest first (see `pendingSteps`). */
export async function pipelineBacklog(
  stores: EngineStores,
  config: PipelineConfig,
  now: number,
): Promise<DueStep[]> {
  return (await backlogOf(stores, config, now)).pending;
}

/**
 * When the pipeline's next step became due (at or before `now`): its oldest uncommitted step, or for a
 * snapshot pipeline the first window after its last snapshot. A schedule that had fired all along
 * would have run it then.
 */
export async function firstPendingDue(
  stores: EngineStores,
  config: PipelineConfig,
  now: number,
): Promise<number | undefined> {
  const { due, committed, pending } = await backlogOf(stores, config, now);
  if (config.data_source === 'events') return pending[0]?.dueAt;
  return due[snapshotCovered(due, committed)]?.dueAt;
}

/**
 * Moves the backlog mark over the steps committed by `now` (a step's commit calls it, so the schedule's
 * reads find it current without writing themselves).
 */
export async function advanceBacklogMark(
  stores: EngineStores,
  config: PipelineConfig,
  now: number,
): Promise<void> {
  const { due, committed, pending, settled } = await backlogOf(stores, config, now);
  const settledNow =
    config.data_source === 'events'
      ? (pending[0]?.dueAt ?? Number.POSITIVE_INFINITY) - 1
      : (due[snapshotCovered(due, committed) - 1]?.dueAt ?? Number.NEGATIVE_INFINITY);
  const through = Math.min(settledNow, due.at(-1)?.dueAt ?? Number.NEGATIVE_INFINITY);
  if (through > settled && Number.isFinite(through))
    await putJson(stores.state, BACKLOG_MARK_KEY, {
      settled_through: through,
      config: JSON.stringify(config),
    } satisfies BacklogMark);
}

/** The due steps, which of them are committed, those still to run, and how far the mark vouches. */
async function backlogOf(
  stores: EngineStores,
  config: PipelineConfig,
  now: number,
): Promise<{ due: DueStep[]; committed: Set<string>; pending: DueStep[]; settled: number }> {
  const due = dueSteps(config, new ZoneCalendar(config.time_zone), now);
  const mark = await getJson<BacklogMark>(stores.state, BACKLOG_MARK_KEY);
  const settled = mark?.config === JSON.stringify(config) ? mark.settled_through : Number.NEGATIVE_INFINITY;
  const committed = new Set(due.filter((d) => d.dueAt <= settled).map((d) => d.id));
  const open = due.filter((d) => d.dueAt > settled);
  if (open.length > LOOKUPS_BEFORE_LISTING) {
    for (const id of await committedStepIds(stores)) committed.add(id);
  } else {
    const found = await Promise.all(open.map((d) => stores.state.getBytes(runRecordKey(d.id))));
    for (const [i, d] of open.entries()) if (found[i] !== undefined) committed.add(d.id);
  }
  return { due, committed, pending: pendingSteps(config, due, committed), settled };
}

/**
 * The state remembers the config it was built with: a run with other settings would mix results, so
 * it stops with the differences named.
 */
export async function checkStateConfig(stores: EngineStores, config: PipelineConfig): Promise<void> {
  const differences = await stateConfigDifferences(stores, config);
  if (differences === undefined) {
    await putJson(stores.state, PIPELINE_STATE_KEY, config);
    return;
  }
  if (differences.length > 0) {
    throw new ConfigError(
      `the state in ${stores.state.description} belongs to pipeline "${config.name}" created with other settings ` +
        `(${differences.join('; ')}). Use the same settings, or another --out or --state folder.`,
    );
  }
}

/**
 * How `config` differs from the settings the pipeline's state was built with (`field: then, now`
 * each), or `undefined` when the pipeline has no state yet.
 */
export async function stateConfigDifferences(
  stores: EngineStores,
  config: PipelineConfig,
): Promise<string[] | undefined> {
  const stored = await getJson<PipelineConfig>(stores.state, PIPELINE_STATE_KEY);
  if (stored === undefined) return undefined;
  return (Object.keys({ ...stored, ...config }) as (keyof PipelineConfig)[])
    .filter((field) => JSON.stringify(stored[field]) !== JSON.stringify(config[field]))
    .map((f) => `${f}: ${JSON.stringify(stored[f])} then, ${JSON.stringify(config[f])} now`);
}
