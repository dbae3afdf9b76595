/**
 * The faults a chaos run injects into the local operation of the synthesized workflows, each kind
 * selectable by name. They act where AWS would fail: the object-store port (what the S3 adapter
 * throws), the DynamoDB client's middleware, the Task boundary (a Lambda killed around its work, a Map
 * item delivered twice, a lease that runs out mid-step), the clock each activity reads, and the
 * landing zone's listings. Every decision is drawn from the seed and the call's identity (what it
 * touches, and how often that call was made before), so a seed strikes the same calls whatever order
 * concurrent calls happen in.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { type DynamoDBClient, InternalServerError, ThrottlingException } from '@aws-sdk/client-dynamodb';
import { S3ServiceException } from '@aws-sdk/client-s3';
import { asTransient } from '../adapters/aws-errors.js';
import { UsageError } from '../core/errors.js';
import { isStream, type ObjectBody, type ObjectInfo, type ObjectStore } from '../core/object-store.js';
import { RETRYABLE_ERRORS, TASK_STATES } from '../core/workflow.js';
import { Random } from '../local/generate.js';
import type { TaskInterceptor, TaskStateName } from '../local/local-workflows.js';
import type { JSONValue, LocalTaskHandler } from '../local/state-machines.js';
import * as activities from '../workflow/activities.js';
import type { Runtime } from '../workflow/runtime.js';

/** The kinds of fault, by the name a run selects them with. */
export const FAULT_KINDS = [
  's3-errors',
  'dynamodb-errors',
  'lambda-kills',
  'duplicate-delivery',
  'lease-expiry',
  'clock-skew',
  'late-listing',
] as const;

/** One kind of fault. */
export type FaultKind = (typeof FAULT_KINDS)[number];

/**
 * Chance per call (per landing-zone object for `late-listing`) that a fault of the kind strikes, tuned
 * so that 20 seeds of the default scenario inject well over 1,000 faults (about 3,000 into calls) and
 * still converge within the extra ticks a run may fire.
 */
export const DEFAULT_FAULT_RATES: Readonly<Record<FaultKind, number>> = {
  's3-errors': 0.003,
  'dynamodb-errors': 0.02,
  'lambda-kills': 0.02,
  'duplicate-delivery': 0.05,
  'lease-expiry': 0.03,
  'clock-skew': 0.05,
  'late-listing': 0.1,
};

/** The kinds `npm run chaos` and the test inject unless told otherwise: every one. */
export const DEFAULT_FAULT_KINDS: readonly FaultKind[] = FAULT_KINDS;

/** Parses `all`, `none` or a comma-separated list of kinds; a `UsageError` naming `flag` otherwise. */
export function parseFaultKinds(text: string, flag = '--faults'): FaultKind[] {
  const trimmed = text.trim();
  if (trimmed === 'all') return [...FAULT_KINDS];
  if (trimmed === 'none') return [];
  const kinds = trimmed.split(',').map((kind) => kind.trim());
  const unknown = kinds.filter((kind) => !(FAULT_KINDS as readonly string[]).includes(kind));
  if (unknown.length > 0 || kinds.length === 0) {
    throw new UsageError(
      `${flag}: unknown fault kind(s) ${unknown.map((k) => JSON.stringify(k)).join(', ')}; ` +
        `use all, none or a comma-separated list of ${FAULT_KINDS.join(', ')}`,
    );
  }
  return FAULT_KINDS.filter((kind) => kinds.includes(kind));
}

/** The seeded decisions of one chaos run, and the count of every fault injected, by kind and variant. */
export class FaultPlan {
  private readonly calls = new Map<string, number>();
  private readonly injected = new Map<string, number>();

  constructor(
    readonly seed: number,
    readonly kinds: ReadonlySet<FaultKind>,
    private readonly rates: Readonly<Record<FaultKind, number>> = DEFAULT_FAULT_RATES,
  ) {}

