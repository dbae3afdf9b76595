import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { deadLetterQueue } from './pipeline-functions.js';

/** Props of the daily reconciliation. */
export interface DailyReconciliationProps {
  /** The function that reconciles every pipeline from its records (reconcile-pipelines). */
  readonly reconcile: lambda.IFunction;
  /**
   * UTC hour it runs at: after the daily steps of most zones committed.
   * @default 6
   */
  readonly hour?: number;
  /** Customer key for the dead-letter queue. */
  readonly encryptionKey?: kms.IKey;
}

/**
 * Once a day, every pipeline of the deployment is reconciled from its ingest and run records, as local
 * runs do after each run: a commit that lost or doubled events, or records that no longer agree,
 * publish `ReconciliationImbalances` per pipeline, which alarms.
 */
export class DailyReconciliation extends Construct {
  public readonly schedule: events.Rule;
  /** Where the schedule's events go when invoking the function still fails after EventBridge's retries. */
  public readonly deadLetters: sqs.Queue;

  constructor(scope: Construct, id: string, props: DailyReconciliationProps) {
    super(scope, id);
    const hour = props.hour ?? 6;
    if (!Number.isInteger(hour) || hour < 0 || hour > 23) {
      throw new Error(`the reconciliation hour must be a whole number from 0 to 23 (got ${hour})`);
    }
    this.deadLetters = deadLetterQueue(
      this,
      'DeadLetters',
      props.encryptionKey,
      "the reconciliation schedule target's",
    );
    this.schedule = new events.Rule(this, 'Schedule', {
      description: 'Reconciles every pipeline from its records once a day',
      schedule: events.Schedule.cron({ minute: '30', hour: String(hour) }),
      targets: [
        new targets.LambdaFunction(props.reconcile, {
          retryAttempts: 2,
          deadLetterQueue: this.deadLetters,
        }),
      ],
    });
  }
}
