/**
 * Runs the state machines `cdk synth` produces on this machine, with aws-local-stepfunctions: the
 * definition comes out of the synthesized template (not a hand-written copy), every Task state is
 * mapped to local code by state name, and errors keep the names Retry and Catch match on.
 */
import { StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';
import { ConfigError } from '../core/errors.js';

/** A JSON value, as states pass them. */
export type JSONValue = string | number | boolean | null | JSONValue[] | { [key: string]: JSONValue };

/** A Task state's local implementation: its effective input in, its result out; errors by name. */
export type LocalTaskHandler = (input: JSONValue) => Promise<JSONValue>;

/** The part of a CloudFormation template this module reads. */
export interface SynthesizedTemplate {
  readonly Resources?: Record<
    string,
    { readonly Type: string; readonly Properties?: Record<string, unknown> }
  >;
}

/** Placeholder values for the pseudo parameters a definition may reference. */
const PSEUDO_PARAMETERS: Record<string, string> = {
  'AWS::Partition': 'aws',
  'AWS::Region': 'us-east-1',
  'AWS::AccountId': '000000000000',
  'AWS::URLSuffix': 'amazonaws.com',
};

/**
 * The definitions of every state machine in a synthesized template, by logical id. `DefinitionString`
 * is an `Fn::Join` over strings and `Ref`/`Fn::GetAtt` tokens; tokens become placeholder ARNs naming
 * their resource, which is all a locally run definition needs (its Tasks are overridden).
 */
export function stateMachineDefinitions(template: SynthesizedTemplate): Map<string, StateMachineDefinition> {
  const definitions = new Map<string, StateMachineDefinition>();
  for (const [logicalId, resource] of Object.entries(template.Resources ?? {})) {
    if (resource.Type !== 'AWS::StepFunctions::StateMachine') continue;
    const text = resolveTokens(resource.Properties?.DefinitionString, logicalId);
    definitions.set(logicalId, JSON.parse(text) as StateMachineDefinition);
  }
  return definitions;
}

function resolveTokens(value: unknown, where: string): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null) {
    const token = value as Record<string, unknown>;
    if ('Fn::Join' in token) {
      const [separator, parts] = token['Fn::Join'] as [string, unknown[]];
      return parts.map((part) => resolveTokens(part, where)).join(separator);
    }
    if ('Ref' in token) {
      const name = String(token.Ref);
      return PSEUDO_PARAMETERS[name] ?? `arn:aws:local:us-east-1:000000000000:${name}`;
    }
    if ('Fn::GetAtt' in token) {
      const [resource, attribute] = token['Fn::GetAtt'] as [string, string];
      return `arn:aws:local:us-east-1:000000000000:${resource}/${attribute}`;
    }
  }
  throw new ConfigError(`state machine ${where}: cannot resolve ${JSON.stringify(value)} in its definition`);
}

interface StateNode {
  readonly Type?: string;
  readonly QueryLanguage?: string;
  readonly ItemReader?: unknown;
  readonly ItemBatcher?: unknown;
  readonly ResultWriter?: unknown;
  readonly Retry?: unknown;
  readonly ResultPath?: unknown;
  readonly States?: Record<string, StateNode>;
  readonly Iterator?: StateNode;
  readonly ItemProcessor?: StateNode;
  readonly Branches?: readonly StateNode[];
}

/** Every state of a definition, nested Map processors and Parallel branches included, by name. */
export function allStates(definition: StateMachineDefinition): [string, StateNode][] {
  const found: [string, StateNode][] = [];
  const visit = (machine: StateNode | undefined) => {
    for (const [name, state] of Object.entries(machine?.States ?? {})) {
      found.push([name, state]);
      visit(state.ItemProcessor ?? state.Iterator);
      for (const branch of state.Branches ?? []) visit(branch);
    }
  };
  visit(definition as unknown as StateNode);
  return found;
}

/**
 * What the local interpreter cannot run (measured: JSONata is silently ignored, a Distributed Map's
 * ItemReader fails, ItemBatcher and ResultWriter are ignored). Empty when the definition runs the
 * same here as in the cloud.
 */