  /**
   * Whether a fault of `kind` strikes the call `identity` names: a generator seeded by this decision
   * (to pick the variant) when it does, `undefined` when it does not or the kind is off.
   */
  strikes(kind: FaultKind, identity: string): Random | undefined {
    if (!this.kinds.has(kind)) return undefined;
    const call = `${kind}\u0000${identity}`;
    const occurrence = this.calls.get(call) ?? 0;
    this.calls.set(call, occurrence + 1);
    const digest = createHash('sha256').update(`${this.seed}\u0000${call}\u0000${occurrence}`).digest();
    if (digest.readUInt32BE(0) / 2 ** 32 >= this.rates[kind]) return undefined;
    return new Random(digest.readUInt32BE(4));
  }

  /** Counts one injected fault. */
  record(kind: FaultKind, variant: string): void {
    const key = `${kind}: ${variant}`;
    this.injected.set(key, (this.injected.get(key) ?? 0) + 1);
  }

  /** Faults injected so far by kind (every kind of the plan listed, zero included). */
  byKind(): Map<FaultKind, number> {
    const counts = new Map<FaultKind, number>(
      FAULT_KINDS.filter((k) => this.kinds.has(k)).map((k) => [k, 0]),
    );
    for (const [key, count] of this.injected) {
      const kind = key.slice(0, key.indexOf(':')) as FaultKind;
      counts.set(kind, (counts.get(kind) ?? 0) + count);
    }
    return counts;
  }

  /** Faults injected so far by `kind: variant`, sorted. */
  byVariant(): [string, number][] {
    return [...this.injected].sort(([a], [b]) => (a < b ? -1 : 1));
  }

  /** Every fault injected so far. */
  total(): number {
    let total = 0;
    for (const count of this.injected.values()) total += count;
    return total;
  }
}

// ---- where faults may strike ------------------------------------------------------------------

/** One invocation of a Task's function. */
interface FunctionCall {
  /** Set when the lease is to run out at one of the function's writes (a holder that keeps writing). */
  takeOverAtWrite?: { writesBefore: number; readonly takeOver: () => Promise<void> };
}

/** The function running: faults strike inside functions, never the local harness. */
const activeFunction = new AsyncLocalStorage<FunctionCall | undefined>();

/** Runs harness work (takeovers, checks) outside any function, so no fault strikes it. */
export function outsideFunctions<T>(work: () => Promise<T>): Promise<T> {
  return activeFunction.run(undefined, work);
}

function insideFunction(): boolean {
  return activeFunction.getStore() !== undefined;
}

/** Before a write of the running function: lets its lease run out first when that fault is armed for it. */
async function beforeWrite(): Promise<void> {
  const call = activeFunction.getStore();
  const armed = call?.takeOverAtWrite;
  if (call === undefined || armed === undefined) return;
  if (armed.writesBefore > 0) {
    armed.writesBefore -= 1;
    return;
  }
  call.takeOverAtWrite = undefined;
  await outsideFunctions(armed.takeOver);
}

/** The Tasks backed by a Lambda function (the others are Step Functions service integrations). */
const FUNCTION_TASKS: ReadonlySet<TaskStateName> = new Set(
  Object.values(TASK_STATES).filter(
    (state) => state !== TASK_STATES.startProjectWorkflow && state !== TASK_STATES.runStep,
  ),
);

/** The Tasks of a step workflow: a lease can run out while one of them runs. */
const STEP_TASKS: ReadonlySet<TaskStateName> = new Set([
  TASK_STATES.prepareIngest,
  TASK_STATES.ingestHour,
  TASK_STATES.planStep,
  TASK_STATES.exportTask,
  TASK_STATES.commitStep,
]);

/** The Map item Tasks: the ones a second delivery can run twice. */
const MAP_ITEM_TASKS: ReadonlySet<TaskStateName> = new Set([TASK_STATES.ingestHour, TASK_STATES.exportTask]);

// ---- S3 ---------------------------------------------------------------------------------------

const S3_ERRORS = ['InternalError', 'SlowDown', 'TimeoutError'] as const;
const WHEN = ['before', 'after'] as const;

