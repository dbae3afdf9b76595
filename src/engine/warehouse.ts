/**
 * The engine's side of the warehouse: the schema every events step merges into the pipeline's state
 * when it commits, read back by the CLI and by the commit's catalog update.
 */
import { createHash } from 'node:crypto';
import { WAREHOUSE_CATALOG_KEY, WAREHOUSE_SCHEMA_KEY } from '../core/layout.js';
import { getJson, putJson } from '../core/object-store.js';
import type { PipelineConfig } from '../core/pipeline-config.js';
import type { EngineStores, WarehouseCatalog } from '../core/ports.js';
import type { TaskResult } from '../core/records.js';
import { glueDatabaseName, pipelineTables, type WarehouseTarget } from '../core/warehouse/glue-tables.js';
import { PropertySchema, type SerializedSchema } from '../core/warehouse/property-schema.js';
import {
  mergeStepSchema,
  parseWarehouseSchemaState,
  type SchemaAdvance,
  type WarehouseSchemaState,
} from '../core/warehouse/schema-state.js';
import { type TypedColumn, typedLayout } from '../core/warehouse/typed-columns.js';

/** The pipeline's stored warehouse schema; `undefined` before its first events commit. */
export async function readWarehouseSchema(
  state: EngineStores['state'],
): Promise<WarehouseSchemaState | undefined> {
  const stored = await getJson<unknown>(state, WAREHOUSE_SCHEMA_KEY);
  return stored === undefined ? undefined : parseWarehouseSchemaState(stored);
}

/**
 * Merges the schemas a step's tasks recorded into the pipeline's, once: a commit that runs again
 * finds the step among the merged ones and writes nothing. Called before the run record.
 */
export async function mergeStepSchemas(
  state: EngineStores['state'],
  stepId: string,
  results: readonly TaskResult[],
): Promise<SchemaAdvance> {
  const step = new PropertySchema();
  for (const result of results) if (result.schema !== undefined) step.merge(result.schema);
  const current = await readWarehouseSchema(state);
  const advance = mergeStepSchema(current, stepId, step);
  if (advance.state !== current) await putJson(state, WAREHOUSE_SCHEMA_KEY, advance.state);
  return advance;
}

/** What a project's warehouse is built from: the properties seen and the typed view's columns. */
export interface ProjectSchema {
  readonly schema: SerializedSchema;
  readonly columns: readonly TypedColumn[];
}

/**
 * The schema of a project whose events pipelines (one or more) write the same day folders: their
 * schemas merged, the first pipeline's columns kept in place and the others' properties added by count.
 * `undefined` when no pipeline has committed yet.
 */
export function projectSchema(states: readonly WarehouseSchemaState[]): ProjectSchema | undefined {
  const [first, ...others] = states;
  if (first === undefined) return undefined;
  if (others.length === 0) return { schema: first.schema, columns: first.columns };
  const merged = PropertySchema.fromJSON(first.schema);
  for (const other of others) merged.merge(other.schema);
  return {
    schema: merged.toJSON(),
    columns: typedLayout(merged, first.columns, first.max_columns).columns,
  };
}

/** Where a pipeline's catalog tables point: its destination bucket and prefix. */
export interface CatalogDestination {
  readonly bucket: string;
  readonly prefix?: string;
}

/**
 * The Glue database of a pipeline's tables: `mp_<project>` (see `glueDatabaseName`) for the
 * deployment's destination bucket without a prefix; a pipeline exporting elsewhere (its own
 * `s3_bucket` or `s3_prefix`) gets `mp_<project>_<8 hex digits of bucket/prefix>`, so tables over
 * different folders never replace each other.
 */
export function catalogDatabase(config: PipelineConfig, destination: CatalogDestination): string {
  const base = glueDatabaseName(config.project_id);
  if (config.s3_bucket === undefined && config.s3_prefix === undefined) return base;
  const where = `${destination.bucket}/${destination.prefix ?? ''}`;
  return `${base}_${createHash('sha256').update(where).digest('hex').slice(0, 8)}`;
}

/** What the catalog was last made from, by this pipeline (`WAREHOUSE_CATALOG_KEY`). */
interface AppliedCatalog {
  readonly database: string;
  readonly fingerprint: string;
}

/**
 * Keeps the pipeline's tables in the project's catalog database as its state defines them: nothing is
 * sent while they are what this pipeline last applied (the fingerprint in its state), so most commits
 * cost one state read; a change (new typed columns, a first commit, a moved destination) applies them.
 * Idempotent: a failure before the fingerprint is stored is applied again by the next call. Returns
 * what happened to each table, or `undefined` when nothing was sent.
 */
export async function updateCatalog(
  catalog: WarehouseCatalog,
  stores: Pick<EngineStores, 'state'>,
  config: PipelineConfig,
  destination: CatalogDestination,
): Promise<{ database: string; tables: Record<string, string> } | undefined> {
  const columns =
    config.data_source === 'events' ? ((await readWarehouseSchema(stores.state))?.columns ?? []) : [];
  const target: WarehouseTarget = {
    bucket: destination.bucket,
    ...(destination.prefix === undefined ? {} : { prefix: destination.prefix }),
    projectId: config.project_id,
    database: catalogDatabase(config, destination),
    format: config.format,
    firstDay: config.from_date,
  };
  const tables = pipelineTables(target, config.data_source, columns);
  const fingerprint = createHash('sha256').update(JSON.stringify(tables)).digest('base64url');
  const applied = await getJson<AppliedCatalog>(stores.state, WAREHOUSE_CATALOG_KEY);
  if (applied?.database === target.database && applied.fingerprint === fingerprint) return undefined;
  const outcomes = await catalog.applyWarehouse(
    target.database,
    `Exports of project ${config.project_id} (mp-pipelines)`,
    tables,
  );
  await putJson(stores.state, WAREHOUSE_CATALOG_KEY, { database: target.database, fingerprint });
  return { database: target.database, tables: outcomes };
}
