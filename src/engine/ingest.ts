import { parseEventLine } from '../core/event-line.js';
import {
  hourIso,
  hourStamp,
  ingestRecordKey,
  type StagedName,
  stagedKey,
  stagedKeysKey,
} from '../core/layout.js';
import { putJson } from '../core/object-store.js';
import type { PipelineConfig } from '../core/pipeline-config.js';
import { addOwnerCount, type IngestRecord, type OwnerCounts, type StagedObject } from '../core/records.js';
import { EventRouter } from '../core/routing.js';
import { floorHour, ZoneCalendar } from '../core/windows.js';
import { arrivalObjects, sourceEntry } from './arrival-objects.js';
import { NdjsonObjectWriter, RollingWriters, type Segment } from './object-writers.js';
import { Quarantine } from './quarantine.js';
import { type LineSink, readSourceLines } from './source-lines.js';
import type { EngineStores } from './stores.js';

/** Staging is internal and short-lived: deflating it would make every event pay for compression twice. */
const STAGING_COMPRESSION = 'none';
/** Staged objects open at once in one ingest (late data can touch many event hours). */
const MAX_OPEN_STAGED = 32;

/**
 * Ingests one arrival-hour folder of the landing zone (DESIGN 4b): validates every line, quarantines
 * bad ones, routes valid ones to their owner, stages those a step will export (keyed by UTC event
 * hour), and commits by writing the hour's ingest record last. Deterministic: re-running it
 * after a crash writes the same objects with the same bytes.
 */
export async function ingestArrivalHour(
  stores: EngineStores,
  config: PipelineConfig,
  arrivalHour: number,
): Promise<IngestRecord> {
  const calendar = new ZoneCalendar(config.time_zone);
  const router = new EventRouter(config, calendar);
  const owners: OwnerCounts = {};
  let valid = 0;

  const staging = new RollingWriters<number, StagedSegment, StagedObject>({
    maxOpen: MAX_OPEN_STAGED,
    maxUncompressedBytes: Number.POSITIVE_INFINITY,
    open: (eventHour, seq) => new StagedSegment(stores, { eventHour, arrivalHour, seq }, config.sync),
    close: (segment) => segment.close(),
  });
  const quarantine = new Quarantine(stores, config.project_id, arrivalHour, 'events');

  const [sources = []] = await arrivalObjects(stores, config.project_id, arrivalHour, ['events']);
  const sourceStats: IngestRecord['sources'][number][] = [];
  for (const source of sources) {
    const sink: LineSink = {
      line(bytes, lineNumber) {
        const parsed = parseEventLine(bytes);
        if (!parsed.ok) {
          quarantine.add(parsed.reason, parsed.detail, bytes, { key: source.key, line: lineNumber });
          return;
        }
        valid += 1;
        const route = router.route(parsed, arrivalHour);
        addOwnerCount(owners, route.owner, route.window.day);
        if (!route.staged) return;
        staging
          .segmentFor(floorHour(parsed.timeMs), parsed.record.length)
          .add(parsed.timeMs, parsed.dedupKey, parsed.record, route.late);
      },
      overlong(head, totalBytes, lineNumber) {
        quarantine.addOverlong(head, totalBytes, { key: source.key, line: lineNumber });
      },
    };
    const stats = await readSourceLines(stores.raw, source.key, sink, async () => {
      await staging.settle();
      await quarantine.settle();
    });
    sourceStats.push(sourceEntry(source, stats.lines));
  }

  const staged = (await staging.finish()).sort((a, b) => (a.key < b.key ? -1 : 1));
  const quarantineParts = await quarantine.finish();
  const record: IngestRecord = {
    arrival_hour: hourIso(arrivalHour),
    arrival_day: calendar.localDate(arrivalHour),
    sources: sourceStats,
    source_lines: sourceStats.reduce((sum, s) => sum + s.lines, 0),
    valid,
    quarantined: quarantine.count,
    quarantine_reasons: quarantine.reasons,
    quarantine_parts: quarantineParts,
    staged,
    owners,
  };
  await putJson(stores.state, ingestRecordKey(arrivalHour), record);
  return record;
}

/**
 * One staged object (and its dedup-keys companion when the pipeline syncs). A staged line is
 * `<time ms>\t<dedup key or empty>\t<output record>`, so exports need no JSON parsing.
 */
class StagedSegment implements Segment {
  private readonly data: NdjsonObjectWriter;
  private readonly keys: NdjsonObjectWriter | undefined;
  private late = 0;

  constructor(
    stores: EngineStores,
    private readonly name: StagedName,
    withKeys: boolean,
  ) {
    this.data = new NdjsonObjectWriter(stores.staging, stagedKey(name), STAGING_COMPRESSION);
    this.keys = withKeys
      ? new NdjsonObjectWriter(stores.staging, stagedKeysKey(name), STAGING_COMPRESSION)
      : undefined;
  }

  get records(): number {
    return this.data.records;
  }

  get uncompressedBytes(): number {
    return this.data.uncompressedBytes;
  }

  get backpressured(): boolean {
    return this.data.backpressured || (this.keys?.backpressured ?? false);
  }

  async drain(): Promise<void> {
    await this.data.drain();
    await this.keys?.drain();
  }

  add(timeMs: number, dedupKey: string | undefined, record: Buffer, late: boolean): void {
    this.data.addWithPrefix(`${timeMs}\t${dedupKey ?? ''}\t`, record);
    if (dedupKey !== undefined) this.keys?.addAscii(dedupKey);
    if (late) this.late += 1;
  }

  async close(): Promise<StagedObject> {
    const [data, keys] = await Promise.all([this.data.close(), this.keys?.close()]);
    return {
      key: data.key,
      event_hour: hourStamp(this.name.eventHour),
      seq: this.name.seq,
      records: data.records,
      bytes: data.bytes,
      late: this.late,
      ...(keys === undefined ? {} : { keys_key: keys.key }),
    };
  }
}
