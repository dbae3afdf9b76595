import { join } from 'node:path';
import { FsObjectStore } from '../adapters/fs-object-store.js';
import type { EngineStores } from '../engine/stores.js';

/** Folders of a local run: the landing zone, the destination bucket root, the pipeline's state. */
export interface LocalFolders {
  readonly raw: string;
  readonly out: string;
  readonly state: string;
}

/** Default state folder: under the output root in a `_`-prefixed folder that readers ignore. */
export function defaultStateFolder(out: string, projectId: string, pipeline: string): string {
  return join(out, '_state', projectId, pipeline);
}

/** Where a pipeline's staged events live locally: apart from its state, as in the state bucket (`staging/`). */
export function stagingFolder(state: string): string {
  return join(state, 'staging');
}

/**
 * Engine stores over local folders. `clock` stamps what the pipeline writes (a simulated clock makes
 * write times, and so the lifecycle rules applied locally, follow simulated time); the landing zone
 * keeps the times it was written with.
 */
export function localStores(folders: LocalFolders, clock?: () => number): EngineStores {
  return {
    raw: new FsObjectStore(folders.raw),
    destination: new FsObjectStore(folders.out, clock),
    state: new FsObjectStore(folders.state, clock),
    staging: new FsObjectStore(stagingFolder(folders.state), clock),
  };
}
