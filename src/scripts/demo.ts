/**
 * `npm start`: a complete demonstration with no AWS account. Generates a landing zone for two projects
 * in different time zones (one across the New York fall-back DST change, one at UTC+05:45), then
 * operates their pipelines through the synthesized workflows (dispatcher, project and step state
 * machines) with a simulated clock firing the schedule, and prints the reconciliation.
 */
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { formatReconciliation, table } from '../cli/format.js';
import { snapshotFolder } from '../core/layout.js';
import { type PipelineConfig, parsePipelineConfig } from '../core/pipeline-config.js';
import type { Reconciliation } from '../core/reconcile.js';
import { addDays, ZoneCalendar } from '../core/windows.js';
import { generateLandingZone } from '../local/generate.js';
import { generateProfileLandingZone } from '../local/generate-profiles.js';
import { defaultStateFolder } from '../local/local-stores.js';
import { runLocalPipelines } from '../local/run.js';
import { localRunSource, openLocalWarehouse } from '../local/warehouse-source.js';

const HOUR = 3_600_000;
const FIRST_DAY = '2024-11-01';
const EVENT_DAYS = 5;
/** Late events keep arriving up to 5 days after their time; operate long enough to sync them all. */
const OPERATED_DAYS = EVENT_DAYS + 7;

const root = resolve('out');
const raw = join(root, 'landing-zone');
const bucket = join(root, 'bucket');

const pipelines: PipelineConfig[] = [
  parsePipelineConfig({
    project_id: 'acme',
    name: 'events-daily',
    frequency: 'daily',
    sync: true,
    time_zone: 'America/New_York',
    from_date: FIRST_DAY,
  }),
  parsePipelineConfig({
    project_id: 'acme',
    name: 'people-daily',
    data_source: 'people',
    frequency: 'daily',
    time_zone: 'America/New_York',
    from_date: FIRST_DAY,
  }),
  parsePipelineConfig({
    project_id: 'acme',
    name: 'identity-daily',
    data_source: 'identity',
    frequency: 'daily',
    time_zone: 'America/New_York',
    from_date: FIRST_DAY,
  }),
  parsePipelineConfig({
    project_id: 'himalaya',
    name: 'events-hourly',
    frequency: 'hourly',
    sync: true,
    time_zone: 'Asia/Kathmandu',
    from_date: FIRST_DAY,
  }),
];

async function main(): Promise<number> {
  await rm(root, { recursive: true, force: true });
  process.stdout.write(
    `Generating ${EVENT_DAYS} days of events for 2 projects, and of profile updates for one, in ${raw}\n`,
  );
  for (const [index, config] of pipelines.filter((p) => p.data_source === 'events').entries()) {
    const calendar = new ZoneCalendar(config.time_zone);
    const stats = await generateLandingZone({
      rawDir: raw,
      projectId: config.project_id,
      seed: 2024 + index,
      start: calendar.dayStart(FIRST_DAY),
      hours: EVENT_DAYS * 24,
      eventsPerHour: 300,
    });
    process.stdout.write(
      `  ${config.project_id} (${config.time_zone}): ${stats.events} events, ${stats.duplicates} re-sent copies, ` +
        `${stats.late} late, ${stats.malformed} malformed lines, ${stats.arrivalHours} arrival hours\n`,
    );
  }

  const profiles = await generateProfileLandingZone({
    rawDir: raw,
    projectId: 'acme',
    seed: 2024,
    start: new ZoneCalendar('America/New_York').dayStart(FIRST_DAY),
    hours: EVENT_DAYS * 24,
    updatesPerHour: 200,
    users: 2000,
  });
  process.stdout.write(
    `  acme profiles: ${profiles.updates} profile updates, ${profiles.identityEvents} identity events, ` +
      `${profiles.malformed} malformed lines\n`,
  );

  // Operate both projects as the schedule would, from the first day until every late event is synced.
  const until = Math.max(
    ...pipelines.map(
      (c) => new ZoneCalendar(c.time_zone).dayEnd(addDays(FIRST_DAY, OPERATED_DAYS - 1)) + 3 * HOUR,
    ),
  );
  process.stdout.write(
    `\nOperating the pipelines through the synthesized workflows until ${new Date(until).toISOString()} (simulated clock)\n`,
  );
  const startedAt = Date.now();
  const { results, ticks } = await runLocalPipelines({
    configs: pipelines,
    folders: (config) => ({
      raw,
      out: bucket,
      state: defaultStateFolder(bucket, config.project_id, config.name),
    }),
    now: until,
    ticks: 'schedule',
    progress: (message) => process.stdout.write(`  ${message}\n`),
  });
  process.stdout.write(
    `${ticks} schedule ticks fired, ${[...results.values()].reduce((n, r) => n + r.steps.length, 0)} steps in ` +
      `${((Date.now() - startedAt) / 1000).toFixed(1)} s\n`,
  );
  for (const result of results.values())
    for (const failure of result.failures) process.stdout.write(`    ${failure}\n`);

  let ok = true;
  for (const { config, ...result } of results.values()) {
    process.stdout.write(
      `\n== ${config.project_id}/${config.name} (${config.data_source}, ${config.frequency}${config.sync ? ', sync' : ''}, ${config.time_zone}) ==\n` +
        `output:     ${
          config.data_source === 'events'
            ? `${join(bucket, config.project_id, 'mp_master_event')}/YYYY/MM/DD/`
            : `${join(bucket, snapshotFolder(config.project_id, config.data_source))} (follow _manifest-${config.name}.json)`
        }\n` +
        `quarantine: ${join(bucket, config.project_id, '_quarantine', config.name)}/\n` +
        `state:      ${defaultStateFolder(bucket, config.project_id, config.name)}\n\n` +
        `${formatReconciliation(result.reconciliation)}\n`,
    );
    ok &&= result.ok;
    if (config.data_source === 'events') ok = (await printWarehouse(config, result.reconciliation)) && ok;
  }
  return ok ? 0 : 1;
}

/**
 * The per-day counts read through SQL (the local warehouse over the same folders) next to what the
 * reconciliation says was exported, and the warehouse's own check of every part.
 */
async function printWarehouse(config: PipelineConfig, reconciliation: Reconciliation): Promise<boolean> {
  const days = reconciliation.eventDays.filter((d) => d.on_time + d.synced > 0);
  const from = days[0]?.day;
  const to = days.at(-1)?.day;
  if (from === undefined || to === undefined) return true;
  const { warehouse, runRecords } = await openLocalWarehouse(await localRunSource(bucket, config.project_id));
  try {
    const counted = new Map((await warehouse.dailyCounts({ from, to })).map((c) => [c.day, c.events]));
    const verified = await warehouse.verify({ runRecords });
    const same = days.every((d) => counted.get(d.day) === d.on_time + d.synced);
    process.stdout.write(
      `\nRead through SQL (mp-pipelines warehouse count --project ${config.project_id} --out ${bucket} --from ${from} --to ${to}):\n` +
        `${table(
          ['event day', 'exported (records)', 'events (SQL)', 'same'],
          days.map((d) => [
            d.day,
            d.on_time + d.synced,
            counted.get(d.day) ?? 0,
            counted.get(d.day) === d.on_time + d.synced ? 'yes' : 'NO',
          ]),
        )}\n` +
        `warehouse verify: ${verified.ok ? 'every part reads as its manifest and run records say' : verified.problems.map((p) => `${p.day} ${p.file ?? ''} ${p.problem}`).join('; ')}\n`,
    );
    return same && verified.ok;
  } finally {
    warehouse.close();
  }
}

process.exitCode = await main();
