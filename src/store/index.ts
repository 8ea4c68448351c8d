// The stores of one data root: the metadata DB, the content store, the image store and (opened on
// first use) the storage driver. Everything below the engine (containers, builder, registry, image
// transports) works on a Store; the Engine (src/engine) extends it with the container and volume
// stores and the verbs the CLI and the API server call.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { homedir } from 'node:os';
import { ContentStore } from '../content/index.js';
import { openDB, type DB } from '../db.js';
import { ImageStore } from '../images/store.js';

export interface StoreOptions {
  root?: string;
  storageDriver?: string;
  runtime?: string;
}

export function defaultRoot(): string {
  if (process.env.SHALE_ROOT) return process.env.SHALE_ROOT;
  if (process.getuid?.() === 0) return '/var/lib/shale';
  const xdg = process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(xdg, 'shale');
}

export class Store {
  readonly root: string;
  readonly db: DB;
  readonly content: ContentStore;
  readonly images: ImageStore;
  readonly opts: StoreOptions;
  private closers: (() => void)[] = [];

  protected constructor(opts: StoreOptions) {
    this.opts = opts;
    this.root = opts.root ?? defaultRoot();
    mkdirSync(this.root, { recursive: true, mode: 0o711 });
    this.db = openDB(this.root);
    this.content = new ContentStore(this.root);
    this.images = new ImageStore(this.db, this.content);
  }

  static open(opts: StoreOptions = {}): Store {
    return new Store(opts);
  }

  onClose(fn: () => void): void {
    this.closers.push(fn);
  }

  close(): void {
    for (const c of this.closers.reverse()) {
      try { c(); } catch { /* closing anyway */ }
    }
    this.closers = [];
    this.db.close();
  }
}
