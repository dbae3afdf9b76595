/**
 * The local home (`local up` / `local down`): a folder holding the landing zone, the destinations,
 * pipeline state and a DynamoDB snapshot, plus a moto server that keeps running between commands.
 * The tables are saved to `dynamodb.json` after every command that writes and at `local down`, and
 * restored by `local up`, so a stopped or crashed server loses nothing a command finished.
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  type AttributeValue,
  BatchWriteItemCommand,
  type DynamoDBClient,
  ScanCommand,
} from '@aws-sdk/client-dynamodb';
import type { PipelineConfig } from '../core/pipeline-config.js';
import type { ControlPlane } from './control-plane.js';
import { createConfigTable, createStateTable, dynamoClientFor } from './dynamo-tables.js';
import type { LocalFolders } from './local-stores.js';
import { motoAnswers, startMoto } from './moto.js';

/** Default home: `.mp-pipelines` in the working folder (`MP_PIPELINES_HOME` or `--home` override it). */
export function defaultHome(): string {
  return resolve(process.env.MP_PIPELINES_HOME ?? '.mp-pipelines');
}

const SERVER_FILE = 'local.json';
const SNAPSHOT_FILE = 'dynamodb.json';
const CONFIGS_TABLE = 'pipeline-configs';
const STATE_TABLE = 'pipeline-state';
/** DynamoDB's BatchWriteItem limit. */
const BATCH_ITEMS = 25;

/** What `local up` records about the running server and the home's folders. */
export interface LocalServer {
  readonly endpoint: string;
  readonly pid: number;
  /** The landing zone: `<raw>/<project>/events/YYYY/MM/DD/HH/`. */
  readonly raw: string;
  /** The deployment destination's place: pipelines without `s3_bucket` write here. */
  readonly out: string;
  /** The simulated clock: where the last `local schedule` stopped. */
  readonly now?: string;
  /** The config stream's position per shard (sequence numbers already reviewed). */
  readonly stream?: Readonly<Record<string, string>>;
}

/** A home folder and, once up, its server. */
export class LocalHome {
  readonly dir: string;

  constructor(dir: string = defaultHome()) {
    this.dir = resolve(dir);
  }

  /** The running server, or `undefined` when the home is down (or its server died). */
  async server(): Promise<LocalServer | undefined> {
    const server = await this.readServerFile();
    if (server === undefined || server.endpoint === '') return undefined;
    return (await motoAnswers(server.endpoint, AbortSignal.timeout(2_000))) ? server : undefined;
  }

  /**
   * Starts the server (if it is not running) and restores the tables from the last snapshot. Returns
   * the server and whether this call started it.
   */
  async up(folders: { raw?: string; out?: string } = {}): Promise<{ server: LocalServer; started: boolean }> {
    const running = await this.server();
    if (running !== undefined) return { server: running, started: false };
    await mkdir(this.dir, { recursive: true });
    const moto = await startMoto({ detachedLog: join(this.dir, 'moto.log') });
    const previous = await this.readServerFile();
    const server: LocalServer = {
      endpoint: moto.endpoint,
      pid: moto.pid,
      raw: resolve(folders.raw ?? previous?.raw ?? join(this.dir, 'raw')),
      out: resolve(folders.out ?? previous?.out ?? join(this.dir, 'out')),
      ...(previous?.now === undefined ? {} : { now: previous.now }),
    };
    const dynamo = dynamoClientFor(moto.endpoint, { maxAttempts: 3 });
    try {
      await createConfigTable(dynamo, CONFIGS_TABLE);
      await createStateTable(dynamo, STATE_TABLE);
      const snapshot = await readFile(join(this.dir, SNAPSHOT_FILE), 'utf8').catch(() => undefined);
      if (snapshot !== undefined) {
        const tables = JSON.parse(snapshot) as Record<string, Record<string, AttributeValue>[]>;
        await restore(dynamo, CONFIGS_TABLE, tables[CONFIGS_TABLE] ?? []);
        await restore(dynamo, STATE_TABLE, tables[STATE_TABLE] ?? []);
      }
    } catch (error) {
      await moto.stop();
      throw error;
    } finally {
      dynamo.destroy();
    }
    await this.writeServerFile(server);
    return { server, started: true };
  }

