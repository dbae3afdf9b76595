import type { LockStore } from '../core/lock.js';
import type { PipelineConfig } from '../core/pipeline-config.js';
import type {
  EventSink,
  MetricsSink,
  PipelineCatalog,
  PipelineConfigStore,
  ProjectLedger,
} from '../core/ports.js';
import type { IngestLimits } from '../engine/arrival-hour.js';
import type { PlanLimits } from '../engine/plan.js';
import type { EngineStores } from '../engine/stores.js';

/** Structured log lines: a message and fields (Powertools Logger in Lambda). */
export interface Log {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

/**
 * Everything the workflow activities work with. Lambda builds one per container from its environment;
 * the local runtime builds one over the emulators and a simulated clock.
 */
export interface Runtime {
  /** The workflows' view of configs, and the catalog that manages them. */
  readonly configs: PipelineConfigStore & PipelineCatalog;
  readonly locks: LockStore;
  readonly ledger: ProjectLedger;
  readonly events: EventSink;
  readonly metrics: MetricsSink;
  readonly log: Log;
  /** Epoch ms now (simulated locally). */
  readonly clock: () => number;
  /** How long a project lock holds without renewal; picking a step and committing it renew it. */
  readonly leaseMs: number;
  /** How steps are cut into tasks; default `DEFAULT_PLAN_LIMITS`. */
  readonly planLimits?: PlanLimits;
  /** How arrival hours are cut into pieces and when objects are set aside; default `DEFAULT_INGEST_LIMITS`. */
  readonly ingestLimits?: IngestLimits;
  /** The stores of one pipeline. */
  stores(config: PipelineConfig): EngineStores;
}

/** Default lease for local runs (the stack derives its own from the step timeout). */
export const DEFAULT_LEASE_MS = 30 * 60_000;

/** What the data activities (ingest, export) use: they run on worker threads locally. */
export type DataRuntime = Pick<Runtime, 'stores' | 'metrics' | 'locks' | 'ingestLimits' | 'log'> & {
  readonly configs: Pick<Runtime['configs'], 'readPipeline'>;
};
