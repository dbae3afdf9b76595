import { StagingLostError } from '../core/errors.js';
import { partKey, taskResultKey } from '../core/layout.js';
import { getJson, putJson } from '../core/object-store.js';
import type { PipelineConfig } from '../core/pipeline-config.js';
import type { EngineStores } from '../core/ports.js';
import { EVENT_RECORD } from '../core/record-columns.js';
import type { DayCounts, ExportUnit, PartRecord, StepPlan, TaskResult } from '../core/records.js';
import { PropertySchema } from '../core/warehouse/property-schema.js';
import { isOnTime, ZoneCalendar } from '../core/windows.js';
import { RollingWriters } from './object-writers.js';
import { type PartWriter, partExtension, partFormatOf, partOpener } from './part-formats.js';
import { type LineSink, MAX_LINE_BYTES, readSourceLines, type SourceReadOptions } from './source-lines.js';
import { schemaHeaderOf } from './staging.js';
import { partRecord } from './step-results.js';

/** A staged line is an input line's record plus a short header. */
const STAGED_LINE_BYTES = 2 * MAX_LINE_BYTES;
/** Day folders a task writes into at once (a sync can touch many; most tasks touch one or two). */
const MAX_OPEN_PARTS = 4;

/**
 * Runs one export task of a planned step: reads its units' staged objects in arrival order, keeps the
 * first copy of every dedup key, and writes the records into parts of its event days in the pipeline's
 * format (`part-formats.ts`). It records the top-level properties of what it wrote and their JSON types
 * (the warehouse schema).
 * Memory: one unit's dedup keys (about 100 bytes per keyed event of one event hour and shard) plus
 * a few MB of stream buffers. Idempotent: a finished task's result is returned as is, and an
 * unfinished one rewrites the same part keys.
 */
export async function runExportTask(
  stores: EngineStores,
  config: PipelineConfig,
  plan: StepPlan,
  task: number,
): Promise<TaskResult> {
  const resultKey = taskResultKey(plan.step_id, task);
  const done = await getJson<TaskResult>(stores.state, resultKey);
  if (done !== undefined) return done;
  const units = plan.tasks[task];
  if (units === undefined) throw new RangeError(`step ${plan.step_id} has no task ${task}`);

  const days: Record<string, DayCounts> = {};
  const format = partFormatOf(config);
  const openPart = await partOpener(format, EVENT_RECORD);
  const parts = new RollingWriters<string, PartWriter, PartRecord>({
    maxOpen: MAX_OPEN_PARTS,
    maxUncompressedBytes: config.part_max_bytes,
    open: (day, seq) =>
      openPart(
        stores.destination,
        partKey(config.project_id, day, config.name, plan.step_id, task, seq, partExtension(format)),
      ),
    close: async (writer, day) => partRecord(await writer.close(), day),
  });
  const selector = recordSelector(config, plan);
  const schema = new PropertySchema();
  for (const unit of units) {
    // A regular step exports nearly every record of its objects: their schema headers less the records
    // it drops are cheaper than reading each record's properties. A sync exports the few late ones, and a
    // slice a share of each object: they read the properties of what they write.
    const headers = plan.kind === 'regular' && unit.slices === 1;
    await exportUnit(stores, unit, selector, headers, { days, parts, schema });
  }
  const result: TaskResult = {
    step_id: plan.step_id,
    task,
    parts: await parts.finish(),
    days,
    schema: schema.toJSON(),
  };
  await putJson(stores.state, resultKey, result);
  return result;
}

/**
 * Decides, for a staged record of this step, the day folder it is exported to, or `undefined` when
 * the record belongs to another step (its dedup key still counts as seen).
 */
type RecordSelector = (timeMs: number, arrivalHour: number) => string | undefined;

function recordSelector(config: PipelineConfig, plan: StepPlan): RecordSelector {
  if (plan.kind === 'regular') {
    const window = plan.window!;
    const start = Date.parse(window.start);
    const end = Date.parse(window.end);
    // Objects of a UTC hour can hold events of two windows in zones with 30/45-minute offsets.
    return (timeMs) => (timeMs >= start && timeMs < end ? window.day : undefined);
  }
  const calendar = new ZoneCalendar(config.time_zone);
  return (timeMs, arrivalHour) => {
    const window = calendar.window(config.frequency, timeMs);
    return isOnTime(arrivalHour, window) ? undefined : window.day;
  };
}

/** What a task accumulates over its units: counts per day, the open parts, the properties seen. */
interface TaskOutput {
  readonly days: Record<string, DayCounts>;
  readonly parts: RollingWriters<string, PartWriter, PartRecord>;
  readonly schema: PropertySchema;
}

