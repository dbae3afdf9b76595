/**
 * Reading one arrival hour of the landing zone, for any data source (docs/contract.md#data-flow), in bounded
 * pieces:
 *
 * 1. The first piece fixes the hour's objects (`sources.json`, written once: every later piece, retry or
 *    duplicate reads the same list): its own folder, and the late objects assigned to it.
 * 2. Each piece reads on from where the last one ended, up to a budget of decoded bytes or objects, hands
 *    every line to the data source's consumer, quarantines the lines it rejects, and writes a piece
 *    record. A large object is read in pieces of its own, resuming at a line boundary. Everything a piece
 *    writes is named by the piece and follows from the fixed list, so any re-run writes the same bytes.
 * 3. An object that cannot be read (after `maxAttempts` failed reads) or that passes a size or
 *    compression-ratio limit is set aside whole under the pipeline's quarantine, with its reason, and
 *    counted; the hour goes on without it.
 * 4. After the last piece, the hour's ingest record (written once) merges the pieces: it is the commit.
 *    Quarantine files no piece record names (an attempt that was restarted) are removed first.
 */
import type { Readable } from 'node:stream';
import { UnreadableSourceError } from '../core/errors.js';
import {
  adoptionKey,
  hourIso,
  ingestAttemptsKey,
  ingestPieceKey,
  ingestRecordKey,
  ingestSourcesKey,
  ingestWorkPrefix,
  quarantineFolder,
  rawHourPrefix,
  setAsideKey,
  setAsideReasonKey,
  stagingIndexKey,
} from '../core/layout.js';
import { getJson, listAll, putJson, putJsonOnce } from '../core/object-store.js';
import type { DataSource, PipelineConfig } from '../core/pipeline-config.js';
import type { EngineStores } from '../core/ports.js';
import type {
  IngestRecord,
  OwnerCounts,
  PendingObject,
  SetAsideObject,
  StagedObject,
} from '../core/records.js';
import { ZoneCalendar } from '../core/windows.js';
import { Quarantine } from './quarantine.js';
import { ObjectLimitError, type ObjectLimits, type ReadPosition, readSourceLines } from './source-lines.js';

/** How an arrival hour is cut into pieces, and when an object is set aside. */
export interface IngestLimits {
  /** Decoded bytes one piece reads before it ends (one invocation's work). */
  readonly pieceBytes: number;
  /** Objects one piece reads at most. */
  readonly pieceObjects: number;
  /** Stored size from which an object is read in pieces of its own, resumable at a line boundary. */
  readonly largeObjectBytes: number;
  readonly object: ObjectLimits;
  /** Failed reads of one object before it is set aside. */
  readonly maxAttempts: number;
}

/**
 * A piece reads at most 4 GiB decoded or 10,000 objects: a few minutes of work, well inside Lambda's 15.
 * Objects over 256 MiB stored are read in pieces of their own; an object decoding past 64 GiB or past 100
 * times its stored size (after its first 64 MiB: a gzip bomb) is set aside, and so is one that failed 3
 * reads.
 */
export const DEFAULT_INGEST_LIMITS: IngestLimits = {
  pieceBytes: 4 * 1024 ** 3,
  pieceObjects: 10_000,
  largeObjectBytes: 256 * 1024 ** 2,
  object: { maxBytes: 64 * 1024 ** 3, maxRatio: 100, ratioAfterBytes: 64 * 1024 ** 2 },
  maxAttempts: 3,
};

/** One object an arrival hour reads. */
export interface HourObject {
  readonly key: string;
  readonly size: number;
  readonly source: DataSource;
  /** Set for a late object: the earlier hour whose folder it was written into. */
  readonly folder_hour?: string;
}

/** What the data source's consumer made of one piece's valid lines. */
export interface ConsumedPiece {
  readonly valid: number;
  readonly staged: readonly StagedObject[];
  readonly owners: OwnerCounts;
  readonly pending?: readonly PendingObject[];
}

/** Takes the lines of one piece for one data source: events are staged, profile updates kept pending. */
export interface HourConsumer {
  /**
   * Takes the line at `[start, end)` of `chunk` (valid until it returns); returns why it is rejected (it
   * is then quarantined), or `undefined`.
   */
  take(
    chunk: Buffer,
    start: number,
    end: number,
    source: DataSource,
  ): { readonly reason: string; readonly detail: string } | undefined;
  /** Waits for writers to drain; called between input chunks. */
  settle(): Promise<void>;
  /** Writes out what it holds. */
  finish(): Promise<ConsumedPiece>;
}

