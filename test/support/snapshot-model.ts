/**
 * Test helpers for snapshot pipelines: what a reader following the manifest sees, and the documented
 * semantics computed naively (whole maps in memory, no shards or streams) to compare the engine with.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { parseIdentityLine } from '../../src/core/identity.js';
import { rawHourPrefix, snapshotFolder, snapshotManifestKey } from '../../src/core/layout.js';
import { getJson, type ObjectStore } from '../../src/core/object-store.js';
import {
  applyUpdate,
  emptyFoldCounts,
  mergeProfile,
  type ProfileUpdate,
  type Properties,
  parseProfileUpdate,
} from '../../src/core/profiles.js';
import type { SnapshotManifest } from '../../src/core/records.js';
import { HOUR_MS } from '../../src/core/windows.js';
import { readTree } from './fixtures.js';

/** The snapshot a reader following a pipeline's manifest sees: distinct id -> line. */
export async function readSnapshot(
  out: ObjectStore,
  projectId: string,
  source: 'people' | 'identity',
  pipeline = `${source}-daily`,
): Promise<Map<string, unknown>> {
  const manifest = await getJson<SnapshotManifest>(out, snapshotManifestKey(projectId, source, pipeline));
  assert.ok(manifest, 'a manifest is in place');
  const rows = new Map<string, unknown>();
  let records = 0;
  for (const part of manifest.parts) {
    const bytes = await out.getBytes(`${snapshotFolder(projectId, source)}${part.file}`);
    assert.ok(bytes, `part ${part.file} listed by the manifest exists`);
    const lines = gunzipSync(bytes).toString('utf8').split('\n').filter(Boolean);
    assert.equal(lines.length, part.records);
    for (const line of lines) {
      const row = JSON.parse(line) as {
        distinct_id: string;
        properties?: unknown;
        resolved_distinct_id?: string;
      };
      assert.ok(!rows.has(row.distinct_id), `${row.distinct_id} appears once`);
      rows.set(row.distinct_id, source === 'people' ? row.properties : row.resolved_distinct_id);
      records += 1;
    }
  }
  assert.equal(records, manifest.records);
  return rows;
}

/** The documented semantics, computed naively over the whole landing zone, run by run. */
export async function modelSnapshot(
  raw: string,
  projectId: string,
  start: number,
  runs: readonly number[],
): Promise<Map<string, unknown>> {
  const canonical = new Map<string, string>(); // every id -> canonical (naive: rewritten in full)
  let profiles = new Map<string, Properties>();
  let from = start;
  const lines = async (source: 'people' | 'identity', hour: number) => {
    const dirPath = join(raw, rawHourPrefix(projectId, hour, source));
    const files = await readdir(dirPath).catch(() => [] as string[]);
    const all: Buffer[] = [];
    for (const file of files.sort()) {
      const bytes = (await readTree(dirPath)).get(file) as Buffer;
      const text = file.endsWith('.gz') ? gunzipSync(bytes) : bytes;
      all.push(
        ...text
          .toString('utf8')
          .split('\n')
          .slice(0, -1)
          .map((l) => Buffer.from(l)),
      );
    }
    return all;
  };
  for (const cut of runs) {
    const links: { time: number; order: number; ids: readonly string[]; target?: string }[] = [];
    const updates: { time: number; order: number; update: ProfileUpdate }[] = [];
    for (let hour = from; hour < cut; hour += HOUR_MS) {
      for (const line of await lines('identity', hour)) {
        const parsed = parseIdentityLine(line);
        if (parsed.ok) links.push({ time: parsed.link.timeMs ?? hour, order: links.length, ...parsed.link });
      }
      for (const line of await lines('people', hour)) {
        const parsed = parseProfileUpdate(line);
        if (parsed.ok)
          updates.push({ time: parsed.update.timeMs ?? hour, order: updates.length, update: parsed.update });
      }
    }
    links.sort((a, b) => a.time - b.time || a.order - b.order);
    const find = (id: string) => canonical.get(id) ?? id;
    for (const link of links) {
      const roots = [...new Set(link.ids.map(find))];
      const winner = link.target === undefined ? [...roots].sort()[0]! : find(link.target);
      for (const id of link.ids) if (!canonical.has(id)) canonical.set(id, id);
      for (const [id, c] of canonical) if (roots.includes(c)) canonical.set(id, winner);
    }
    const moved = new Map<string, Properties>();
    for (const [id, properties] of profiles) if (find(id) !== id) moved.set(id, properties);
    const next = new Map<string, Properties>();
    for (const [id, properties] of profiles) if (!moved.has(id)) next.set(id, properties);
    for (const [id, properties] of [...moved].sort(([a], [b]) =>
      JSON.stringify(a) < JSON.stringify(b) ? -1 : 1,
    ))
      next.set(find(id), mergeProfile(next.get(find(id)), properties));
    profiles = next;
    updates.sort((a, b) => a.time - b.time || a.order - b.order);
    for (const { update } of updates) {
      const id = find(update.distinctId);
      const result = applyUpdate(profiles.get(id), update, emptyFoldCounts());
      if (result === undefined) profiles.delete(id);
      else profiles.set(id, result);
    }
    from = cut;
  }
  return new Map([...profiles].map(([id, p]) => [id, JSON.parse(JSON.stringify(p))]));
}