/** What the S3 adapter throws when S3 answers `name` (after the SDK's own retries): a `TransientError`. */
function s3Error(name: (typeof S3_ERRORS)[number], what: string): unknown {
  const cause =
    name === 'TimeoutError'
      ? Object.assign(new Error('the request socket timed out (chaos)'), { name })
      : new S3ServiceException({
          name,
          $fault: 'server',
          $metadata: { httpStatusCode: name === 'SlowDown' ? 503 : 500 },
          message:
            name === 'SlowDown'
              ? 'Please reduce your request rate. (chaos)'
              : 'We encountered an internal error. (chaos)',
        });
  return asTransient(cause, what);
}

/**
 * An object store whose calls fail as S3 calls do: a 500 (`InternalError`), a `SlowDown` or a
 * timeout, thrown before the call (nothing happened) or after it (it happened, the caller sees an
 * error, as a Lambda killed right after a write). `onStored` hears of every write that landed.
 */
export class FaultyObjectStore implements ObjectStore {
  readonly description: string;

  constructor(
    private readonly inner: ObjectStore,
    /** Which store this is, for call identities (`raw`, `destination`, `state`). */
    private readonly role: string,
    private readonly plan: FaultPlan,
    private readonly onStored: (key: string) => void = () => undefined,
  ) {
    this.description = inner.description;
  }

  async get(key: string, from?: number): Promise<Readable | undefined> {
    const fault = this.fault('GetObject', key);
    if (fault?.when === 'before') throw fault.error;
    const body = await this.inner.get(key, from);
    if (fault === undefined) return body;
    body?.destroy();
    throw fault.error;
  }

  async getBytes(key: string): Promise<Buffer | undefined> {
    const fault = this.fault('GetObject', key);
    if (fault?.when === 'before') throw fault.error;
    const bytes = await this.inner.getBytes(key);
    if (fault !== undefined) throw fault.error;
    return bytes;
  }

  async put(key: string, body: ObjectBody): Promise<number> {
    await beforeWrite();
    const fault = this.fault('PutObject', key);
    if (fault?.when === 'before') {
      // As the adapter does on a failed upload: the source ends too, so its producer stops waiting.
      if (isStream(body)) body.destroy();
      throw fault.error;
    }
    const bytes = await this.inner.put(key, body);
    this.onStored(key);
    if (fault !== undefined) throw fault.error;
    return bytes;
  }

  uri(key: string): string {
    return this.inner.uri(key);
  }

  async putIfAbsent(key: string, body: Buffer): Promise<boolean> {
    await beforeWrite();
    const fault = this.fault('PutObject', key);
    if (fault?.when === 'before') throw fault.error;
    const written = await this.inner.putIfAbsent(key, body);
    if (written) this.onStored(key);
    if (fault !== undefined) throw fault.error;
    return written;
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const fault = this.fault('ListObjectsV2', prefix);
    if (fault?.when === 'before') throw fault.error;
    yield* this.inner.list(prefix);
    if (fault !== undefined) throw fault.error;
  }

  async delete(keys: readonly string[]): Promise<void> {
    await beforeWrite();
    const fault = keys.length === 0 ? undefined : this.fault('DeleteObjects', `${keys[0]}+${keys.length}`);
    if (fault?.when === 'before') throw fault.error;
    await this.inner.delete(keys);
    if (fault !== undefined) throw fault.error;
  }

  private fault(operation: string, key: string): { when: 'before' | 'after'; error: unknown } | undefined {
    if (!insideFunction()) return undefined;
    const strike = this.plan.strikes('s3-errors', `${this.role}|${operation}|${key}`);
    if (strike === undefined) return undefined;
    const when = strike.pick(WHEN);
    const name = strike.pick(S3_ERRORS);
    this.plan.record('s3-errors', `${name} ${when} ${operation}`);
    return { when, error: s3Error(name, `S3 ${operation} of ${this.description}/${key} (chaos)`) };
  }
}

// ---- the landing zone's listings ----------------------------------------------------------------

/**
 * The landing zone as S3 shows it at the simulated now: an object is listed from `visibleAt` (its
 * Last-Modified, plus any listing delay a fault gave it). `onLate` hears of every object a listing
 * left out only because of that delay.
 */
export class LandingZoneView implements ObjectStore {
  readonly description: string;

