/**
 * The three state machines of the stack, as `cdk synth` produces them: the build synthesizes the stack
 * (`bin/write-workflows.ts`: no bundling, no AWS account) and keeps the state machine resources in
 * `dist/workflows.json`; local runs read them from there, without loading the CDK.
 */
import { readFileSync } from 'node:fs';
import type { StateMachineDefinition } from 'aws-local-stepfunctions';
import { ConfigError } from '../core/errors.js';
import type { ExpirationRule } from './lifecycle.js';
import { type SynthesizedTemplate, stateMachineDefinitions, trustValidated } from './state-machines.js';

/** The workflows by role. */
export interface WorkflowDefinitions {
  readonly dispatcher: StateMachineDefinition;
  readonly project: StateMachineDefinition;
  readonly step: StateMachineDefinition;
}

/** What the build keeps: the state machine resources and which is which, and the state bucket's expiration rules. */
export interface SynthesizedWorkflows {
  readonly template: SynthesizedTemplate;
  readonly logicalIds: Record<keyof WorkflowDefinitions, string>;
  readonly stateExpiration: readonly ExpirationRule[];
}

/**
 * Where the build keeps the synthesized workflows (`dist/workflows.json`), for this module compiled
 * (`dist/src/local/`) and bundled (`dist/bundle/cli/`) alike.
 */
export const DEFINITIONS_FILE = new URL('../../workflows.json', import.meta.url);

/** The enabled expiration rules of a synthesized bucket's lifecycle configuration. */
export function expirationRules(bucket: Record<string, unknown> | undefined): ExpirationRule[] {
  const configuration = bucket?.LifecycleConfiguration as
    | { Rules?: { Status?: string; Prefix?: string; ExpirationInDays?: number }[] }
    | undefined;
  return (configuration?.Rules ?? []).flatMap((rule) =>
    rule.Status === 'Enabled' && rule.ExpirationInDays !== undefined
      ? [{ prefix: rule.Prefix ?? '', days: rule.ExpirationInDays }]
      : [],
  );
}

/** The state bucket's expiration rules the build synthesized (local runs apply them). */
export function loadStateExpiration(): readonly ExpirationRule[] {
  return (JSON.parse(readDefinitionsFile()) as SynthesizedWorkflows).stateExpiration;
}

/** The definitions from a synthesis, tokens resolved. */
export function workflowDefinitions(synthesized: SynthesizedWorkflows): WorkflowDefinitions {
  const definitions = stateMachineDefinitions(synthesized.template);
  const get = (role: keyof WorkflowDefinitions) => {
    const definition = definitions.get(synthesized.logicalIds[role]);
    if (definition === undefined) throw new ConfigError(`the synthesized stack has no ${role} state machine`);
    return definition;
  };
  return { dispatcher: get('dispatcher'), project: get('project'), step: get('step') };
}

/** The definitions the build synthesized and validated (`bin/write-workflows.ts`). */
export function loadWorkflowDefinitions(): WorkflowDefinitions {
  const definitions = workflowDefinitions(JSON.parse(readDefinitionsFile()) as SynthesizedWorkflows);
  trustValidated(Object.values(definitions));
  return definitions;
}

function readDefinitionsFile(): string {
  try {
    return readFileSync(DEFINITIONS_FILE, 'utf8');
  } catch (error) {
    throw new ConfigError(`no synthesized workflows at ${DEFINITIONS_FILE.pathname}: run "npm run build"`, {
      cause: error,
    });
  }
}
