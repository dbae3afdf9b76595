/**
 * `node dist/src/scripts/bench-schema.js [events]`: how fast the warehouse's schema inference reads
 * exported records, against a full `JSON.parse` of each record, on the generator's realistic events
 * (about 650 bytes, 22 properties). Prints events per second and CPU time per event for each, best of
 * three passes.
 */
import { parseEventLine } from '../core/event-line.js';
import { PropertySchema } from '../core/warehouse/property-schema.js';
import { eventLine, Random } from '../local/generate.js';

const events = Number(process.argv[2] ?? 200_000);
const rng = new Random(7);
const records: Buffer[] = [];
for (let i = 0; i < events; i += 1) {
  const line = eventLine(rng, rng.pick(['Page View', 'Purchase', 'Sign Up']), 1_732_000_000_000 + i * 1000, {
    distinctId: `user-${i % 5000}`,
    deviceId: `device-${i % 5000}`,
    userId: i % 3 === 0 ? undefined : `user-${i % 5000}`,
    insertId: rng.hex(32),
    accountId: `9${String(i % 5000).padStart(18, '0')}`,
  });
  const parsed = parseEventLine(Buffer.from(line));
  if (!parsed.ok) throw new Error(`generated line rejected: ${parsed.detail}`);
  records.push(parsed.record);
}
const bytes = records.reduce((n, r) => n + r.length, 0);

function best(name: string, run: () => PropertySchema): PropertySchema {
  let fastest = Number.POSITIVE_INFINITY;
  let leastCpu = Number.POSITIVE_INFINITY;
  let schema = new PropertySchema();
  for (let pass = 0; pass < 3; pass += 1) {
    const start = process.hrtime.bigint();
    const cpu = process.cpuUsage();
    schema = run();
    const used = process.cpuUsage(cpu);
    fastest = Math.min(fastest, Number(process.hrtime.bigint() - start) / 1e9);
    leastCpu = Math.min(leastCpu, (used.user + used.system) / 1e6);
  }
  // CPU time is what a shared machine disturbs least (the garbage collector's threads count in it).
  console.log(
    `${name}: ${Math.round(events / fastest)} events/s, ${((fastest / events) * 1e6).toFixed(2)} us/event wall, ` +
      `${((leastCpu / events) * 1e6).toFixed(2)} us/event CPU, ${(bytes / fastest / 1e6).toFixed(1)} MB/s`,
  );
  return schema;
}

const scanned = best('byte scan (addRecord)', () => {
  const schema = new PropertySchema();
  for (const record of records) schema.addRecord(record);
  return schema;
});
const parsed = best('JSON.parse (addProperties of the parsed object)', () => {
  const schema = new PropertySchema();
  for (const record of records)
    schema.addProperties(
      (JSON.parse(record.toString('utf8')) as { properties: Record<string, unknown> }).properties,
    );
  return schema;
});
const same = JSON.stringify(scanned.toJSON()) === JSON.stringify(parsed.toJSON());
console.log(
  `${events} events, ${(bytes / 1e6).toFixed(1)} MB of records; both give the same schema: ${same}`,
);
if (!same) process.exitCode = 1;
