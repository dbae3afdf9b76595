import type { Duration } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { TASK_STATES } from '../src/core/workflow.js';
import { FUNCTION_TIMEOUTS, type PipelineFunctions } from './pipeline-functions.js';
import { lambdaTask, workflowObservability } from './workflow-tasks.js';

/** Props of the step workflow. */
export interface StepWorkflowProps {
  readonly functions: PipelineFunctions;
  /** Most Lambda tasks of one fan-out running at once. */
  readonly fanOutWidth: number;
  /** Longest a step may run. */
  readonly timeout: Duration;
  readonly logRetention: logs.RetentionDays;
  /**
   * Customer key for the execution data and the log group.
   * @default AWS-owned encryption, and CloudWatch Logs' own for the logs
   */
  readonly encryptionKey?: kms.IKey;
}

/**
 * One step of one pipeline (input `{ step }`): ingest the arrival hours it needs (in batches, fanned
 * out), plan its export tasks, fan them out, commit. Inline Maps with the items in the state input,
 * so the same definition runs in the local interpreter; a step has at most 1000 tasks.
 */
export class StepWorkflow extends Construct {
  public readonly stateMachine: sfn.StateMachine;

  constructor(scope: Construct, id: string, props: StepWorkflowProps) {
    super(scope, id);
    const fns = props.functions;
    const step = '$.step';

    const prepare = lambdaTask(this, TASK_STATES.prepareIngest, fns.prepareIngest, {
      inputPath: step,
      timeout: FUNCTION_TIMEOUTS.control,
      resultPath: '$.ingest',
    });
    // A fan-out: each item becomes `{ step, <field>: item }` for data function invocations.
    const fanOut = (name: string, itemsPath: string, field: string, processor: sfn.IChainable) =>
      new sfn.Map(this, name, {
        itemsPath,
        maxConcurrency: props.fanOutWidth,
        itemSelector: { 'step.$': step, [`${field}.$`]: '$$.Map.Item.Value' },
        resultPath: sfn.JsonPath.DISCARD,
      }).itemProcessor(processor);
    // An arrival hour is read in pieces, one invocation each, until its ingest record is written.
    const ingestPiece = lambdaTask(this, TASK_STATES.ingestHour, fns.ingestHour, {
      timeout: FUNCTION_TIMEOUTS.data,
      resultPath: '$.piece',
    });
    const ingest = fanOut(
      'Ingest arrival hours',
      '$.ingest.hours',
      'arrival_hour',
      ingestPiece.next(
        new sfn.Choice(this, 'Hour ingested?')
          .when(sfn.Condition.booleanEquals('$.piece.done', false), ingestPiece)
          .otherwise(new sfn.Succeed(this, 'Hour committed')),
      ),
    );
    const plan = lambdaTask(this, TASK_STATES.planStep, fns.planStep, {
      inputPath: step,
      timeout: FUNCTION_TIMEOUTS.data,
      resultPath: '$.plan',
    });
    const exports = fanOut(
      'Export tasks',
      '$.plan.tasks',
      'task',
      lambdaTask(this, TASK_STATES.exportTask, fns.exportTask, { timeout: FUNCTION_TIMEOUTS.data }),
    );
    const commit = lambdaTask(this, TASK_STATES.commitStep, fns.commitStep, {
      inputPath: step,
      timeout: FUNCTION_TIMEOUTS.control,
      resultPath: '$.run',
    });

    const definition = prepare
      .next(ingest)
      .next(
        new sfn.Choice(this, 'More hours to ingest?')
          .when(sfn.Condition.booleanEquals('$.ingest.more', true), prepare)
          .otherwise(plan.next(exports).next(commit)),
      );
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      definitionBody: sfn.DefinitionBody.fromChainable(definition),
      timeout: props.timeout,
      ...workflowObservability(this, 'Logs', props.logRetention, props.encryptionKey),
    });
  }
}
