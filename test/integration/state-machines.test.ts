import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import type { StateMachineDefinition } from 'aws-local-stepfunctions';
import { TransientError } from '../../src/core/errors.js';
import {
  type JSONValue,
  locallyUnsupported,
  runStateMachine,
  type SynthesizedTemplate,
  stateMachineDefinitions,
  validateDefinition,
} from '../../src/local/state-machines.js';

/**
 * A small machine of the shape the step workflow uses: plan, fan out over the plan's tasks with a
 * Map whose Task retries `TransientError`, then commit; anything else is caught into a failure path.
 */
function synthesizeFanOut(): SynthesizedTemplate {
  const stack = new Stack(new App(), 'FanOut');
  const fn = (id: string) =>
    new lambda.Function(stack, id, {
      runtime: lambda.Runtime.NODEJS_22_X,
      handler: 'index.handler',
      code: lambda.Code.fromInline('exports.handler = async (e) => e;'),
    });
  const invoke = (id: string, props: Partial<tasks.LambdaInvokeProps> = {}) =>
    new tasks.LambdaInvoke(stack, id, {
      lambdaFunction: fn(`${id}Function`),
      payloadResponseOnly: true,
      ...props,
    });
  const exportTask = invoke('ExportTask', { resultPath: sfn.JsonPath.DISCARD });
  exportTask.addRetry({ errors: ['TransientError'], maxAttempts: 2, interval: Duration.seconds(1) });
  const fanOut = new sfn.Map(stack, 'ExportTasks', {
    itemsPath: '$.plan.tasks',
    itemSelector: { 'step_id.$': '$.plan.step_id', 'task.$': '$$.Map.Item.Value' },
    resultPath: sfn.JsonPath.DISCARD,
    maxConcurrency: 4,
  }).itemProcessor(exportTask);
  const failed = new sfn.Pass(stack, 'RecordFailure', { parameters: { 'failed.$': '$.error.Error' } });
  const definition = invoke('Plan', { resultPath: '$.plan' })
    .next(fanOut.addCatch(failed, { resultPath: '$.error' }))
    .next(invoke('Commit'));
  new sfn.StateMachine(stack, 'StepWorkflow', {
    definitionBody: sfn.DefinitionBody.fromChainable(definition),
  });
  return Template.fromStack(stack).toJSON() as SynthesizedTemplate;
}

describe('running synthesized state machines locally', () => {
  const template = synthesizeFanOut();
  const definition = [...stateMachineDefinitions(template).values()][0]!;

  test('the synthesized definition runs: plan, fan-out with a retried transient error, commit', async () => {
    // Arrange: task 1 fails once with a transient error, as a throttled S3 call would.
    const exported: number[] = [];
    let failuresLeft = 1;
    const handlers = {
      Plan: async () => ({ step_id: 'daily-2024-01-01', tasks: [0, 1, 2] }),
      ExportTask: async (input: JSONValue) => {
        const { task } = input as { task: number };
        if (task === 1 && failuresLeft-- > 0) throw new TransientError('SlowDown');
        exported.push(task);
        return { task };
      },
      Commit: async (input: JSONValue) => ({
        committed: (input as { plan: { step_id: string } }).plan.step_id,
      }),
    };

    // Act
    const result = await runStateMachine(definition, { pipeline: 'p' }, handlers);

    // Assert
    assert.deepEqual(result, { committed: 'daily-2024-01-01' });
    assert.deepEqual(exported.sort(), [0, 1, 2]);
    assert.equal(failuresLeft, -1, 'the transient failure was retried');
  });

  test('a failure that is not retried is caught into the failure path', async () => {
    const result = await runStateMachine(
      definition,
      {},
      {
        Plan: async () => ({ step_id: 's', tasks: [0] }),
        ExportTask: async () => {
          throw new RangeError('no such task');
        },
        Commit: async (input) => input,
      },
    );
    assert.deepEqual(result, { failed: 'RangeError' });
  });

  test('a Task without a local handler is refused before anything runs', async () => {
    await assert.rejects(
      runStateMachine(definition, {}, { Plan: async () => ({}) }),
      /no local handler for Task state\(s\): ExportTask, Commit/,
    );
  });

  test('the build refuses an invalid definition, and one the local interpreter cannot run, naming the problem', () => {
    validateDefinition(definition, 'step');
    const dangling = { StartAt: 'Missing', States: { T: { Type: 'Pass', End: true } } };
    assert.throws(
      () => validateDefinition(dangling as unknown as StateMachineDefinition, 'broken'),
      (error: Error) => error.name === 'ConfigError' && /state machine broken is invalid/.test(error.message),
    );
    const jsonata = { ...(definition as object), QueryLanguage: 'JSONata' };
    assert.throws(
      () => validateDefinition(jsonata as unknown as StateMachineDefinition, 'jsonata'),
      /state machine jsonata cannot run locally: the machine uses JSONata/,
    );
  });

  test('definitions using what the local interpreter cannot run are named', () => {
    assert.deepEqual(locallyUnsupported(definition), []);
    const distributed = {
      StartAt: 'M',
      QueryLanguage: 'JSONata',
      States: {
        M: {
          Type: 'Map',
          ItemReader: { Resource: 'arn:aws:states:::s3:getObject' },
          ItemBatcher: { MaxItemsPerBatch: 10 },
          ItemProcessor: {
            StartAt: 'T',
            States: { T: { Type: 'Task', QueryLanguage: 'JSONata', Resource: 'x', End: true } },
          },
          End: true,
        },
      },
    } as unknown as StateMachineDefinition;
    assert.deepEqual(locallyUnsupported(distributed), [
      'the machine uses JSONata',
      'state M uses ItemReader',
      'state M uses ItemBatcher',
      'state T uses JSONata',
    ]);
  });
});
