import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ConfigError } from '../../src/core/errors.js';
import {
  checkPipelineConfig,
  DEFAULT_PART_MAX_BYTES,
  MAX_EVENT_NAME_LENGTH,
  MAX_EVENT_NAMES,
  parsePipelineConfig,
} from '../../src/core/pipeline-config.js';
import {
  destinationOf,
  isLive,
  MAX_EVENTS_PIPELINES_PER_PROJECT,
  type RuleCandidate,
  readStoredPipeline,
  reviewStatus,
  ruleProblems,
  type StoredPipeline,
  TRIAL_DAYS,
  TRIAL_ENDED,
  trialEnded,
} from '../../src/core/pipeline-rules.js';
import { addDays, DAY_MS } from '../../src/core/windows.js';

type Fields = Record<string, unknown>;

const BASE = {
  project_id: 'p1',
  name: 'main',
  frequency: 'daily',
  time_zone: 'UTC',
  from_date: '2026-01-01',
};
const CREATED = Date.parse('2026-03-10T03:00:00Z');

/** The problems of BASE with `extra` applied; fails when the config validates. */
function problemsOf(extra: Fields): readonly string[] {
  const result = checkPipelineConfig({ ...BASE, ...extra });
  assert.ok(result.problems !== undefined, `expected ${JSON.stringify(extra)} to be refused`);
  assert.equal(result.config, undefined);
  return result.problems;
}

/** Asserts `extra` gives exactly one problem, on `field`, and returns it. */
function onlyProblemOn(extra: Fields, field: string): string {
  const problems = problemsOf(extra);
  assert.equal(problems.length, 1, `one problem for ${JSON.stringify(extra)}: ${problems.join(' | ')}`);
  assert.ok(problems[0]!.startsWith(`${field}: `), `"${problems[0]}" should name ${field}`);
  return problems[0]!;
}

/** The fields that problems name, in order. */
const fieldsOf = (problems: readonly string[] | undefined): string[] =>
  (problems ?? []).map((p) => p.split(':')[0] ?? '');

function accepts(extra: Fields): void {
  const result = checkPipelineConfig({ ...BASE, ...extra });
  assert.deepEqual(result.problems, undefined, `expected ${JSON.stringify(extra)} to validate`);
}

const stored = (extra: Fields): StoredPipeline => readStoredPipeline({ ...BASE, ...extra });
const candidate = (extra: Fields, createdAt = CREATED): RuleCandidate => ({
  config: parsePipelineConfig({ ...BASE, ...extra }),
  created_at: createdAt,
});

