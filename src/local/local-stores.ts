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

/** Engine stores over local folders. */
export function localStores(folders: LocalFolders): EngineStores {
  const state = new FsObjectStore(folders.state);
  return {
    raw: new FsObjectStore(folders.raw),
    destination: new FsObjectStore(folders.out),
    state,
    staging: state,
  };
}
