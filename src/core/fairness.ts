import type { DueStep } from './routing.js';

/** A pipeline of a project and its steps that are due and not yet done, oldest first. */
export interface PipelineBacklog {
  readonly pipeline: string;
  readonly due: readonly DueStep[];
}

/** The step a project runs next, and whose turn it was. */
export interface NextStep {
  readonly pipeline: string;
  readonly step: DueStep;
}

/**
 * docs/contract.md#fairness: a project runs one step at a time, its pipelines take turns (round-robin in name
 * order, starting after the pipeline that ran last), and inside a pipeline the oldest due step goes
 * first. So a year-long backfill on one pipeline delays another pipeline's due step by at most one
 * step. `undefined` when nothing is due.
 */
export function nextStep(
  backlogs: readonly PipelineBacklog[],
  lastPipeline: string | undefined,
): NextStep | undefined {
  const ordered = [...backlogs].sort((a, b) =>
    a.pipeline < b.pipeline ? -1 : a.pipeline > b.pipeline ? 1 : 0,
  );
  // The first pipeline after the last one to run, wrapping around to the first.
  const first =
    lastPipeline === undefined
      ? 0
      : Math.max(
          0,
          ordered.findIndex((b) => b.pipeline > lastPipeline),
        );
  for (let offset = 0; offset < ordered.length; offset += 1) {
    const backlog = ordered[(first + offset) % ordered.length];
    const oldest = backlog?.due[0];
    if (backlog !== undefined && oldest !== undefined) return { pipeline: backlog.pipeline, step: oldest };
  }
  return undefined;
}
