/**
 * A small fault-injection run (`npm run chaos` is the full one): the four pipelines of the
 * demonstration over one day of data, cleanly and with faults, through the synthesized workflows.
 * (`npm run chaos -- --faults none` checks that two clean runs of a seed write the same bytes.)
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import {
  DEFAULT_FAULT_KINDS,
  DEFAULT_FAULT_RATES,
  FAULT_KINDS,
  type FaultKind,
} from '../../src/chaos/faults.js';
import { type ChaosScenario, firstDifference, runChaosSeed } from '../../src/chaos/runner.js';
import { type Moto, startMoto } from '../../src/local/moto.js';
import { tempFolder } from '../support/fixtures.js';

/** One day of data, operated for two: about 30 steps per run. */
const SMALL: ChaosScenario = { dataDays: 1, operatedDays: 2, eventsPerHour: 30, profileUpdatesPerHour: 15 };
/** A short run makes fewer calls: faults strike more often, so every kind is met. */
const RATES = Object.fromEntries(
  FAULT_KINDS.map((kind) => [kind, Math.min(1, DEFAULT_FAULT_RATES[kind] * 3)]),
) as Record<FaultKind, number>;

describe('a chaos run', () => {
  let moto: Moto;
  let work: { path: string; cleanup: () => Promise<void> };
  before(async () => {
    moto = await startMoto();
    work = await tempFolder('chaos');
  });
  after(async () => {
    await moto.stop();
    await work.cleanup();
  });

  test('faults of every kind the engine survives leave the output, the commits and the balance as a clean run', async () => {
    // Two seeds at once: each run waits on the emulator about a third of the time.
    const reports = await Promise.all(
      [2, 3].map((seed) =>
        runChaosSeed({
          seed,
          faults: DEFAULT_FAULT_KINDS,
          rates: RATES,
          scenario: SMALL,
          moto,
          workDir: join(work.path, `seed-${seed}`),
        }),
      ),
    );

    // A runner that were not deterministic would fail here too: its clean and chaos runs would differ.
    const injected = new Map<FaultKind, number>();
    for (const report of reports) {
      assert.deepEqual(report.problems, [], `seed ${report.seed}`);
      assert.ok(report.steps >= 25, `seed ${report.seed}: ${report.steps} steps`);
      assert.equal(report.lost + report.duplicated + report.committedTwice, 0);
      for (const [kind, n] of report.faults) injected.set(kind, (injected.get(kind) ?? 0) + n);
    }
    for (const kind of DEFAULT_FAULT_KINDS) assert.ok((injected.get(kind) ?? 0) > 0, `no ${kind} injected`);
  });

  test('the output comparison names the first object that differs', async () => {
    const [a, b] = [join(work.path, 'tree-a'), join(work.path, 'tree-b')];
    for (const dir of [a, b]) {
      await mkdir(join(dir, 'p/2024/11/01'), { recursive: true });
      await writeFile(join(dir, 'p/2024/11/01/part-1.json.gz'), 'same');
      // A temp file of a write that never completed is not an object.
      await writeFile(join(dir, `p/2024/11/01/.part-9.json.gz.tmp-${dir.slice(-1)}`), dir);
      // A warehouse symlink file names its tree's own folder.
      await mkdir(join(dir, 'p/_warehouse/t'), { recursive: true });
      await writeFile(
        join(dir, 'p/_warehouse/t/symlink.txt'),
        `${pathToFileURL(dir).href}/p/2024/11/01/part-1.json.gz\n`,
      );
    }
    assert.equal(await firstDifference(a, b), undefined);

    await writeFile(join(b, 'p/2024/11/01/part-0.json.gz'), 'new');
    await writeFile(join(b, 'p/2024/11/01/part-1.json.gz'), 'other');
    assert.equal(await firstDifference(a, b), 'p/2024/11/01/part-0.json.gz is extra');
    await writeFile(join(a, 'p/2024/11/01/part-0.json.gz'), 'new');
    assert.match((await firstDifference(a, b)) ?? '', /^p\/2024\/11\/01\/part-1\.json\.gz has other bytes/);
    await writeFile(join(a, 'p/2024/11/01/part-1.json.gz'), 'other');
    await writeFile(
      join(b, 'p/_warehouse/t/symlink.txt'),
      `${pathToFileURL(b).href}/p/2024/11/01/part-2.json.gz\n`,
    );
    assert.match((await firstDifference(a, b)) ?? '', /^p\/_warehouse\/t\/symlink\.txt has other bytes/);
  });
});
