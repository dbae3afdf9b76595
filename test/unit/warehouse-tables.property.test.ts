/**
 * The catalog definitions as data: the projected range of day folders always reaches the project's
 * "today" (Athena evaluates NOW in UTC), database names never collide, symlink files list exactly a
 * manifest's parts, and a view's SQL survives its encoding.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { SnapshotManifest } from '../../src/core/records.js';
import {
  athenaView,
  athenaViewSql,
  glueDatabaseName,
  PROJECTION_RANGE_END,
  symlinkBody,
  symlinkKey,
  typedViewSql,
} from '../../src/core/warehouse/index.js';

/** The calendar date (`YYYY-MM-DD`) of an instant in a zone. */
function localDate(instant: number, zone: string): string {
  return new Intl.DateTimeFormat('en-CA', {
    timeZone: zone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  }).format(instant);
}

describe('Glue table definitions', () => {
  it(`the projection's end, ${PROJECTION_RANGE_END} in UTC, is never before today in any zone`, () => {
    assert.equal(PROJECTION_RANGE_END, 'NOW+1DAYS');
    const zones = Intl.supportedValuesOf('timeZone');
    fc.assert(
      fc.property(
        fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2040, 0, 1) }),
        fc.constantFrom(...zones, 'Pacific/Kiritimati', 'Pacific/Apia', 'Asia/Kathmandu'),
        (now, zone) => {
          const end = new Date(now + 86_400_000).toISOString().slice(0, 10);
          assert.ok(localDate(now, zone) <= end, `${zone} at ${new Date(now).toISOString()}`);
        },
      ),
      { numRuns: 2000 },
    );
    // And NOW alone would hide it: at 02:00 in Kathmandu it is still yesterday in UTC.
    const now = Date.parse('2024-11-03T20:15:00Z');
    assert.ok(localDate(now, 'Asia/Kathmandu') > new Date(now).toISOString().slice(0, 10));
  });

  it('database names are valid for Glue and Athena, and distinct project ids never share one', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
        fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
        (a, b) => {
          const name = glueDatabaseName(a);
          assert.match(name, /^[a-z0-9_]{1,255}$/);
          if (a !== b) assert.notEqual(name, glueDatabaseName(b));
        },
      ),
    );
    assert.equal(glueDatabaseName('acme'), 'mp_acme');
  });

  it('a symlink file lists the S3 URI of each part of the manifest, under the prefix', () => {
    const manifest = {
      project_id: 'acme',
      data_source: 'people',
      parts: [
        {
          file: 'people-daily.daily-2024-11-03-t000-p000.json.gz',
          records: 3,
          bytes: 1,
          uncompressed_bytes: 1,
        },
        {
          file: 'people-daily.daily-2024-11-03-t001-p000.json.gz',
          records: 2,
          bytes: 1,
          uncompressed_bytes: 1,
        },
      ],
    } as unknown as SnapshotManifest;
    assert.equal(
      symlinkBody((key) => `s3://b/x/y/${key}`, manifest),
      's3://b/x/y/acme/mp_people_data/people-daily.daily-2024-11-03-t000-p000.json.gz\n' +
        's3://b/x/y/acme/mp_people_data/people-daily.daily-2024-11-03-t001-p000.json.gz\n',
    );
    assert.equal(symlinkKey('acme', 'identity'), 'acme/_warehouse/mp_identity_mappings_data/symlink.txt');
  });

  it("a view's SQL reads back from its Glue definition, whatever characters it holds", () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (property) => {
        const sql = typedViewSql('athena', [{ name: 'p_x', property, kind: 'string', sql_type: 'varchar' }]);
        const view = athenaView({ database: 'mp_acme' }, 'v', 'd', sql, [{ name: 'p_x', type: 'varchar' }]);
        assert.equal(athenaViewSql(view), sql);
      }),
    );
  });
});
