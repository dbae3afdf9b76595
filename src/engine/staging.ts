import { digitCount, putDigits, type StagedEvent } from '../core/event-line.js';
import { hourStamp, stagedKey, stagedKeysKey } from '../core/layout.js';
import type { ObjectStore } from '../core/object-store.js';
import type { StagedObject } from '../core/records.js';
import { PropertyKeys } from '../core/warehouse/property-keys.js';
import { PropertyCounts, type SerializedSchema } from '../core/warehouse/property-schema.js';

/** How much one arrival hour's ingest buffers and uploads at once (bounded whatever the input). */
export interface StagingBudget {
  /** Bytes buffered across all event hours before the largest buffer is written out. */
  readonly bufferedBytes: number;
  /** Staged objects being written at once; a flush beyond it waits for the oldest. */
  readonly uploadsInFlight: number;
}

/**
 * 8 MiB buffered and two uploads in flight: about 24 MiB per ingest at most, so the two ingests of each
 * of the local run's worker threads stay well inside its memory (16 MiB cost a 1M-event run about
 * 40 MB more peak RSS), and an arrival hour of a few tens of megabytes (a Firehose hour of a busy
 * project) is staged in a few objects per event hour.
 */
export const DEFAULT_STAGING_BUDGET: StagingBudget = { bufferedBytes: 8 * 1024 * 1024, uploadsInFlight: 2 };

/**
 * Distinct property names one ingest types for the schema headers; past it, an event with a new name is
 * not typed and its staged object has no header (its export reads the properties itself).
 */
const MAX_PROPERTY_NAMES = 10_000;

/**
 * Starts a staged object's first line when it holds the property types of the object's records (the
 * warehouse schema, `SerializedSchema` JSON after the prefix): the export adds it instead of reading
 * every record's properties. Records start with their time's digits, so the line is never a record.
 */
export const SCHEMA_HEADER_PREFIX = '#schema\t';

/** The schema of a staged header line (`SCHEMA_HEADER_PREFIX`), or undefined when `line` is a record. */
export function schemaHeaderOf(line: Buffer): SerializedSchema | undefined {
  if (line[0] !== 0x23) return undefined;
  return JSON.parse(line.toString('utf8', SCHEMA_HEADER_PREFIX.length)) as SerializedSchema;
}

const FIRST_CHUNK_BYTES = 8 * 1024;
const CHUNK_BYTES = 256 * 1024;
/**
 * Full-size chunks of an ingest's written objects, kept for its next ones: the collector is not woken
 * by hundreds of megabytes of short-lived buffers, and the ingest's end frees them all.
 */
class SpareChunks {
  private readonly chunks: Buffer[] = [];
  constructor(private readonly max: number) {}

  take(): Buffer {
    return this.chunks.pop() ?? Buffer.allocUnsafe(CHUNK_BYTES);
  }

  give(chunk: Buffer): void {
    if (chunk.length === CHUNK_BYTES && this.chunks.length < this.max) this.chunks.push(chunk);
  }
}

/** Bytes appended into chunks that start small and grow (many event hours hold a few lines each). */
class ChunkedBytes {
  constructor(private readonly spare: SpareChunks) {}

  /** Filled chunks and the bytes used of each. */
  private readonly full: Buffer[] = [];
  private readonly fullUsed: number[] = [];
  private chunk: Buffer = Buffer.alloc(0);
  private used = 0;
  bytes = 0;

  /** Appends latin1 `text`, then a newline. */
  append(text: string): void {
    const length = text.length + 1;
    if (this.used + length > this.chunk.length) this.grow(length);
    this.used += this.chunk.write(text, this.used, 'latin1');
    this.chunk[this.used++] = 10;
    this.bytes += length;
  }

