/**
 * The one face of the export engines: a step ingests arrival hours piece by piece, plans its tasks,
 * runs each task and commits. Events and snapshots (people, identity) implement it once each; the
 * workflow layer chooses one from the config, here, and never branches on the data source itself.
 * Every phase is idempotent in the engine: a repeated call returns what the first one stored.
 */

import type { StepRef } from '../core/layout.js';
import type { PipelineConfig } from '../core/pipeline-config.js';
import type { EngineStores } from '../core/ports.js';
import type { RunRecord, SnapshotPlan, StepPlan } from '../core/records.js';
import type { IngestLimits, PieceOutcome } from './arrival-hour.js';
import { commitStep } from './commit.js';
import { runExportTask } from './export-task.js';
import { ingestEventsPiece } from './ingest.js';
import { type PlanLimits, planStep, readPlan } from './plan.js';
import { commitSnapshot } from './snapshot-commit.js';
import { ingestSnapshotPiece } from './snapshot-ingest.js';
import { planSnapshot } from './snapshot-plan.js';
import { runSnapshotTask } from './snapshot-task.js';
import type { StepTiming } from './step-results.js';

/** The four phases of a step for one kind of data source. */
export interface PipelineEngine {
  /** Reads the next piece of one arrival hour; its ingest record is written with the last piece. */
  ingestPiece(
    stores: EngineStores,
    config: PipelineConfig,
    arrivalHour: number,
    limits?: IngestLimits,
  ): Promise<PieceOutcome>;
  /** Plans the step's export tasks (persisted: a retry gets the same plan). */
  plan(
    stores: EngineStores,
    config: PipelineConfig,
    step: StepRef,
    limits?: PlanLimits,
  ): Promise<{ readonly tasks: readonly unknown[] }>;
  /** Runs one task of the step's stored plan; returns the parts it wrote. */
  runTask(
    stores: EngineStores,
    config: PipelineConfig,
    stepId: string,
    task: number,
  ): Promise<{ readonly parts: readonly unknown[] }>;
  /** Checks the step's balance and commits it (manifests, run record); returns its run record. */
  commit(
    stores: EngineStores,
    config: PipelineConfig,
    stepId: string,
    timing: StepTiming,
  ): Promise<RunRecord>;
}

/** Events: staged by event hour, exported per window, deduplicated, late data by sync steps. */
export const EVENTS_ENGINE: PipelineEngine = {
  ingestPiece: (stores, config, arrivalHour, limits) =>
    ingestEventsPiece(stores, config, arrivalHour, limits),
  plan: (stores, config, step, limits) => planStep(stores, config, step, limits),
  runTask: async (stores, config, stepId, task) =>
    runExportTask(stores, config, await readPlan<StepPlan>(stores.state, stepId), task),
  commit: commitStep,
};

/** People and identity: updates folded into a snapshot that replaces the previous one. */
export const SNAPSHOT_ENGINE: PipelineEngine = {
  ingestPiece: (stores, config, arrivalHour, limits) =>
    ingestSnapshotPiece(stores, config, arrivalHour, limits),
  plan: (stores, config, step, limits) =>
    step.kind === 'regular'
      ? planSnapshot(stores, config, step.window, limits)
      : planStep(stores, config, step, limits),
  runTask: async (stores, config, stepId, task) =>
    runSnapshotTask(stores, config, await readPlan<SnapshotPlan>(stores.state, stepId), task),
  commit: commitSnapshot,
};

/** The engine of a pipeline's data source. */
export function engineFor(config: PipelineConfig): PipelineEngine {
  return config.data_source === 'events' ? EVENTS_ENGINE : SNAPSHOT_ENGINE;
}
