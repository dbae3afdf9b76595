/**
 * The three state machines of the stack, as `cdk synth` produces them: the build synthesizes the stack
 * (no bundling, no AWS account) and keeps the state machine resources in `dist/workflows.json`; local
 * runs read them from there.
 */
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { App, type CfnResource } from 'aws-cdk-lib';
import type { StateMachineDefinition } from 'aws-local-stepfunctions';
import { DataPipelinesStack } from '../../lib/data-pipelines-stack.js';
import { ConfigError } from '../core/errors.js';
import type { ExpirationRule } from './lifecycle.js';
import { type SynthesizedTemplate, stateMachineDefinitions } from './state-machines.js';

/** The workflows by role. */
export interface WorkflowDefinitions {
  readonly dispatcher: StateMachineDefinition;
  readonly project: StateMachineDefinition;
  readonly step: StateMachineDefinition;
}

/** What the build keeps: the state machine resources and which is which, and the state bucket's expiration rules. */
interface SynthesizedWorkflows {
  readonly template: SynthesizedTemplate;
  readonly logicalIds: Record<keyof WorkflowDefinitions, string>;
  readonly stateExpiration: readonly ExpirationRule[];
}

const DEFINITIONS_FILE = new URL('../../workflows.json', import.meta.url);
const CDK_JSON = new URL('../../../cdk.json', import.meta.url);

/** Synthesizes the stack with the `cdk.json` context and returns its state machines. */
export function synthesizeWorkflows(): SynthesizedWorkflows {
  const context = (JSON.parse(readFileSync(CDK_JSON, 'utf8')) as { context?: Record<string, unknown> })
    .context;
  // No asset bundling: only the definitions are needed.
  const app = new App({ context: { ...context, 'aws:cdk:bundling-stacks': [] } });
  const stack = new DataPipelinesStack(app, 'DataPipelines');
  const template = app.synth().getStackByName(stack.stackName).template as SynthesizedTemplate;
  const logicalId = (construct: { node: { defaultChild?: unknown } }) =>
    stack.getLogicalId(construct.node.defaultChild as CfnResource);
  const resources = Object.fromEntries(
    Object.entries(template.Resources ?? {}).filter(([, r]) => r.Type === 'AWS::StepFunctions::StateMachine'),
  );
  const stateBucket = template.Resources?.[logicalId(stack.state.bucket)];
  return {
    template: { Resources: resources },
    stateExpiration: expirationRules(stateBucket?.Properties),
    logicalIds: {
      dispatcher: logicalId(stack.dispatcher.stateMachine),
      project: logicalId(stack.projectWorkflow.stateMachine),
      step: logicalId(stack.stepWorkflow.stateMachine),
    },
  };
}

/** The enabled expiration rules of a synthesized bucket's lifecycle configuration. */
function expirationRules(bucket: Record<string, unknown> | undefined): ExpirationRule[] {
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

/** Writes the synthesized workflows for local runs (a build step). */
export async function writeWorkflows(): Promise<void> {
  await writeFile(DEFINITIONS_FILE, `${JSON.stringify(synthesizeWorkflows())}\n`);
}

/** The definitions the build synthesized. */
export function loadWorkflowDefinitions(): WorkflowDefinitions {
  return workflowDefinitions(JSON.parse(readDefinitionsFile()) as SynthesizedWorkflows);
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
