import { S3Client } from '@aws-sdk/client-s3';
import { fromTemporaryCredentials } from '@aws-sdk/credential-providers';
import type { PipelineConfig } from '../core/pipeline-config.js';
import type { EngineStores } from '../core/ports.js';
import { S3ObjectStore, type S3ObjectStoreOptions } from './s3-object-store.js';

/** The buckets of a deployment. */
export interface DeploymentBuckets {
  readonly raw: string;
  /** Pipelines without `s3_bucket` export here. */
  readonly destination: string;
  readonly state: string;
}

/**
 * The S3 stores of one pipeline in a deployment: its destination (its own `s3_bucket`, prefix, region,
 * role and encryption, or the deployment's destination bucket), and its state and staging folders in
 * the state bucket, whose writes ask for no encryption (the bucket's default, the stack key with one). `s3` is the deployment's client; `destinationClients` makes the others.
 */
export function awsStores(
  s3: S3Client,
  buckets: DeploymentBuckets,
  config: PipelineConfig,
  destinationClients: DestinationClients,
): EngineStores {
  const pipeline = `${config.project_id}/${config.name}`;
  const destinationClient =
    config.s3_region === undefined && config.s3_role === undefined ? s3 : destinationClients(config);
  return {
    raw: new S3ObjectStore({ client: s3, bucket: buckets.raw }),
    destination: new S3ObjectStore({
      client: destinationClient,
      bucket: config.s3_bucket ?? buckets.destination,
      ...(config.s3_prefix === undefined ? {} : { prefix: config.s3_prefix }),
      ...destinationEncryption(config),
    }),
    state: new S3ObjectStore({ client: s3, bucket: buckets.state, prefix: `state/${pipeline}/` }),
    staging: new S3ObjectStore({ client: s3, bucket: buckets.state, prefix: `staging/${pipeline}/` }),
  };
}

/**
 * What a pipeline's destination writes ask for: nothing unless `s3_encryption` is `aes` or `kms`, so
 * the bucket's default encryption (SSE-S3, or SSE-KMS with its key) applies.
 */
function destinationEncryption(config: PipelineConfig): Pick<S3ObjectStoreOptions, 'encryption'> {
  if (config.s3_encryption === 'aes') return { encryption: { kind: 'aes' } };
  if (config.s3_encryption === 'kms')
    return { encryption: { kind: 'kms', kmsKeyId: config.s3_kms_key_id ?? '' } };
  return {};
}

/** The S3 client that writes a pipeline's destination. */
export type DestinationClients = (config: PipelineConfig) => S3Client;

/**
 * One S3 client per destination region and role, made on first use. A role is assumed with the
 * pipeline's external id (STS, refreshed before the credentials expire). `prepare` is applied to each
 * new client (Lambda traces them); by default they are used as made.
 */
export function destinationClients(
  prepare: (client: S3Client) => S3Client = (client) => client,
): DestinationClients {
  const clients = new Map<string, S3Client>();
  return (config) => {
    const key = JSON.stringify([config.s3_region, config.s3_role, config.s3_external_id]);
    let client = clients.get(key);
    if (client === undefined) {
      client = prepare(
        new S3Client({
          ...(config.s3_region === undefined ? {} : { region: config.s3_region }),
          ...(config.s3_role === undefined
            ? {}
            : {
                credentials: fromTemporaryCredentials({
                  params: {
                    RoleArn: config.s3_role,
                    ExternalId: config.s3_external_id,
                    RoleSessionName: `mp-pipelines-${config.project_id}`.slice(0, 64),
                  },
                }),
              }),
        }),
      );
      clients.set(key, client);
    }
    return client;
  };
}
