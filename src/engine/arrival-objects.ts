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
 * The objects of each of `sources` that arrival hour `hour` ingests, in key order: every object of its
 * own folder, and every object found in the folder of one of the 24 hours before it that was ingested
 * without it, which reached the landing zone after that folder was read. Such an object arrives in the
 * hour it was written in (its Last-Modified; S3 stamps the start of an upload, so one that began in
 * the folder's own hour goes to the next), and exactly that hour takes it: its ingest runs after the
 * write, since an hour is read once settled. A key any hour of the lookback read is never read again,
 * and a folder not ingested yet keeps its objects for its own ingest.
 */
export async function arrivalObjects(
  stores: EngineStores,
  projectId: string,
  hour: number,
  sources: readonly DataSource[],
): Promise<ArrivalObject[][]> {
  const folders = Array.from(
    { length: LATE_OBJECT_LOOKBACK_HOURS },
    (_, i) => hour - (LATE_OBJECT_LOOKBACK_HOURS - i) * HOUR_MS,
  );
  const records = await Promise.all(
    folders.map((folderHour) =>
      getJson<Pick<IngestRecord, 'sources'>>(stores.state, ingestRecordKey(folderHour)),
    ),
  );
  const read = new Set(records.flatMap((record) => record?.sources.map((object) => object.key) ?? []));
  return Promise.all(
    sources.map(async (source) => {
      // Earlier folders first: their keys sort before this hour's.
      const adopted = await Promise.all(
        folders.map(async (folderHour, i) => {
          if (records[i] === undefined) return [];
          const objects = await listFolder(stores, projectId, folderHour, source);
          return objects
            .filter((object) => !read.has(object.key) && adoptingHour(object, folderHour) === hour)
            .map((object) => ({ ...object, folderHour }));
        }),
      );
      return [...adopted.flat(), ...(await listFolder(stores, projectId, hour, source))];
    }),
  );
}

/** The hour that takes an object its already read folder did not hold: when it was written, never before the folder's next hour. */
function adoptingHour(object: ObjectInfo, folderHour: number): number {
  return Math.max(floorHour(object.lastModified), folderHour + HOUR_MS);
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
