/**
 * The CLI's command tree: `pipelines create` and `local run` take their config flags from the one set,
 * and every kind of flag value has one parser whose error names the flag.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type Command, CommanderError, InvalidArgumentError, type Option } from 'commander';
import fc from 'fast-check';
import { CONFIG_FLAGS, type ConfigCommand, configFields, configOptions } from '../../src/cli/config-flags.js';
import { buildLocalProgram } from '../../src/cli/local-command.js';
import { buildProgram } from '../../src/cli/program.js';
import { day, instant, parseNamed, positiveInteger, positiveNumber } from '../../src/cli/shared.js';
import { UsageError } from '../../src/core/errors.js';
import { parsePipelineConfig } from '../../src/core/pipeline-config.js';

/** The subcommand at `path`, e.g. `['local', 'run']`. */
function commandAt(program: Command, path: readonly string[]): Command {
  return path.reduce((command, name) => {
    const sub = command.commands.find((c) => c.name() === name);
    assert.ok(sub !== undefined, `no command ${path.join(' ')}`);
    return sub;
  }, program);
}

/** An option as its help shows it and its parsing treats it. */
function shape(option: Option): Record<string, unknown> {
  return {
    flags: option.flags,
    description: option.description,
    mandatory: option.mandatory,
    default: option.defaultValue,
    choices: option.argChoices,
    // `.choices()` gives each option a parser of its own, checking them.
    parser: option.argChoices === undefined ? option.parseArg : 'the choices',
  };
}

/** Flags of the two commands that set no config field: adding one here is a choice, not a drift. */
const OTHER_FLAGS: Readonly<Record<ConfigCommand, readonly string[]>> = {
  'pipelines create': ['--stack', '--region', '--home', '--json'],
  'local run': ['--raw', '--out', '--now', '--state', '--home', '--workers', '--json'],
};

const CONFIG_LONGS = new Set(CONFIG_FLAGS.map((flag) => flag.option().long));

describe('the config flags of pipelines create and local run', () => {
  const program = buildProgram();
  const commands: Readonly<Record<ConfigCommand, Command>> = {
    'pipelines create': commandAt(program, ['pipelines', 'create']),
    'local run': commandAt(program, ['local', 'run']),
  };

  for (const name of ['pipelines create', 'local run'] as const) {
    test(`${name} declares exactly the set's flags, and only the others it is known to take`, () => {
      const options = commands[name].options;
      assert.deepEqual(
        options.filter((o) => CONFIG_LONGS.has(o.long)).map(shape),
        configOptions(name).map(shape),
      );
      assert.deepEqual(
        options.filter((o) => !CONFIG_LONGS.has(o.long)).map((o) => o.long),
        OTHER_FLAGS[name],
      );
    });
  }

  test('both take the same config flags, with the same values, but those local run has not', () => {
    const create = new Map(commands['pipelines create'].options.map((o) => [o.long, o]));
    const local = new Map(commands['local run'].options.map((o) => [o.long, o]));
    const onlyCreate = [...create.keys()].filter((long) => CONFIG_LONGS.has(long) && !local.has(long));
    assert.deepEqual(
      onlyCreate,
      CONFIG_FLAGS.filter((flag) => flag.localRun === false).map((flag) => flag.option().long),
    );
    assert.ok(onlyCreate.every((long) => long === '--trial' || long?.startsWith('--s3-')));
    for (const flag of CONFIG_FLAGS.filter((f) => f.localRun !== false)) {
      const long = flag.option().long;
      const [inCreate, inLocal] = [create.get(long), local.get(long)];
      assert.ok(inCreate !== undefined && inLocal !== undefined, `${long} on both`);
      const { description: createHelp, mandatory: createMandatory, ...createValue } = shape(inCreate);
      const { description: localHelp, mandatory: localMandatory, ...localValue } = shape(inLocal);
      assert.deepEqual(localValue, createValue, long);
      if (flag.localRun === undefined) {
        assert.deepEqual([localHelp, localMandatory], [createHelp, createMandatory], long);
      }
    }
  });

  test('every config flag sets its field, and the fields make a valid config', async () => {
    const fresh = buildProgram();
    const create = commandAt(fresh, ['pipelines', 'create']);
    let given: object | undefined;
    create.action((flags: object) => {
      given = flags;
    });
    await fresh.parseAsync(
      [
        ...['pipelines', 'create', '--project', 'shop', '--name', 'daily', '--data-source', 'events'],
        ...['--frequency', 'daily', '--timezone', 'UTC', '--from', '2024-01-01', '--to', '2024-01-31'],
        ...['--sync', '--events', 'Purchase, Signup', '--where', 'properties["plan"] == "pro"'],
        ...['--format', 'parquet', '--compression', 'zstd', '--compression-level', '5'],
        ...['--part-max-mb', '64', '--s3-bucket', 'exports', '--s3-prefix', 'analytics'],
        ...['--s3-region', 'eu-west-1', '--s3-role', 'arn:aws:iam::123456789012:role/exporter'],
        ...['--s3-external-id', 'ext-1', '--s3-encryption', 'kms', '--s3-kms-key-id', 'alias/exports'],
        '--trial',
      ],
      { from: 'user' },
    );
    assert.ok(given !== undefined);
    const fields = configFields(given);
    assert.deepEqual(Object.keys(fields).sort(), CONFIG_FLAGS.map((flag) => flag.field).sort());
    assert.deepEqual(fields.event_names, ['Purchase', 'Signup']);
    assert.equal(fields.part_max_bytes, 64 * 1024 * 1024);
    assert.equal(fields.compression_level, 5);
    // The schema is strict: a flag naming a field it has not fails here. This config breaks one rule
    // only (a trial has no sync), so every other field passed.
    assert.throws(() => parsePipelineConfig(fields), /^ConfigError: invalid pipeline config:\n {2}sync: /);
    assert.equal(parsePipelineConfig({ ...fields, sync: false }).trial, true);
  });
});

