import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { connect, createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** The message when moto is missing: tests must fail loudly, never skip. */
export const MOTO_MISSING_MESSAGE =
  'moto_server not found: local runs and the integration tests need the moto S3/DynamoDB emulator. Install it with: pip install "moto[server]"';

const READY_TIMEOUT_MS = 20_000;
/** How often to try the port while moto boots: a refused connection costs next to nothing. */
const READY_POLL_MS = 20;
/** Keep only the tail of moto's stderr: it logs every request there. */
const STDERR_KEEP_CHARS = 16 * 1024;

/** A running moto server. */
export interface Moto {
  /** `http://127.0.0.1:PORT`, for the SDK clients' `endpoint`. */
  readonly endpoint: string;
  /** The server's process id. */
  readonly pid: number;
  /** Kills the server and waits for it to exit. */
  stop(): Promise<void>;
}

/** Options of {@link startMoto}. */
export interface StartMotoOptions {
  /**
   * Keep the server running after this process exits (`local up`), with its output in this file.
   * Otherwise it dies with this process.
   */
  readonly detachedLog?: string;
}

/**
 * moto's server, adjusted for the local runtime:
 *
 * - DynamoDB requests are serialized. moto applies a TransactWriteItems item by item and rolls a failed
 *   one back by restoring whole tables, so two transactions at once can lose or resurrect each other's
 *   writes; DynamoDB's are serializable. One DynamoDB request at a time restores that (S3 requests stay
 *   concurrent).
 * - Item responses (GetItem, PutItem, Query...) are written as JSON directly. moto walks the service
 *   model member by member for every response, about a quarter of a lock read's time; these outputs
 *   are already the wire form (attribute values as `{"S": ...}`), so only the members the operation's
 *   output shape declares are kept, without nulls, with binary values in base64, as the model walk
 *   writes them. Anything else, and any value JSON cannot hold, goes the model's way.
 * - Two lookups moto repeats on every request are made once: the list of its service modules (a
 *   directory listing with a stat per module) and the methods of a response class.
 * - The first DynamoDB request builds the backend (about 0.2 s): a ListTables before serving does it
 *   while the caller is still starting.
 * - A GetItem by key alone (TableName, Key, ConsistentRead: every lock and config read) is answered
 *   from the backend's table directly, as moto's handler would answer it, without the handler's
 *   request parsing (about 1.2 ms of its 1.4). Anything else in the request, a table or key moto would
 *   refuse, or any error goes moto's way, so errors are moto's own.
 * - Requests are not logged one line each (werkzeug's access log); errors still are.
 *
 * A local run of a million events makes about 470 lock and config reads: moto spent 1.1-1.2 s of CPU
 * on them, 0.6-0.7 s with the direct GetItem and no access log.
 */
const SERIALIZED_MOTO = `
import base64, functools, io, json, logging, os, sys, threading, uuid, zlib
import werkzeug.test
import moto.backends as backends
import moto.core.responses as responses
import moto.dynamodb.responses as dynamodb_responses
import moto.server as server
modules = tuple(backends.list_of_moto_modules())
backends.list_of_moto_modules = lambda: modules
responses.method_names_from_class = functools.lru_cache(maxsize=None)(responses.method_names_from_class)

ITEM_ACTIONS = frozenset(("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem",
    "BatchWriteItem", "TransactGetItems", "TransactWriteItems"))
def wire(value):
    if isinstance(value, dict):
        return {k: wire(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [wire(v) for v in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if value is True or value is False or value is None or isinstance(value, (str, int, float)):
        return value
    raise TypeError(type(value).__name__)
by_model = dynamodb_responses.DynamoResult.execute_result
def execute_result(self, context):
    output = context.operation_model.output_shape
    if context.operation_model.name not in ITEM_ACTIONS or output is None or not isinstance(self.result, dict):
        return by_model(self, context)
    try:
        body = json.dumps({k: wire(v) for k, v in self.result.items() if k in output.members and v is not None})
    except (TypeError, ValueError):
        return by_model(self, context)
    return 200, {"Content-Type": "application/x-amz-json-1.0"}, body
dynamodb_responses.DynamoResult.execute_result = execute_result

from moto.dynamodb.models import dynamodb_backends
from moto.iam.models import get_account_id_from
logging.getLogger("werkzeug").setLevel(logging.WARNING)

GET_ITEM = "DynamoDB_20120810.GetItem"
BY_KEY_ALONE = frozenset(("TableName", "Key", "ConsistentRead"))
def item_by_key(environ, body):
    # The answer to a GetItem by key alone, or None when moto's handler must answer it.
    if "MOTO_ACCOUNT_ID" in os.environ or "HTTP_X_MOTO_ACCOUNT_ID" in environ or "HTTP_CONTENT_ENCODING" in environ:
        return None
    try:
        request = json.loads(body)
        if not BY_KEY_ALONE.issuperset(request):
            return None
        scope = environ["HTTP_AUTHORIZATION"].split("Credential=", 1)[1].split(",", 1)[0].split("/")
        backend = dynamodb_backends[get_account_id_from(scope[0])][scope[2]]
        table = backend.tables.get(request["TableName"])
        key = request["Key"]
        if table is None or not isinstance(key, dict):
            return None
        # Each key attribute of the table's schema, of its declared type, not empty; nothing else.
        types = {d["AttributeName"]: d["AttributeType"] for d in table.attr}
        schema = {table.hash_key_attr} if table.range_key_attr is None else {table.hash_key_attr, table.range_key_attr}
        if set(key) != schema or not all(
            isinstance(v, dict) and list(v) == [types.get(k)] and v[types[k]] for k, v in key.items()
        ):
            return None
        item = backend.get_item(table.name, key, [])
        return json.dumps(wire(dynamodb_responses.dynamo_to_dict({"Item": item.attrs})) if item else {})
    except Exception:
        return None

lock = threading.Lock()
class Serialized(server.DomainDispatcherApplication):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        werkzeug.test.Client(self).post("/", data="{}", headers={
            "X-Amz-Target": "DynamoDB_20120810.ListTables",
            "Content-Type": "application/x-amz-json-1.0",
            "Authorization": "AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/dynamodb/aws4_request, "
                "SignedHeaders=host, Signature=0"})
    def __call__(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith("DynamoDB"):
            return super().__call__(environ, start_response)
        with lock:
            if target == GET_ITEM and environ.get("CONTENT_LENGTH"):
                body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
                environ["wsgi.input"] = io.BytesIO(body)
                answer = item_by_key(environ, body)
                if answer is not None:
                    data = answer.encode()
                    start_response("200 OK", [("Content-Type", "application/x-amz-json-1.0"),
                        ("Content-Length", str(len(data))), ("x-amzn-RequestId", uuid.uuid4().hex),
                        ("x-amz-crc32", str(zlib.crc32(data)))])
                    return [data]
            return list(super().__call__(environ, start_response))
server.DomainDispatcherApplication = Serialized
server.main(sys.argv[1:])
`;

let prestarted: Promise<Moto> | undefined;

/**
 * Starts the server a command is about to ask for, so that it boots (about 0.4 s) while the command's
 * own modules load; the next {@link startMoto} without options returns it. The caller ends with
 * {@link releasePrestartedMoto}, which stops it when nothing took it (a usage error, `--help`).
 */
export function prestartMoto(): void {
  prestarted ??= launchMoto({});
  // Whoever takes it sees a failure to start; until then it must not count as unhandled.
  prestarted.catch(() => undefined);
}

/** Stops the server {@link prestartMoto} started when no {@link startMoto} took it. */
export async function releasePrestartedMoto(): Promise<void> {
  const left = prestarted;
  prestarted = undefined;
  await left?.then(
    (moto) => moto.stop(),
    () => undefined,
  );
}

/**
 * Starts moto's server (DynamoDB requests serialized, see above) on a free localhost port and waits
 * until it accepts connections, or hands out the one {@link prestartMoto} started (not for a detached server).
 * `MOTO_SERVER` replaces the command (split on spaces, e.g. `moto_server`).
 */
export function startMoto(options: StartMotoOptions = {}): Promise<Moto> {
  const early = options.detachedLog === undefined ? prestarted : undefined;
  if (early === undefined) return launchMoto(options);
  prestarted = undefined;
  return early;
}

async function launchMoto(options: StartMotoOptions): Promise<Moto> {
  const [command = 'python3', ...args] =
    process.env.MOTO_SERVER === undefined
      ? ['python3', '-c', SERIALIZED_MOTO]
      : process.env.MOTO_SERVER.trim().split(/\s+/);
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const log = options.detachedLog === undefined ? undefined : openSync(options.detachedLog, 'a');
  const child = spawn(command, [...args, '-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', log ?? 'ignore', log ?? 'pipe'],
    detached: log !== undefined,
  });
  if (log !== undefined) closeSync(log);
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (text: string) => {
    stderr = (stderr + text).slice(-STDERR_KEEP_CHARS);
  });
  const exited = exitOf(child);
  // Unless detached: if this process dies without calling stop(), do not leave the server behind.
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  if (log === undefined) process.once('exit', killOnExit);
  // SIGKILL: the server's state lives only in its memory, and on SIGTERM moto unwinds its modules first
  // (about 0.15 s at the end of every local run).
  const stop = async (): Promise<void> => {
    process.removeListener('exit', killOnExit);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  };

  const failure = exited.then(({ error, code }) => {
    if (error !== undefined && (error as NodeJS.ErrnoException).code === 'ENOENT') {
      return new Error(MOTO_MISSING_MESSAGE, { cause: new Error(`cannot run ${command}: ${error.message}`) });
    }
    if (code === 127 || /No module named '?moto/.test(stderr)) {
      return new Error(MOTO_MISSING_MESSAGE, { cause: new Error(`${command} said: ${stderr.trim()}`) });
    }
    return new Error(
      `moto_server (${command}) exited early (${error?.message ?? `code ${code}`}): ${stderr.trim() || `see ${options.detachedLog}`}`,
    );
  });
  const polling = new AbortController();
  const ready = await Promise.race([waitForPort(port, READY_TIMEOUT_MS, polling.signal), failure]);
  polling.abort();
  if (ready === true) {
    if (log !== undefined) child.unref();
    return { endpoint, pid: child.pid as number, stop };
  }
  await stop();
  throw ready instanceof Error
    ? ready
    : new Error(
        `moto_server did not answer on ${endpoint} within ${READY_TIMEOUT_MS} ms; stderr: ${stderr.trim()}`,
      );
}

