import { parseIdentityLine } from '../core/identity.js';
import { pendingUpdatesKey } from '../core/layout.js';
import type { PipelineConfig, SnapshotSource } from '../core/pipeline-config.js';
import type { EngineStores } from '../core/ports.js';
import { parseProfileUpdate } from '../core/profiles.js';
import type { PendingObject } from '../core/records.js';
import {
  DEFAULT_INGEST_LIMITS,
  type HourConsumer,
  type IngestLimits,
  ingestNextPiece,
  type PieceOutcome,
} from './arrival-hour.js';
import { NdjsonObjectWriter } from './object-writers.js';

/** Validates a line of a source: the value to keep (with its time, when it has one), or why it is bad. */
function validator(
  source: SnapshotSource,
): (
  line: Buffer,
) => { ok: true; value: { timeMs?: number } } | { ok: false; reason: string; detail: string } {
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

const VALIDATORS = { people: validator('people'), identity: validator('identity') } as const;

/**
 * Ingests the next piece of one arrival hour for a snapshot pipeline: validates every line of its sources
 * and keeps the valid ones in the pipeline's state (`pending/`) in arrival order, as
 * `<time ms>\t<update JSON>`; a line without a time takes its arrival hour's start. Bad lines are
 * quarantined by the piece (see `ingestNextPiece`).
 */
export function ingestSnapshotPiece(
  stores: EngineStores,
  config: PipelineConfig,
  arrivalHour: number,
  limits: IngestLimits = DEFAULT_INGEST_LIMITS,
): Promise<PieceOutcome> {
  return ingestNextPiece(
    stores,
    config,
    arrivalHour,
    (piece) => snapshotConsumer(stores, arrivalHour, piece),
    limits,
  );
}

function snapshotConsumer(stores: EngineStores, arrivalHour: number, piece: number): HourConsumer {
  const writers = new Map<SnapshotSource, NdjsonObjectWriter>();
  const writerOf = (source: SnapshotSource): NdjsonObjectWriter => {
    let writer = writers.get(source);
    if (writer === undefined) {
      writer = new NdjsonObjectWriter(stores.state, pendingUpdatesKey(arrivalHour, source, piece), 'none');
      writers.set(source, writer);
    }
    return writer;
  };
  return {
    take(chunk, start, end, source) {
      if (source === 'events') throw new Error('a snapshot pipeline reads no events');
      const parsed = VALIDATORS[source](chunk.subarray(start, end));
      if (!parsed.ok) return parsed;
      writerOf(source).addText(`${parsed.value.timeMs ?? arrivalHour}\t${JSON.stringify(parsed.value)}`);
      return undefined;
    },
    async settle() {
      for (const writer of writers.values()) if (writer.backpressured) await writer.drain();
    },
    async finish() {
      const pending: PendingObject[] = [];
      for (const [source, writer] of writers) {
        const written = await writer.close();
        pending.push({ key: written.key, source, records: written.records, bytes: written.bytes });
      }
      return { valid: pending.reduce((sum, p) => sum + p.records, 0), staged: [], owners: {}, pending };
    },
  };
}
