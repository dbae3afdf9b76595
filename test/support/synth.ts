import assert from 'node:assert/strict';
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { App, CfnResource, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { DataPipelinesStack, type DataPipelinesStackProps } from '../../lib/data-pipelines-stack.js';
import type { PipelineFunctions } from '../../lib/pipeline-functions.js';

/** A customer-managed key ARN for tests (never resolved: synthesis stays offline). */
export const TEST_KMS_KEY_ARN = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';

/** The stack's encryption and bucket set-ups, which every whole-stack check (cdk-nag, cfn-lint) covers. */
export const STACK_VARIANTS = [
  { name: 'without a KMS key', props: {} },
  { name: 'with a KMS key', props: { kmsKeyArn: TEST_KMS_KEY_ARN } },
  {
    name: 'with buckets given by name and a KMS key',
    props: { rawBucketName: 'my-landing', destinationBucketName: 'my-exports', kmsKeyArn: TEST_KMS_KEY_ARN },
  },
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

/**
 * The stack's Lambda functions by their property of `PipelineFunctions`: one per Task of the workflows,
 * and the config reviewer on the config table stream.
 */
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
  'releaseAbandonedLock',
  'reviewConfig',
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

/** Logical id of the CloudFormation resource behind a construct. */
export function logicalIdOf(synth: SynthesizedStack, construct: IConstruct): string {
  const resource = construct.node.defaultChild;
  assert.ok(CfnResource.isCfnResource(resource), `${construct.node.path} has no CloudFormation resource`);
  return synth.stack.getLogicalId(resource);
}

/** One value or a list of them, as CloudFormation and IAM allow. */
export type OneOrMany<T> = T | readonly T[];

export const asList = <T>(value: OneOrMany<T> | undefined): readonly T[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value as T];

/** The parts of an IAM policy statement the checks below read. */
export interface Statement {
  readonly Effect: string;
  readonly Action?: OneOrMany<string>;
  readonly NotAction?: unknown;
  readonly Resource?: unknown;
  readonly NotResource?: unknown;
}

export interface PolicyDocument {
  readonly Statement: OneOrMany<Statement>;
}

/** The role behind a pipeline function: its logical id and its resource. */
export function functionRole(synth: SynthesizedStack, name: PipelineFunctionName) {
  const fnId = logicalIdOf(synth, synth.stack.functions[name]);
  const fn = synth.template.findResources('AWS::Lambda::Function')[fnId];
  assert.ok(fn, `function ${name} (${fnId}) missing`);
  const roleId = (fn.Properties as { Role?: { 'Fn::GetAtt'?: [string, string] } }).Role?.['Fn::GetAtt']?.[0];
  assert.ok(roleId, `function ${name} has no role of this stack`);
  const role = synth.template.findResources('AWS::IAM::Role')[roleId];
  assert.ok(role, `role ${roleId} of ${name} missing`);
  return {
    roleId,
    properties: role.Properties as {
      ManagedPolicyArns?: unknown[];
      Policies?: { PolicyDocument: PolicyDocument }[];
    },
  };
}

/**
 * Every statement of the policies a function's role has: its inline policies and every
 * AWS::IAM::Policy whose Roles reference it. Deny-free and Action/Resource-only, so that reading only
 * `Action` and `Resource` cannot miss a grant.
 */
export function roleStatements(synth: SynthesizedStack, name: PipelineFunctionName): Statement[] {
  const { roleId, properties } = functionRole(synth, name);
  const attached = Object.values(synth.template.findResources('AWS::IAM::Policy'))
    .map((policy) => policy.Properties as { PolicyDocument: PolicyDocument; Roles?: unknown[] })
    .filter((policy) => (policy.Roles ?? []).some((role) => isDeepStrictEqual(role, { Ref: roleId })));
  assert.ok(attached.length > 0, `no policy is attached to the role of ${name}`);
  const documents = [...attached, ...(properties.Policies ?? [])].map((policy) => policy.PolicyDocument);
  const statements = documents.flatMap((document) => [...asList(document.Statement)]);
  for (const statement of statements) {
    assert.equal(statement.Effect, 'Allow', `${name}: unexpected ${JSON.stringify(statement)}`);
    assert.equal(statement.NotAction, undefined, `${name}: NotAction would grant what no check reads`);
    assert.equal(statement.NotResource, undefined, `${name}: NotResource would grant what no check reads`);
  }
  return statements;
}

/** Whether an IAM action pattern (`*` and `?` wildcards, case-insensitive) covers an action. */
export function covers(pattern: string, action: string): boolean {
  const source = [...pattern]
    .map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`, 'i').test(action);
}

/** Whether a statement allows `action` (its patterns included: `s3:*` allows `s3:PutObject`). */
export const allows = (statement: Statement, action: string): boolean =>
  asList(statement.Action).some((pattern) => covers(pattern, action));

/**
 * Renders a CloudFormation value of a policy as text: `Fn::GetAtt [Id, Arn]` as `arn::<Id>` (what the
 * checks call a resource by), pseudo parameters by name.
 */
export function renderArn(value: unknown): string {
  if (typeof value === 'string') return value;
  const node = value as Record<string, unknown>;
  if ('Fn::Join' in node) {
    const [separator, parts] = node['Fn::Join'] as [string, unknown[]];
    return parts.map(renderArn).join(separator);
  }
  if ('Fn::GetAtt' in node) {
    const [id, attribute] = node['Fn::GetAtt'] as [string, string];
    return attribute === 'Arn' ? `arn::${id}` : `${id}.${attribute}`;
  }
  if ('Ref' in node) return String(node.Ref);
  throw new Error(`cannot render ${JSON.stringify(value)}`);
}

/** Whether one of the statements allows `action` on `resource` (IAM wildcards; no conditions read). */
export function allowedBy(statements: readonly Statement[], action: string, resource: string): boolean {
  return statements.some(
    (s) =>
      allows(s, action) &&
      asList(s.Resource as unknown).some((pattern) => covers(renderArn(pattern), resource)),
  );
}

/** Whether a statement allows any action of a service (`s3`, `dynamodb`, `events`). */
export const allowsService = (statement: Statement, service: string): boolean =>
  asList(statement.Action).some((pattern) => {
    const [prefix, rest] = pattern.split(':');
    return rest === undefined ? pattern === '*' : covers(prefix ?? '', service);
  });

/** Whether a statement's resources mention `needle` (a logical id in quotes, or an ARN fragment). */
export const mentions = (statement: Statement, needle: string): boolean =>
  JSON.stringify(statement.Resource ?? null).includes(needle);

/** Whether a statement applies to every resource. */
export const onEveryResource = (statement: Statement): boolean => asList(statement.Resource).includes('*');

/** A resource policy that refuses every request of `service` made without SSL. */
export function denyWithoutSsl(service: 's3' | 'sqs'): Record<string, unknown> {
  return {
    PolicyDocument: {
      Statement: Match.arrayWith([
        Match.objectLike({
          Effect: 'Deny',
          Action: `${service}:*`,
          Principal: { AWS: '*' },
          Condition: { Bool: { 'aws:SecureTransport': 'false' } },
        }),
      ]),
    },
  };
}

/**
 * Runs `bin/app.ts` as `cdk synth` would, with cdk.json's context plus `context`, into a fresh folder
 * (the caller removes it).
 */
export function runApp(context: Record<string, unknown>): { run: SpawnSyncReturns<string>; outdir: string } {
  const appJs = fileURLToPath(new URL('../../bin/app.js', import.meta.url));
  const outdir = mkdtempSync(join(tmpdir(), 'mp-cdk-app-'));
  const run = spawnSync(process.execPath, [appJs], {
    env: {
      ...process.env,
      CDK_OUTDIR: outdir,
      CDK_CONTEXT_JSON: JSON.stringify({ ...CDK_JSON_CONTEXT, ...context }),
    },
    encoding: 'utf8',
  });
  return { run, outdir };
}