/** What an ingest invocation did: one more piece, or the hour's commit. */
export interface PieceOutcome {
  readonly done: boolean;
  readonly pieces: number;
  /** Set when the hour is committed (by this invocation or an earlier one). */
  readonly record?: IngestRecord;
  /** The hour was committed by this invocation (not found committed). */
  readonly committedNow: boolean;
}

interface Position extends ReadPosition {
  /** Index of the object in the hour's list. */
  readonly object: number;
  readonly compressed: boolean;
}

/** The record of one piece. */
interface IngestPiece extends ConsumedPiece {
  readonly piece: number;
  readonly from: Position;
  readonly to: Position;
  /** Objects read (wholly or in part), with the lines this piece read of each. */
  readonly sources: IngestRecord['sources'];
  readonly quarantined: number;
  readonly quarantine_reasons: Record<string, number>;
  readonly quarantine_parts: IngestRecord['quarantine_parts'];
  readonly set_aside: readonly SetAsideObject[];
  /** The large object this piece read part of (and nothing else): dropped if that object is set aside. */
  readonly part_of?: string;
}

/** Failed reads by object key, and the objects past a limit. */
interface Attempts {
  readonly objects: Record<string, { attempts: number; error: string; limit?: ObjectLimitError['reason'] }>;
}

/** The data sources a pipeline reads: people also resolve ids through identity links. */
export function hourSourcesOf(config: PipelineConfig): DataSource[] {
  if (config.data_source === 'events') return ['events'];
  return config.data_source === 'people' ? ['identity', 'people'] : ['identity'];
}

/**
 * Runs the next piece of arrival hour `hour` (or finds it committed). `consumer` makes the data source's
 * consumer of one piece.
 */
export async function ingestNextPiece(
  stores: EngineStores,
  config: PipelineConfig,
  hour: number,
  consumer: (piece: number) => HourConsumer,
  limits: IngestLimits = DEFAULT_INGEST_LIMITS,
): Promise<PieceOutcome> {
  const committed = await getJson<IngestRecord>(stores.state, ingestRecordKey(hour));
  if (committed !== undefined)
    return { done: true, pieces: committed.pieces, record: committed, committedNow: false };
  const objects = await hourObjects(stores, config, hour);
  const pieces = await donePieces(stores, hour);
  const last = pieces.at(-1);
  const from: Position = last?.to ?? { object: 0, bytes: 0, lines: 0, compressed: false };
  if (from.object < objects.length) {
    for (;;) {
      try {
        const piece = await readPiece(stores, config, hour, objects, pieces.length, from, consumer, limits);
        pieces.push(await putJsonOnce(stores.state, ingestPieceKey(hour, piece.piece), piece));
        break;
      } catch (error) {
        // A limit is no accident: note it and read the piece again, setting the object aside.
        if (!(error instanceof PieceRestart)) throw error;
      }
    }
    if (pieces.at(-1)!.to.object < objects.length)
      return { done: false, pieces: pieces.length, committedNow: false };
  }
  const record = await commitHour(stores, config, hour, pieces);
  return { done: true, pieces: record.pieces, record, committedNow: true };
}

/** The hour's objects: fixed by the first piece that lists them, whoever comes later. */
async function hourObjects(
  stores: EngineStores,
  config: PipelineConfig,
  hour: number,
): Promise<HourObject[]> {
  const fixed = await getJson<{ objects: HourObject[] }>(stores.state, ingestSourcesKey(hour));
  if (fixed !== undefined) return fixed.objects;
  const adopted = (await getJson<{ objects: HourObject[] }>(stores.state, adoptionKey(hour)))?.objects ?? [];
  const own: HourObject[] = [];
  for (const source of hourSourcesOf(config)) {
    for (const object of await listAll(stores.raw, rawHourPrefix(config.project_id, hour, source))) {
      if (!object.key.endsWith('/')) own.push({ key: object.key, size: object.size, source });
    }
  }
  // Late objects first: their folders' keys sort before this hour's, as a listing would have them.
  const listed = { objects: [...adopted, ...own] };
  return (await putJsonOnce(stores.state, ingestSourcesKey(hour), listed)).objects;
}

async function donePieces(stores: EngineStores, hour: number): Promise<IngestPiece[]> {
  const pieces: IngestPiece[] = [];
  for (;;) {
    const piece = await getJson<IngestPiece>(stores.state, ingestPieceKey(hour, pieces.length));
    if (piece === undefined) return pieces;
    pieces.push(piece);
  }
}

/** Thrown inside a piece when an object passed a limit: the piece is read again without it. */
class PieceRestart extends Error {}

