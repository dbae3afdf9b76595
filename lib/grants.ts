import { Stack } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { DATA_SOURCES } from '../src/core/pipeline-config.js';

/**
 * Where each kind of object lives, as IAM key patterns (`*` also matches `/`). They follow the layout
 * the functions write (`src/adapters/aws-stores.ts`, `src/core/layout.ts`); the CDK tests check real
 * keys made by that code against the statements built from these.
 */
export const OBJECT_KEYS = {
  /** A pipeline's state in the state bucket: `state/<project>/<pipeline>/...`. */
  state: ['state/*'],
  /** A pipeline's staged events in the state bucket: `staging/<project>/<pipeline>/...`. */
  staging: ['staging/*'],
  /** The landing zone: `<project>/<events|people|identity>/YYYY/MM/DD/HH/...`. */
  raw: DATA_SOURCES.map((source) => `*/${source}/*`),
  /** Quarantined lines in a destination: `<prefix?><project>/_quarantine/...`. */
  quarantine: ['*/_quarantine/*'],
  /** Exports in a destination: events by day, people and identity snapshots. */
  exports: ['*/mp_master_event/*', '*/mp_people_data/*', '*/mp_identity_mappings_data/*'],
} as const;

/**
 * What a function does with objects: read them, write them (a streamed upload may also abort its own
 * multipart upload), delete them (the current version only: never a version, which versioning keeps).
 */
export type ObjectAccess = 'read' | 'write' | 'delete';

const OBJECT_ACTIONS: Readonly<Record<ObjectAccess, readonly string[]>> = {
  read: ['s3:GetObject'],
  write: ['s3:PutObject', 's3:AbortMultipartUpload'],
  delete: ['s3:DeleteObject'],
};

/** What reading and writing SSE-KMS objects asks of their key (a multipart upload decrypts its parts). */
const OBJECT_KEY_ACTIONS: Readonly<Record<ObjectAccess, readonly string[]>> = {
  read: ['kms:Decrypt'],
  write: ['kms:GenerateDataKey', 'kms:Decrypt'],
  delete: [],
};

/**
 * Grants exactly `access` to the objects of `bucket` under `keys`, and the use of the bucket's key
 * (through S3 only) that needs. Listing is separate: {@link grantList}.
 */
export function grantObjects(
  grantee: iam.IGrantable,
  bucket: s3.IBucket,
  access: readonly ObjectAccess[],
  keys: readonly string[],
): void {
  grantee.grantPrincipal.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: access.flatMap((a) => OBJECT_ACTIONS[a]),
      resources: keys.map((key) => bucket.arnForObjects(key)),
    }),
  );
  const keyActions = [...new Set(access.flatMap((a) => OBJECT_KEY_ACTIONS[a]))];
  if (bucket.encryptionKey !== undefined && keyActions.length > 0)
    grantKeyVia(grantee, bucket.encryptionKey, 's3', keyActions);
}

/**
 * Lets a function list a bucket. The whole bucket, not a prefix: S3 answers a GetObject of a missing
 * key with 404 only to a caller allowed `s3:ListBucket` on the bucket (403 otherwise), and the engine
 * reads missing keys on purpose (an hour not yet ingested, a step not yet planned).
 */
export function grantList(grantee: iam.IGrantable, bucket: s3.IBucket): void {
  grantee.grantPrincipal.addToPrincipalPolicy(
    new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [bucket.bucketArn] }),
  );
}

/** What DynamoDB asks of a table's customer key for reads, and for writes on top. */
const TABLE_KEY_ACTIONS = {
  read: ['kms:Decrypt', 'kms:DescribeKey'],
  write: [
    'kms:Decrypt',
    'kms:DescribeKey',
    'kms:Encrypt',
    'kms:ReEncryptFrom',
    'kms:ReEncryptTo',
    'kms:GenerateDataKey',
    'kms:GenerateDataKeyWithoutPlaintext',
  ],
} as const;

/**
 * Grants item actions on a table (not the read or write sets of CDK's grants) and, when a customer key
 * encrypts it, the use of that key (through DynamoDB only) these actions need.
 */
export function grantItemActions(
  table: dynamodb.ITable,
  grantee: iam.IGrantable,
  access: keyof typeof TABLE_KEY_ACTIONS,
  ...actions: string[]
): void {
  table.grant(grantee, ...actions);
  if (table.encryptionKey !== undefined)
    grantKeyVia(grantee, table.encryptionKey, 'dynamodb', TABLE_KEY_ACTIONS[access]);
}

/** The use of a key on behalf of the grantee by one service of this region only (`kms:ViaService`). */
function grantKeyVia(
  grantee: iam.IGrantable,
  key: kms.IKey,
  service: 's3' | 'dynamodb' | 'sqs',
  actions: readonly string[],
): void {
  grantee.grantPrincipal.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: [...actions],
      resources: [key.keyArn],
      conditions: { StringEquals: { 'kms:ViaService': `${service}.${Stack.of(key).region}.amazonaws.com` } },
    }),
  );
}

/**
 * Lets a function send to a queue (an event source mapping's on-failure destination acts as the
 * function's role), with the use of the queue's key SQS needs for that.
 */
export function grantSendTo(
  grantee: iam.IGrantable,
  queue: { queueArn: string; encryptionMasterKey?: kms.IKey },
): void {
  grantee.grantPrincipal.addToPrincipalPolicy(
    new iam.PolicyStatement({ actions: ['sqs:SendMessage'], resources: [queue.queueArn] }),
  );
  if (queue.encryptionMasterKey !== undefined)
    grantKeyVia(grantee, queue.encryptionMasterKey, 'sqs', ['kms:GenerateDataKey', 'kms:Decrypt']);
}
