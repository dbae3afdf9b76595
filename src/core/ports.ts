/**
 * The control plane's ports besides storage and locks: where pipeline configs live, where step outcomes
 * are logged, and where events and metrics go. DynamoDB, EventBridge and CloudWatch implement them in
 * AWS; the local runtime uses the same DynamoDB adapters on the emulator.
 */
import type { PipelineConfig } from './pipeline-config.js';
import type { Management, StoredPipeline } from './pipeline-rules.js';
import type { StepRunEntry } from './records.js';

/** A stored config that fails validation: it never runs, and the problem is reported. */
export interface InvalidConfig {
  readonly project_id: string;
  readonly name: string;
  readonly problem: string;
}

/** The active pipelines found, and the stored configs that are invalid. */
export interface ConfigListing {
  readonly configs: readonly PipelineConfig[];
  readonly invalid: readonly InvalidConfig[];
}

/** Pipeline configs, one per (project_id, name), as the workflows read them. */
export interface PipelineConfigStore {
  /** One stored pipeline (consistent read); `undefined` when there is no such item. */
  readPipeline(projectId: string, name: string): Promise<StoredPipeline | undefined>;
  /** Every active pipeline (validated; trials that ended at `now` left out), all projects or one. */
  listActive(projectId?: string, now?: number): Promise<ConfigListing>;
  /** Stores a validated config as an active pipeline, without the management rules (local runs, tests). */
  put(config: PipelineConfig, now?: number): Promise<void>;
}

/** A project's revision as read: every write to its pipelines moves it. */
export interface ProjectRevision {
  readonly project_id: string;
  readonly revision: number;
  /** When the project's trial began; a write sets it if the project has none yet. */
  readonly trial_started_at?: string;
}

/** A project's stored pipelines (every status) and the revision they were read at. */
export interface ProjectPipelines extends ProjectRevision {
  readonly pipelines: readonly StoredPipeline[];
}

/** One write to the catalog: a new item, or management attributes of an existing one. */
export type CatalogWrite =
  | { readonly kind: 'create'; readonly item: Readonly<Record<string, unknown>> }
  | {
      readonly kind: 'update';
      readonly name: string;
      /** The version the decision was based on; the write bumps it. */
      readonly expectedVersion: number;
      /** The item's `version` as read when it is not a version (`expectedVersion` is then 0). */
      readonly invalidVersion?: unknown;
      readonly set: Partial<Omit<Management, 'version'>>;
      readonly remove?: readonly (keyof Management)[];
    };

/** Pipelines as managed by the CLI and the console-edit validator. */
export interface PipelineCatalog {
  /** A project's pipelines, read after its revision. */
  readProject(projectId: string): Promise<ProjectPipelines>;
  /** Every stored pipeline of every project. */
  listAll(): Promise<StoredPipeline[]>;
  /**
   * Applies `change` if the project is still at `project.revision` (and an updated item still at its
   * expected version), moving the revision; `false` when another write came first.
   */
  write(project: ProjectRevision, change: CatalogWrite): Promise<boolean>;
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