async function readPiece(
  stores: EngineStores,
  config: PipelineConfig,
  hour: number,
  objects: readonly HourObject[],
  piece: number,
  from: Position,
  consumerOf: (piece: number) => HourConsumer,
  limits: IngestLimits,
): Promise<IngestPiece> {
  const attempts =
    (await getJson<Attempts>(stores.state, ingestAttemptsKey(hour))) ?? ({ objects: {} } satisfies Attempts);
  const consumer = consumerOf(piece);
  const quarantines = new Map<DataSource, Quarantine>();
  const quarantineOf = (source: DataSource): Quarantine => {
    let quarantine = quarantines.get(source);
    if (quarantine === undefined) {
      quarantine = new Quarantine(stores, config, hour, source, piece);
      quarantines.set(source, quarantine);
    }
    return quarantine;
  };
  const settle = async () => {
    await consumer.settle();
    for (const quarantine of quarantines.values()) await quarantine.settle();
  };
  const sources: IngestRecord['sources'][number][] = [];
  const setAside: SetAsideObject[] = [];
  let position = from;
  let decoded = 0;
  let read = 0;
  let partOf: string | undefined;
  while (position.object < objects.length && read < limits.pieceObjects && decoded < limits.pieceBytes) {
    const object = objects[position.object]!;
    const noted = attempts.objects[object.key];
    if (noted !== undefined && (noted.limit !== undefined || noted.attempts >= limits.maxAttempts)) {
      // Earlier pieces that read part of it are dropped when the hour commits.
      setAside.push(await setAsideObject(stores, config, object, noted));
      position = { object: position.object + 1, bytes: 0, lines: 0, compressed: false };
      read += 1;
      continue;
    }
    const large = object.size > limits.largeObjectBytes;
    // A large object is read in pieces of its own, so a piece never mixes it with others.
    if (large && read > 0) break;
    const quarantine = quarantineOf(object.source);
    const startBytes = position.bytes;
    let stats: Awaited<ReturnType<typeof readSourceLines>>;
    try {
      stats = await readSourceLines(
        stores.raw,
        object.key,
        {
          line(chunk, start, end, lineNumber) {
            const rejected = consumer.take(chunk, start, end, object.source);
            if (rejected !== undefined)
              quarantine.add(rejected.reason, rejected.detail, chunk.subarray(start, end), {
                key: object.key,
                line: lineNumber,
              });
          },
          overlong(head, totalBytes, lineNumber) {
            quarantine.addOverlong(head, totalBytes, { key: object.key, line: lineNumber });
          },
        },
        settle,
        {
          limits: limits.object,
          ...(position.bytes > 0 ? { resume: position } : {}),
          ...(large ? { stopAt: position.bytes + limits.pieceBytes } : {}),
        },
      );
    } catch (error) {
      // Only the object's own bytes count against it: a throttled or dropped request is retried as is.
      if (!(error instanceof ObjectLimitError || error instanceof UnreadableSourceError)) throw error;
      await noteFailure(stores, hour, attempts, object.key, error);
      if (error instanceof ObjectLimitError) throw new PieceRestart();
      if ((attempts.objects[object.key]?.attempts ?? 0) >= limits.maxAttempts) throw new PieceRestart();
      throw error;
    }
    const entry = { key: object.key, bytes: object.size, lines: stats.lines - position.lines };
    sources.push(object.folder_hour === undefined ? entry : { ...entry, folder_hour: object.folder_hour });
    decoded += stats.bytes - startBytes;
    read += 1;
    if (!stats.complete) {
      partOf = object.key;
      position = {
        object: position.object,
        bytes: stats.bytes,
        lines: stats.lines,
        compressed: stats.compressed,
      };
      break;
    }
    if (large && position.bytes > 0) partOf = object.key;
    position = { object: position.object + 1, bytes: 0, lines: 0, compressed: false };
    if (large) break;
  }
  const consumed = await consumer.finish();
  const quarantineParts: IngestRecord['quarantine_parts'][number][] = [];
  const reasons: Record<string, number> = {};
  let quarantined = 0;
  for (const quarantine of quarantines.values()) {
    quarantineParts.push(...(await quarantine.finish()));
    quarantined += quarantine.count;
    addCounts(reasons, quarantine.reasons);
  }
  return {
    piece,
    from,
    to: position,
    sources,
    ...consumed,
    quarantined,
    quarantine_reasons: reasons,
    quarantine_parts: quarantineParts,
    set_aside: setAside,
    ...(partOf === undefined ? {} : { part_of: partOf }),
  };
}