  constructor(
    private readonly inner: ObjectStore,
    private readonly visibleAt: (object: ObjectInfo) => number,
    private readonly now: () => number,
    private readonly onLate: (object: ObjectInfo) => void,
  ) {
    this.description = inner.description;
  }

  get(key: string, from?: number): Promise<Readable | undefined> {
    return this.inner.get(key, from);
  }

  getBytes(key: string): Promise<Buffer | undefined> {
    return this.inner.getBytes(key);
  }

  put(key: string, body: ObjectBody): Promise<number> {
    return this.inner.put(key, body);
  }

  putIfAbsent(key: string, body: Buffer): Promise<boolean> {
    return this.inner.putIfAbsent(key, body);
  }

  uri(key: string): string {
    return this.inner.uri(key);
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const now = this.now();
    for await (const object of this.inner.list(prefix)) {
      if (this.visibleAt(object) <= now) yield object;
      else if (object.lastModified <= now) this.onLate(object);
    }
  }

  delete(keys: readonly string[]): Promise<void> {
    return this.inner.delete(keys);
  }
}

// ---- DynamoDB ---------------------------------------------------------------------------------

const DYNAMO_ERRORS = ['ThrottlingException', 'InternalServerError', 'TimeoutError'] as const;

/** What the DynamoDB client throws once its own retries are spent. */
function dynamoError(name: (typeof DYNAMO_ERRORS)[number], command: string): Error {
  const message = `${command} failed (chaos)`;
  if (name === 'ThrottlingException')
    return new ThrottlingException({ message, $metadata: { httpStatusCode: 400 } });
  if (name === 'InternalServerError')
    return new InternalServerError({ message, $metadata: { httpStatusCode: 500 } });
  return Object.assign(new Error(`${message}: the request socket timed out`), { name });
}

/** The part of a DynamoDB request that names what it touches (never its volatile values). */
function dynamoCallIdentity(input: unknown): string {
  const request = (input ?? {}) as {
    Key?: unknown;
    Item?: Record<string, unknown>;
    KeyConditionExpression?: unknown;
    ExpressionAttributeValues?: unknown;
  };
  if (request.Key !== undefined) return JSON.stringify(request.Key);
  if (request.Item !== undefined)
    return JSON.stringify([request.Item.pk, request.Item.sk, request.Item.project_id, request.Item.name]);
  if (request.KeyConditionExpression !== undefined) return JSON.stringify(request.ExpressionAttributeValues);
  return '';
}

/**
 * Makes the client's calls from inside functions fail as DynamoDB fails: throttling, a 500 or a
 * timeout, before the request is sent or after it was applied. The middleware sits in the
 * `initialize` step, outside the SDK's retry loop: the caller sees what it sees once the SDK gave up.
 */
export function injectDynamoFaults(client: DynamoDBClient, plan: FaultPlan): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const command = context.commandName ?? 'DynamoDB call';
      const strike = insideFunction()
        ? plan.strikes('dynamodb-errors', `${command}|${dynamoCallIdentity(args.input)}`)
        : undefined;
      if (strike === undefined) return next(args);
      const when = strike.pick(WHEN);
      const name = strike.pick(DYNAMO_ERRORS);
      plan.record('dynamodb-errors', `${name} ${when} ${command}`);
      if (when === 'before') throw dynamoError(name, command);
      await next(args);
      throw dynamoError(name, command);
    },
    { step: 'initialize', name: 'chaosDynamoFaults' },
  );
}

// ---- Tasks ------------------------------------------------------------------------------------

/** Step Functions' name for a Task that outlived its timeout. */
const TASK_TIMEOUT = 'States.Timeout';
/** Errors of a function that died before its work: the invocation failed, or never ran. */
const KILLED_BEFORE = [...RETRYABLE_ERRORS.filter((name) => name.startsWith('Lambda.')), TASK_TIMEOUT];
/** Errors of a function that did its work but never answered. */
const KILLED_AFTER = [TASK_TIMEOUT, 'Lambda.ServiceException'];

/** An error under the name Step Functions gives it, so the definitions' Retry matches as in AWS. */
class TaskError extends Error {
  constructor(
    override readonly name: string,
    message: string,
  ) {
    super(message);
  }
}

