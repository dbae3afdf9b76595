/**
 * The three synthesized workflows on this machine: the dispatcher, the project workflows it starts and
 * the step workflows those run, executed by aws-local-stepfunctions with every Task mapped to the
 * activity its Lambda function runs. Like Step Functions, it refuses a second execution under a name
 * already used, so a double trigger of a tick starts one project workflow.
 */

import { EXECUTION_EXISTS_ERROR, TASK_STATES } from '../core/workflow.js';
import * as activities from '../workflow/activities.js';
import type { Runtime } from '../workflow/runtime.js';
import { type JSONValue, type LocalTaskHandler, runStateMachine } from './state-machines.js';
import type { WorkflowDefinitions } from './workflow-definitions.js';

/** A Task state's name. */
export type TaskStateName = (typeof TASK_STATES)[keyof typeof TASK_STATES];

/** Wraps every Task call: tests observe them (detectors) or stop them (crashes). */
export type TaskInterceptor = (
  state: TaskStateName,
  input: JSONValue,
  run: () => Promise<JSONValue>,
) => Promise<JSONValue>;

/** Options of {@link LocalWorkflows}. */
export interface LocalWorkflowsOptions {
  readonly definitions: WorkflowDefinitions;
  readonly runtime: Runtime;
  /** Replaces the local implementation of Task states (e.g. to run data tasks on worker threads). */
  readonly overrides?: Partial<Record<TaskStateName, LocalTaskHandler>>;
  readonly intercept?: TaskInterceptor;
}

/** How a project workflow execution ended. */
export interface ExecutionOutcome {
  readonly name: string;
  readonly status: 'succeeded' | 'failed' | 'aborted';
  readonly output?: JSONValue;
  /** Failed executions: the error name and cause. */
  readonly error?: string;
}

/** An error with the name Step Functions gives it, so Retry and Catch match as in the cloud. */
export class NamedError extends Error {
  constructor(
    override readonly name: string,
    message: string,
  ) {
    super(message);
  }
}

export class LocalWorkflows {
  private readonly executions = new Map<
    string,
    { readonly done: Promise<ExecutionOutcome>; readonly abort: AbortController }
  >();
  /** Every Task's local implementation but `Run step`, which is bound to its execution. */
  private readonly activities: Record<Exclude<TaskStateName, typeof TASK_STATES.runStep>, LocalTaskHandler>;

  constructor(private readonly options: LocalWorkflowsOptions) {
    const rt = options.runtime;
    const activity =
      <O>(run: (rt: Runtime, input: unknown) => Promise<O>): LocalTaskHandler =>
      async (input) =>
        (await run(rt, input)) as JSONValue;
    this.activities = {
      [TASK_STATES.findDueProjects]: activity(activities.findDueProjects),
      [TASK_STATES.startProjectWorkflow]: async (input) => this.startProject(input),
      [TASK_STATES.acquireLock]: activity(activities.acquireLock),
      [TASK_STATES.pickNextStep]: activity(activities.pickNextStep),
      [TASK_STATES.recordFailure]: activity(activities.recordFailure),
      [TASK_STATES.releaseLock]: activity(activities.releaseLock),
      [TASK_STATES.releaseLockAfterFailure]: activity(activities.releaseLock),
      [TASK_STATES.prepareIngest]: activity(activities.prepareIngest),
      [TASK_STATES.ingestHour]: activity(activities.ingestHour),
      [TASK_STATES.planStep]: activity(activities.planStep),
      [TASK_STATES.exportTask]: activity(activities.exportTask),
      [TASK_STATES.commitStep]: activity(activities.commitStep),
    };
  }

