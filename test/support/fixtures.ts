import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { IngestRecord } from '../../src/core/records.js';

/** A temp folder removed by `cleanup`. */
export async function tempFolder(name: string): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `mp-${name}-`));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}

/** Every file under `dir` (relative path -> bytes), for comparing whole output trees. */
export async function readTree(dir: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const visit = async (folder: string) => {
    let entries: string[];
    try {
      entries = await readdir(folder);
    } catch {
      return;
    }
    for (const name of entries.sort()) {
      const path = join(folder, name);
      if ((await stat(path)).isDirectory()) await visit(path);
      else files.set(relative(dir, path), await readFile(path));
    }
  };
  await visit(dir);
  return files;
}

/** The records of every output part of a project, grouped by day folder (`YYYY-MM-DD`), sorted. */
export async function outputRecords(out: string, projectId: string): Promise<Map<string, string[]>> {
  const root = join(out, projectId, 'mp_master_event');
  const days = new Map<string, string[]>();
  for (const [path, bytes] of await readTree(root)) {
    if (!path.endsWith('.json.gz')) continue;
    const day = path.split('/').slice(0, 3).join('-');
    const lines = gunzipSync(bytes)
      .toString('utf8')
      .split('\n')
      .filter((l) => l.length > 0);
    days.set(day, [...(days.get(day) ?? []), ...lines.map((l) => JSON.stringify(JSON.parse(l)))]);
  }
  for (const list of days.values()) list.sort();
  return days;
}

/**
 * Output files only (the destination minus the pipeline state folder). A snapshot's symlink file lists
 * its parts by address, which names the destination: here each line keeps the key below the project.
 */
export async function outputTree(out: string): Promise<Map<string, Buffer>> {
  const tree = await readTree(out);
  for (const [path, bytes] of tree) {
    if (path.startsWith('_state/')) tree.delete(path);
    else if (path.endsWith('/symlink.txt'))
      tree.set(path, Buffer.from(bytes.toString('utf8').replace(/^.*\/(?=[^/]+\/[^/]+\/[^/]+$)/gm, '')));
  }
  return tree;
}

/** Asserts two file trees hold the same paths with byte-identical contents. */
export function assertSameTree(
  actual: ReadonlyMap<string, Buffer>,
  expected: ReadonlyMap<string, Buffer>,
): void {
  assert.deepEqual([...actual.keys()], [...expected.keys()]);
  for (const [path, bytes] of actual) assert.ok(bytes.equals(expected.get(path)!), `${path} differs`);
}

/** An ingest record of an arrival hour that read nothing, with `overrides` applied. */
export function ingestRecord(overrides: Partial<IngestRecord>): IngestRecord {
  return {
    arrival_hour: '2024-01-01T10:00Z',
    arrival_day: '2024-01-01',
    sources: [],
    source_lines: 0,
    valid: 0,
    quarantined: 0,
    quarantine_reasons: {},
    quarantine_parts: [],
    staged: [],
    owners: {},
    set_aside: [],
    pieces: 1,
    ...overrides,
  };
}
