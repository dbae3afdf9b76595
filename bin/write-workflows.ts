/**
 * Build step: synthesizes the stack (no bundling, no AWS account), validates its three state machines
 * and keeps them and the state bucket's expiration rules in `dist/workflows.json`, which local runs read. The only
 * place outside the CDK app that loads the CDK: the runtime reads the file and never synthesizes.
 */
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { App, type CfnResource } from 'aws-cdk-lib';
import { DataPipelinesStack } from '../lib/data-pipelines-stack.js';
import { type SynthesizedTemplate, validateDefinition } from '../src/local/state-machines.js';
import {
  DEFINITIONS_FILE,
  expirationRules,
  type SynthesizedWorkflows,
  workflowDefinitions,
} from '../src/local/workflow-definitions.js';

const CDK_JSON = new URL('../../cdk.json', import.meta.url);

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

// Run as the build step (the test imports it to compare a fresh synthesis with the built copy).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const synthesized = synthesizeWorkflows();
  for (const [role, definition] of Object.entries(workflowDefinitions(synthesized)))
    validateDefinition(definition, role);
  await writeFile(DEFINITIONS_FILE, `${JSON.stringify(synthesized)}\n`);
}
