/**
 * Where a pipeline stands (the `status` command): its last exported window, its lag against the SLA,
 * the next step due, backfill progress and the last failure not yet retried successfully.
 */
import type { StoredPipeline } from '../core/pipeline-rules.js';
import type { EngineStores, ProjectLedger } from '../core/ports.js';
import type { StepRunEntry } from '../core/records.js';
import { dueSteps, pendingSteps, snapshotCovered } from '../core/routing.js';
import { DAY_MS, ZoneCalendar } from '../core/windows.js';
import { EXPORT_SLA_SECONDS } from '../core/workflow.js';
import { committedStepIds } from '../engine/backlog.js';

/** One pipeline's standing at an instant. */
export interface PipelineStanding {
  readonly project_id: string;
  readonly name: string;
  readonly status: string;
  readonly status_reason?: string;
  /** The newest window exported, and when its data ends. */
  readonly last_exported?: { readonly step_id: string; readonly window_end: string };
  /** Seconds from the end of the last exported window (or of `from_date`'s start) to now. */
  readonly lag_s?: number;
  /** `ok`, or `behind` when a window that ended more than the SLA ago is not exported. */
  readonly sla: 'ok' | 'behind' | 'n/a';
  /** The oldest step due and not committed, or the next one to become due. */
  readonly next_step?: { readonly step_id: string; readonly due_at: string; readonly overdue: boolean };
  /** Regular windows exported of those due so far (a backfill is done when they are equal). */
  readonly windows: { readonly exported: number; readonly due: number };
  /** Steps due and not committed. */
  readonly pending_steps: number;
  /** The latest failure of a step still not committed. */
  readonly failing?: Pick<StepRunEntry, 'step_id' | 'error' | 'cause' | 'finished_at'>;
}

/** How far ahead the next step is looked for when nothing is due (a daily window plus its delay). */
const LOOKAHEAD_MS = 2 * DAY_MS;

/** The standing of a stored pipeline at `now` (an invalid config has only its status). */
export async function pipelineStanding(
  pipeline: StoredPipeline,
  stores: EngineStores | undefined,
  ledger: ProjectLedger,
  now: number,
): Promise<PipelineStanding> {
  const base = {
    project_id: pipeline.project_id,
    name: pipeline.name,
    status: pipeline.management.status,
    ...(pipeline.management.status_reason === undefined
      ? {}
      : { status_reason: pipeline.management.status_reason }),
  };
  const { config } = pipeline;
  if (config === undefined || stores === undefined)
    return { ...base, sla: 'n/a', windows: { exported: 0, due: 0 }, pending_steps: 0 };
  const calendar = new ZoneCalendar(config.time_zone);
  const committed = await committedStepIds(stores);
  const upcoming = dueSteps(config, calendar, now + LOOKAHEAD_MS);
  const due = upcoming.filter((step) => step.dueAt <= now);
  const regular = due.filter((step) => step.step.kind === 'regular');
  const pending = pendingSteps(config, due, committed);
  const exported =
    config.data_source === 'events'
      ? regular.filter((step) => committed.has(step.id))
      : regular.slice(0, snapshotCovered(regular, committed));
  const last = exported.at(-1);
  const lastEnd = last?.step.kind === 'regular' ? last.step.window.end : calendar.dayStart(config.from_date);
  const oldestPending = pending[0];
  const next = oldestPending ?? upcoming.find((step) => step.dueAt > now && !committed.has(step.id));
  const failure = (await ledger.listRuns(config.project_id, config.name))
    .filter((entry) => entry.status === 'failed' && !committed.has(entry.step_id))
    .sort((a, b) => (a.finished_at < b.finished_at ? 1 : -1))[0];
  const behind = pending.some(
    (step) => step.step.kind === 'regular' && now - step.step.window.end > EXPORT_SLA_SECONDS * 1000,
  );
  return {
    ...base,
    ...(last?.step.kind === 'regular'
      ? { last_exported: { step_id: last.id, window_end: new Date(last.step.window.end).toISOString() } }
      : {}),
    lag_s: Math.max(0, Math.round((now - lastEnd) / 1000)),
    sla: behind ? 'behind' : 'ok',
    ...(next === undefined
      ? {}
      : {
          next_step: {
            step_id: next.id,
            due_at: new Date(next.dueAt).toISOString(),
            overdue: next.dueAt <= now,
          },
        }),
    windows: { exported: exported.length, due: regular.length },
    pending_steps: pending.length,
    ...(failure === undefined
      ? {}
      : {
          failing: {
            step_id: failure.step_id,
            finished_at: failure.finished_at,
            ...(failure.error === undefined ? {} : { error: failure.error }),
            ...(failure.cause === undefined ? {} : { cause: failure.cause }),
          },
        }),
  };
}