test('the tree `local run` loads alone has the same `local` commands, flags and help as the full one', () => {
  const outline = (command: Command): unknown => ({
    name: command.name(),
    help: command.helpInformation(),
    options: command.options.map(shape),
    commands: command.commands.map(outline),
  });
  const local = (program: Command) => outline(commandAt(program, ['local']));
  assert.deepEqual(local(buildLocalProgram()), local(buildProgram()));
  assert.deepEqual(
    buildLocalProgram().commands.map((c) => c.name()),
    ['local'],
  );
});

/** Parses `args` with the real program, its output kept; the error commander throws, with its output. */
async function refusal(args: readonly string[]): Promise<{ error: CommanderError; output: string }> {
  const program = buildProgram();
  let output = '';
  const quiet = (command: Command): void => {
    command.configureOutput({
      writeOut: () => undefined,
      writeErr: (text) => {
        output += text;
      },
    });
    command.commands.forEach(quiet);
  };
  quiet(program);
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (error) {
    assert.ok(error instanceof CommanderError, String(error));
    return { error, output };
  }
  assert.fail(`${args.join(' ')} was accepted`);
}

const LOCAL_RUN = [
  ...['local', 'run', '--raw', '/tmp/r', '--out', '/tmp/o', '--project', 'p', '--timezone', 'UTC'],
  ...['--frequency', 'daily', '--from', '2024-01-01', '--now', '2024-01-02T03:00:00Z'],
];
const PIPELINE = ['--project', 'p', '--name', 'n'];

/** Asserts that `parse` refuses `value` with commander's error, whose message is `message`. */
function refuses(parse: (value: string) => unknown, value: string, message: RegExp): void {
  assert.throws(
    () => parse(value),
    (error: unknown) => error instanceof InvalidArgumentError && message.test(error.message),
    value,
  );
}

