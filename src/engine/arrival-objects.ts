import { hourIso, ingestRecordKey, rawHourPrefix } from '../core/layout.js';
import { getJson, listAll, type ObjectInfo } from '../core/object-store.js';
import type { DataSource } from '../core/pipeline-config.js';
import type { IngestRecord } from '../core/records.js';
import { floorHour, HOUR_MS } from '../core/windows.js';
import type { EngineStores } from './stores.js';

/**
 * How far back an ingest looks for objects written into folders already read: Firehose retries a
 * failed S3 delivery for up to 24 hours, into the folder of the first arrival of its records.
 */
export const LATE_OBJECT_LOOKBACK_HOURS = 24;

/** An object an arrival hour ingests; `folderHour` is set when it sits in an earlier hour's folder. */
export interface ArrivalObject extends ObjectInfo {
  readonly folderHour?: number;
}

/**
 * The objects of `source` that arrival hour `hour` ingests, in key order: every object of its own
 * folder, and every object written during the hour into the folder of one of the 24 hours before it,
 * after that folder was ingested without it. Such an object reached the landing zone when it was
 * written, so its lines arrive in this hour. Exactly one hour adopts it (the one its write falls in,
 * whose ingest runs after the write, since an hour is read once settled); a folder not ingested yet
 * keeps its objects for its own ingest.
 */
export async function arrivalObjects(
  stores: EngineStores,
  projectId: string,
  hour: number,
  source: DataSource,
): Promise<ArrivalObject[]> {
  const objects: ArrivalObject[] = [];
  // Earlier folders first: their keys sort before this hour's.
  for (let back = LATE_OBJECT_LOOKBACK_HOURS; back >= 1; back -= 1) {
    const folderHour = hour - back * HOUR_MS;
    const record = await getJson<Pick<IngestRecord, 'sources'>>(stores.state, ingestRecordKey(folderHour));
    if (record === undefined) continue;
    const read = new Set(record.sources.map((object) => object.key));
    for (const object of await listFolder(stores, projectId, folderHour, source))
      if (!read.has(object.key) && floorHour(object.lastModified) === hour)
        objects.push({ ...object, folderHour });
  }
  objects.push(...(await listFolder(stores, projectId, hour, source)));
  return objects;
}

/** The ingest record's entry for an object read. */
export function sourceEntry(object: ArrivalObject, lines: number): IngestRecord['sources'][number] {
  const entry = { key: object.key, bytes: object.size, lines };
  return object.folderHour === undefined ? entry : { ...entry, folder_hour: hourIso(object.folderHour) };
}

async function listFolder(
  stores: EngineStores,
  projectId: string,
  hour: number,
  source: DataSource,
): Promise<ObjectInfo[]> {
  const objects = await listAll(stores.raw, rawHourPrefix(projectId, hour, source));
  return objects.filter((object) => !object.key.endsWith('/'));
}
