/**
 * Releases the project lock a project workflow left behind when it ended without reaching its own
 * release: timed out, aborted, or failed where no Catch could run. An EventBridge rule on the workflow's
 * "Step Functions Execution Status Change" events invokes it; the lock is released only if that
 * execution still holds it (its owner is the execution name), so a later run's lock is never touched.
 */
import { z } from 'zod';
import { parseProjectExecutionName, parseStateInput } from '../core/workflow.js';
import type { Runtime } from './runtime.js';

/** The execution statuses after which the workflow may have left its lock. */
export const ABANDONING_STATUSES = ['TIMED_OUT', 'ABORTED', 'FAILED'] as const;

/** The part of a "Step Functions Execution Status Change" event this reads. */
export const executionStatusChangeSchema = z
  .object({
    detail: z
      .object({
        /** The execution name: the lock owner. */
        name: z.string().min(1),
        status: z.string(),
        executionArn: z.string().optional(),
      })
      .readonly(),
  })
  .readonly();
/** The part of a "Step Functions Execution Status Change" event this reads. */
export type ExecutionStatusChange = z.infer<typeof executionStatusChangeSchema>;

/** What the release did, for the log and the caller. */
export type AbandonedLockOutcome =
  | { readonly project_id: string; readonly owner: string; readonly released: boolean }
  | { readonly owner: string; readonly released: false; readonly ignored: string };

/** Releases the lock of the execution's project if the execution still holds it. */
export async function releaseAbandonedLock(
  rt: Pick<Runtime, 'locks' | 'log'>,
  input: unknown,
): Promise<AbandonedLockOutcome> {
  const event = parseStateInput('release-abandoned-lock', executionStatusChangeSchema, input);
  const { name: owner, status } = event.detail;
  if (!(ABANDONING_STATUSES as readonly string[]).includes(status)) {
    return { owner, released: false, ignored: `status ${status} ends with the workflow's own release` };
  }
  const projectId = parseProjectExecutionName(owner)?.projectId;
  if (projectId === undefined) {
    rt.log.warn('execution name names no project: no lock to release', { owner, status });
    return { owner, released: false, ignored: 'not a project workflow execution name' };
  }
  const released = await rt.locks.release(projectId, owner);
  rt.log.info(released ? 'abandoned project lock released' : 'project lock not held by the execution', {
    project_id: projectId,
    owner,
    status,
  });
  return { project_id: projectId, owner, released };
}
