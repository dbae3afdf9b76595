import { hourIso, quarantineKey } from '../core/layout.js';
import type { DataSource, PipelineConfig } from '../core/pipeline-config.js';
import type { EngineStores } from '../core/ports.js';
import type { IngestRecord } from '../core/records.js';
import { NdjsonObjectWriter, RollingWriters } from './object-writers.js';

/** Quarantine parts are capped like output parts, and small and rare enough to compress well. */
const QUARANTINE_PART_BYTES = 64 * 1024 * 1024;
const QUARANTINE_GZIP_LEVEL = 6;

type QuarantinePart = IngestRecord['quarantine_parts'][number];

/**
 * The quarantine of one piece of one arrival hour of one data source of one pipeline
 * (docs/contract.md#bad-input): each bad line is kept with its reason, its source location and its exact
 * bytes, in gzip parts outside the data folders, in the pipeline's own folder.
 */
export class Quarantine {
  count = 0;
  readonly reasons: Record<string, number> = {};
  private readonly parts: RollingWriters<'quarantine', NdjsonObjectWriter, QuarantinePart>;

  constructor(
    stores: EngineStores,
    config: Pick<PipelineConfig, 'project_id' | 'name'>,
    private readonly arrivalHour: number,
    source: DataSource,
    piece: number,
  ) {
    this.parts = new RollingWriters({
      maxOpen: 1,
      maxUncompressedBytes: QUARANTINE_PART_BYTES,
      open: (_, seq) =>
        new NdjsonObjectWriter(
          stores.destination,
          quarantineKey(config.project_id, config.name, source, arrivalHour, piece, seq),
          QUARANTINE_GZIP_LEVEL,
        ),
      close: async (writer) => {
        const written = await writer.close();
        return { key: written.key, records: written.records, bytes: written.bytes };
      },
    });
  }

  /** Quarantines one line; `bytes` is the full length of an over-long line kept by its head. */
  add(
    reason: string,
    detail: string,
    line: Buffer,
    source: { key: string; line: number },
    bytes?: number,
  ): void {
    this.count += 1;
    this.reasons[reason] = (this.reasons[reason] ?? 0) + 1;
    const text = line.toString('utf8');
    const entry: Record<string, unknown> = {
      reason,
      detail,
      source,
      arrival_hour: hourIso(this.arrivalHour),
      line: text,
    };
    if (bytes !== undefined) entry.line_bytes = bytes;
    // Bytes that are not valid UTF-8 do not survive as text: keep them exactly as well.
    if (!line.equals(Buffer.from(text, 'utf8'))) entry.line_base64 = line.toString('base64');
    const serialized = Buffer.from(JSON.stringify(entry));
    this.parts.segmentFor('quarantine', serialized.length + 1).add(serialized);
  }

  /** Quarantines a line over the length limit by its head. */
  addOverlong(head: Buffer, totalBytes: number, source: { key: string; line: number }): void {
    this.add('line_too_long', `line of ${totalBytes} bytes exceeds the limit`, head, source, totalBytes);
  }

  settle(): Promise<void> {
    return this.parts.settle();
  }

  finish(): Promise<QuarantinePart[]> {
    return this.parts.finish();
  }
}
