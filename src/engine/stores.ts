import type { ObjectStore } from '../core/object-store.js';

/** The three stores a pipeline works with. */
export interface EngineStores {
  /** The raw landing zone (bucket root): `<project>/events/YYYY/MM/DD/HH/...`. */
  readonly raw: ObjectStore;
  /** The destination (bucket root plus the pipeline's prefix): output, manifests, quarantine. */
  readonly destination: ObjectStore;
  /** This pipeline's private state: ingest records, step work files, run records. */
  readonly state: ObjectStore;
  /** This pipeline's staged events (expire after the retention period; may be the state store). */
  readonly staging: ObjectStore;
}
