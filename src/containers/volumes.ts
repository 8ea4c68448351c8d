// Local volumes: <root>/volumes/<name>/_data, recorded in the metadata DB. They bypass the
// storage driver (a bind mount into the container), outlive the containers that use them,
// and may be shared. An empty named volume is filled from the image's content at its mount
// path on first use, as docker does.
import { emit } from '../store/events.js';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tx, type DB } from '../db.js';
import { alreadyExists, conflict, errno, invalidArgument, notFound } from '../errors.js';
import type { Store } from '../store/index.js';
import { dirUsage } from '../snapshots/usage.js';
import { pidAlive } from '../sys/index.js';
import { ensureSchema, type Container } from './store.js';

export interface Volume {
  name: string;
  driver: string;
  created: string;
  labels: Record<string, string>;
  anonymous: boolean;
}

interface Row { name: string; driver: string; created: string; labels: string | null; anonymous: number }


const fromRow = (r: Row): Volume => ({ name: r.name, driver: r.driver, created: r.created, labels: r.labels ? JSON.parse(r.labels) : {}, anonymous: !!r.anonymous });

export const VOLUME_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export class VolumeStore {
  readonly db: DB;
  readonly root: string;
  private readonly engineRoot: string;
  constructor(readonly engine: Store) {
    this.db = engine.db;
    ensureSchema(this.db);
    this.engineRoot = resolve(engine.root);
    this.root = join(this.engineRoot, 'volumes');
  }

  dir(name: string): string {
    return join(this.root, name);
  }
  dataPath(name: string): string {
    return join(this.root, name, '_data');
  }

  get(name: string): Volume | undefined {
    const r = this.db.prepare('SELECT * FROM volumes WHERE name = ?').get(name) as Row | undefined;
    return r && fromRow(r);
  }

  list(): Volume[] {
    return (this.db.prepare('SELECT * FROM volumes ORDER BY name').all() as Row[]).map(fromRow);
  }

  /** Create a volume (a random name when none is given). An existing named volume is returned as is, like docker. */
  create(name?: string, opts: { labels?: Record<string, string>; anonymous?: boolean; driver?: string } = {}): Volume {
    const driver = opts.driver ?? 'local';
    if (driver !== 'local') throw invalidArgument(`volume driver ${driver} is not supported`, 'only the local driver exists');
    const n = name ?? randomBytes(32).toString('hex');
    if (!VOLUME_NAME_RE.test(n)) throw invalidArgument(`create ${n}: "${n}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`);
    const existing = this.get(n);
    if (existing) {
      if (name === undefined) throw alreadyExists(`volume ${n} already exists`);
      return existing;
    }
    this.sweepTrash();
    mkdirSync(this.dataPath(n), { recursive: true, mode: 0o755 });
    tx(this.db, () => {
      this.db.prepare('INSERT OR IGNORE INTO volumes (name, driver, created, labels, anonymous) VALUES (?, ?, ?, ?, ?)').run(n, driver, new Date().toISOString(), JSON.stringify(opts.labels ?? {}), opts.anonymous ? 1 : 0);
    });
    emit(this.engineRoot, 'volume', 'create', n, { driver });
    return this.get(n)!;
  }

  /** Containers (any state) whose mounts name this volume. */
  users(name: string, containers: Container[]): Container[] {
    return containers.filter((c) => c.hostConfig.Mounts.some((m) => m.Type === 'volume' && m.Source === name));
  }

  remove(name: string, containers: Container[], opts: { force?: boolean } = {}): void {
    const v = this.get(name);
    if (!v) {
      if (opts.force) return;
      throw notFound(`get ${name}: no such volume`);
    }
    const users = this.users(name, containers);
    if (users.length) throw conflict(`remove ${name}: volume is in use - [${users.map((c) => c.id).join(', ')}]`, 'remove the containers that use it first');
    // the files go out of reach in the same transaction as the row (a rename, on the same
    // filesystem), so a kill at any point can never bring the old data back under the name
    const trash = join(this.trashDir(), `${name}-${process.pid}-${randomBytes(4).toString('hex')}`);
    mkdirSync(this.trashDir(), { recursive: true, mode: 0o700 });
    tx(this.db, () => {
      this.db.prepare('DELETE FROM volumes WHERE name = ?').run(name);
      try {
        renameSync(this.dir(name), trash);
      } catch (e) {
        if (errno(e) !== 'ENOENT') throw e;
      }
    });
    rmSync(trash, { recursive: true, force: true });
    emit(this.engineRoot, 'volume', 'destroy', name, { driver: v.driver });
  }

  private trashDir(): string {
    return join(this.root, '.trash');
  }

  /** Remove what a killed `volume rm` left in the trash (its process is gone). */
  sweepTrash(): number {
    let n = 0;
    let names: string[];
    try {
      names = readdirSync(this.trashDir());
    } catch {
      return 0;
    }
    for (const t of names) {
      const pid = Number(/-(\d+)-[0-9a-f]{8}$/.exec(t)?.[1]);
      if (pid && pid !== process.pid && pidAlive(pid)) continue;
      if (pid === process.pid) continue;
      rmSync(join(this.trashDir(), t), { recursive: true, force: true });
      n++;
    }
    return n;
  }

  isEmpty(name: string): boolean {
    const p = this.dataPath(name);
    return !existsSync(p) || readdirSync(p).length === 0;
  }

  async size(name: string): Promise<number> {
    try {
      return (await dirUsage(this.dataPath(name))).size;
    } catch {
      return 0;
    }
  }
}