  /** Appends the staged line of `record`: `<time ms>\t<dedup key or empty>\t<record>\n`. */
  appendRecord(record: StagedRecord): void {
    const key = record.dedupKey ?? '';
    const length = digitCount(record.timeMs) + key.length + record.recordBytes + 3;
    if (this.used + length > this.chunk.length) this.grow(length);
    const chunk = this.chunk;
    let o = putDigits(chunk, this.used, record.timeMs);
    chunk[o++] = 9;
    // A loop, not `write`: a native call costs more than the 22 characters of a key digest.
    for (let i = 0; i < key.length; i++) chunk[o++] = key.charCodeAt(i);
    chunk[o++] = 9;
    o = record.writeRecord(chunk, o);
    chunk[o++] = 10;
    this.used = o;
    this.bytes += length;
  }

  /** Everything appended, as a list of chunks (valid until `release`). */
  take(): Buffer[] {
    const chunks = this.full.map((chunk, i) => chunk.subarray(0, this.fullUsed[i]));
    if (this.used > 0) chunks.push(this.chunk.subarray(0, this.used));
    return chunks;
  }

  /** Gives the chunks back for reuse: nothing may read them afterwards. */
  release(): void {
    for (const chunk of [...this.full, this.chunk]) this.spare.give(chunk);
    this.full.length = 0;
    this.fullUsed.length = 0;
    this.chunk = Buffer.alloc(0);
    this.used = 0;
    this.bytes = 0;
  }

  private grow(length: number): void {
    if (this.used > 0 && this.chunk.length >= CHUNK_BYTES) {
      this.full.push(this.chunk);
      this.fullUsed.push(this.used);
      this.chunk = length <= CHUNK_BYTES ? this.spare.take() : Buffer.allocUnsafe(length);
      this.used = 0;
      return;
    }
    const doubled = Math.min(CHUNK_BYTES, Math.max(FIRST_CHUNK_BYTES, 2 * this.chunk.length));
    const size = Math.max(doubled, this.used + length);
    const grown = size === CHUNK_BYTES ? this.spare.take() : Buffer.allocUnsafe(size);
    this.chunk.copy(grown, 0, 0, this.used);
    this.chunk = grown;
  }
}

/** What a staged line holds: an event's time, dedup key and record (written in place, not copied). */
export type StagedRecord = Pick<StagedEvent, 'timeMs' | 'dedupKey' | 'recordBytes' | 'writeRecord'>;

/** The events of one UTC event hour buffered since its last flush. */
interface HourBuffer {
  readonly eventHour: number;
  lines: ChunkedBytes;
  keys: ChunkedBytes;
  records: number;
  /** The property types of its records (the schema header). */
  properties: PropertyCounts;
  late: number;
  owners: Set<string>;
  /** Objects of this event hour written so far (numbers the next one). */
  flushed: number;
}

/**
 * Stages the exportable events of one piece of an arrival hour's ingest (docs/contract.md#data-flow): one
 * plain NDJSON object per (event hour, arrival hour) flush, with a dedup-keys companion when the pipeline
 * syncs. Lines are buffered per event hour; when the buffers hold more than the budget, the largest is
 * written out, so an arrival hour spread over N event hours writes about N x (1 + its size / budget) objects
 * however its lines interleave (offline queues flushing weeks of events into one hour), and memory stays
 * within the budget plus the uploads in flight. Object names follow the order of the lines, so a re-run of
 * the same piece writes the same objects with the same bytes. Each object starts with a schema header
 * (`SCHEMA_HEADER_PREFIX`) when the scanner typed all its events' properties (`keys`).
 */
export class StagingBuffers {
  /** Read each line with these keys (`readEventLine(line, keys)`) before `add`ing it. */
  readonly keys = new PropertyKeys(MAX_PROPERTY_NAMES);
  private readonly buffers = new Map<number, HourBuffer>();
  private readonly written: Promise<StagedObject>[] = [];
  private readonly inFlight: Promise<unknown>[] = [];
  private buffered = 0;
  private readonly spare: SpareChunks;

  constructor(
    private readonly store: ObjectStore,
    private readonly arrivalHour: number,
    private readonly piece: number,
    private readonly withKeys: boolean,
    private readonly budget: StagingBudget = DEFAULT_STAGING_BUDGET,
  ) {
    // A flush's worth: what one written object gives back for the buffers that fill next.
    this.spare = new SpareChunks(Math.ceil(budget.bufferedBytes / CHUNK_BYTES));
  }

