import { readEventLine } from '../core/event-line.js';
import type { PipelineConfig } from '../core/pipeline-config.js';
import type { EngineStores } from '../core/ports.js';
import { addOwnerCount, type OwnerCounts } from '../core/records.js';
import { EventRouter } from '../core/routing.js';
import { floorHour, ZoneCalendar } from '../core/windows.js';
import {
  DEFAULT_INGEST_LIMITS,
  type HourConsumer,
  type IngestLimits,
  ingestNextPiece,
  type PieceOutcome,
} from './arrival-hour.js';
import { DEFAULT_STAGING_BUDGET, type StagingBudget, StagingBuffers } from './staging.js';

/**
 * Ingests the next piece of one arrival hour for an events pipeline (docs/contract.md#data-flow): validates
 * every line, routes valid events to their owner, and stages those a step will export, keyed by UTC event
 * hour (see `StagingBuffers`); bad lines are quarantined by the piece (see `ingestNextPiece`).
 */
export function ingestEventsPiece(
  stores: EngineStores,
  config: PipelineConfig,
  arrivalHour: number,
  limits: IngestLimits = DEFAULT_INGEST_LIMITS,
  budget: StagingBudget = DEFAULT_STAGING_BUDGET,
): Promise<PieceOutcome> {
  const router = new EventRouter(config, new ZoneCalendar(config.time_zone));
  return ingestNextPiece(
    stores,
    config,
    arrivalHour,
    (piece) => eventsConsumer(stores, config, router, arrivalHour, piece, budget),
    limits,
  );
}

function eventsConsumer(
  stores: EngineStores,
  config: PipelineConfig,
  router: EventRouter,
  arrivalHour: number,
  piece: number,
  budget: StagingBudget,
): HourConsumer {
  const staging = new StagingBuffers(stores.staging, arrivalHour, piece, config.sync, budget);
  const owners: OwnerCounts = {};
  let valid = 0;
  return {
    take(chunk, start, end) {
      const parsed = readEventLine(chunk, staging.keys, start, end);
      if (!parsed.ok) return parsed;
      valid += 1;
      const route = router.route(parsed, arrivalHour);
      addOwnerCount(owners, route.owner, route.window.day);
      if (route.staged) staging.add(floorHour(parsed.timeMs), parsed, route.owner, route.late);
      return undefined;
    },
    settle: () => staging.settle(),
    finish: async () => ({ valid, staged: await staging.finish(), owners }),
  };
}
