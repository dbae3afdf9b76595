import { type EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { TransientError } from '../core/errors.js';
import type { EventSink } from '../core/ports.js';
import type { StepRunEntry } from '../core/records.js';
import { EVENT_SOURCE } from '../core/workflow.js';
import { asTransient } from './aws-errors.js';

/** Step outcome events on an EventBridge bus; a rejected entry is an error (retried by the workflow). */
export class EventBridgeSink implements EventSink {
  constructor(
    private readonly client: EventBridgeClient,
    private readonly busName: string,
  ) {}

  async publish(detailType: string, detail: StepRunEntry): Promise<void> {
    let failed: number | undefined;
    let reason: string | undefined;
    try {
      const response = await this.client.send(
        new PutEventsCommand({
          Entries: [
            {
              EventBusName: this.busName,
              Source: EVENT_SOURCE,
              DetailType: detailType,
              Detail: JSON.stringify(detail),
            },
          ],
        }),
      );
      failed = response.FailedEntryCount;
      reason = response.Entries?.[0]?.ErrorMessage;
    } catch (error) {
      throw asTransient(error, `EventBridge PutEvents to ${this.busName}`);
    }
    if (failed !== undefined && failed > 0) {
      throw new TransientError(
        `EventBridge PutEvents to ${this.busName} rejected "${detailType}" of step ${detail.step_id}: ${reason ?? 'no reason given'}`,
      );
    }
  }
}
