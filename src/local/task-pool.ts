/**
 * The worker threads of a local run: ingest and export activities run there, two at a time per thread,
 * and a task that asks for it runs alone on its thread.
 */
import { availableParallelism } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { Piscina, queueOptionsSymbol } from 'piscina';
import type { WorkerResult, WorkerTask } from './task-worker.js';

/** Each worker thread runs two tasks at once: gzip and file I/O wait on libuv's pool meanwhile. */
const TASKS_PER_THREAD = 2;

/**
 * A young generation of 12 MB per worker instead of V8's 48: the tasks allocate short-lived line
 * buffers fast, and smaller semi-spaces are scavenged as cheaply while holding far less. A 1M-event
 * run peaked at 403 MB of RSS instead of 501 MB (JSON gzip), with no more CPU.
 */
const WORKER_YOUNG_GENERATION_MB = 12;

/**
 * The old generation a worker thread starts with. V8 sizes a new isolate's for a small heap: a worker's
 * live heap is 10-20 MB, so its limit stayed near 21 MB and V8 ran a full mark-compact every 100-150 ms
 * while the tasks streamed hundreds of megabytes through it (56-65 in a 1M-event run, their concurrent
 * marking 4-4.5 s of CPU on V8's helper threads). From 64 MB: 11-12 mark-compacts, 2.6-3.0 s on the
 * helper threads, and 20-60 MB more peak RSS; a people snapshot's fold, whose heap outgrows it anyway,
 * peaks as before. V8 reads the size when an isolate is created, so it is set before the threads start.
 */
const WORKER_INITIAL_OLD_SPACE_MB = 64;

/** How a task is placed. */
export interface PlacementOptions {
  /**
   * Runs only on a thread running nothing else, and nothing joins it until it ends: for tasks whose
   * memory, not their waits, bounds the run (a snapshot's fold).
   */
  readonly alone?: boolean;
}

/** What the balancer reads of a task: the placement it asked for (piscina passes it through untouched). */
interface Placement {
  readonly alone: boolean;
}

/** A task as queued: symbol-keyed fields are not cloned to the worker, so the placement stays here. */
type PlacedTask = WorkerTask & { readonly [queueOptionsSymbol]: Placement };

/** The worker threads that run ingest and export activities, one per core by default. */
export class LocalTaskPool {
  private readonly piscina: Piscina<PlacedTask, WorkerResult>;
  private readonly placement = new ThreadPlacement();

  constructor(readonly threads = availableParallelism()) {
    setFlagsFromString(`--initial-old-space-size=${WORKER_INITIAL_OLD_SPACE_MB}`);
    this.piscina = new Piscina({
      // Beside this module, compiled or bundled (`bin/bundle-cli.ts`).
      filename: new URL('./task-worker.js', import.meta.url).href,
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: 60_000,
      concurrentTasksPerWorker: TASKS_PER_THREAD,
      loadBalancer: (task, threads) =>
        this.placement.place((task[queueOptionsSymbol] as Placement | null)?.alone === true, threads),
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
    });
  }

  /** Runs one task on a worker thread. */
  run(task: WorkerTask, options: PlacementOptions = {}): Promise<WorkerResult> {
    return this.piscina.run({ ...task, [queueOptionsSymbol]: { alone: options.alone === true } });
  }

  /** Stops the threads. */
  destroy(): Promise<void> {
    return this.piscina.destroy();
  }
}

let prestarted: LocalTaskPool | undefined;

/**
 * Starts the pool a command is about to ask for (one thread per core), so that its threads load the
 * engine (about 0.3 s each) while the command's own modules load; the next {@link takeTaskPool}
 * without a thread count returns it. The caller ends with {@link releasePrestartedTaskPool}.
 */
export function prestartTaskPool(): void {
  prestarted ??= new LocalTaskPool();
}

/** The pool {@link prestartTaskPool} started, or a new one of `threads` (default: one per core). */
export function takeTaskPool(threads?: number): LocalTaskPool {
  const early = threads === undefined ? prestarted : undefined;
  if (early === undefined) return new LocalTaskPool(threads);
  prestarted = undefined;
  return early;
}

/** Stops the pool {@link prestartTaskPool} started when no {@link takeTaskPool} took it. */
export async function releasePrestartedTaskPool(): Promise<void> {
  const left = prestarted;
  prestarted = undefined;
  await left?.destroy();
}

/** What placement reads of a thread. */
export interface ThreadLoad {
  readonly id: number;
  /** Tasks it runs. */
  readonly currentUsage: number;
  readonly terminating: boolean;
  readonly destroyed: boolean;
}

/**
 * Where tasks go (piscina's balancer): the least busy live thread with room for the task, or none yet
 * (the task waits in piscina's queue until a task ends). A thread running a task placed alone takes
 * nothing else, a task placed alone takes only an idle thread, and any other task a thread running
 * fewer than two.
 */
export class ThreadPlacement {
  /** Threads a task placed alone was given. */
  private readonly aloneOn = new Set<number>();

  place<T extends ThreadLoad>(alone: boolean, threads: readonly T[]): T | null {
    // A thread running nothing has finished whatever was placed on it (piscina asks as a task ends).
    for (const thread of threads) if (thread.currentUsage === 0) this.aloneOn.delete(thread.id);
    let chosen: T | null = null;
    for (const thread of threads) {
      if (thread.terminating || thread.destroyed || this.aloneOn.has(thread.id)) continue;
      if (thread.currentUsage >= (alone ? 1 : TASKS_PER_THREAD)) continue;
      if (chosen === null || thread.currentUsage < chosen.currentUsage) chosen = thread;
    }
    if (chosen !== null && alone) this.aloneOn.add(chosen.id);
    return chosen;
  }
}
