#!/usr/bin/env node
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { DataPipelinesStack } from '../lib/data-pipelines-stack.js';

/** Reads an optional string context value; an empty string counts as absent. */
function stringContext(app: App, key: string): string | undefined {
  const value: unknown = app.node.tryGetContext(key);
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string')
    throw new Error(`context ${key} must be a string (got ${JSON.stringify(value)})`);
  return value;
}

/** Reads an optional whole-number context value (`-c key=35` arrives as a string). */
function integerContext(app: App, key: string): number | undefined {
  const raw: unknown = app.node.tryGetContext(key);
  if (raw === undefined || raw === null || raw === '') return undefined;
  const value = typeof raw === 'number' ? raw : typeof raw === 'string' ? Number(raw) : Number.NaN;
  if (!Number.isInteger(value))
    throw new Error(`context ${key} must be a whole number (got ${JSON.stringify(raw)})`);
  return value;
}

/**
 * Reads an optional list of strings: a JSON array (in `cdk.json`, or `-c key='["a","b"]'`) or a
 * comma-separated string (`-c key=a,b`). Blank entries are dropped; an empty list counts as absent.
 */
function stringListContext(app: App, key: string): string[] | undefined {
  const raw: unknown = app.node.tryGetContext(key);
  if (raw === undefined || raw === null || raw === '') return undefined;
  let value: unknown = raw;
  if (typeof raw === 'string') {
    if (raw.trim().startsWith('[')) {
      try {
        value = JSON.parse(raw);
      } catch {
        throw new Error(`context ${key} must be a JSON array of strings or comma-separated (got ${raw})`);
      }
    } else value = raw.split(',');
  }
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string'))
    throw new Error(`context ${key} must be a list of strings (got ${JSON.stringify(raw)})`);
  const list = value.map((item) => item.trim()).filter((item) => item !== '');
  return list.length === 0 ? undefined : list;
}

const app = new App();
const kmsKeyArn = stringContext(app, 'kmsKeyArn');
/** A KMS key ARN: the key id is a UUID, or `mrk-` and 32 hex digits for a multi-Region key. */
const KMS_KEY_ARN =
  /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$/;
if (kmsKeyArn !== undefined && !KMS_KEY_ARN.test(kmsKeyArn)) {
  throw new Error(
    `context kmsKeyArn must be a KMS key ARN, arn:aws:kms:<region>:<account>:key/<key id> (got ${kmsKeyArn})`,
  );
}

/** Context values that become stack props unchanged when given. */
const optional = {
  stagingOrphanDays: integerContext(app, 'stagingOrphanDays'),
  noncurrentVersionDays: integerContext(app, 'noncurrentVersionDays'),
  scheduleMinutes: integerContext(app, 'scheduleMinutes'),
  fanOutWidth: integerContext(app, 'fanOutWidth'),
  dataFunctionConcurrency: integerContext(app, 'dataFunctionConcurrency'),
  stepTimeoutMinutes: integerContext(app, 'stepTimeoutMinutes'),
  rawBucketName: stringContext(app, 'rawBucketName'),
  destinationBucketName: stringContext(app, 'destinationBucketName'),
  kmsKeyArn,
  destinationRoleArns: stringListContext(app, 'destinationRoleArns'),
};
new DataPipelinesStack(
  app,
  stringContext(app, 'stackName') ?? 'DataPipelines',
  Object.fromEntries(Object.entries(optional).filter(([, value]) => value !== undefined)),
);
// cdk-nag 3 is a policy-validation plugin (v2 was an Aspect): any error finding fails `cdk synth`.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
app.synth();