describe('pipelineSchema', () => {
  test('fills the defaults of a minimal config, asking for no encryption (the bucket default applies)', () => {
    const defaults = { trial: false, sync: false, format: 'json', compression: 'gzip', compression_level: 1 };
    assert.deepEqual(checkPipelineConfig(BASE), {
      config: { ...BASE, ...defaults, data_source: 'events', part_max_bytes: DEFAULT_PART_MAX_BYTES },
    });
  });

  test('fills the codec and level of each format: gzip 1, zstd 3, snappy without a level', () => {
    const filled = (extra: Fields) => {
      const { format, compression, compression_level } = parsePipelineConfig({ ...BASE, ...extra });
      return { format, compression, compression_level };
    };
    assert.deepEqual(filled({ compression: 'zstd' }), {
      format: 'json',
      compression: 'zstd',
      compression_level: 3,
    });
    assert.deepEqual(filled({ format: 'parquet' }), {
      format: 'parquet',
      compression: 'zstd',
      compression_level: 3,
    });
    assert.deepEqual(filled({ format: 'parquet', compression: 'snappy' }), {
      format: 'parquet',
      compression: 'snappy',
      compression_level: undefined,
    });
    assert.deepEqual(filled({ format: 'parquet', compression: 'gzip', compression_level: 6 }), {
      format: 'parquet',
      compression: 'gzip',
      compression_level: 6,
    });
    assert.deepEqual(filled({ format: 'parquet', compression: 'zstd', compression_level: 19 }), {
      format: 'parquet',
      compression: 'zstd',
      compression_level: 19,
    });
    assert.equal(
      'compression_level' in parsePipelineConfig({ ...BASE, format: 'parquet', compression: 'snappy' }),
      false,
    );
  });

  test('refuses a codec its format has no use for, or a level out of the codec range, naming the field', () => {
    assert.match(
      onlyProblemOn({ compression: 'snappy' }, 'compression'),
      /"snappy" is not a codec of json parts: use "gzip", "zstd"/,
    );
    assert.match(
      onlyProblemOn({ compression: 'lz4' }, 'compression'),
      /expected one of "gzip"\|"zstd"\|"snappy"/,
    );
    assert.match(onlyProblemOn({ format: 'csv' }, 'format'), /expected one of "json"\|"parquet"/);
    assert.match(
      onlyProblemOn({ compression_level: 10 }, 'compression_level'),
      /must be 1-9 for gzip \(default 1\), got 10/,
    );
    assert.match(
      onlyProblemOn({ compression: 'zstd', compression_level: 20 }, 'compression_level'),
      /must be 1-19 for zstd/,
    );
    assert.match(onlyProblemOn({ compression_level: 0 }, 'compression_level'), /1-9/);
    assert.match(onlyProblemOn({ compression_level: 1.5 }, 'compression_level'), /expected int/);
    assert.match(
      onlyProblemOn({ format: 'parquet', compression: 'snappy', compression_level: 3 }, 'compression_level'),
      /snappy has no levels: remove compression_level/,
    );
  });

  test('accepts well-formed destination fields', () => {
    accepts({ s3_bucket: 'my.bucket-1', s3_prefix: 'exports/analytics/', s3_region: 'eu-central-1' });
    accepts({ s3_region: 'us-gov-west-1', s3_prefix: "a!_.*'()-b" });
    accepts({ s3_role: 'arn:aws:iam::123456789012:role/path/export-role', s3_external_id: 'ext-1' });
    accepts({ s3_role: 'arn:aws-cn:iam::123456789012:role/r', s3_external_id: 'xy' });
    accepts({ s3_encryption: 'kms', s3_kms_key_id: 'alias/exports' });
    accepts({ s3_encryption: 'none' });
    accepts({ trial: true, frequency: 'daily', sync: false, to_date: '2026-01-01' });
  });

  test('refuses bad bucket names, naming s3_bucket', () => {
    for (const s3_bucket of ['ab', 'My-Bucket', '-bucket', 'bucket-', 'bucket_1', 'b'.repeat(64), ''])
      assert.match(onlyProblemOn({ s3_bucket }, 's3_bucket'), /S3 bucket name/);
  });

  test('refuses prefixes with a leading "/", an empty segment or a "." / ".." segment, naming s3_prefix', () => {
    for (const s3_prefix of ['/exports', 'a//b', '//', '', 'a/b//'])
      assert.match(onlyProblemOn({ s3_prefix }, 's3_prefix'), /no leading "\/", no empty segments/);
    for (const s3_prefix of ['..', 'a/../b', 'a/..', './a', 'a/./b'])
      assert.match(onlyProblemOn({ s3_prefix }, 's3_prefix'), /"\." or "\.\." segments/);
  });

  test('refuses bad regions and role ARNs, naming the field', () => {
    for (const s3_region of ['us-east', 'US-EAST-1', 'useast1', 'us-east-12x'])
      assert.match(onlyProblemOn({ s3_region }, 's3_region'), /AWS region/);
    for (const s3_role of [
      'arn:aws:iam::12345:role/x',
      'arn:aws:iam::123456789012:user/x',
      'role/x',
      'arn:aws:iam::123456789012:role/',
    ])
      assert.match(onlyProblemOn({ s3_role, s3_external_id: 'ext' }, 's3_role'), /IAM role ARN/);
  });

  test('s3_role and s3_external_id go together', () => {
    const role = 'arn:aws:iam::123456789012:role/r';
    assert.match(onlyProblemOn({ s3_role: role }, 's3_external_id'), /required with s3_role/);
    assert.match(onlyProblemOn({ s3_external_id: 'ext' }, 's3_external_id'), /only used with s3_role/);
    onlyProblemOn({ s3_role: role, s3_external_id: 'x' }, 's3_external_id');
  });

  test('kms needs a key id, and a key id needs kms', () => {
    assert.match(onlyProblemOn({ s3_encryption: 'kms' }, 's3_kms_key_id'), /required when s3_encryption/);
    assert.match(onlyProblemOn({ s3_kms_key_id: 'k' }, 's3_kms_key_id'), /only used with s3_encryption/);
    onlyProblemOn({ s3_encryption: 'none', s3_kms_key_id: 'k' }, 's3_kms_key_id');
    onlyProblemOn({ s3_encryption: 'rsa' }, 's3_encryption');
  });

  test('a trial pipeline is daily without sync', () => {
    assert.match(onlyProblemOn({ trial: true, frequency: 'hourly' }, 'frequency'), /daily.*trial/);
    assert.match(onlyProblemOn({ trial: true, sync: true }, 'sync'), /false for a trial/);
    const both = problemsOf({ trial: true, frequency: 'hourly', sync: true });
    assert.deepEqual(fieldsOf(both), ['frequency', 'sync']);
    accepts({ trial: false, frequency: 'hourly', sync: true });
  });

  test('people and identity pipelines have no sync and no event filter', () => {
    for (const data_source of ['people', 'identity']) {
      accepts({ data_source, frequency: 'hourly' });
      assert.match(
        onlyProblemOn({ data_source, sync: true }, 'sync'),
        /false for people and identity pipelines/,
      );
      assert.match(onlyProblemOn({ data_source, event_names: ['a'] }, 'event_names'), /only used by events/);
      assert.match(onlyProblemOn({ data_source, where: 'true' }, 'where'), /only used by events/);
    }
    assert.match(onlyProblemOn({ data_source: 'profiles' }, 'data_source'), /events.*people.*identity/);
  });

  test('event_names lists 1 to 500 names of 1 to 255 characters, and says which limit a config breaks', () => {
    const names = (count: number, length = 10) =>
      Array.from({ length: count }, (_, i) => String(i).padStart(length, 'e'));
    accepts({ event_names: names(MAX_EVENT_NAMES, MAX_EVENT_NAME_LENGTH) });
    assert.equal(MAX_EVENT_NAMES, 500);
    assert.equal(MAX_EVENT_NAME_LENGTH, 255);
    assert.match(
      onlyProblemOn({ event_names: names(MAX_EVENT_NAMES + 1) }, 'event_names'),
      /^event_names: must list at most 500 event names/,
    );
    assert.match(
      onlyProblemOn({ event_names: ['Purchase', 'x'.repeat(256)] }, 'event_names.1'),
      /^event_names\.1: an event name is at most 255 characters$/,
    );
    assert.match(onlyProblemOn({ event_names: ['Purchase', ''] }, 'event_names.1'), /must not be empty/);
    assert.match(onlyProblemOn({ event_names: [] }, 'event_names'), /at least one event name/);
  });

  test('a where filter is checked when the config is, and its problem names the character', () => {
    accepts({ where: 'properties["plan"] == "pro" and defined(properties["$os"])' });
    assert.match(
      onlyProblemOn({ where: 'properties["plan"] = "pro"' }, 'where'),
      /^where: at character 20: unexpected "=": use "==" to compare$/,
    );
    assert.match(onlyProblemOn({ where: '' }, 'where'), /^where: /);
    assert.match(onlyProblemOn({ where: 'x'.repeat(5000) }, 'where'), /at most 4096/);
  });

  test('refuses unknown fields, unknown time zones and a to_date before from_date', () => {
    assert.match(problemsOf({ s3_buckett: 'x' }).join('\n'), /Unrecognized key.*"s3_buckett"/);
    assert.match(
      onlyProblemOn({ time_zone: 'Mars/Olympus' }, 'time_zone'),
      /unknown time zone "Mars\/Olympus"/,
    );
    onlyProblemOn({ time_zone: '+05:00' }, 'time_zone');
    assert.equal(
      onlyProblemOn({ from_date: '2026-02-01', to_date: '2026-01-31' }, 'to_date'),
      'to_date: 2026-01-31 is before from_date 2026-02-01',
    );
    onlyProblemOn({ from_date: '2026-02-30' }, 'from_date');
  });

  test('reports every problem at once', () => {
    const problems = problemsOf({ s3_bucket: 'Bad', s3_region: 'nowhere' });
    assert.deepEqual(fieldsOf(problems), ['s3_bucket', 's3_region']);
    const mixed = problemsOf({ s3_bucket: 'Bad', s3_encryption: 'kms', time_zone: 'Nowhere/Town' });
    assert.deepEqual(fieldsOf(mixed).sort(), ['s3_bucket', 's3_kms_key_id', 'time_zone']);
  });

  test('parsePipelineConfig throws a ConfigError listing every problem', () => {
    assert.throws(
      () => parsePipelineConfig({ ...BASE, s3_bucket: 'Bad', s3_region: 'nowhere' }),
      (error: unknown) =>
        error instanceof ConfigError &&
        /s3_bucket: /.test(error.message) &&
        /s3_region: /.test(error.message),
    );
  });
});

