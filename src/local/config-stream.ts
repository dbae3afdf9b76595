/**
 * Reads the config table's stream on the emulator and hands each batch to the validator, as Lambda's
 * event source mapping does in AWS: hand edits made between local commands are reviewed before the
 * schedule runs them.
 */
import { DescribeTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
} from '@aws-sdk/client-dynamodb-streams';
import type { ConfigChangeEvent } from '../core/workflow.js';

/** Reads new stream records since the positions given (sequence numbers per shard). */
export class ConfigStreamReader {
  private readonly streams: DynamoDBStreamsClient;
  private readonly positions: Map<string, string>;

  constructor(
    private readonly dynamo: DynamoDBClient,
    private readonly table: string,
    endpoint: string,
    positions: Readonly<Record<string, string>> = {},
  ) {
    this.streams = new DynamoDBStreamsClient({
      region: 'us-east-1',
      endpoint,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    this.positions = new Map(Object.entries(positions));
  }

  /** Every record after the positions, as one event (empty `Records` when nothing changed). */
  async poll(): Promise<ConfigChangeEvent> {
    const table = await this.dynamo.send(new DescribeTableCommand({ TableName: this.table }));
    const streamArn = table.Table?.LatestStreamArn;
    if (streamArn === undefined) throw new Error(`table ${this.table} has no stream`);
    const stream = await this.streams.send(new DescribeStreamCommand({ StreamArn: streamArn }));
    const records: ConfigChangeEvent['Records'][number][] = [];
    for (const shard of stream.StreamDescription?.Shards ?? []) {
      const shardId = shard.ShardId as string;
      const after = this.positions.get(shardId);
      let iterator = (
        await this.streams.send(
          new GetShardIteratorCommand({
            StreamArn: streamArn,
            ShardId: shardId,
            ...(after === undefined
              ? { ShardIteratorType: 'TRIM_HORIZON' }
              : { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: after }),
          }),
        )
      ).ShardIterator;
      while (iterator !== undefined) {
        const page = await this.streams.send(new GetRecordsCommand({ ShardIterator: iterator }));
        const batch = page.Records ?? [];
        for (const record of batch) {
          records.push({
            ...(record.eventName === undefined ? {} : { eventName: record.eventName }),
            dynamodb: { Keys: (record.dynamodb?.Keys ?? {}) as Record<string, { S?: string }> },
          });
          const sequence = record.dynamodb?.SequenceNumber;
          if (sequence !== undefined) this.positions.set(shardId, sequence);
        }
        // An open shard always returns a next iterator: stop once it has nothing more.
        if (batch.length === 0) break;
        iterator = page.NextShardIterator;
      }
    }
    return { Records: records };
  }

  /** The positions reached, to resume from in a later command. */
  position(): Record<string, string> {
    return Object.fromEntries(this.positions);
  }

  close(): void {
    this.streams.destroy();
  }
}