async function noteFailure(
  stores: EngineStores,
  hour: number,
  attempts: Attempts,
  key: string,
  error: ObjectLimitError | UnreadableSourceError,
): Promise<void> {
  const before = attempts.objects[key];
  attempts.objects[key] = {
    attempts: (before?.attempts ?? 0) + 1,
    error: error.message,
    ...(error instanceof ObjectLimitError ? { limit: error.reason } : {}),
  };
  await putJson(stores.state, ingestAttemptsKey(hour), attempts);
}

/** Copies an object whole under the pipeline's quarantine, with why, and describes it for the record. */
async function setAsideObject(
  stores: EngineStores,
  config: PipelineConfig,
  object: HourObject,
  noted: Attempts['objects'][string],
): Promise<SetAsideObject> {
  const reason = noted.limit ?? 'unreadable';
  const copyKey = setAsideKey(config.project_id, config.name, object.key);
  const entry: SetAsideObject = {
    key: object.key,
    bytes: object.size,
    reason,
    error: noted.error,
    attempts: noted.attempts,
    copy_key: copyKey,
  };
  const body: Readable | undefined = await stores.raw.get(object.key);
  // An object deleted from the landing zone since is recorded all the same.
  if (body !== undefined) await stores.destination.put(copyKey, body);
  await putJson(stores.destination, setAsideReasonKey(config.project_id, config.name, object.key), entry);
  return entry;
}

/**
 * Merges the pieces into the hour's ingest record and writes it (once). Pieces that read part of an
 * object set aside later are left out, and quarantine files no remaining piece names are removed.
 */
async function commitHour(
  stores: EngineStores,
  config: PipelineConfig,
  hour: number,
  pieces: readonly IngestPiece[],
): Promise<IngestRecord> {
  const setAside = new Set(pieces.flatMap((piece) => piece.set_aside.map((object) => object.key)));
  const kept = pieces.filter((piece) => piece.part_of === undefined || !setAside.has(piece.part_of));
  const named = new Set(kept.flatMap((piece) => piece.quarantine_parts.map((part) => part.key)));
  for (const source of hourSourcesOf(config)) {
    const folder = quarantineFolder(config.project_id, config.name, source, hour);
    const strays = (await listAll(stores.destination, folder)).map((o) => o.key).filter((k) => !named.has(k));
    await stores.destination.delete(strays);
  }
  const sources = mergeSources(kept.flatMap((piece) => piece.sources).filter((s) => !setAside.has(s.key)));
  const owners: OwnerCounts = {};
  const reasons: Record<string, number> = {};
  for (const piece of kept) {
    for (const [owner, days] of Object.entries(piece.owners)) {
      owners[owner] ??= {};
      addCounts(owners[owner], days);
    }
    addCounts(reasons, piece.quarantine_reasons);
  }
  const pending = kept.flatMap((piece) => piece.pending ?? []);
  const record: IngestRecord = {
    arrival_hour: hourIso(hour),
    arrival_day: new ZoneCalendar(config.time_zone).localDate(hour),
    sources,
    source_lines: sources.reduce((sum, s) => sum + s.lines, 0),
    valid: kept.reduce((sum, piece) => sum + piece.valid, 0),
    quarantined: kept.reduce((sum, piece) => sum + piece.quarantined, 0),
    quarantine_reasons: reasons,
    quarantine_parts: kept.flatMap((piece) => piece.quarantine_parts),
    staged: kept.flatMap((piece) => piece.staged),
    owners,
    ...(config.data_source === 'events' ? {} : { pending }),
    set_aside: pieces.flatMap((piece) => piece.set_aside),
    pieces: pieces.length,
  };
  // The staging index says which hours staged into an event hour: a step reads the records it names.
  const eventHours = new Set(record.staged.map((object) => object.event_hour));
  await Promise.all(
    [...eventHours].map((stamp) => stores.state.put(stagingIndexKey(stamp, hour), EMPTY_MARKER)),
  );
  const stored = await putJsonOnce(stores.state, ingestRecordKey(hour), record);
  await stores.state.delete((await listAll(stores.state, ingestWorkPrefix(hour))).map((o) => o.key));
  return stored;
}

const EMPTY_MARKER = Buffer.from('{}\n');

/** One entry per object, lines summed over the pieces that read it. */
function mergeSources(entries: readonly IngestRecord['sources'][number][]): IngestRecord['sources'] {
  const merged = new Map<string, IngestRecord['sources'][number]>();
  for (const entry of entries) {
    const seen = merged.get(entry.key);
    merged.set(entry.key, seen === undefined ? entry : { ...seen, lines: seen.lines + entry.lines });
  }
  return [...merged.values()];
}

function addCounts(into: Record<string, number>, from: Readonly<Record<string, number>>): void {
  for (const [name, n] of Object.entries(from)) into[name] = (into[name] ?? 0) + n;
}
