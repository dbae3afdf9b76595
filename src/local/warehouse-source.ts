/**
 * Where a project's local warehouse reads from: a destination folder (`local run --out`, or the local
 * home's) and the state folders of the project's events pipelines, which hold the schema and the run
 * records.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FsObjectStore } from '../adapters/fs-object-store.js';
import { RUN_RECORDS_PREFIX } from '../core/layout.js';
import { getJson, listAll, type ObjectStore } from '../core/object-store.js';
import type { RunRecord } from '../core/records.js';
import type { ExportFormat } from '../core/warehouse/sql.js';
import { type ProjectSchema, projectSchema, readWarehouseSchema } from '../engine/warehouse.js';
import { DuckDbWarehouse } from './duckdb-warehouse.js';
import { defaultStateFolder } from './local-stores.js';

/** A project's exports on this machine. */
export interface LocalWarehouseSource {
  /** The destination root holding `<project>/mp_master_event/...`. */
  readonly out: string;
  readonly projectId: string;
  /** The state of each events pipeline writing those folders. */
  readonly states: readonly ObjectStore[];
}

/**
 * The source of a local run's destination: every pipeline state folder of the project under
 * `<out>/_state/<project>/` (where `local run` keeps them by default).
 */
export async function localRunSource(out: string, projectId: string): Promise<LocalWarehouseSource> {
  const folder = join(out, '_state', projectId);
  const names = await readdir(folder).catch(() => [] as string[]);
  return {
    out,
    projectId,
    states: names.sort().map((name) => new FsObjectStore(defaultStateFolder(out, projectId, name))),
  };
}

/** A project's warehouse opened over its local exports, with what it was built from. */
export interface OpenedWarehouse {
  readonly warehouse: DuckDbWarehouse;
  /** The stored schema; `undefined` before any events step committed (the typed view is then inferred). */
  readonly schema: ProjectSchema | undefined;
  /** The run records of the project's events pipelines (states without a schema hold none of those). */
  readonly runRecords: readonly RunRecord[];
}

/** Opens DuckDB over a source, with the typed columns its pipelines' state keeps. */
export async function openLocalWarehouse(
  source: LocalWarehouseSource,
  format: ExportFormat = 'json',
): Promise<OpenedWarehouse> {
  const events: ObjectStore[] = [];
  const states = [];
  for (const state of source.states) {
    const stored = await readWarehouseSchema(state);
    if (stored === undefined) continue;
    events.push(state);
    states.push(stored);
  }
  const schema = projectSchema(states);
  const runRecords: RunRecord[] = [];
  for (const state of events)
    for (const { key } of await listAll(state, RUN_RECORDS_PREFIX)) {
      const record = key.endsWith('.json') ? await getJson<RunRecord>(state, key) : undefined;
      if (record !== undefined) runRecords.push(record);
    }
  const warehouse = await DuckDbWarehouse.open({
    out: source.out,
    projectId: source.projectId,
    format,
    ...(schema === undefined ? {} : { columns: schema.columns }),
  });
  return { warehouse, schema, runRecords };
}