describe('readStoredPipeline', () => {
  test('splits management attributes from config fields', () => {
    const management = {
      status: 'paused',
      status_reason: 'paused by alice',
      version: 7,
      created_at: '2026-03-01T00:00:00Z',
      updated_at: '2026-03-02T00:00:00Z',
      trial_started_at: '2026-02-28T00:00:00Z',
    };
    const pipeline = stored({ ...management, s3_bucket: 'bkt' });
    assert.deepEqual(pipeline.management, management);
    assert.deepEqual(pipeline.fields, { ...BASE, s3_bucket: 'bkt' });
    assert.equal(pipeline.config?.s3_bucket, 'bkt');
    assert.equal(pipeline.problems, undefined);
    assert.equal(pipeline.project_id, 'p1');
    assert.equal(pipeline.name, 'main');
  });

  test('a hand-written item without management attributes is active at version 0', () => {
    const pipeline = stored({});
    assert.deepEqual(pipeline.management, { status: 'active', version: 0 });
    assert.ok(isLive(pipeline));
  });

  test('an invalid status reads as paused, keeps the other attributes, and the review pauses it with the reason', () => {
    const created = '2026-03-01T00:00:00.000Z';
    const pipeline = stored({ status: 'bogus', version: 3, created_at: created });
    assert.equal(pipeline.management.status, 'paused');
    assert.equal(pipeline.management.version, 3);
    assert.equal(pipeline.management.created_at, created, 'one bad attribute does not drop the others');
    assert.equal(pipeline.invalidStatus, 'bogus');
    assert.equal(pipeline.problems, undefined, 'the config itself is valid');
    const change = reviewStatus(pipeline, [], Date.parse('2026-03-02T00:00:00Z'));
    assert.equal(change?.status, 'paused');
    assert.match(change?.status_reason ?? '', /^status "bogus" is not one of active, paused, error, deleted/);
    // The review's write leaves a valid paused item: nothing re-activates it but a person.
    const written = stored({
      status: 'paused',
      version: 4,
      created_at: created,
      status_reason: change?.status_reason,
    });
    assert.equal(reviewStatus(written, [], Date.parse('2026-03-02T00:00:00Z')), undefined);
  });

  test('invalid config fields give problems and no config', () => {
    const pipeline = stored({ frequency: 'weekly', s3_region: 'x', status: 'active', version: 2 });
    assert.equal(pipeline.config, undefined);
    assert.deepEqual(fieldsOf(pipeline.problems), ['frequency', 's3_region']);
    assert.equal(pipeline.fields.frequency, 'weekly');
    assert.deepEqual(pipeline.management, { status: 'active', version: 2 });
  });
});

