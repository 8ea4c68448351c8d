// What every driver shares: the metadata DB, the on-disk layout, crash-safe creation and
// removal, parent chains, and the orphan sweep.
//
// Layout under the driver root (<shale root>/<driver>):
//   metadata.db              snapshots(key, id, parent, kind, created, labels, link)
//   snapshots/<id>/fs        the snapshot's own directory (overlay: upper dir; vfs: full copy)
//   snapshots/<id>/work      overlayfs work dir (overlay drivers)
//   l/<LINK>                 -> ../snapshots/<id>/fs, a 12-letter name for mount options
//   tmp/                     staging (new-<pid>-…) and trash (rm-<pid>-…)
//
// Crash safety: a snapshot directory is built in tmp/, then ONE transaction inserts the row
// and renames the directory into snapshots/ (and makes the link). Removal deletes the row and
// renames the directory to tmp/ in one transaction, then deletes it. So after a kill -9 the DB
// opens and is consistent, and any leftovers are directories without a row, which the sweep
// in the constructor (and cleanup()) deletes; a row whose directory vanished is dropped too.
import Database from 'better-sqlite3';
import { lstatSync, mkdirSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { alreadyExists, conflict, errno, failedPrecondition, invalidArgument, notFound, ShaleError } from '../errors.js';
import type { Change, CleanupReport, DriverName, Kind, Mount, SnapshotInfo, Snapshotter, Usage } from './types.js';
import { ensureShmBacked, pidAlive, processStartTime } from '../sys/index.js';

export interface Row {
  key: string;
  id: number;
  parent: string | null;
  kind: Kind;
  created: string;
  labels: string | null;
  link: string | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS snapshots (
  key TEXT PRIMARY KEY,
  id INTEGER NOT NULL UNIQUE,          -- names snapshots/<id>; never reused
  parent TEXT REFERENCES snapshots(key),
  kind TEXT NOT NULL CHECK (kind IN ('committed', 'active', 'view')),
  created TEXT NOT NULL,
  labels TEXT,                         -- JSON object or NULL
  link TEXT UNIQUE                     -- short name in l/ (overlay drivers)
);
CREATE INDEX IF NOT EXISTS snapshots_parent ON snapshots(parent);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
-- a process about to build on a snapshot (unpack an image, prepare a container or a view on it)
-- holds it first: remove() refuses a held key while the holding process lives
CREATE TABLE IF NOT EXISTS holds (
  key TEXT NOT NULL,
  holder TEXT NOT NULL,                -- <pid>:<start time>:<random>
  PRIMARY KEY (key, holder)
);
`;

/** Staging and trash directories this process (any instance) is working on: the sweep leaves them alone. */
const inFlight = new Set<string>();

const LINK_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
function newLink(): string {
  return [...randomBytes(12)].map((b) => LINK_ALPHABET[b & 31]).join('');
}


function checkKey(key: unknown, what = 'snapshot key'): asserts key is string {
  if (typeof key !== 'string' || key === '' || key.includes('\0')) throw invalidArgument(`${what} must be a non-empty string`);
}

export function toInfo(r: Row): SnapshotInfo {
  const info: SnapshotInfo = { key: r.key, kind: r.kind, created: r.created };
  if (r.parent !== null) info.parent = r.parent;
  if (r.labels !== null) info.labels = JSON.parse(r.labels) as Record<string, string>;
  return info;
}

export abstract class BaseSnapshotter implements Snapshotter {
  abstract readonly name: DriverName;
  readonly root: string;
  protected readonly db: Database.Database;
  /** make l/<LINK> links (overlay drivers) */
  protected readonly overlayLayout: boolean;

  constructor(root: string, overlayLayout: boolean) {
    this.root = root;
    this.overlayLayout = overlayLayout;
    if (overlayLayout && /[,:\\]/.test(root)) throw invalidArgument(`storage driver root ${root} contains a comma, colon or backslash, which mount options cannot carry`, 'use a data root without those characters');
    for (const d of ['', 'snapshots', 'l', 'tmp']) mkdirSync(join(root, d), { recursive: true });
    ensureShmBacked(join(root, 'metadata.db'));
    this.db = new Database(join(root, 'metadata.db'), { timeout: 5000 });
    try {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('busy_timeout = 5000');
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('foreign_keys = ON');
      this.db.exec(SCHEMA);
    } catch (e) {
      this.db.close();
      throw new ShaleError('DataLoss', `cannot open the ${root}/metadata.db snapshot database: ${(e as Error).message}`, 'move the file away to start with an empty storage driver', { cause: e });
    }
    try {
      this.sweep();
    } catch (e) {
      this.db.close();
      throw e;
    }
  }

  // ---- layout ------------------------------------------------------------------------------

  protected dirOf(r: Row): string {
    return join(this.root, 'snapshots', String(r.id));
  }
  protected fsOf(r: Row): string {
    return join(this.dirOf(r), 'fs');
  }
  protected workOf(r: Row): string {
    return join(this.dirOf(r), 'work');
  }
  protected linkOf(r: Row): string {
    return r.link ? join(this.root, 'l', r.link) : this.fsOf(r);
  }

  // ---- metadata ----------------------------------------------------------------------------

  protected tx<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  protected row(key: string): Row | undefined {
    return this.db.prepare('SELECT * FROM snapshots WHERE key = ?').get(key) as Row | undefined;
  }

  protected get(key: string): Row {
    checkKey(key);
    const r = this.row(key);
    if (!r) throw notFound(`snapshot ${key} does not exist`, `check the key; list the driver's snapshots to see which exist`);
    return r;
  }

  protected getActive(key: string, op: string): Row {
    const r = this.get(key);
    if (r.kind !== 'active') throw failedPrecondition(`cannot ${op} snapshot ${key}: it is ${r.kind}, not active`, r.kind === 'committed' ? 'prepare an active snapshot on top of it' : 'views are read-only; use prepare for a writable snapshot');
    return r;
  }

  /** The committed parents of r, nearest first. */
  protected chain(r: Row): Row[] {
    const out: Row[] = [];
    let p = r.parent;
    while (p !== null) {
      const pr = this.row(p);
      if (!pr) throw new ShaleError('DataLoss', `snapshot ${r.key}: parent ${p} is missing from the metadata`, 'remove the snapshot; its chain is broken');
      out.push(pr);
      p = pr.parent;
      if (out.length > 10000) throw new ShaleError('DataLoss', `snapshot ${r.key}: parent chain loops`);
    }
    return out;
  }

  /** The rows whose directories make up r's content, topmost first. */
  protected layers(r: Row): Row[] {
    const c = this.chain(r);
    return r.kind === 'committed' ? [r, ...c] : c;
  }

  exists(key: string): boolean {
    return typeof key === 'string' && this.row(key) !== undefined;
  }

  async stat(key: string): Promise<SnapshotInfo> {
    return toInfo(this.get(key));
  }

  async list(): Promise<SnapshotInfo[]> {
    return (this.db.prepare('SELECT * FROM snapshots ORDER BY id').all() as Row[]).map(toInfo);
  }

  lowerDirs(key: string): string[] {
    return this.layers(this.get(key)).map((l) => this.fsOf(l));
  }

  // ---- creation ----------------------------------------------------------------------------

  /** Fill stage/fs (and stage/work) for a new snapshot of this kind on parent. */
  protected abstract populate(stage: string, kind: Kind, parent: Row | undefined): Promise<void>;
  protected abstract mountsOf(r: Row): Mount[];

  protected checkParent(parent: string | undefined, key: string): Row | undefined {
    if (parent === undefined) return undefined;
    checkKey(parent, 'parent key');
    const p = this.row(parent);
    if (!p) throw notFound(`parent snapshot ${parent} of ${key} does not exist`, 'commit or unpack the parent first');
    if (p.kind !== 'committed') throw failedPrecondition(`parent snapshot ${parent} of ${key} is ${p.kind}; only committed snapshots can be parents`, `commit ${parent} first`);
    return p;
  }

  protected async create(kind: Kind, key: string, parent: string | undefined, labels: Record<string, string> | undefined): Promise<Row> {
    checkKey(key);
    if (labels !== undefined && (typeof labels !== 'object' || labels === null || Object.values(labels).some((v) => typeof v !== 'string'))) {
      throw invalidArgument(`labels of snapshot ${key} must map strings to strings`);
    }
    if (this.row(key)) throw alreadyExists(`snapshot ${key} already exists`, 'remove it first or choose another key');
    const p = this.checkParent(parent, key);
    const stage = join(this.root, 'tmp', `new-${process.pid}-${randomBytes(6).toString('hex')}`);
    inFlight.add(stage);
    try {
      await mkdir(stage);
      await this.populate(stage, kind, p);
      return this.tx(() => {
        // re-check under the write lock: another process may have raced us
        if (this.row(key)) throw alreadyExists(`snapshot ${key} already exists`, 'remove it first or choose another key');
        this.checkParent(parent, key);
        const id = (this.db.prepare("INSERT INTO meta (k, v) VALUES ('next_id', 1) ON CONFLICT (k) DO UPDATE SET v = v + 1 RETURNING v").get() as { v: number }).v;
        let link: string | null = null;
        if (this.overlayLayout) {
          do link = newLink();
          while (this.db.prepare('SELECT 1 FROM snapshots WHERE link = ?').get(link));
        }
        const r: Row = { key, id, parent: p ? p.key : null, kind, created: new Date().toISOString(), labels: labels ? JSON.stringify(labels) : null, link };
        this.db.prepare('INSERT INTO snapshots (key, id, parent, kind, created, labels, link) VALUES (@key, @id, @parent, @kind, @created, @labels, @link)').run(r);
        const dir = this.dirOf(r);
        rmSync(dir, { recursive: true, force: true }); // a leftover of a crash with the same id can't exist, but be sure
        renameSync(stage, dir);
        try {
          if (link) symlinkSync(`../snapshots/${id}/fs`, join(this.root, 'l', link));
        } catch (e) {
          renameSync(dir, stage); // the transaction rolls back; put the stage back for the finally below
          throw e;
        }
        return r;
      });
    } finally {
      inFlight.delete(stage);
      await rm(stage, { recursive: true, force: true });
    }
  }

  async prepare(key: string, parent?: string, labels?: Record<string, string>): Promise<Mount[]> {
    return this.mountsOf(await this.create('active', key, parent, labels));
  }

  async view(key: string, parent?: string, labels?: Record<string, string>): Promise<Mount[]> {
    return this.mountsOf(await this.create('view', key, parent, labels));
  }

  async mounts(key: string): Promise<Mount[]> {
    return this.mountsOf(this.get(key));
  }

  async commit(name: string, key: string, labels?: Record<string, string>): Promise<void> {
    checkKey(name, 'committed name');
    this.getActive(key, 'commit');
    this.tx(() => {
      const r = this.getActive(key, 'commit');
      if (this.row(name)) throw alreadyExists(`cannot commit ${key} as ${name}: a snapshot named ${name} already exists`, 'choose another name or remove the existing one');
      const l = labels ? JSON.stringify(labels) : r.labels;
      this.db.prepare("UPDATE snapshots SET key = ?, kind = 'committed', created = ?, labels = ? WHERE key = ?").run(name, new Date().toISOString(), l, key);
    });
  }

  /**
   * Hold keys (existing or about to be made) against remove() until release(): whoever builds on
   * a snapshot holds it before it looks for it, so a cleanup that listed it as unused earlier
   * cannot take it in between. A holder that died holds nothing.
   */
  hold(keys: string[]): () => void {
    const holder = `${process.pid}:${processStartTime(process.pid)}:${randomBytes(4).toString('hex')}`;
    this.tx(() => {
      const ins = this.db.prepare('INSERT OR IGNORE INTO holds (key, holder) VALUES (?, ?)');
      for (const k of new Set(keys)) ins.run(k, holder);
    });
    let released = false;
    return () => {
      if (released) return;
      released = true;
      try {
        this.tx(() => this.db.prepare('DELETE FROM holds WHERE holder = ?').run(holder));
      } catch { /* closed or full: a dead holder holds nothing, and the next remove drops the row */ }
    };
  }

  /** Inside a transaction: a live process holding key, if any (rows of dead holders are dropped). */
  private liveHolder(key: string): number | undefined {
    const rows = this.db.prepare('SELECT holder FROM holds WHERE key = ?').all(key) as { holder: string }[];
    for (const { holder } of rows) {
      const [pid, start] = holder.split(':');
      if (pidAlive(Number(pid)) && processStartTime(Number(pid)) === start) return Number(pid);
      this.db.prepare('DELETE FROM holds WHERE key = ? AND holder = ?').run(key, holder);
    }
    return undefined;
  }

  async remove(key: string): Promise<void> {
    const trash = this.tx(() => {
      const r = this.get(key);
      const held = this.liveHolder(key);
      if (held !== undefined) throw conflict(`cannot remove snapshot ${key}: process ${held} is building on it`, 'try again when it is done');
      const kids = this.db.prepare('SELECT key FROM snapshots WHERE parent = ? ORDER BY id').all(key) as { key: string }[];
      if (kids.length) {
        const names = kids.slice(0, 5).map((k) => k.key).join(', ') + (kids.length > 5 ? ', …' : '');
        throw conflict(`cannot remove snapshot ${key}: ${kids.length} snapshot(s) are built on it (${names})`, 'remove those first');
      }
      this.db.prepare('DELETE FROM snapshots WHERE key = ?').run(key);
      return this.detach(r);
    });
    if (!trash) return;
    inFlight.add(trash);
    try {
      await rm(trash, { recursive: true, force: true });
    } finally {
      inFlight.delete(trash);
    }
  }

  /** Inside a transaction: unlink r's link and move its directory to tmp/ (returned, to delete after commit). */
  private detach(r: Row): string | undefined {
    if (r.link) {
      try { unlinkSync(join(this.root, 'l', r.link)); } catch (e) { if (errno(e) !== 'ENOENT') throw e; }
    }
    const trash = join(this.root, 'tmp', `rm-${process.pid}-${r.id}-${randomBytes(4).toString('hex')}`);
    try {
      renameSync(this.dirOf(r), trash);
      return trash;
    } catch (e) {
      if (errno(e) === 'ENOENT') return undefined;
      throw e;
    }
  }

  // ---- crash recovery ----------------------------------------------------------------------

  protected sweep(): CleanupReport {
    const report: CleanupReport = { removedKeys: [], removedPaths: [] };
    const trash: string[] = [];
    this.tx(() => {
      const rows = this.db.prepare('SELECT * FROM snapshots ORDER BY id').all() as Row[];
      const byKey = new Map(rows.map((r) => [r.key, r]));
      // rows whose directory is gone, and every snapshot built on them: the chain is broken
      const broken = new Set<string>();
      for (const r of rows) if (!existsLink(this.fsOf(r))) broken.add(r.key);
      for (let grew = true; grew; ) {
        grew = false;
        for (const r of rows) if (!broken.has(r.key) && r.parent !== null && (broken.has(r.parent) || !byKey.has(r.parent))) { broken.add(r.key); grew = true; }
      }
      // delete children before parents (foreign keys)
      for (const r of [...rows].reverse()) {
        if (!broken.has(r.key)) continue;
        this.db.prepare('DELETE FROM snapshots WHERE key = ?').run(r.key);
        const t = this.detach(r);
        if (t) trash.push(t);
        report.removedKeys.push(r.key);
      }
      const live = rows.filter((r) => !broken.has(r.key));
      // directories without a row
      const ids = new Set(live.map((r) => String(r.id)));
      for (const name of readdirSync(join(this.root, 'snapshots'))) {
        if (ids.has(name)) continue;
        const t = join(this.root, 'tmp', `orphan-${process.pid}-${name}-${randomBytes(4).toString('hex')}`);
        renameSync(join(this.root, 'snapshots', name), t);
        trash.push(t);
        report.removedPaths.push(join(this.root, 'snapshots', name));
      }
      // links: drop strays, repair missing ones of live snapshots
      const links = new Map(live.filter((r) => r.link).map((r) => [r.link as string, r]));
      for (const name of readdirSync(join(this.root, 'l'))) {
        const r = links.get(name);
        const p = join(this.root, 'l', name);
        if (r && readlinkOr(p) === `../snapshots/${r.id}/fs`) continue;
        unlinkSync(p);
        if (!r) report.removedPaths.push(p);
      }
      if (this.overlayLayout) {
        for (const r of live) {
          if (!r.link) continue;
          const p = join(this.root, 'l', r.link);
          if (!existsLink(p)) symlinkSync(`../snapshots/${r.id}/fs`, p);
        }
      }
      // staging and trash left by processes that are gone
      for (const name of readdirSync(join(this.root, 'tmp'))) {
        const p = join(this.root, 'tmp', name);
        if (trash.includes(p) || inFlight.has(p)) continue;
        const pid = Number(/^(?:new|rm|orphan)-(\d+)-/.exec(name)?.[1]);
        if (pid !== process.pid && pidAlive(pid)) continue;
        trash.push(p);
        report.removedPaths.push(p);
      }
    });
    for (const t of trash) rmSync(t, { recursive: true, force: true });
    return report;
  }

  async cleanup(): Promise<CleanupReport> {
    return this.sweep();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  // ---- per driver --------------------------------------------------------------------------

  abstract usage(key: string): Promise<Usage>;
  abstract changes(key: string): Promise<Change[]>;
  abstract diffTar(key: string): Readable;
  abstract applyTar(key: string, tar: AsyncIterable<Buffer>): Promise<{ size: number }>;

  /** The snapshot whose own directory holds the diff (changes, diffTar, usage): active or committed. */
  protected diffRow(key: string, op: string): Row {
    const r = this.get(key);
    if (r.kind === 'view') throw failedPrecondition(`cannot ${op} of view ${key}: a view has no changes of its own`, 'use an active or committed snapshot');
    return r;
  }
}

function readlinkOr(p: string): string | undefined {
  try {
    return readlinkSync(p);
  } catch {
    return undefined;
  }
}

/** lstat-exists; only ENOENT/ENOTDIR count as missing (EACCES and the like are thrown, never taken for loss). */
function existsLink(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch (e) {
    if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') return false;
    throw e;
  }
}