  /**
   * Adds one staged line, `<time ms>\t<dedup key or empty>\t<output record>`, for the step `owner`; `late`
   * marks an event late for its window. The event is the one `keys` scanned last. Call `settle()` between
   * input chunks.
   */
  add(eventHour: number, record: StagedRecord, owner: string, late: boolean): void {
    let buffer = this.buffers.get(eventHour);
    if (buffer === undefined) {
      buffer = this.emptyBuffer(eventHour, 0);
      this.buffers.set(eventHour, buffer);
    }
    const before = buffer.lines.bytes;
    buffer.lines.appendRecord(record);
    this.buffered += buffer.lines.bytes - before;
    buffer.records += 1;
    this.buffered += buffer.properties.add(this.keys);
    if (late) buffer.late += 1;
    buffer.owners.add(owner);
    if (this.withKeys && record.dedupKey !== undefined) buffer.keys.append(record.dedupKey);
  }

  /** Writes out the largest buffers while over budget, waiting for uploads beyond the in-flight limit. */
  async settle(): Promise<void> {
    while (this.buffered > this.budget.bufferedBytes) {
      let largest: HourBuffer | undefined;
      for (const buffer of this.buffers.values())
        if (largest === undefined || buffer.lines.bytes > largest.lines.bytes) largest = buffer;
      if (largest === undefined) return;
      await this.flush(largest);
    }
  }

  /** Writes out every buffer and returns the objects written, by event hour, each hour's in write order. */
  async finish(): Promise<StagedObject[]> {
    const pending = [...this.buffers.values()].filter((buffer) => buffer.records > 0);
    for (const buffer of pending.sort((a, b) => a.eventHour - b.eventHour)) await this.flush(buffer);
    const objects = await Promise.all(this.written);
    const hours = new Map([...this.buffers.keys()].map((hour) => [hourStamp(hour), hour]));
    // Stable: objects of one event hour keep the order their lines arrived in (dedup keeps the first copy).
    return objects.sort((a, b) => hours.get(a.event_hour)! - hours.get(b.event_hour)!);
  }

  private async flush(buffer: HourBuffer): Promise<void> {
    while (this.inFlight.length >= this.budget.uploadsInFlight) await this.inFlight.shift();
    const name = {
      eventHour: buffer.eventHour,
      arrivalHour: this.arrivalHour,
      piece: this.piece,
      seq: buffer.flushed,
    };
    const data = buffer.lines.take();
    const schema = buffer.properties.toJSON(this.keys);
    if (schema !== undefined)
      data.unshift(Buffer.from(`${SCHEMA_HEADER_PREFIX}${JSON.stringify(schema)}\n`, 'utf8'));
    const object: StagedObject = {
      key: stagedKey(name),
      event_hour: hourStamp(buffer.eventHour),
      records: buffer.records,
      bytes: data.reduce((sum, chunk) => sum + chunk.length, 0),
      late: buffer.late,
      owners: [...buffer.owners].sort(),
      ...(this.withKeys ? { keys_key: stagedKeysKey(name) } : {}),
    };
    const keys = this.withKeys ? buffer.keys.take() : undefined;
    const upload = Promise.all([
      this.store.put(object.key, data),
      keys === undefined ? undefined : this.store.put(stagedKeysKey(name), keys),
    ]).then(() => {
      // Only a finished write gives its chunks back: a failed one may still be reading them.
      buffer.lines.release();
      buffer.keys.release();
      return object;
    });
    upload.catch(() => undefined); // surfaced by finish()
    this.written.push(upload);
    this.inFlight.push(upload);
    this.buffered -= buffer.lines.bytes + buffer.properties.bytes;
    this.buffers.set(buffer.eventHour, this.emptyBuffer(buffer.eventHour, buffer.flushed + 1));
  }

  private emptyBuffer(eventHour: number, flushed: number): HourBuffer {
    return {
      eventHour,
      lines: new ChunkedBytes(this.spare),
      keys: new ChunkedBytes(this.spare),
      records: 0,
      properties: new PropertyCounts(),
      late: 0,
      owners: new Set(),
      flushed,
    };
  }
}