describe('ruleProblems: events pipelines per project and destinations', () => {
  const count = (extra: Fields, others: readonly StoredPipeline[]): number =>
    ruleProblems(candidate(extra), others).length;

  test(`a third live events pipeline is refused, naming the existing ${MAX_EVENTS_PIPELINES_PER_PROJECT}`, () => {
    const others = [
      stored({ name: 'a', s3_prefix: 'a' }),
      stored({ name: 'b', s3_prefix: 'b', status: 'paused' }),
    ];
    const problems = ruleProblems(candidate({ name: 'c', s3_prefix: 'c' }), others);
    assert.equal(problems.length, 1);
    assert.match(
      problems[0]!,
      /^project p1 already has 2 events pipelines \("a", "b"\); at most 2 are allowed/,
    );
    assert.deepEqual(ruleProblems(candidate({ name: 'c', s3_prefix: 'c' }), others.slice(0, 1)), []);
  });

  test('deleted and error siblings, and the candidate itself, do not count', () => {
    const a = stored({ name: 'a', s3_prefix: 'a' });
    for (const status of ['deleted', 'error']) {
      const b = stored({ name: 'b', s3_prefix: 'b', status });
      assert.equal(isLive(b), false);
      assert.deepEqual(ruleProblems(candidate({ name: 'c', s3_prefix: 'c' }), [a, b]), [], status);
    }
    const self = stored({ name: 'c', s3_prefix: 'c' });
    assert.deepEqual(ruleProblems(candidate({ name: 'c', s3_prefix: 'c' }), [a, self]), []);
  });

  test('the same destination with overlapping dates is refused, naming the sibling and its range', () => {
    const a = stored({ name: 'a', s3_bucket: 'bkt', from_date: '2026-01-01', to_date: '2026-01-31' });
    const problems = ruleProblems(candidate({ s3_bucket: 'bkt', from_date: '2026-01-31' }), [a]);
    assert.equal(problems.length, 1);
    assert.match(
      problems[0]!,
      /^exports to s3:\/\/bkt\/ for dates that overlap "a" \(2026-01-01\.\.2026-01-31\)/,
    );
  });

  test('disjoint dates, another bucket or another prefix are allowed', () => {
    const x = { s3_bucket: 'bkt', s3_prefix: 'x' };
    const a = [stored({ name: 'a', ...x, from_date: '2026-01-01', to_date: '2026-01-31' })];
    assert.equal(count({ ...x }, a), 1, 'same destination, overlapping dates');
    assert.equal(count({ ...x, from_date: '2026-02-01' }, a), 0);
    assert.equal(count({ ...x, s3_bucket: 'bkt2' }, a), 0);
    assert.equal(count({ ...x, s3_prefix: 'y' }, a), 0);
    assert.equal(count({ ...x, s3_prefix: 'x/y' }, a), 0);
    assert.equal(count({ s3_bucket: 'bkt' }, a), 0);
    assert.equal(count({ s3_prefix: 'x' }, a), 0, 'no bucket is the deployment bucket');
  });

  test('prefix "a" and "a/" are the same destination', () => {
    const destination = (extra: Fields): string => destinationOf(parsePipelineConfig({ ...BASE, ...extra }));
    assert.equal(destination({ s3_bucket: 'bkt', s3_prefix: 'a/' }), 's3://bkt/a/');
    assert.equal(destination({ s3_bucket: 'bkt', s3_prefix: 'a' }), 's3://bkt/a/');
    assert.equal(destination({ s3_bucket: 'bkt' }), 's3://bkt/');
    assert.notEqual(destination({}), 's3://bkt/');
    assert.equal(
      count({ s3_bucket: 'bkt', s3_prefix: 'a' }, [stored({ name: 'a', s3_bucket: 'bkt', s3_prefix: 'a/' })]),
      1,
    );
  });

  test('an open-ended range overlaps everything from its start on', () => {
    const open = [stored({ name: 'a', from_date: '2026-01-01' })];
    assert.equal(count({ from_date: '2030-06-01', to_date: '2030-06-02' }, open), 1);
    assert.equal(count({ from_date: '2025-01-01' }, open), 1);
    assert.equal(count({ from_date: '2025-12-01', to_date: '2026-01-01' }, open), 1);
    assert.equal(count({ from_date: '2025-12-01', to_date: '2025-12-31' }, open), 0);
  });

  test('the overlap rule is symmetric and is inclusive date-range intersection', () => {
    const range = fc.record({
      from: fc.integer({ min: 0, max: 30 }),
      length: fc.option(fc.integer({ min: 0, max: 30 }), { nil: undefined }),
    });
    type Range = { from: number; length: number | undefined };
    const fields = ({ from, length }: Range): Fields => ({
      from_date: addDays('2026-01-01', from),
      ...(length === undefined ? {} : { to_date: addDays('2026-01-01', from + length) }),
    });
    const refused = (a: Range, b: Range): boolean =>
      ruleProblems(candidate({ name: 'a', ...fields(a) }), [stored({ name: 'b', ...fields(b) })]).length > 0;
    fc.assert(
      fc.property(range, range, (a, b) => {
        const end = (r: Range): number =>
          r.length === undefined ? Number.POSITIVE_INFINITY : r.from + r.length;
        const model = Math.max(a.from, b.from) <= Math.min(end(a), end(b));
        assert.equal(refused(a, b), model);
        assert.equal(refused(b, a), model);
      }),
      { numRuns: 500 },
    );
  });
});

