/**
 * Where management commands act: a deployed stack (its tables and buckets found through its
 * CloudFormation outputs, or named by flags) or the local home started by `local up`.
 */
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import type { Command } from 'commander';
import { awsStores, destinationClients } from '../adapters/aws-stores.js';
import { DynamoConfigStore } from '../adapters/dynamo-config-store.js';
import { DynamoLedger } from '../adapters/dynamo-ledger.js';
import { UsageError } from '../core/errors.js';
import type { PipelineConfig } from '../core/pipeline-config.js';
import type { EngineStores, ProjectLedger } from '../core/ports.js';
import { STACK_OUTPUTS } from '../core/tables.js';
import { LocalHome, type LocalServer } from '../local/local-home.js';
import { localStores } from '../local/local-stores.js';

/** The flags that choose a target. */
export interface TargetFlags {
  /** A deployed stack's name: its outputs name the tables and buckets. */
  readonly stack?: string;
  readonly region?: string;
  /** The local home (default `.mp-pipelines`, or `MP_PIPELINES_HOME`). */
  readonly home?: string;
}

/** The flags of a command acting on a target that prints tables or, with `--json`, JSON. */
export interface OutputFlags extends TargetFlags {
  readonly json: boolean;
}

/** Adds the target flags (`--stack`, `--region`, `--home`) and `--json`. */
export function targetOptions(command: Command): Command {
  return command
    .option(
      '--stack <name>',
      'act on this deployed stack (its outputs name the tables); default: the local home',
    )
    .option('--region <region>', "the stack's region (default: the AWS SDK's)")
    .option('--home <dir>', 'the local home (default: .mp-pipelines, or MP_PIPELINES_HOME)')
    .option('--json', 'print JSON instead of tables', false);
}

/** What the management commands work with. */
export interface Target {
  /** Where commands act, for messages. */
  readonly description: string;
  readonly configs: DynamoConfigStore;
  readonly ledger: ProjectLedger;
  stores(config: PipelineConfig): EngineStores;
  /** Now: the wall clock in AWS; locally, where the simulated clock stopped (wall clock before any run). */
  now(): number;
  /** Called after a command wrote: the local home saves its tables. */
  saved(): Promise<void>;
  close(): Promise<void>;
}

/** Opens the stack named by `--stack`, or else the local home. */
export async function openTarget(flags: TargetFlags): Promise<Target> {
  return flags.stack === undefined ? openLocal(flags.home) : openStack(flags.stack, flags.region);
}

/** Opens the target the flags name, runs `work`, and closes it. */
export async function withTarget<T>(flags: TargetFlags, work: (target: Target) => Promise<T>): Promise<T> {
  const target = await openTarget(flags);
  try {
    return await work(target);
  } finally {
    await target.close();
  }
}

async function openLocal(homeDir: string | undefined): Promise<Target> {
  const home = new LocalHome(homeDir);
  const server = await home.server();
  if (server === undefined)
    throw new UsageError(
      `the local home ${home.dir} is not up: start it with \`mp-pipelines local up\`` +
        `${homeDir === undefined ? '' : ` --home ${homeDir}`}, or target a deployment with --stack <name>`,
    );
  return localTarget(home, server);
}

/** The target of a running local home. */
export function localTarget(home: LocalHome, server: LocalServer): Target {
  const control = home.controlPlane(server);
  return {
    description: `local home ${home.dir}`,
    configs: new DynamoConfigStore({
      client: control.dynamo,
      configsTable: control.configsTable,
      stateTable: control.stateTable,
    }),
    ledger: new DynamoLedger(control.dynamo, control.stateTable),
    stores: (config) => localStores(home.folders(server, config)),
    now: () => (server.now === undefined ? Date.now() : Date.parse(server.now)),
    saved: () => home.save(server),
    close: () => control.stop(),
  };
}

async function openStack(stackName: string, region: string | undefined): Promise<Target> {
  const regional = region === undefined ? {} : { region };
  const cloudFormation = new CloudFormationClient(regional);
  let outputs: Map<string, string>;
  try {
    const response = await cloudFormation.send(new DescribeStacksCommand({ StackName: stackName }));
    outputs = new Map(
      (response.Stacks?.[0]?.Outputs ?? []).map((o) => [o.OutputKey ?? '', o.OutputValue ?? '']),
    );
  } catch (error) {
    throw new UsageError(
      `--stack ${stackName}: cannot read the stack's outputs (${(error as Error).message})`,
    );
  } finally {
    cloudFormation.destroy();
  }
  const output = (key: keyof typeof STACK_OUTPUTS): string => {
    const value = outputs.get(STACK_OUTPUTS[key]);
    if (value === undefined || value === '')
      throw new UsageError(
        `--stack ${stackName}: the stack has no output ${STACK_OUTPUTS[key]}; is it this project's stack?`,
      );
    return value;
  };
  const dynamo = new DynamoDBClient(regional);
  const s3 = new S3Client(regional);
  const buckets = {
    raw: output('rawBucketName'),
    destination: output('destinationBucketName'),
    state: output('stateBucketName'),
  };
  const stateTable = output('stateTableName');
  const clients = destinationClients();
  return {
    description: `stack ${stackName}`,
    configs: new DynamoConfigStore({ client: dynamo, configsTable: output('configsTableName'), stateTable }),
    ledger: new DynamoLedger(dynamo, stateTable),
    stores: (config) => awsStores(s3, buckets, config, clients),
    now: Date.now,
    saved: async () => undefined,
    close: async () => {
      dynamo.destroy();
      s3.destroy();
    },
  };
}
