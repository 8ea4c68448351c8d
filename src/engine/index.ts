// The composition root: one Engine per data root, holding the stores every command uses.
// Nothing else opens databases or picks drivers, so the CLI, tests and (later) the API
// server all see the same wiring.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { homedir } from 'node:os';
import { ContentStore } from '../content/index.js';
import { openDB, type DB } from '../db.js';
import { ImageStore } from '../images/store.js';

export interface EngineOptions {
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

export class Engine {
  readonly root: string;
  readonly db: DB;
  readonly content: ContentStore;
  readonly images: ImageStore;
  readonly opts: EngineOptions;
  private closers: (() => void)[] = [];

  private constructor(opts: EngineOptions) {
    this.opts = opts;
    this.root = opts.root ?? defaultRoot();
    mkdirSync(this.root, { recursive: true, mode: 0o711 });
    this.db = openDB(this.root);
    this.content = new ContentStore(this.root);
    this.images = new ImageStore(this.db, this.content);
  }

  static open(opts: EngineOptions = {}): Engine {
    return new Engine(opts);
  }

  onClose(fn: () => void): void {
    this.closers.push(fn);
  }

  close(): void {
    for (const c of this.closers.reverse()) {
      try { c(); } catch { /* closing anyway */ }
    }
    this.db.close();
  }
}
