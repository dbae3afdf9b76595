import pLimit from 'p-limit';
import { INGEST_RECORDS_PREFIX, isIngestRecordKey, RUN_RECORDS_PREFIX } from '../core/layout.js';
import { getJson, listAll } from '../core/object-store.js';
import { type DayRange, type Reconciliation, reconcile } from '../core/reconcile.js';
import type { IngestRecord, RunRecord } from '../core/records.js';
import type { EngineStores } from './stores.js';

/** Records read at once: a pipeline's history is thousands of small objects. */
const READS_IN_FLIGHT = 32;

/**
 * Reconciles a pipeline from its records alone (every ingest record and run record in its state), as a
 * deployment can at any time: `range` narrows the days reported, never the records counted.
 */
export async function reconcilePipeline(stores: EngineStores, range: DayRange = {}): Promise<Reconciliation> {
  const [ingests, runs] = await Promise.all([
    readAll<IngestRecord>(stores, INGEST_RECORDS_PREFIX, isIngestRecordKey),
    readAll<RunRecord>(stores, RUN_RECORDS_PREFIX, (key) => key.endsWith('.json')),
  ]);
  return reconcile(ingests, runs, range);
}

async function readAll<T>(
  stores: EngineStores,
  prefix: string,
  wanted: (key: string) => boolean,
): Promise<T[]> {
  const limit = pLimit(READS_IN_FLIGHT);
  const keys = (await listAll(stores.state, prefix)).map((o) => o.key).filter(wanted);
  const records = await Promise.all(keys.map((key) => limit(() => getJson<T>(stores.state, key))));
  return records.filter((record): record is Awaited<T> & T => record !== undefined);
}
