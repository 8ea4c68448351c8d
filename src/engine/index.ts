// The engine: the one front door over a data root. It extends the Store (db, content, images,
// storage driver) with the container and volume stores, and the verb modules beside this file
// (containers, images, volumes, system, prune, check) are what the CLI and the API server call.
// Adapters translate flags or query parameters into these calls and format what comes back;
// they hold no SQL and construct no store.
import { Store, type StoreOptions } from '../store/index.js';
import { ContainerStore } from '../containers/store.js';
import { VolumeStore } from '../containers/volumes.js';
import { getSnapshotter } from '../store/rootfs.js';
import type { Snapshotter } from '../snapshots/index.js';

export { defaultRoot } from '../store/index.js';
export type EngineOptions = StoreOptions;

export class Engine extends Store {
  private _containers?: ContainerStore;
  private _volumes?: VolumeStore;

  static override open(opts: EngineOptions = {}): Engine {
    return new Engine(opts);
  }

  get containers(): ContainerStore {
    return (this._containers ??= new ContainerStore(this));
  }

  get volumes(): VolumeStore {
    return (this._volumes ??= new VolumeStore(this));
  }

  get snapshots(): Snapshotter {
    return getSnapshotter(this);
  }
}