describe('one parser per kind of flag value', () => {
  test('instant: ISO-8601 with a zone, as epoch milliseconds; no zone, no date or no time is refused', () => {
    fc.assert(
      fc.property(
        fc.date({
          min: new Date('1970-01-01T00:00:00Z'),
          max: new Date('9999-12-30T00:00:00Z'),
          noInvalidDate: true,
        }),
        fc.constantFrom('Z', '+00:00', '+05:30', '-08:00'),
        (date, zone) => {
          const offset =
            zone === 'Z'
              ? 0
              : (zone.startsWith('-') ? -1 : 1) *
                (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4))) *
                60_000;
          const local = new Date(date.getTime() + offset).toISOString().slice(0, -1);
          assert.equal(instant(`${local}${zone}`), date.getTime());
          refuses(instant, local, /expected an ISO-8601 instant with a zone/);
        },
      ),
    );
    for (const bad of ['2024-01-02', '2024-01-02 03:00Z', '2024-13-02T03:00:00Z', 'now', ''])
      refuses(instant, bad, /expected an ISO-8601 instant with a zone, e\.g\. 2024-01-03T06:00:00Z/);
  });

  test('day: a calendar date written YYYY-MM-DD', () => {
    fc.assert(
      fc.property(
        fc.date({
          min: new Date('1900-01-01T00:00:00Z'),
          max: new Date('9999-12-31T00:00:00Z'),
          noInvalidDate: true,
        }),
        (date) => {
          const text = date.toISOString().slice(0, 10);
          assert.equal(day(text), text);
        },
      ),
    );
    for (const bad of ['2024-02-30', '2023-02-29', '2024-1-05', '2024-01-05T00:00:00Z', 'March', ''])
      refuses(day, bad, /^expected a date written YYYY-MM-DD$/);
  });

  test('positiveInteger: whole numbers from 1; zero, negatives, fractions and words are refused', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), (n) => {
        assert.equal(positiveInteger(String(n)), n);
      }),
    );
    fc.assert(
      fc.property(fc.integer({ max: 0 }), (n) =>
        refuses(positiveInteger, String(n), /^expected a positive integer$/),
      ),
    );
    for (const bad of ['1.5', 'x', '', 'Infinity', 'NaN'])
      refuses(positiveInteger, bad, /^expected a positive integer$/);
  });

  test('positiveNumber: finite numbers above 0', () => {
    fc.assert(
      fc.property(fc.double({ min: Number.MIN_VALUE, max: 1e300, noNaN: true }), (x) => {
        assert.equal(positiveNumber(String(x)), x);
      }),
    );
    for (const bad of ['0', '-0.5', 'Infinity', 'x', ''])
      refuses(positiveNumber, bad, /^expected a positive number$/);
  });

  test('parseNamed: a value read outside commander is refused naming its source and the value', () => {
    assert.equal(parseNamed('BENCH_ROUNDS', '3', positiveInteger), 3);
    assert.throws(
      () => parseNamed('BENCH_ROUNDS', 'three', positiveInteger),
      (error: unknown) =>
        error instanceof UsageError &&
        error.message === 'BENCH_ROUNDS: expected a positive integer, not "three"',
    );
  });

  for (const [kind, args, message] of [
    [
      'instant',
      [...LOCAL_RUN, '--now', '2024-01-02'],
      /option '--now <instant>' argument '2024-01-02' is invalid\. expected an ISO-8601 instant/,
    ],
    [
      'instant',
      ['local', 'schedule', '--until', '2024-01-05'],
      /option '--until <instant>' argument '2024-01-05' is invalid\. expected an ISO-8601 instant/,
    ],
    [
      'day',
      ['reconcile', '--project', 'p', '--from', 'March'],
      /option '--from <date>' argument 'March' is invalid\. expected a date written YYYY-MM-DD/,
    ],
    [
      'day',
      ['warehouse', 'count', '--project', 'p', '--from', '2024-01-01', '--to', '2024-13-01'],
      /option '--to <date>' argument '2024-13-01' is invalid\. expected a date/,
    ],
    [
      'positive integer',
      [...LOCAL_RUN, '--workers', '0'],
      /option '--workers <n>' argument '0' is invalid\. expected a positive integer/,
    ],
    [
      'positive integer',
      ['local', 'schedule', '--until', '2024-01-05T00:00:00Z', '--workers', 'two'],
      /option '--workers <n>' argument 'two' is invalid\. expected a positive integer/,
    ],
    [
      'positive integer',
      ['runs', 'list', ...PIPELINE, '--limit', '0'],
      /option '--limit <n>' argument '0' is invalid\. expected a positive integer/,
    ],
    [
      'positive integer',
      [
        'pipelines',
        'create',
        ...PIPELINE,
        '--frequency',
        'daily',
        '--timezone',
        'UTC',
        '--from',
        '2024-01-01',
        '--part-max-mb',
        '1.5',
      ],
      /option '--part-max-mb <mb>' argument '1\.5' is invalid\. expected a positive integer/,
    ],
    [
      'positive integer',
      [...LOCAL_RUN, '--compression-level', 'max'],
      /option '--compression-level <level>' argument 'max' is invalid\. expected a positive integer/,
    ],
    [
      'choice',
      [...LOCAL_RUN, '--data-source', 'groups'],
      /option '--data-source <source>' argument 'groups' is invalid\. Allowed choices are events, people, identity/,
    ],
  ] as const) {
    test(`a bad ${kind} through the real program names the flag: ${args.slice(0, 2).join(' ')} ${args.at(-2)}`, async () => {
      const { error, output } = await refusal(args);
      assert.equal(error.code, 'commander.invalidArgument');
      assert.match(error.message, message);
      assert.match(output, message, 'the user sees it');
    });
  }

  test('a bad positive number through chaos names the flag', async () => {
    const chaos = fileURLToPath(new URL('../../src/scripts/chaos.js', import.meta.url));
    const failed = await promisify(execFile)(process.execPath, [chaos, '--rate-scale', '0']).then(
      () => assert.fail('chaos accepted --rate-scale 0'),
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(failed.code, 2);
    assert.match(
      failed.stderr,
      /option '--rate-scale <x>' argument '0' is invalid\. expected a positive number/,
    );
  });
});
