import { parseIdentityLine } from '../core/identity.js';
import type { Rejected } from '../core/json-line.js';
import { hourIso, ingestRecordKey, pendingUpdatesKey } from '../core/layout.js';
import { putJson } from '../core/object-store.js';
import type { PipelineConfig, SnapshotSource } from '../core/pipeline-config.js';
import { parseProfileUpdate } from '../core/profiles.js';
import type { IngestRecord, PendingObject } from '../core/records.js';
import { ZoneCalendar } from '../core/windows.js';
import { arrivalObjects, sourceEntry } from './arrival-objects.js';
import { NdjsonObjectWriter } from './object-writers.js';
import { Quarantine } from './quarantine.js';
import { readSourceLines } from './source-lines.js';
import type { EngineStores } from './stores.js';

/** The landing-zone sources a snapshot pipeline folds: people also resolve ids through identity links. */
export function snapshotSources(config: PipelineConfig): SnapshotSource[] {
  return config.data_source === 'people' ? ['identity', 'people'] : ['identity'];
}

/** Validates a line of a source: the value to keep (with its time, when it has one), or why it is bad. */
function validator(
  source: SnapshotSource,
): (line: Buffer) => { ok: true; value: { timeMs?: number } } | Rejected<string> {
  if (source === 'people') {
    return (line) => {
      const parsed = parseProfileUpdate(line);
      return parsed.ok ? { ok: true, value: parsed.update } : parsed;
    };
  }
  return (line) => {
    const parsed = parseIdentityLine(line);
    return parsed.ok ? { ok: true, value: parsed.link } : parsed;
  };
}

/**
 * Ingests one arrival hour for a snapshot pipeline: validates every line of its sources, quarantines
 * bad ones, and keeps the valid ones in the pipeline's state (`pending/`) in arrival order, as
 * `<time ms>\t<update JSON>`; a line without a time takes its arrival hour's start. The hour's ingest
 * record, written last, commits it. Deterministic, so a re-run after a crash writes the same bytes.
 */
export async function ingestSnapshotHour(
  stores: EngineStores,
  config: PipelineConfig,
  arrivalHour: number,
): Promise<IngestRecord> {
  const sourceStats: IngestRecord['sources'][number][] = [];
  const quarantineParts: IngestRecord['quarantine_parts'][number][] = [];
  const quarantineReasons: Record<string, number> = {};
  const pending: PendingObject[] = [];
  let valid = 0;
  let quarantined = 0;
  const sources = snapshotSources(config);
  const objectsBySource = await arrivalObjects(stores, config.project_id, arrivalHour, sources);
  for (const [index, source] of sources.entries()) {
    const quarantine = new Quarantine(stores, config.project_id, arrivalHour, source);
    const kept = new NdjsonObjectWriter(stores.state, pendingUpdatesKey(arrivalHour, source), 'none');
    const validate = validator(source);
    const objects = objectsBySource[index] ?? [];
    for (const object of objects) {
      const stats = await readSourceLines(
        stores.raw,
        object.key,
        {
          line(bytes, lineNumber) {
            const parsed = validate(bytes);
            if (!parsed.ok) {
              quarantine.add(parsed.reason, parsed.detail, bytes, { key: object.key, line: lineNumber });
              return;
            }
            kept.addText(`${parsed.value.timeMs ?? arrivalHour}\t${JSON.stringify(parsed.value)}`);
          },
          overlong(head, totalBytes, lineNumber) {
            quarantine.addOverlong(head, totalBytes, { key: object.key, line: lineNumber });
          },
        },
        async () => {
          if (kept.backpressured) await kept.drain();
          await quarantine.settle();
        },
      );
      sourceStats.push(sourceEntry(object, stats.lines));
    }
    const written = await kept.close();
    pending.push({ key: written.key, source, records: written.records, bytes: written.bytes });
    valid += written.records;
    quarantined += quarantine.count;
    for (const [reason, n] of Object.entries(quarantine.reasons))
      quarantineReasons[reason] = (quarantineReasons[reason] ?? 0) + n;
    quarantineParts.push(...(await quarantine.finish()));
  }
  const record: IngestRecord = {
    arrival_hour: hourIso(arrivalHour),
    arrival_day: new ZoneCalendar(config.time_zone).localDate(arrivalHour),
    sources: sourceStats,
    source_lines: sourceStats.reduce((sum, s) => sum + s.lines, 0),
    valid,
    quarantined,
    quarantine_reasons: quarantineReasons,
    quarantine_parts: quarantineParts,
    staged: [],
    owners: {},
    pending,
  };
  await putJson(stores.state, ingestRecordKey(arrivalHour), record);
  return record;
}
