/**
 * The SQL that docs/warehouse.md publishes is the SQL the code generates (and the DuckDB forms run in
 * the warehouse's integration test).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import {
  type DayRange,
  type Dialect,
  dailyCountsSql,
  duplicatesSql,
  propertyFilterSql,
  uniqueUsersSql,
} from '../../src/core/warehouse/index.js';

const RANGE: DayRange = { from: '2024-11-01', to: '2024-11-03' };
const GENERATED: Record<string, (dialect: Dialect) => string> = {
  dailyCounts: () => dailyCountsSql('json', RANGE),
  duplicates: () => duplicatesSql(RANGE),
  uniqueUsers: () => uniqueUsersSql(RANGE),
  propertyFilter: (dialect) => propertyFilterSql(dialect, RANGE, 'plan', 'pro'),
};

describe('docs/warehouse.md', () => {
  it('publishes exactly the generated queries, for both dialects', async () => {
    const text = await readFile(new URL('../../../docs/warehouse.md', import.meta.url), 'utf8');
    const blocks = [...text.matchAll(/<!-- sql: (any|athena|duckdb) (\w+) -->\n```sql\n([\s\S]*?)\n```/g)];
    assert.deepEqual(
      blocks.map((b) => `${b[1]} ${b[2]}`),
      [
        'any dailyCounts',
        'any duplicates',
        'any uniqueUsers',
        'athena propertyFilter',
        'duckdb propertyFilter',
      ],
    );
    for (const [, dialect, name, sql] of blocks) {
      const generate = GENERATED[name!]!;
      for (const d of dialect === 'any' ? (['athena', 'duckdb'] as const) : [dialect as Dialect])
        assert.equal(sql, generate(d), `${dialect} ${name}`);
    }
  });
});
