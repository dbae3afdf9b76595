import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { AwsSolutionsChecks } from 'cdk-nag';
import { DataPipelinesStack, type DataPipelinesStackProps } from '../../lib/data-pipelines-stack.js';
import type { PipelineFunctions } from '../../lib/pipeline-functions.js';

/** A customer-managed key ARN for tests (never resolved: synthesis stays offline). */
export const TEST_KMS_KEY_ARN = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';

/** The stack's two encryption set-ups, which every whole-stack check (cdk-nag, cfn-lint) covers. */
export const STACK_VARIANTS = [
  { name: 'without a KMS key', props: {} },
  { name: 'with a KMS key', props: { kmsKeyArn: TEST_KMS_KEY_ARN } },
] as const;

/**
 * The context of `cdk.json` (feature flags such as `@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy`),
 * which the CLI passes to `bin/app.ts`: tests synthesize with it so they see what `cdk synth` deploys.
 */
export const CDK_JSON_CONTEXT: Readonly<Record<string, unknown>> =
  (
    JSON.parse(readFileSync(new URL('../../../cdk.json', import.meta.url), 'utf8')) as {
      context?: Record<string, unknown>;
    }
  ).context ?? {};

/**
 * Context naming no stack whose Lambda code is bundled (the CLI sets this key to the stacks it works
 * on): tests inspect templates, and esbuilding ten functions would add many seconds to every synthesis.
 */
const SKIP_BUNDLING: Readonly<Record<string, unknown>> = { 'aws:cdk:bundling-stacks': [] };

/** The stack's Lambda functions, one per Task, by their property of `PipelineFunctions`. */
export const PIPELINE_FUNCTION_NAMES = [
  'findDueProjects',
  'acquireLock',
  'releaseLock',
  'pickNextStep',
  'prepareIngest',
  'ingestHour',
  'planStep',
  'exportTask',
  'commitStep',
  'recordFailure',
] as const satisfies readonly (keyof PipelineFunctions)[];

/** A pipeline function's property name in `PipelineFunctions`. */
export type PipelineFunctionName = (typeof PIPELINE_FUNCTION_NAMES)[number];

/** Every pipeline function of a stack with its property name. */
export function pipelineFunctions(stack: DataPipelinesStack): [PipelineFunctionName, lambda.IFunction][] {
  return PIPELINE_FUNCTION_NAMES.map((name) => [name, stack.functions[name]]);
}

/** One synthesized data pipelines stack and the app around it. */
export interface SynthesizedStack {
  readonly app: App;
  readonly stack: DataPipelinesStack;
  readonly template: Template;
  readonly assembly: CloudAssembly;
  /** Removes the cloud assembly folder. */
  cleanup(): void;
}

/** Options of {@link synthesizeStack}. */
export interface SynthesizeOptions {
  /**
   * Register cdk-nag's AwsSolutionsChecks as `bin/app.ts` does, so synthesis fails on any error finding.
   * @default false
   */
  readonly nag?: boolean;
}

/**
 * Builds a fresh app holding one `DataPipelinesStack` and synthesizes it into a temp folder (synthesis
 * takes seconds: call this once per suite, in a `before` hook).
 */
export function synthesizeStack(
  props: DataPipelinesStackProps = {},
  options: SynthesizeOptions = {},
): SynthesizedStack {
  const outdir = mkdtempSync(join(tmpdir(), 'mp-cdk-'));
  const cleanup = () => rmSync(outdir, { recursive: true, force: true });
  try {
    const app = new App({ outdir, context: { ...CDK_JSON_CONTEXT, ...SKIP_BUNDLING } });
    const stack = new DataPipelinesStack(app, 'DataPipelines', props);
    if (options.nag === true) Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
    const assembly = app.synth();
    return { app, stack, assembly, template: Template.fromStack(stack), cleanup };
  } catch (error) {
    cleanup();
    throw error;
  }
}

/**
 * A fresh app with the `cdk.json` context, for tests of single constructs. Its cloud assembly goes to a
 * temp folder that aws-cdk-lib removes when the process exits.
 */
export function testApp(): App {
  return new App({ context: { ...CDK_JSON_CONTEXT, ...SKIP_BUNDLING } });
}
