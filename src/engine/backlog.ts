import { ConfigError } from '../core/errors.js';
import { PIPELINE_STATE_KEY, RUN_RECORDS_PREFIX } from '../core/layout.js';
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

/** The steps of a pipeline due at `now` and still to run, oldest first (see `pendingSteps`). */
export async function pipelineBacklog(
  stores: EngineStores,
  config: PipelineConfig,
  now: number,
): Promise<DueStep[]> {
  const due = dueSteps(config, new ZoneCalendar(config.time_zone), now);
  if (due.length === 0) return due;
  return pendingSteps(config, due, await committedStepIds(stores));
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
  const due = dueSteps(config, new ZoneCalendar(config.time_zone), now);
  const committed = await committedStepIds(stores);
  if (config.data_source === 'events') return pendingSteps(config, due, committed)[0]?.dueAt;
  return due[snapshotCovered(due, committed)]?.dueAt;
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