/** The fields of a Task's input that name the call (never its volatile timestamps). */
function taskIdentity(state: TaskStateName, input: JSONValue): string {
  const fields = (value: JSONValue | undefined): JSONValue[] => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return [];
    return [
      'time',
      'Name',
      'project_id',
      'pipeline',
      'step_id',
      'tick',
      'owner',
      'steps_run',
      'arrival_hour',
      'task',
    ].map((name) => value[name] ?? null);
  };
  const object = typeof input === 'object' && input !== null && !Array.isArray(input) ? input : {};
  return JSON.stringify([state, ...fields(input), ...fields(object.step)]);
}

/** The project a Task works for, when its input names one. */
export function taskProject(input: JSONValue): string | undefined {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return undefined;
  const step = input.step;
  const project =
    input.project_id ??
    (typeof step === 'object' && step !== null && !Array.isArray(step) ? step.project_id : undefined);
  return typeof project === 'string' ? project : undefined;
}

/** Options of {@link FaultInterceptor}. */
export interface FaultInterceptorOptions {
  readonly plan: FaultPlan;
  /**
   * Lets the project's lease run out and another workflow take the lock and run; resolves once that
   * workflow ended (the old holder then goes on). False when there was no lease to take over.
   */
  readonly takeOver?: (state: TaskStateName, input: JSONValue) => Promise<boolean>;
}

/**
 * The Task boundary's faults: a function killed before its work or after it (with an error name the
 * definitions retry; now and then on every attempt of the Task), a Map item delivered twice (one after
 * the other or at the same time, as a Task retried after a timeout while the first invocation still
 * runs), and the lease running out mid-step (before a step Task, or inside it at one of its first
 * three writes: the old holder then keeps writing). Marks every function's work, so the store and
 * DynamoDB faults strike there only.
 */
export class FaultInterceptor {
  private running = 0;
  private takingOver = false;
  /** Task calls (by identity) that fail on every attempt. */
  private readonly failing = new Set<string>();

  constructor(private readonly options: FaultInterceptorOptions) {}

  /** Task calls running now (the workflows of a run that threw may still be going). */
  get inFlight(): number {
    return this.running;
  }

  /** The interceptor to give the local workflows. */
  readonly intercept: TaskInterceptor = async (state, input, run) => {
    if (!FUNCTION_TASKS.has(state)) return activeFunction.run(undefined, run);
    this.running += 1;
    try {
      return await this.invoke(state, input, run);
    } finally {
      this.running -= 1;
    }
  };

  private async invoke(
    state: TaskStateName,
    input: JSONValue,
    run: () => Promise<JSONValue>,
  ): Promise<JSONValue> {
    const { plan } = this.options;
    const identity = taskIdentity(state, input);
    const call: FunctionCall = {};
    const lease = STEP_TASKS.has(state) ? plan.strikes('lease-expiry', identity) : undefined;
    if (lease !== undefined) {
      const takeOver = (when: string) => async () => {
        if (await this.takeOver(state, input)) plan.record('lease-expiry', `${when} ${state}`);
      };
      const write = lease.int(0, 3);
      if (write === 0) await outsideFunctions(takeOver('before'));
      else call.takeOverAtWrite = { writesBefore: write - 1, takeOver: takeOver(`at write ${write} of`) };
    }
    if (this.failing.has(identity))
      throw new TaskError(TASK_TIMEOUT, `the function of ${state} keeps timing out (chaos)`);
    const kill = plan.strikes('lambda-kills', identity);
    const killedWhen = kill === undefined ? undefined : kill.chance(0.1) ? 'every attempt' : kill.pick(WHEN);
    if (kill !== undefined && killedWhen === 'every attempt') {
      // A dependency that stays slow: the Task's retries run out, the workflow's Catch (or the next tick) takes over.
      this.failing.add(identity);
      plan.record('lambda-kills', `${TASK_TIMEOUT} on every attempt of ${state}`);
      throw new TaskError(TASK_TIMEOUT, `the function of ${state} keeps timing out (chaos)`);
    }
    if (kill !== undefined && killedWhen === 'before') {
      const name = kill.pick(KILLED_BEFORE);
      plan.record('lambda-kills', `${name} before ${state}`);
      throw new TaskError(name, `the function of ${state} died before its work (chaos)`);
    }
    const work = () => activeFunction.run(call, run);
    const twice = MAP_ITEM_TASKS.has(state) ? plan.strikes('duplicate-delivery', identity) : undefined;
    let output: JSONValue;
    if (twice === undefined) output = await work();
    else {
      const together = twice.chance(0.5);
      plan.record('duplicate-delivery', `${state} ${together ? 'concurrently' : 'one after the other'}`);
      output = await deliverTwice(work, together);
    }
    if (kill !== undefined && killedWhen === 'after') {
      const name = kill.pick(KILLED_AFTER);
      plan.record('lambda-kills', `${name} after ${state}`);
      throw new TaskError(name, `the function of ${state} did its work but never answered (chaos)`);
    }
    return output;
  }

