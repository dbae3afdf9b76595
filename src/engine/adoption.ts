import { adoptionKey, hourIso, ingestRecordKey, ingestSourcesKey, rawHourPrefix } from '../core/layout.js';
import { getJson, listAll, putJsonOnce } from '../core/object-store.js';
import type { PipelineConfig } from '../core/pipeline-config.js';
import type { IngestRecord } from '../core/records.js';
import { floorHour, HOUR_MS } from '../core/windows.js';
import { type HourObject, hourSourcesOf } from './arrival-hour.js';
import type { EngineStores } from './stores.js';

/**
 * How far back late objects are looked for: Firehose retries a failed S3 delivery for up to 24 hours,
 * into the folder of the first arrival of its records.
 */
export const LATE_OBJECT_LOOKBACK_HOURS = 24;

/**
 * Assigns the objects found in folders already read that no ingest took (written after their folder
 * was read: a retried delivery, or an upload that took longer than the hour) to the hours about to be
 * ingested: each to the first of `hours` that is not earlier than the hour it was written in (its
 * Last-Modified, which S3 stamps when the upload starts; one begun in its folder's own hour goes to the
 * next), at most 24 hours after its folder. The assignment of an hour is written once, before its
 * ingest fixes its objects, so every object is taken by exactly one hour. Runs before an ingest batch,
 * one step at a time per project (the caller holds the project lock).
 */
export async function assignLateObjects(
  stores: EngineStores,
  config: PipelineConfig,
  hours: readonly number[],
): Promise<void> {
  if (hours.length === 0) return;
  const batch = [...hours].sort((a, b) => a - b);
  const first = batch[0]!;
  const last = batch.at(-1)!;
  const span: number[] = [];
  for (let hour = first - LATE_OBJECT_LOOKBACK_HOURS * HOUR_MS; hour <= last; hour += HOUR_MS)
    span.push(hour);
  const records = new Map<number, Pick<IngestRecord, 'sources'>>();
  const assigned = new Map<number, { objects: HourObject[] }>();
  const started = new Set<number>();
  await Promise.all(
    span.map(async (hour) => {
      const record = await getJson<Pick<IngestRecord, 'sources'>>(stores.state, ingestRecordKey(hour));
      if (record !== undefined) records.set(hour, record);
      const adoption = await getJson<{ objects: HourObject[] }>(stores.state, adoptionKey(hour));
      if (adoption !== undefined) assigned.set(hour, adoption);
      // An hour whose objects are fixed already can take no more.
      if ((await stores.state.getBytes(ingestSourcesKey(hour))) !== undefined) started.add(hour);
    }),
  );
  const taken = new Set([
    ...[...records.values()].flatMap((record) => record.sources.map((object) => object.key)),
    ...[...assigned.values()].flatMap((adoption) => adoption.objects.map((object) => object.key)),
  ]);
  const open = batch.filter((hour) => !records.has(hour) && !assigned.has(hour) && !started.has(hour));
  const found = new Map<number, HourObject[]>();
  const folders = span.filter((hour) => hour < last && records.has(hour));
  const listings = await Promise.all(
    folders.flatMap((folder) =>
      hourSourcesOf(config).map(async (source) => ({
        folder,
        source,
        objects: await listAll(stores.raw, rawHourPrefix(config.project_id, folder, source)),
      })),
    ),
  );
  for (const { folder, source, objects } of listings) {
    for (const object of objects) {
      if (object.key.endsWith('/') || taken.has(object.key)) continue;
      const written = Math.max(floorHour(object.lastModified), folder + HOUR_MS);
      const hour = open.find((h) => h >= written && h <= folder + LATE_OBJECT_LOOKBACK_HOURS * HOUR_MS);
      if (hour === undefined) continue;
      const list = found.get(hour) ?? [];
      list.push({ key: object.key, size: object.size, source, folder_hour: hourIso(folder) });
      found.set(hour, list);
    }
  }
  await Promise.all(
    [...found].map(([hour, objects]) =>
      putJsonOnce(stores.state, adoptionKey(hour), {
        objects: objects.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)),
      }),
    ),
  );
}