  /** The Task handlers of one execution (and of the steps it runs), overrides and interceptor applied. */
  private handlersFor(signal?: AbortSignal): Record<string, LocalTaskHandler> {
    const local: Record<string, LocalTaskHandler> = {
      ...this.activities,
      [TASK_STATES.runStep]: (input) => this.runStep(input, signal),
      ...this.options.overrides,
    };
    const intercept = this.options.intercept ?? ((_state, _input, run) => run());
    return Object.fromEntries(
      Object.entries(local).map(([state, handler]) => [
        state,
        (input: JSONValue) => intercept(state as TaskStateName, input, () => handler(input)),
      ]),
    );
  }

  /** Fires the schedule at `time`: runs the dispatcher, which starts project workflows and returns. */
  async tick(time: number): Promise<JSONValue> {
    return runStateMachine(
      this.options.definitions.dispatcher,
      { time: new Date(time).toISOString() },
      this.handlersFor(),
    );
  }

  /** Waits until every project workflow started so far, and any they led to start meanwhile, has ended. */
  async settle(): Promise<ExecutionOutcome[]> {
    const outcomes: ExecutionOutcome[] = [];
    for (let seen = 0; seen < this.executions.size; ) {
      const pending = [...this.executions.values()].slice(seen);
      seen += pending.length;
      for (const { done } of pending) outcomes.push(await done);
    }
    return outcomes;
  }

  /** How the project workflow `name` ends (it must have been started). */
  outcome(name: string): Promise<ExecutionOutcome> {
    const execution = this.executions.get(name);
    if (execution === undefined) throw new Error(`no project workflow ${name} was started`);
    return execution.done;
  }

  /** Stops a project workflow where it is, lock held, as when its process dies. */
  kill(name: string): void {
    this.executions.get(name)?.abort.abort();
  }

  /** Names of the project workflows started so far. */
  get started(): string[] {
    return [...this.executions.keys()];
  }

  /** The `states:startExecution` integration: one execution per name, ever. */
  private startProject(input: JSONValue): JSONValue {
    const { Name: name, Input: projectInput } = input as { Name: string; Input: JSONValue };
    if (this.executions.has(name)) {
      throw new NamedError(EXECUTION_EXISTS_ERROR, `Execution Already Exists: '${name}'`);
    }
    const abort = new AbortController();
    const done = runStateMachine(
      this.options.definitions.project,
      projectInput,
      this.handlersFor(abort.signal),
      {
        executionName: name,
        signal: abort.signal,
      },
    ).then(
      (output): ExecutionOutcome => ({ name, status: 'succeeded', output }),
      (error: unknown): ExecutionOutcome =>
        abort.signal.aborted
          ? { name, status: 'aborted' }
          : { name, status: 'failed', error: describeFailure(error) },
    );
    this.executions.set(name, { done, abort });
    return {
      ExecutionArn: `arn:aws:states:local:000000000000:execution:project:${name}`,
      StartDate: Date.now(),
    };
  }

  /**
   * The `states:startExecution.sync:2` integration: runs the step workflow to its end; a failure
   * surfaces as `States.TaskFailed` whose cause carries the step's error, as DescribeExecution does.
   */
  private async runStep(input: JSONValue, signal: AbortSignal | undefined): Promise<JSONValue> {
    const { Input: stepInput } = input as { Input: JSONValue };
    try {
      const output = await runStateMachine(
        this.options.definitions.step,
        stepInput,
        this.handlersFor(signal),
        {
          ...(signal === undefined ? {} : { signal }),
        },
      );
      return { Status: 'SUCCEEDED', Output: output };
    } catch (error) {
      const cause = (error as { cause?: { name?: string; message?: string } }).cause;
      throw new NamedError(
        'States.TaskFailed',
        JSON.stringify({
          Status: 'FAILED',
          Error: cause?.name ?? 'Error',
          Cause: cause?.message ?? String(error),
        }),
      );
    }
  }
}

function describeFailure(error: unknown): string {
  const cause = (error as { cause?: { name?: string; message?: string } }).cause;
  return cause === undefined ? String(error) : `${cause.name}: ${cause.message}`;
}
