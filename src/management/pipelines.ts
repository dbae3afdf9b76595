/**
 * Managing pipelines (docs/contract.md#management): create, pause, unpause, delete, and the review that runs
 * after every write to the config table (the console-edit validator) and on each schedule tick (trial ends).
 * Each operation reads the project, decides with the pure rules, and writes conditioned on what it read; a
 * write that lost a race is decided again on a fresh read.
 */
import { ConfigError } from '../core/errors.js';
import { checkPipelineConfig, type PipelineConfig } from '../core/pipeline-config.js';
import {
  createdAt,
  type Management,
  type PipelineStatus,
  readStoredPipeline,
  reviewStatus,
  ruleProblems,
  type StoredPipeline,
  trialEnded,
} from '../core/pipeline-rules.js';
import type { PipelineCatalog, ProjectPipelines } from '../core/ports.js';

/** Decisions retried after lost races before giving up (each loss means another write landed). */
const MAX_ATTEMPTS = 8;

/** A management operation refused, with the reason a user can act on. */
export class ManagementError extends Error {
  override readonly name = 'ManagementError';
  constructor(
    message: string,
    /**
     * `not-found`, `conflict` (exists / wrong state) or `rule` (a rule of docs/contract.md#management-rules
     * refused it).
     */
    readonly kind: 'not-found' | 'conflict' | 'rule',
  ) {
    super(message);
  }
}

/**
 * Creates a pipeline from config fields (`trial_started_at` of the project is set by its first trial
 * pipeline). Throws `ConfigError` for invalid fields and `ManagementError` when a rule refuses it.
 */
export async function createPipeline(
  catalog: PipelineCatalog,
  fields: Readonly<Record<string, unknown>>,
  now: number,
): Promise<StoredPipeline> {
  const check = checkPipelineConfig(fields);
  if (check.config === undefined)
    throw new ConfigError(`invalid pipeline config:\n  ${check.problems.join('\n  ')}`);
  const config = check.config;
  const at = new Date(now).toISOString();
  return decide(catalog, config.project_id, async (project) => {
    const existing = project.pipelines.find((p) => p.name === config.name);
    if (existing !== undefined) {
      throw new ManagementError(
        `pipeline ${config.project_id}/${config.name} already exists (status ${existing.management.status})` +
          (existing.management.status === 'deleted'
            ? ': a deleted pipeline keeps its name and run history, choose another name'
            : ''),
        'conflict',
      );
    }
    const problems = ruleProblems({ config, created_at: now }, project.pipelines);
    if (problems.length > 0) throw new ManagementError(problems.join('\n'), 'rule');
    const trialStartedAt = config.trial ? (project.trial_started_at ?? at) : undefined;
    const item = {
      ...config,
      status: 'active',
      version: 1,
      created_at: at,
      updated_at: at,
      ...(trialStartedAt === undefined ? {} : { trial_started_at: trialStartedAt }),
    };
    const written = await catalog.write(
      {
        ...revisionOf(project),
        ...(trialStartedAt === undefined ? {} : { trial_started_at: trialStartedAt }),
      },
      { kind: 'create', item },
    );
    return written ? readStoredPipeline(item) : undefined;
  });
}

/** What a user can do to a pipeline's status. */
export type StatusAction = 'pause' | 'unpause' | 'delete';

/**
 * Pauses, unpauses or deletes a pipeline. Pause stops new steps from the next pick on (a running step
 * commits); unpause resumes where it stopped; delete stops it for good and keeps its data and runs.
 */
export async function changeStatus(
  catalog: PipelineCatalog,
  projectId: string,
  name: string,
  action: StatusAction,
  now: number,
): Promise<StoredPipeline> {
  return decide(catalog, projectId, async (project) => {
    const pipeline = project.pipelines.find((p) => p.name === name);
    if (pipeline === undefined)
      throw new ManagementError(`no pipeline ${projectId}/${name}: see \`pipelines list\``, 'not-found');
    const { status } = pipeline.management;
    if (status === 'deleted')
      throw new ManagementError(`pipeline ${projectId}/${name} is deleted; create a new one`, 'conflict');
    let target: PipelineStatus;
    if (action === 'delete') target = 'deleted';
    else if (action === 'pause') {
      if (status === 'error')
        throw new ManagementError(
          `pipeline ${projectId}/${name} is in error (${pipeline.management.status_reason}); fix its config first`,
          'conflict',
        );
      target = 'paused';
    } else {
      if (status === 'error')
        throw new ManagementError(
          `pipeline ${projectId}/${name} is in error (${pipeline.management.status_reason}); fix its config and it becomes active`,
          'conflict',
        );
      if (trialEnded(pipeline, now))
        throw new ManagementError(
          `pipeline ${projectId}/${name} is a trial and the project's trial ended: it cannot run again`,
          'rule',
        );
      const problems = ruleProblems(
        { config: pipeline.config as PipelineConfig, created_at: createdAt(pipeline, now) },
        project.pipelines,
      );
      if (problems.length > 0) throw new ManagementError(problems.join('\n'), 'rule');
      target = 'active';
    }
    if (target === status) return pipeline;
    return setStatus(catalog, project, pipeline, { status: target }, now);
  });
}

/** What a review did to one pipeline. */
export interface ReviewOutcome {
  readonly project_id: string;
  readonly name: string;
  readonly from: PipelineStatus;
  readonly to: PipelineStatus;
  readonly status_reason?: string;
}