export function locallyUnsupported(definition: StateMachineDefinition): string[] {
  const problems: string[] = [];
  if ((definition as unknown as StateNode).QueryLanguage === 'JSONata')
    problems.push('the machine uses JSONata');
  for (const [name, state] of allStates(definition)) {
    if (state.QueryLanguage === 'JSONata') problems.push(`state ${name} uses JSONata`);
    // aws-local-stepfunctions 3 stores the result under a key named "$" instead of replacing the state.
    if (state.ResultPath === '$') problems.push(`state ${name} uses ResultPath "$" (omit it instead)`);
    for (const field of ['ItemReader', 'ItemBatcher', 'ResultWriter'] as const) {
      if (state[field] !== undefined) problems.push(`state ${name} uses ${field}`);
    }
  }
  return problems;
}

/**
 * Runs a definition locally. Every Task must have a handler: one without would call real AWS, so
 * that is an error before the run starts. Retries happen without their backoff waits.
 */
export async function runStateMachine(
  definition: StateMachineDefinition,
  input: JSONValue,
  handlers: Readonly<Record<string, LocalTaskHandler>>,
  options: RunStateMachineOptions = {},
): Promise<JSONValue> {
  const unsupported = locallyUnsupported(definition);
  if (unsupported.length > 0) throw new ConfigError(`cannot run locally: ${unsupported.join('; ')}`);
  const states = allStates(definition);
  const missing = states
    .filter(([name, state]) => state.Type === 'Task' && handlers[name] === undefined)
    .map(([name]) => name);
  if (missing.length > 0) throw new ConfigError(`no local handler for Task state(s): ${missing.join(', ')}`);
  installPromiseWithResolvers();
  const retryIntervalOverrides = Object.fromEntries(
    states.filter(([, state]) => state.Retry !== undefined).map(([name]) => [name, 0]),
  );
  const machine = compiled(definition);
  options.signal?.throwIfAborted();
  const execution = machine.run(input, {
    overrides: { taskResourceLocalHandlers: { ...handlers }, retryIntervalOverrides },
    ...(options.executionName === undefined
      ? {}
      : { context: { Execution: { Name: options.executionName } } }),
  });
  const abort = () => execution.abort();
  options.signal?.addEventListener('abort', abort, { once: true });
  try {
    return await execution.result;
  } finally {
    options.signal?.removeEventListener('abort', abort);
  }
}

const machines = new WeakMap<StateMachineDefinition, StateMachine>();

/**
 * Validates a definition as the interpreter does (its JSON schema, ARNs aside) and refuses what it
 * cannot run locally; throws a `ConfigError` naming the problems. The build runs it on the synthesized
 * definitions, so local runs start without compiling the validator's schemas (a second of CPU).
 */
export function validateDefinition(definition: StateMachineDefinition, name: string): void {
  try {
    new StateMachine(definition, { validationOptions: { checkArn: false } });
  } catch (error) {
    throw new ConfigError(`state machine ${name} is invalid: ${(error as Error).message}`, { cause: error });
  }
  const unsupported = locallyUnsupported(definition);
  if (unsupported.length > 0)
    throw new ConfigError(`state machine ${name} cannot run locally: ${unsupported.join('; ')}`);
}

/** Definitions `validateDefinition` passed (the build's): their runs skip validation. */
export function trustValidated(definitions: Iterable<StateMachineDefinition>): void {
  for (const definition of definitions) {
    if (!machines.has(definition))
      machines.set(definition, new StateMachine(definition, { validationOptions: { noValidate: true } }));
  }
}

/**
 * A definition's machine, validated once: validation compiles JSON schemas, and Map states build a
 * machine per iteration with the same options, so later machines skip it.
 */
function compiled(definition: StateMachineDefinition): StateMachine {
  if (!machines.has(definition)) {
    new StateMachine(definition, { validationOptions: { checkArn: false } });
    trustValidated([definition]);
  }
  return machines.get(definition)!;
}

/** Options of one local execution. */
export interface RunStateMachineOptions {
  /** `$$.Execution.Name`. */
  readonly executionName?: string;
  /** Aborts the execution: no further state starts (a process that died). */
  readonly signal?: AbortSignal;
}

/** aws-local-stepfunctions 3 uses `Promise.withResolvers`, which Node 20 lacks. */
function installPromiseWithResolvers(): void {
  const promise = Promise as unknown as { withResolvers?: () => unknown };
  if (typeof promise.withResolvers === 'function') return;
  promise.withResolvers = () => {
    let resolve: (value: unknown) => void = () => undefined;
    let reject: (reason: unknown) => void = () => undefined;
    const created = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise: created, resolve, reject };
  };
}
