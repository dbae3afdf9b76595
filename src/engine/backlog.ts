import { ConfigError } from '../core/errors.js';
import { BACKLOG_MARK_KEY, PIPELINE_STATE_KEY, RUN_RECORDS_PREFIX, runRecordKey } from '../core/layout.js';
import { getJson, listAll, putJson } from '../core/object-store.js';
import { checkPipelineConfig, isSecretField, type PipelineConfig } from '../core/pipeline-config.js';
import type { EngineStores } from '../core/ports.js';
import { type DueStep, dueStepsAfter, pendingSteps, snapshotCovered } from '../core/routing.js';
import { ZoneCalendar } from '../core/windows.js';

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
  const { open, committed } = await backlogOf(stores, config, now);
  // Steps at or before the mark are committed (for a snapshot pipeline: covered), so the open ones decide.
  return pendingSteps(config, open, committed);
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
  const { open, committed } = await backlogOf(stores, config, now);
  if (config.data_source === 'events') return pendingSteps(config, open, committed)[0]?.dueAt;
  return open[snapshotCovered(open, committed)]?.dueAt;
}

/**
 * When the oldest window the pipeline has not exported became due, given its backlog: a snapshot's
 * backlog is its latest window only, so its lag runs from the first window it has not covered.
 */
export async function pendingExportDue(
  stores: EngineStores,
  config: PipelineConfig,
  backlog: readonly DueStep[],
  now: number,
): Promise<number | undefined> {
  if (config.data_source === 'events') return backlog.find((d) => d.step.kind === 'regular')?.dueAt;
  return firstPendingDue(stores, config, now);
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
  const { open, committed, settled } = await backlogOf(stores, config, now);
  // Steps at or before the mark are committed, so only those after it can move it.
  const settledNow =
    config.data_source === 'events'
      ? (pendingSteps(config, open, committed)[0]?.dueAt ?? Number.POSITIVE_INFINITY) - 1
      : (open[snapshotCovered(open, committed) - 1]?.dueAt ?? Number.NEGATIVE_INFINITY);
  const through = Math.min(settledNow, open.at(-1)?.dueAt ?? Number.NEGATIVE_INFINITY);
  if (through > settled && Number.isFinite(through)) await writeBacklogMark(stores, config, through);
}

/**
 * Records that every step of `config` due at or before `settledThrough` is committed (for a snapshot
 * pipeline: covered by a committed snapshot). The caller vouches for it: `advanceBacklogMark` after a
 * commit, or a tool that lays down a pipeline's state.
 */
export async function writeBacklogMark(
  stores: EngineStores,
  config: PipelineConfig,
  settledThrough: number,
): Promise<void> {
  await putJson(stores.state, BACKLOG_MARK_KEY, {
    settled_through: settledThrough,
    config: JSON.stringify(config),
  } satisfies BacklogMark);
}

/**
 * The due steps after the mark (all of them without a trusted mark), which of those are committed, and
 * how far the mark vouches. Steps at or before the mark are never enumerated: a tick's cost follows the
 * steps due since the last commit, not the pipeline's age.
 */
async function backlogOf(
  stores: EngineStores,
  config: PipelineConfig,
  now: number,
): Promise<{ open: DueStep[]; committed: Set<string>; settled: number }> {
  const mark = await getJson<BacklogMark>(stores.state, BACKLOG_MARK_KEY);
  const settled =
    mark?.config === JSON.stringify(config) && Number.isFinite(mark.settled_through)
      ? mark.settled_through
      : Number.NEGATIVE_INFINITY;
  const open = dueStepsAfter(config, new ZoneCalendar(config.time_zone), now, settled);
  if (open.length > LOOKUPS_BEFORE_LISTING)
    return { open, committed: await committedStepIds(stores), settled };
  const found = await Promise.all(open.map((d) => stores.state.getBytes(runRecordKey(d.id))));
  return {
    open,
    committed: new Set(open.filter((_, i) => found[i] !== undefined).map((d) => d.id)),
    settled,
  };
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
  const saved = await getJson<PipelineConfig>(stores.state, PIPELINE_STATE_KEY);
  if (saved === undefined) return undefined;
  // Read through today's schema: a setting added since, absent then, had its default's effect.
  const stored = checkPipelineConfig(saved).config ?? saved;
  return (Object.keys({ ...stored, ...config }) as (keyof PipelineConfig)[])
    .filter((field) => JSON.stringify(stored[field]) !== JSON.stringify(config[field]))
    .map((f) => {
      const shown = (value: unknown) =>
        isSecretField(f) && value !== undefined ? '"****"' : JSON.stringify(value);
      return `${f}: ${shown(stored[f])} then, ${shown(config[f])} now`;
    });
}