/**
 * Reviews one stored pipeline after a write: an invalid config goes to `error` with its problems as the
 * reason, a config fixed by hand back to `active`, a trial past its end to `paused`. Returns the change
 * made, or `undefined`.
 */
export async function reviewPipeline(
  catalog: PipelineCatalog,
  projectId: string,
  name: string,
  now: number,
  /** Problems of a valid config outside its item: settings its state was not built with. */
  stateProblems: (config: PipelineConfig) => Promise<readonly string[]> = async () => [],
): Promise<ReviewOutcome | undefined> {
  return decide(catalog, projectId, async (project) => {
    const pipeline = project.pipelines.find((p) => p.name === name);
    if (pipeline === undefined) return { outcome: undefined };
    const others = project.pipelines.filter((p) => p !== pipeline);
    const outside =
      pipeline.config === undefined || pipeline.problems !== undefined
        ? []
        : await stateProblems(pipeline.config);
    const change = reviewStatus(pipeline, others, now, outside);
    // Items written by hand get the bookkeeping a create would have given them.
    const at = new Date(now).toISOString();
    const missing: Bookkeeping = {
      ...(pipeline.management.created_at === undefined ? { created_at: at } : {}),
      ...(pipeline.config?.trial === true && pipeline.management.trial_started_at === undefined
        ? { trial_started_at: project.trial_started_at ?? at }
        : {}),
    };
    if (change === undefined && Object.keys(missing).length === 0) return { outcome: undefined };
    const { status, status_reason } = pipeline.management;
    const target = change ?? { status, ...(status_reason === undefined ? {} : { status_reason }) };
    const written = await setStatus(catalog, project, pipeline, target, now, missing);
    if (written === undefined) return undefined;
    return {
      outcome: {
        project_id: projectId,
        name,
        from: pipeline.management.status,
        to: target.status,
        ...(target.status_reason === undefined ? {} : { status_reason: target.status_reason }),
      },
    };
  }).then((result) => result.outcome);
}

/** Pauses every active trial pipeline among `pipelines` whose project's trial has ended ("trial ended"). */
export async function pauseEndedTrials(
  catalog: PipelineCatalog,
  pipelines: readonly StoredPipeline[],
  now: number,
  onFailure: (pipeline: StoredPipeline, error: unknown) => void = () => undefined,
): Promise<ReviewOutcome[]> {
  const outcomes: ReviewOutcome[] = [];
  for (const pipeline of pipelines) {
    if (pipeline.management.status !== 'active' || !trialEnded(pipeline, now)) continue;
    try {
      const outcome = await reviewPipeline(catalog, pipeline.project_id, pipeline.name, now);
      if (outcome !== undefined) outcomes.push(outcome);
    } catch (error) {
      // One item that cannot be written (it is near DynamoDB's size limit) must not stop the others:
      // an ended trial is left out of the run whether or not its pause landed.
      onFailure(pipeline, error);
    }
  }
  return outcomes;
}

/**
 * Runs `attempt` on a fresh read of the project until its write lands: `attempt` returns `undefined`
 * when its conditional write lost a race, and throws to refuse.
 */
async function decide<T>(
  catalog: PipelineCatalog,
  projectId: string,
  attempt: (project: ProjectPipelines) => Promise<T | undefined>,
): Promise<T> {
  for (let tries = 0; tries < MAX_ATTEMPTS; tries += 1) {
    const result = await attempt(await catalog.readProject(projectId));
    if (result !== undefined) return result;
  }
  throw new ManagementError(
    `project ${projectId} changed ${MAX_ATTEMPTS} times while deciding; try again`,
    'conflict',
  );
}

/** Attributes a review fills in on items written by hand. */
type Bookkeeping = Partial<Pick<Management, 'created_at' | 'trial_started_at'>>;

async function setStatus(
  catalog: PipelineCatalog,
  project: ProjectPipelines,
  pipeline: StoredPipeline,
  change: { readonly status: PipelineStatus; readonly status_reason?: string },
  now: number,
  bookkeeping: Bookkeeping = {},
): Promise<StoredPipeline | undefined> {
  const set = {
    status: change.status,
    updated_at: new Date(now).toISOString(),
    ...(change.status_reason === undefined ? {} : { status_reason: change.status_reason }),
    ...bookkeeping,
  };
  const written = await catalog.write(
    {
      ...revisionOf(project),
      ...(bookkeeping.trial_started_at === undefined
        ? {}
        : { trial_started_at: bookkeeping.trial_started_at }),
    },
    {
      kind: 'update',
      name: pipeline.name,
      expectedVersion: pipeline.management.version,
      ...(pipeline.invalidVersion === undefined ? {} : { invalidVersion: pipeline.invalidVersion }),
      set,
      ...(change.status_reason === undefined ? { remove: ['status_reason'] } : {}),
    },
  );
  if (!written) return undefined;
  const { invalidVersion: _replaced, ...rest } = pipeline;
  return {
    ...rest,
    management: {
      ...pipeline.management,
      ...set,
      version: pipeline.management.version + 1,
      ...(change.status_reason === undefined ? { status_reason: undefined } : {}),
    },
  };
}

function revisionOf(project: ProjectPipelines): { project_id: string; revision: number } {
  return { project_id: project.project_id, revision: project.revision };
}