  /** One takeover at a time: the rival workflow's own Tasks do not start another. */
  private async takeOver(state: TaskStateName, input: JSONValue): Promise<boolean> {
    if (this.options.takeOver === undefined || this.takingOver) return false;
    this.takingOver = true;
    try {
      return await this.options.takeOver(state, input);
    } finally {
      this.takingOver = false;
    }
  }
}

/**
 * Runs a Map item twice; the workflow sees the second delivery's outcome, as Step Functions sees the
 * retry's while the first invocation, timed out, may still be running.
 */
async function deliverTwice(call: () => Promise<JSONValue>, together: boolean): Promise<JSONValue> {
  if (!together) {
    await call().catch(() => undefined);
    return call();
  }
  const [, second] = await Promise.allSettled([call(), call()]);
  if (second.status === 'rejected') throw second.reason;
  return second.value;
}

// ---- clocks -----------------------------------------------------------------------------------

const MINUTE_MS = 60_000;
/** Clocks of two functions differ by at most this much. */
const MAX_SKEW_MINUTES = 5;

/**
 * Task handlers that give each activity call its own clock, off by one to five minutes either way
 * when the `clock-skew` fault strikes. `runtime` is the run's runtime (known once its first tick fired).
 */
export function clockSkewOverrides(
  plan: FaultPlan,
  runtime: () => Runtime,
): Partial<Record<TaskStateName, LocalTaskHandler>> {
  const skewed =
    <I, O>(state: TaskStateName, activity: (rt: Runtime, input: I) => Promise<O>): LocalTaskHandler =>
    async (input) => {
      const rt = runtime();
      const strike = plan.strikes('clock-skew', taskIdentity(state, input));
      if (strike === undefined) return (await activity(rt, input as I)) as JSONValue;
      const skew = strike.pick([-1, 1]) * strike.int(1, MAX_SKEW_MINUTES) * MINUTE_MS;
      plan.record('clock-skew', `${skew > 0 ? 'ahead' : 'behind'} in ${state}`);
      return (await activity({ ...rt, clock: () => rt.clock() + skew }, input as I)) as JSONValue;
    };
  return {
    [TASK_STATES.findDueProjects]: skewed(TASK_STATES.findDueProjects, activities.findDueProjects),
    [TASK_STATES.acquireLock]: skewed(TASK_STATES.acquireLock, activities.acquireLock),
    [TASK_STATES.pickNextStep]: skewed(TASK_STATES.pickNextStep, activities.pickNextStep),
    [TASK_STATES.recordFailure]: skewed(TASK_STATES.recordFailure, activities.recordFailure),
    [TASK_STATES.releaseLock]: skewed(TASK_STATES.releaseLock, activities.releaseLock),
    [TASK_STATES.releaseLockAfterFailure]: skewed(
      TASK_STATES.releaseLockAfterFailure,
      activities.releaseLock,
    ),
    [TASK_STATES.prepareIngest]: skewed(TASK_STATES.prepareIngest, activities.prepareIngest),
    [TASK_STATES.planStep]: skewed(TASK_STATES.planStep, activities.planStep),
    [TASK_STATES.commitStep]: skewed(TASK_STATES.commitStep, activities.commitStep),
  };
}