describe('ruleProblems: people and identity pipelines', () => {
  test('do not count towards the events limit, and the events pipelines do not count against them', () => {
    const others = [stored({ name: 'a', s3_prefix: 'a' }), stored({ name: 'b', s3_prefix: 'b' })];
    assert.deepEqual(ruleProblems(candidate({ name: 'people', data_source: 'people' }), others), []);
    assert.deepEqual(ruleProblems(candidate({ name: 'ids', data_source: 'identity' }), others), []);
    const snapshots = [
      stored({ name: 'people', data_source: 'people' }),
      stored({ name: 'ids', data_source: 'identity' }),
    ];
    assert.deepEqual(
      ruleProblems(candidate({ name: 'c', s3_prefix: 'c' }), [...others.slice(0, 1), ...snapshots]),
      [],
    );
  });

  test('two snapshots of one data source may not share a destination, whatever their dates', () => {
    const others = [
      stored({ name: 'people', data_source: 'people', from_date: '2026-01-01', to_date: '2026-01-02' }),
    ];
    const problems = ruleProblems(
      candidate({ name: 'people-2', data_source: 'people', from_date: '2027-01-01' }),
      others,
    );
    assert.equal(problems.length, 1);
    assert.match(
      problems[0]!,
      /"people" already writes the people snapshot to s3:\/\/\(deployment destination\)\/: use another s3_bucket or s3_prefix/,
    );
    assert.deepEqual(
      ruleProblems(candidate({ name: 'people-2', data_source: 'people', s3_prefix: 'x' }), others),
      [],
    );
    assert.deepEqual(ruleProblems(candidate({ name: 'ids', data_source: 'identity' }), others), []);
    const paused = [stored({ name: 'people', data_source: 'people', status: 'paused' })];
    assert.equal(ruleProblems(candidate({ name: 'people-2', data_source: 'people' }), paused).length, 1);
    const deleted = [stored({ name: 'people', data_source: 'people', status: 'deleted' })];
    assert.deepEqual(ruleProblems(candidate({ name: 'people-2', data_source: 'people' }), deleted), []);
  });
});

