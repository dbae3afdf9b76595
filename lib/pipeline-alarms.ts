import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { EXPORT_SLA_SECONDS, METRICS, METRICS_NAMESPACE } from '../src/core/workflow.js';

/** Props of the pipelines' alarms. */
export interface PipelineAlarmsProps {
  /** The workflows whose failed executions alarm. */
  readonly dispatcher: sfn.IStateMachine;
  readonly projectWorkflow: sfn.IStateMachine;
  /** The `service` dimension the functions' metrics carry (Powertools). */
  readonly service: string;
  /** Queues holding what failed for good, each with what a message in it means: any message alarms. */
  readonly deadLetterQueues: readonly {
    readonly id: string;
    readonly what: string;
    readonly queue: sqs.IQueue;
  }[];
}

/** Alarms on the SLA and on failures, across all pipelines (each metric also exists per pipeline). */
export class PipelineAlarms extends Construct {
  public readonly alarms: cloudwatch.Alarm[];

  constructor(scope: Construct, id: string, props: PipelineAlarmsProps) {
    super(scope, id);
    const metric = (name: string, statistic: string) =>
      new cloudwatch.Metric({
        namespace: METRICS_NAMESPACE,
        metricName: name,
        dimensionsMap: { service: props.service },
        statistic,
        period: Duration.hours(1),
      });
    // Missing data is no breach: quiet hours have no steps.
    const alarm = (
      id: string,
      alarmDescription: string,
      metricToWatch: cloudwatch.IMetric,
      threshold: number,
      evaluationPeriods = 1,
      comparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    ) =>
      new cloudwatch.Alarm(this, id, {
        alarmDescription,
        metric: metricToWatch,
        threshold,
        comparisonOperator,
        evaluationPeriods,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    const ABOVE = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD;
    this.alarms = [
      alarm(
        'ExportLag',
        'A window was exported more than 24 h after it ended (SLA)',
        metric(METRICS.exportLag, 'Maximum'),
        EXPORT_SLA_SECONDS,
        1,
        ABOVE,
      ),
      alarm(
        'SyncExportLag',
        'Late data was exported more than 48 h after its arrival day ended (SLA + 24 h)',
        metric(METRICS.syncExportLag, 'Maximum'),
        2 * EXPORT_SLA_SECONDS,
        1,
        ABOVE,
      ),
      alarm(
        'StepFailures',
        'Pipeline steps failed in each of the last 3 hours (each is retried every tick)',
        metric(METRICS.failures, 'Sum'),
        1,
        3,
      ),
      alarm(
        'DispatcherFailures',
        'The dispatcher failed: no project workflow starts',
        props.dispatcher.metricFailed({ period: Duration.minutes(30), statistic: 'Sum' }),
        1,
      ),
      alarm(
        'ProjectWorkflowTimeouts',
        'A project workflow timed out: more steps than its budget allows took their whole timeout (release-abandoned-lock gave its lock back)',
        props.projectWorkflow.metricTimedOut({ period: Duration.hours(1), statistic: 'Sum' }),
        1,
      ),
      ...props.deadLetterQueues.map(({ id, what, queue }) =>
        alarm(
          id,
          what,
          queue.metricApproximateNumberOfMessagesVisible({
            period: Duration.minutes(5),
            statistic: 'Maximum',
          }),
          1,
        ),
      ),
    ];
  }
}
