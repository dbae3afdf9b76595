/**
 * The control plane's ports besides storage and locks: where pipeline configs live, where step outcomes
 * are logged, and where events and metrics go. DynamoDB, EventBridge and CloudWatch implement them in
 * AWS; the local runtime uses the same DynamoDB adapters on the emulator.
 */
import type { EventsPipelineConfig } from './pipeline-config.js';
import type { StepRunEntry } from './records.js';

/** A stored config that fails validation: it never runs, and the problem is reported. */
export interface InvalidConfig {
  readonly project_id: string;
  readonly name: string;
  readonly problem: string;
}

/** The active pipelines found, and the stored configs that are invalid. */
export interface ConfigListing {
  readonly configs: readonly EventsPipelineConfig[];
  readonly invalid: readonly InvalidConfig[];
}

/** Pipeline configs, one per (project_id, name). */
export interface PipelineConfigStore {
  /** Every active pipeline (validated), all projects or one. */
  listActive(projectId?: string): Promise<ConfigListing>;
  /** Stores a validated config as an active pipeline. */
  put(config: EventsPipelineConfig): Promise<void>;
}

/** Per-project operational records: the step run log and the fairness cursor. */
export interface ProjectLedger {
  /** Records a step's latest outcome. */
  recordRun(entry: StepRunEntry): Promise<void>;
  /** Step outcomes of one pipeline, by step id. */
  listRuns(projectId: string, pipeline: string): Promise<StepRunEntry[]>;
  /** The pipeline whose step the project ran last (round-robin starts after it). */
  lastPipeline(projectId: string): Promise<string | undefined>;
  setLastPipeline(projectId: string, pipeline: string): Promise<void>;
}

/** Where step outcome events go (EventBridge in AWS). */
export interface EventSink {
  publish(detailType: string, detail: StepRunEntry): Promise<void>;
}

/** Where metrics go (CloudWatch through the embedded metric format in AWS). */
export interface MetricsSink {
  /** Records values (name -> value) with the pipeline's dimensions. */
  record(
    dimensions: { readonly project_id: string; readonly pipeline: string },
    values: Readonly<Record<string, number>>,
  ): void;
}