describe('ruleProblems: trial pipelines', () => {
  const LA = 'America/Los_Angeles';

  test('a second live trial of the same data source is refused', () => {
    const first = stored({ name: 'trial-1', trial: true, s3_prefix: 'one', status: 'paused' });
    const problems = ruleProblems(
      candidate({ name: 'trial-2', trial: true, s3_prefix: 'two', from_date: '2026-03-09' }),
      [first],
    );
    assert.equal(problems.length, 1);
    assert.match(
      problems[0]!,
      /already has a trial events pipeline \("trial-1"\); a trial allows one per data source/,
    );
    const deleted = stored({ name: 'trial-1', trial: true, s3_prefix: 'one', status: 'deleted' });
    const notTrial = stored({ name: 'plain', s3_prefix: 'one' });
    assert.deepEqual(
      ruleProblems(candidate({ name: 'trial-2', trial: true, s3_prefix: 'two', from_date: '2026-03-09' }), [
        deleted,
        notTrial,
      ]),
      [],
    );
  });

  test('a trial backfills at most one day before its creation date in its own time zone', () => {
    // 2026-03-10T03:00Z is 2026-03-09 20:00 in Los Angeles (PDT) but already 2026-03-10 in UTC.
    const trial = (time_zone: string, from_date: string): string[] =>
      ruleProblems(candidate({ trial: true, time_zone, from_date }), []);
    assert.deepEqual(trial(LA, '2026-03-08'), []);
    assert.deepEqual(trial(LA, '2026-03-10'), []);
    assert.deepEqual(trial(LA, '2026-03-07'), [
      'from_date 2026-03-07 is too early for a trial pipeline: a trial backfills at most 1 day before its creation (from 2026-03-08)',
    ]);
    assert.deepEqual(trial('UTC', '2026-03-09'), []);
    assert.match(trial('UTC', '2026-03-08').join(''), /too early.*\(from 2026-03-09\)/);
    assert.deepEqual(ruleProblems(candidate({ from_date: '2020-01-01' }), []), [], 'only trials are limited');
  });
});