/** A port that was free a moment ago: bind port 0, read the port the OS chose, release it. */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (address === null || typeof address === 'string') throw new Error('could not read a free port');
  return address.port;
}

/** Resolves once the child exits or fails to start (spawn errors arrive as 'error'). */
function exitOf(child: ChildProcess): Promise<{ error?: Error; code: number | null }> {
  return new Promise((resolve) => {
    child.once('error', (error) => resolve({ error, code: null }));
    // 'close' rather than 'exit': by then stderr has been read to the end.
    child.once('close', (code) => resolve({ code }));
  });
}

/**
 * Polls until the server accepts connections on `port`; `false` on timeout or when `signal` aborts. A
 * bare TCP connect, not an HTTP request: moto listens only once its application is built (the backend
 * warmed, see above), and the poll then costs the booting machine no HTTP client.
 */
async function waitForPort(port: number, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !signal.aborted) {
    if (await accepts(port)) return true;
    await sleep(READY_POLL_MS, undefined, { signal }).catch(() => undefined);
  }
  return false;
}

/** Whether a connection to `port` on localhost is accepted within a second (and closed again at once). */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const answer = (accepted: boolean) => {
      socket.destroy();
      resolve(accepted);
    };
    socket.setTimeout(1_000, () => answer(false));
    socket.once('connect', () => answer(true));
    socket.once('error', () => answer(false));
  });
}

/**
 * True when a moto server answers at `endpoint` before `signal` aborts. With `node:http`, which the SDK
 * clients load anyway: `fetch` would load its own HTTP client first (about 40 ms of a command's start).
 */
export function motoAnswers(endpoint: string, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const request = httpGet(`${endpoint}/moto-api/`, { signal }, (response) => {
      response.once('end', () => resolve(true));
      // Cut off before its end (an abort, a reset): it did not answer in time.
      response.once('close', () => resolve(false));
      response.resume();
    });
    request.once('error', () => resolve(false));
  });
}