  /** Saves the tables and stops the server. Returns false when it was not running. */
  async down(): Promise<boolean> {
    const server = await this.server();
    if (server === undefined) return false;
    await this.save(server);
    process.kill(server.pid, 'SIGTERM');
    const file = await this.readServerFile();
    if (file !== undefined) {
      const { pid: _pid, endpoint: _endpoint, ...kept } = file;
      await this.writeServerFile({ ...kept, pid: 0, endpoint: '' });
    }
    return true;
  }

  /** Saves both tables to the snapshot file (written aside, then renamed: never half a snapshot). */
  async save(server: LocalServer): Promise<void> {
    const dynamo = dynamoClientFor(server.endpoint, { maxAttempts: 3 });
    try {
      const tables = {
        [CONFIGS_TABLE]: await scanAll(dynamo, CONFIGS_TABLE),
        [STATE_TABLE]: await scanAll(dynamo, STATE_TABLE),
      };
      const path = join(this.dir, SNAPSHOT_FILE);
      await writeFile(`${path}.tmp`, `${JSON.stringify(tables)}\n`);
      await rename(`${path}.tmp`, path);
    } finally {
      dynamo.destroy();
    }
  }

  /** Records the simulated clock and the stream position after a `local schedule`. */
  async update(changes: Pick<LocalServer, 'now' | 'stream'>): Promise<void> {
    const file = await this.readServerFile();
    if (file !== undefined) await this.writeServerFile({ ...file, ...changes });
  }

  /** The control plane of a running home (the server keeps running when it is stopped). */
  controlPlane(server: LocalServer): ControlPlane {
    const dynamo = dynamoClientFor(server.endpoint, { maxAttempts: 3 });
    return {
      endpoint: server.endpoint,
      dynamo,
      configsTable: CONFIGS_TABLE,
      stateTable: STATE_TABLE,
      stop: async () => dynamo.destroy(),
    };
  }

  /** The folders of a pipeline: a named `s3_bucket` is a folder under `buckets/`, then the prefix. */
  folders(server: LocalServer, config: PipelineConfig): LocalFolders {
    const bucket = config.s3_bucket === undefined ? server.out : join(this.dir, 'buckets', config.s3_bucket);
    return {
      raw: server.raw,
      out: config.s3_prefix === undefined ? bucket : join(bucket, config.s3_prefix),
      state: join(this.dir, 'state', config.project_id, config.name),
    };
  }

  /** Removes the home (after `down`). */
  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }

  private async readServerFile(): Promise<LocalServer | undefined> {
    const text = await readFile(join(this.dir, SERVER_FILE), 'utf8').catch(() => undefined);
    return text === undefined ? undefined : (JSON.parse(text) as LocalServer);
  }

  private async writeServerFile(server: LocalServer): Promise<void> {
    const path = join(this.dir, SERVER_FILE);
    await writeFile(`${path}.tmp`, `${JSON.stringify(server, null, 2)}\n`);
    await rename(`${path}.tmp`, path);
  }
}

async function scanAll(dynamo: DynamoDBClient, table: string): Promise<Record<string, AttributeValue>[]> {
  const items: Record<string, AttributeValue>[] = [];
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await dynamo.send(new ScanCommand({ TableName: table, ExclusiveStartKey: startKey }));
    items.push(...(page.Items ?? []));
    startKey = page.LastEvaluatedKey;
  } while (startKey !== undefined);
  return items;
}

async function restore(
  dynamo: DynamoDBClient,
  table: string,
  items: readonly Record<string, AttributeValue>[],
): Promise<void> {
  for (let start = 0; start < items.length; start += BATCH_ITEMS) {
    let requests = items.slice(start, start + BATCH_ITEMS).map((Item) => ({ PutRequest: { Item } }));
    while (requests.length > 0) {
      const result = await dynamo.send(new BatchWriteItemCommand({ RequestItems: { [table]: requests } }));
      requests = (result.UnprocessedItems?.[table] ?? []).map((r) => ({
        PutRequest: { Item: r.PutRequest?.Item ?? {} },
      }));
    }
  }
}