async function exportUnit(
  stores: EngineStores,
  unit: ExportUnit,
  select: RecordSelector,
  useHeaders: boolean,
  { days, parts, schema }: TaskOutput,
): Promise<void> {
  const seen = new Set<string>();
  const inSlice = sliceFilter(unit);
  for (const object of unit.objects) {
    if (object.read === 'keys') {
      const onKey = (chunk: Buffer, start: number, end: number) => {
        const key = chunk.toString('latin1', start, end);
        if (inSlice(key, 0)) seen.add(key);
      };
      await readSourceLines(stores.staging, object.key, lineSink(onKey), noWait, staged(object.key));
      continue;
    }
    const arrivalHour = Date.parse(object.arrival_hour);
    // Whether `schema` holds this object's header: then it takes back the records not written.
    let headed = false;
    const onRecord = (chunk: Buffer, start: number, end: number, lineNumber: number) => {
      if (lineNumber === 1) {
        const header = schemaHeaderOf(chunk.subarray(start, end));
        if (header !== undefined) {
          if (useHeaders) schema.merge(header);
          headed = useHeaders;
          return;
        }
      }
      // `<time ms>\t<dedup key or empty>\t<record>`, read without building the time's text.
      let timeMs = 0;
      let timeEnd = start;
      for (let c = chunk[start]; c !== 9; c = chunk[++timeEnd]) {
        if (timeEnd === end || c === undefined || c < 0x30 || c > 0x39)
          throw corruptLine(object.key, lineNumber);
        timeMs = timeMs * 10 + c - 0x30;
      }
      let keyEnd = timeEnd + 1;
      while (keyEnd < end && chunk[keyEnd] !== 9) keyEnd += 1;
      if (timeEnd === start || keyEnd >= end) throw corruptLine(object.key, lineNumber);
      const key = keyEnd > timeEnd + 1 ? chunk.toString('latin1', timeEnd + 1, keyEnd) : undefined;
      if (!inSlice(key, lineNumber)) return;
      const day = select(timeMs, arrivalHour);
      // The record is `[keyEnd + 1, end)` of the chunk: a view of it only where properties are read.
      const recordStart = keyEnd + 1;
      if (day === undefined) {
        if (key !== undefined) seen.add(key);
        if (headed) schema.removeRecord(chunk.subarray(recordStart, end));
        return;
      }
      const counts = days[day] ?? { exported: 0, duplicates: 0 };
      days[day] = counts;
      if (key !== undefined) {
        // One lookup: the set grows unless it held the key already.
        const size = seen.size;
        if (seen.add(key).size === size) {
          counts.duplicates += 1;
          if (headed) schema.removeRecord(chunk.subarray(recordStart, end));
          return;
        }
      }
      counts.exported += 1;
      if (!headed) schema.addRecord(chunk.subarray(recordStart, end));
      parts.segmentFor(day, end - recordStart + 1).add(chunk, recordStart, end);
    };
    await readSourceLines(
      stores.staging,
      object.key,
      lineSink(onRecord),
      () => parts.settle(),
      staged(object.key),
    );
  }
}

/** How staged objects are read: long lines (a record plus its header), and a missing one fails the step, naming it. */
function staged(key: string): SourceReadOptions {
  return {
    maxLineBytes: STAGED_LINE_BYTES,
    missing: (where) =>
      new StagingLostError(
        `staged object ${key} in ${where} is missing, though a committed ingest record names it: ` +
          'the step cannot export the events it held',
      ),
  };
}

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * Which staged records belong to a unit's slice: copies of one event share their key digest and so
 * their slice; records without a key are spread by line number.
 */
function sliceFilter(unit: ExportUnit): (key: string | undefined, lineNumber: number) => boolean {
  if (unit.slices === 1) return () => true;
  return (key, lineNumber) => {
    if (key === undefined) return lineNumber % unit.slices === unit.slice;
    const digest = BASE64URL.indexOf(key[0] ?? 'A') * 64 + BASE64URL.indexOf(key[1] ?? 'A');
    return digest % unit.slices === unit.slice;
  };
}

function corruptLine(key: string, lineNumber: number): Error {
  return new Error(`staged line ${lineNumber} of ${key} is not <time>\t<key>\t<record>: staging is corrupt`);
}

function lineSink(onLine: LineSink['line']): LineSink {
  return {
    line: onLine,
    overlong(_head: Buffer, totalBytes: number, lineNumber: number): never {
      throw new Error(`staged line ${lineNumber} is ${totalBytes} bytes: staging is corrupt`);
    },
  };
}

async function noWait(): Promise<void> {}
