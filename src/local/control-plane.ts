/**
 * The control plane of a local run: the DynamoDB tables (configs, locks, run log) on a moto server the
 * project starts, and the runtime the local workflows call activities with.
 */
import { randomUUID } from 'node:crypto';
import { DeleteTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoConfigStore } from '../adapters/dynamo-config-store.js';
import { DynamoLedger } from '../adapters/dynamo-ledger.js';
import { DynamoLockStore } from '../adapters/dynamo-lock-store.js';
import type { PipelineConfig } from '../core/pipeline-config.js';
import type { EngineStores, EventSink, MetricsSink } from '../core/ports.js';
import type { StepRunEntry } from '../core/records.js';
import type { IngestLimits } from '../engine/arrival-hour.js';
import type { PlanLimits } from '../engine/plan.js';
import { DEFAULT_LEASE_MS, type Runtime, type WarehouseRuntime } from '../workflow/runtime.js';
import { createConfigTable, createStateTable, dynamoClientFor } from './dynamo-tables.js';
import { type Moto, startMoto } from './moto.js';

/** DynamoDB tables on a local emulator. */
export interface ControlPlane {
  /** The emulator's endpoint (worker threads make their own clients to it). */
  readonly endpoint: string;
  readonly dynamo: DynamoDBClient;
  readonly configsTable: string;
  readonly stateTable: string;
  /** Stops the emulator when this control plane started it, or else drops its tables there. */
  stop(): Promise<void>;
}

/**
 * Creates fresh tables on `moto` (a server others use too: a local home's, a test's), or on a moto
 * server started for them.
 */
export async function startControlPlane(moto?: Moto): Promise<ControlPlane> {
  const server = moto ?? (await startMoto());
  const dynamo = dynamoClientFor(server.endpoint, { maxAttempts: 3 });
  const suffix = randomUUID().slice(0, 8);
  const plane = {
    endpoint: server.endpoint,
    dynamo,
    configsTable: `configs-${suffix}`,
    stateTable: `state-${suffix}`,
  };
  try {
    await Promise.all([
      createConfigTable(dynamo, plane.configsTable),
      createStateTable(dynamo, plane.stateTable),
    ]);
  } catch (error) {
    if (moto === undefined) await server.stop();
    throw error;
  }
  return {
    ...plane,
    stop: async () => {
      try {
        // A shared server keeps no tables of this plane: they would pile up over its runs.
        if (moto !== undefined)
          await Promise.all(
            [plane.configsTable, plane.stateTable].map((table) =>
              dynamo.send(new DeleteTableCommand({ TableName: table })).catch(() => undefined),
            ),
          );
      } finally {
        dynamo.destroy();
        if (moto === undefined) await server.stop();
      }
    },
  };
}

/** Step outcome events of a local run, kept in order (EventBridge's place). */
export class RecordingEventSink implements EventSink {
  readonly events: { detailType: string; detail: StepRunEntry }[] = [];
  constructor(
    private readonly onEvent: (detailType: string, detail: StepRunEntry) => void = () => undefined,
  ) {}

  async publish(detailType: string, detail: StepRunEntry): Promise<void> {
    this.events.push({ detailType, detail });
    this.onEvent(detailType, detail);
  }
}

/** Metric values of a local run, summed by name (CloudWatch's place). */
export class SummingMetrics implements MetricsSink {
  readonly totals = new Map<string, number>();

  record(_dimensions: unknown, values: Readonly<Record<string, number>>): void {
    for (const [name, value] of Object.entries(values))
      this.totals.set(name, (this.totals.get(name) ?? 0) + value);
  }
}

/** Options of {@link localRuntime}. */
export interface LocalRuntimeOptions {
  readonly control: ControlPlane;
  readonly stores: (config: PipelineConfig) => EngineStores;
  /** The simulated clock. */
  readonly clock: () => number;
  readonly events?: RecordingEventSink;
  readonly metrics?: MetricsSink;
  readonly leaseMs?: number;
  readonly planLimits?: PlanLimits;
  readonly ingestLimits?: IngestLimits;
  /** Receives warnings. */
  readonly progress?: (message: string) => void;
  /** Where commits keep warehouse tables (e.g. Glue on the emulator); default: none are kept. */
  readonly warehouse?: WarehouseRuntime;
}

/** The project locks of a control plane. */
export function localLocks(control: Pick<ControlPlane, 'dynamo' | 'stateTable'>): DynamoLockStore {
  return new DynamoLockStore({ client: control.dynamo, tableName: control.stateTable });
}

/** The runtime of local workflows: DynamoDB adapters on the emulator, stores as given. */
export function localRuntime(options: LocalRuntimeOptions): Runtime {
  const { control } = options;
  const progress = options.progress ?? (() => undefined);
  return {
    configs: new DynamoConfigStore({
      client: control.dynamo,
      configsTable: control.configsTable,
      stateTable: control.stateTable,
    }),
    locks: localLocks(control),
    ledger: new DynamoLedger(control.dynamo, control.stateTable),
    events: options.events ?? new RecordingEventSink(),
    metrics: options.metrics ?? new SummingMetrics(),
    log: {
      info: () => undefined,
      warn: (message, fields) =>
        progress(`${message}${fields === undefined ? '' : ` ${JSON.stringify(fields)}`}`),
    },
    clock: options.clock,
    leaseMs: options.leaseMs ?? DEFAULT_LEASE_MS,
    ...(options.planLimits === undefined ? {} : { planLimits: options.planLimits }),
    ...(options.ingestLimits === undefined ? {} : { ingestLimits: options.ingestLimits }),
    stores: options.stores,
    ...(options.warehouse === undefined ? {} : { warehouse: options.warehouse }),
  };
}
