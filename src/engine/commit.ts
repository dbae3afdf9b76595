import { NotReadyError } from '../core/errors.js';
import { manifestKey, partPrefix, runRecordKey, stepWorkPrefix, taskResultKey } from '../core/layout.js';
import { getJson, listAll, putJson } from '../core/object-store.js';
import type { PipelineConfig } from '../core/pipeline-config.js';
import type { DayCounts, Manifest, PartRecord, RunRecord, StepPlan, TaskResult } from '../core/records.js';
import type { EngineStores } from './stores.js';

/** When the step started and finished, for its run record (never for its output). */
export interface StepTiming {
  readonly startedAt: number;
  readonly finishedAt: number;
}

/**
 * Commits a step after all its tasks: writes a manifest into every day folder it touched (a regular
 * step always writes one, even for an empty window: readers wait for it), removes parts a crashed
 * attempt may have left under the step's names, then writes the run record that marks the step done
 * and drops the work files. Manifests hold no timestamps, so a re-run writes the same bytes.
 */
export async function commitStep(
  stores: EngineStores,
  config: PipelineConfig,
  plan: StepPlan,
  timing: StepTiming,
): Promise<RunRecord> {
  const results: TaskResult[] = [];
  for (let task = 0; task < plan.tasks.length; task += 1) {
    const result = await getJson<TaskResult>(stores.state, taskResultKey(plan.step_id, task));
    if (result === undefined) throw new NotReadyError(`step ${plan.step_id}: task ${task} has not finished`);
    results.push(result);
  }
  const days = mergeDays(results);
  if (plan.window !== undefined) days[plan.window.day] ??= { exported: 0, duplicates: 0 };
  const parts = results.flatMap((r) => r.parts).sort((a, b) => (a.key < b.key ? -1 : 1));

  for (const day of Object.keys(days).sort()) {
    const dayParts = parts.filter((p) => p.day === day);
    await putJson(
      stores.destination,
      manifestKey(config.project_id, day, plan.step_id),
      manifest(config, plan, day, days[day]!, dayParts),
    );
    await removeStrays(stores, config, plan.step_id, day, dayParts);
  }

  const record: RunRecord = {
    step_id: plan.step_id,
    pipeline: config.name,
    kind: plan.kind,
    ...(plan.window === undefined ? {} : { window: plan.window }),
    ...(plan.arrival_day === undefined ? {} : { arrival_day: plan.arrival_day }),
    status: 'succeeded',
    days,
    exported: sum(Object.values(days), (d) => d.exported),
    duplicates: sum(Object.values(days), (d) => d.duplicates),
    parts: parts.length,
    bytes: sum(parts, (p) => p.bytes),
    tasks: plan.tasks.length,
    started_at: new Date(timing.startedAt).toISOString(),
    finished_at: new Date(timing.finishedAt).toISOString(),
    duration_ms: timing.finishedAt - timing.startedAt,
  };
  await putJson(stores.state, runRecordKey(plan.step_id), record);
  await stores.state.delete((await listAll(stores.state, stepWorkPrefix(plan.step_id))).map((o) => o.key));
  return record;
}

function manifest(
  config: PipelineConfig,
  plan: StepPlan,
  day: string,
  counts: DayCounts,
  parts: PartRecord[],
): Manifest {
  return {
    format: 'mp-pipelines/manifest@1',
    project_id: config.project_id,
    pipeline: config.name,
    step_id: plan.step_id,
    kind: plan.kind,
    ...(plan.window === undefined ? {} : { window: plan.window }),
    ...(plan.arrival_day === undefined ? {} : { arrival_day: plan.arrival_day }),
    day,
    records: counts.exported,
    bytes: sum(parts, (p) => p.bytes),
    uncompressed_bytes: sum(parts, (p) => p.uncompressed_bytes),
    duplicates_dropped: counts.duplicates,
    parts: parts.map((p) => ({
      file: p.key.slice(p.key.lastIndexOf('/') + 1),
      records: p.records,
      bytes: p.bytes,
      uncompressed_bytes: p.uncompressed_bytes,
    })),
  };
}

/** Deletes objects under the step's part names in a day folder that the manifest does not list. */
async function removeStrays(
  stores: EngineStores,
  config: PipelineConfig,
  id: string,
  day: string,
  kept: PartRecord[],
): Promise<void> {
  const keep = new Set(kept.map((p) => p.key));
  const strays = (await listAll(stores.destination, partPrefix(config.project_id, day, id)))
    .map((o) => o.key)
    .filter((key) => !keep.has(key));
  if (strays.length > 0) await stores.destination.delete(strays);
}

function mergeDays(results: TaskResult[]): Record<string, DayCounts> {
  const days: Record<string, DayCounts> = {};
  for (const result of results) {
    for (const [day, counts] of Object.entries(result.days)) {
      const merged = days[day] ?? { exported: 0, duplicates: 0 };
      merged.exported += counts.exported;
      merged.duplicates += counts.duplicates;
      days[day] = merged;
    }
  }
  return Object.fromEntries(Object.entries(days).sort(([a], [b]) => (a < b ? -1 : 1)));
}

function sum<T>(items: readonly T[], value: (item: T) => number): number {
  return items.reduce((total, item) => total + value(item), 0);
}
