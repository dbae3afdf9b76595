/**
 * The typed view in DuckDB on arbitrary properties (any key: quotes, slashes, `~`, dots, empty,
 * non-ASCII; any JSON value): the typed columns plus the overflow column give back every value of
 * every record, whatever the cap on columns.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { OVERFLOW_COLUMN, PropertySchema, typedLayout } from '../../src/core/warehouse/index.js';
import { DuckDbWarehouse } from '../../src/local/duckdb-warehouse.js';
import { tempFolder } from '../support/fixtures.js';

const keyArb = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.constantFrom('a"b', 'x/y', 'til~de', 'dot.ted', '', '東京', '$os', 'time', "it's", 'a\\b', 'new\nline'),
);
// Numbers DuckDB and JavaScript both read exactly: integers within 2^53, and short decimals.
const valueArb = fc.oneof(
  fc.string({ maxLength: 6 }),
  fc.integer(),
  fc
    .double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 })
    .map((x) => Math.round(x * 100) / 100),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.oneof(fc.integer(), fc.string({ maxLength: 3 })), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 3 }), fc.integer(), { maxKeys: 2 }),
);

describe('typed view on arbitrary properties (DuckDB)', () => {
  it('typed columns and the overflow keep every value of every record', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.dictionary(keyArb, valueArb, { maxKeys: 6 }), { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 0, max: 8 }),
        async (objects, maxColumns) => {
          const out = await tempFolder('typed-view');
          try {
            const folder = join(out.path, 'p', 'mp_master_event', '2024', '01', '02');
            await mkdir(folder, { recursive: true });
            const lines = objects.map(
              (properties, i) =>
                `{"event_name":"e","time":${1704153600000 + i},"distinct_id":"d${i}","device_id":null,"user_id":null,"insert_id":"i${i}","properties":${JSON.stringify(properties)}}`,
            );
            await writeFile(
              join(folder, 'x.daily-2024-01-02-t000-p000.json.gz'),
              gzipSync(`${lines.join('\n')}\n`),
            );
            const schema = new PropertySchema();
            for (const object of objects) schema.addProperties(object);
            const { columns } = typedLayout(schema, [], maxColumns);
            const warehouse = await DuckDbWarehouse.open({ out: out.path, projectId: 'p', columns });
            try {
              const rows = await warehouse.sql('SELECT * FROM mp_master_event_typed ORDER BY insert_id');
              const sorted = objects
                .map((o, i) => ({ o, id: `i${i}` }))
                .sort((a, b) => (a.id < b.id ? -1 : 1));
              assert.equal(rows.length, objects.length);
              for (const [index, row] of rows.entries()) {
                // As written: JSON has no -0.
                const expected = JSON.parse(JSON.stringify(sorted[index]!.o)) as Record<string, unknown>;
                const rebuilt: Record<string, unknown> = {};
                for (const column of columns) {
                  const value = row[column.name];
                  if (value === null) continue;
                  rebuilt[column.property] = column.kind === 'json' ? JSON.parse(String(value)) : value;
                }
                const overflow = row[OVERFLOW_COLUMN];
                if (overflow !== null) Object.assign(rebuilt, JSON.parse(String(overflow)));
                for (const [key, value] of Object.entries(expected)) {
                  if (value === null && !(key in rebuilt)) {
                    assert.ok(
                      columns.some((c) => c.property === key),
                      `null ${JSON.stringify(key)} has a column`,
                    );
                    continue;
                  }
                  assert.deepEqual(rebuilt[key], value, JSON.stringify(key));
                }
                assert.deepEqual(
                  Object.keys(rebuilt).sort(),
                  Object.keys(expected)
                    .filter((k) => k in rebuilt)
                    .sort(),
                );
              }
            } finally {
              warehouse.close();
            }
          } finally {
            await out.cleanup();
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});