describe('reviewStatus', () => {
  const NOW = Date.parse('2026-03-15T00:00:00Z');
  /** Applies a change the way the validator writes it. */
  const apply = (item: Fields, change: { status: string; status_reason?: string }): Fields => {
    const { status_reason: _dropped, ...rest } = item;
    return { ...rest, ...change };
  };

  test('an invalid item goes to error with its problems joined by "; ", once', () => {
    const item = { ...BASE, s3_bucket: 'Bad', s3_region: 'x', status: 'active', version: 1 };
    const pipeline = readStoredPipeline(item);
    const change = reviewStatus(pipeline, [], NOW);
    assert.deepEqual(change, { status: 'error', status_reason: pipeline.problems?.join('; ') });
    assert.match(change?.status_reason ?? '', /^s3_bucket: .*; s3_region: /);
    const written = apply(item, change!);
    assert.equal(reviewStatus(readStoredPipeline(written), [], NOW), undefined, 'no write loop');
    const stale = { ...written, status_reason: 'an older problem' };
    assert.deepEqual(reviewStatus(readStoredPipeline(stale), [], NOW), change);
  });

  test('a where edited by hand into an invalid expression puts the pipeline in error, saying where', () => {
    const item = { ...BASE, where: 'properties["plan"] == "pro" &&', status: 'active', version: 3 };
    assert.deepEqual(reviewStatus(readStoredPipeline(item), [], NOW), {
      status: 'error',
      status_reason: 'where: at character 29: unexpected "&": use "and" to join conditions',
    });
  });

  test('an error item fixed by hand becomes active, without a reason', () => {
    const fixed = stored({ status: 'error', status_reason: 's3_bucket: bad', version: 4 });
    assert.deepEqual(reviewStatus(fixed, [], NOW), { status: 'active' });
    assert.equal(reviewStatus(stored({ status: 'active' }), [], NOW), undefined);
    assert.equal(reviewStatus(stored({ status: 'paused', status_reason: 'by hand' }), [], NOW), undefined);
  });

  test(`a trial pauses itself ${TRIAL_DAYS} days after the project's trial started`, () => {
    const started = '2026-03-01T00:00:00Z';
    const end = Date.parse(started) + TRIAL_DAYS * DAY_MS;
    const item = {
      ...BASE,
      trial: true,
      from_date: '2026-03-01',
      created_at: '2026-03-01T12:00:00Z',
      trial_started_at: started,
    };
    const trial = readStoredPipeline(item);
    assert.equal(trialEnded(trial, end - 1), false);
    assert.equal(trialEnded(trial, end), true);
    assert.equal(reviewStatus(trial, [], end - 1), undefined);
    assert.deepEqual(reviewStatus(trial, [], end), { status: 'paused', status_reason: TRIAL_ENDED });
    const paused = readStoredPipeline(apply(item, { status: 'paused', status_reason: TRIAL_ENDED }));
    assert.equal(reviewStatus(paused, [], end + DAY_MS), undefined);
    const unpaused = readStoredPipeline({ ...item, status: 'active' });
    assert.deepEqual(reviewStatus(unpaused, [], end + DAY_MS), {
      status: 'paused',
      status_reason: TRIAL_ENDED,
    });
    const { trial_started_at: _s, ...noStart } = item;
    assert.equal(trialEnded(readStoredPipeline(noStart), end + DAY_MS), false);
    assert.equal(trialEnded(readStoredPipeline({ ...item, trial: false }), end + DAY_MS), false);
  });

  test('a deleted pipeline is never changed, even if invalid', () => {
    assert.equal(reviewStatus(stored({ status: 'deleted', s3_bucket: 'Bad' }), [], NOW), undefined);
    assert.equal(reviewStatus(stored({ status: 'deleted' }), [stored({ name: 'x' })], NOW), undefined);
  });

  test('a rule conflict with an earlier live sibling is an error; with a deleted one it is not', () => {
    const mine = stored({ s3_bucket: 'bkt', created_at: '2026-03-01T00:00:00Z' });
    const earlier = stored({ name: 'other', s3_bucket: 'bkt', created_at: '2026-02-01T00:00:00Z' });
    const change = reviewStatus(mine, [earlier], NOW);
    assert.equal(change?.status, 'error');
    assert.match(change?.status_reason ?? '', /overlap "other"/);
    assert.equal(reviewStatus(earlier, [mine], NOW), undefined, 'the later of the two is the one in error');
    const deleted = stored({
      name: 'other',
      s3_bucket: 'bkt',
      status: 'deleted',
      created_at: '2026-02-01T00:00:00Z',
    });
    assert.equal(reviewStatus(mine, [deleted], NOW), undefined);
  });

  test('items without created_at count as the newest, names breaking ties', () => {
    const dated = stored({ name: 'dated', s3_bucket: 'bkt', created_at: '2026-03-01T00:00:00Z' });
    const handA = stored({ name: 'hand-a', s3_bucket: 'bkt' });
    const handB = stored({ name: 'hand-b', s3_bucket: 'bkt' });
    assert.equal(reviewStatus(dated, [handA, handB], NOW), undefined);
    assert.match(reviewStatus(handA, [dated, handB], NOW)?.status_reason ?? '', /overlap "dated"\s/);
    assert.match(reviewStatus(handB, [dated, handA], NOW)?.status_reason ?? '', /overlap "dated", "hand-a"/);
  });
});
