/**
 * The per-project lock (docs/contract.md#one-step-per-project): at most one running pipeline step per
 * project. A holder takes a lease that expires, so a crashed holder cannot block its project forever, and
 * renews it while it works. Times are epoch ms passed in by the caller; nothing here reads a clock.
 */
import { ConfigError } from './errors.js';

/** A project's lock as held by one owner until `expiresAt` (epoch ms). */
export interface Lease {
  readonly projectId: string;
  readonly owner: string;
  readonly acquiredAt: number;
  readonly expiresAt: number;
  /**
   * The fencing token: it grows by one each time the lock passes to another owner and never goes
   * back, so a holder that lost the lock can tell (and be told) that its writes are stale.
   */
  readonly token: number;
}

/** Takes, renews and releases per-project locks; every write is atomic against concurrent callers. */
export interface LockStore {
  /** Takes the project's lock for `owner` until now + leaseMs when it is free, expired, or already this owner's; undefined when another live holder has it. */
  acquire(projectId: string, owner: string, now: number, leaseMs: number): Promise<Lease | undefined>;
  /** Extends the owner's lease to now + leaseMs; throws LockLostError when someone else holds the lock now (it expired and was taken). */
  renew(projectId: string, owner: string, now: number, leaseMs: number): Promise<Lease>;
  /** Releases the lock if `owner` still holds it; returns false (and changes nothing) otherwise. */
  release(projectId: string, owner: string): Promise<boolean>;
  /** The current holder, live or expired, for status displays; undefined when free. */
  current(projectId: string): Promise<Lease | undefined>;
  /**
   * Throws LockLostError unless `owner` still holds the lock with `token` (expired or not: nobody took
   * it). Called right before every write that changes committed state.
   */
  check(projectId: string, owner: string, token: number): Promise<void>;
}

/**
 * The right to change a pipeline's committed state: a holder checks it right before each such write,
 * so an attempt that lost its project's lock (a zombie Lambda still running after a takeover) stops
 * instead of overwriting or deleting what the new holder made.
 */
export interface Fence {
  /** Throws LockLostError when the lock changed hands. */
  check(): Promise<void>;
}

/** For engine calls made outside a project workflow (tests, tools): nothing to check against. */
export const UNFENCED: Fence = { check: async () => undefined };

/**
 * The fence of one lock holder. Checks asked for together share one read of the lock (an ingest puts a
 * staged object and its dedup keys at once): a read covers the checks asked for before it starts, and one
 * asked for while a read runs waits for the next, so every write still follows a read of the lock made
 * after it was asked for. One read runs at a time.
 */
export function lockFence(locks: LockStore, projectId: string, owner: string, token: number): Fence {
  /** The read not started yet, which checks asked for now join. */
  let gathering: Promise<void> | undefined;
  let latest: Promise<void> = Promise.resolve();
  return {
    check() {
      if (gathering !== undefined) return gathering;
      const read = latest
        .catch(() => undefined)
        .then(() => {
          gathering = undefined;
          return locks.check(projectId, owner, token);
        });
      gathering = read;
      latest = read;
      return read;
    },
  };
}

/** The lock changed hands: this holder must stop before doing more work. Never retried blindly. */
export class LockLostError extends Error {
  override readonly name = 'LockLostError';
}

/** Whether a lease still holds at `now`: it ends after its last millisecond `expiresAt`. */
export function isLive(lease: Lease, now: number): boolean {
  return now <= lease.expiresAt;
}

/** Checks a lock request's arguments; bad ones are caller bugs, so they throw `ConfigError`. */
export function checkLockRequest(projectId: string, owner?: string, now?: number, leaseMs?: number): void {
  if (projectId === '') throw new ConfigError('lock request without a project id');
  if (owner === '') throw new ConfigError(`lock request for project ${projectId} without an owner`);
  if (now !== undefined && !Number.isSafeInteger(now)) {
    throw new ConfigError(`lock request for project ${projectId}: now must be epoch ms, got ${now}`);
  }
  if (leaseMs !== undefined && !(Number.isSafeInteger(leaseMs) && leaseMs > 0)) {
    throw new ConfigError(
      `lock request for project ${projectId}: leaseMs must be a positive integer, got ${leaseMs}`,
    );
  }
}
