// Container records in the metadata DB: one row per container with docker's Config,
// HostConfig and State as JSON. The CLI, the detached shim and `system check` all read and
// write these rows; every state change is one transaction.
import { randomBytes } from 'node:crypto';
import { processStartTime } from '../sys/index.js';
import { join, resolve } from 'node:path';
import { tx, type DB } from '../db.js';
import { alreadyExists, conflict, invalidArgument, notFound } from '../errors.js';
import type { Store } from '../store/index.js';
import type { ContainerConfig } from '../oci/index.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS containers (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  image_id TEXT NOT NULL,
  config TEXT NOT NULL,
  host_config TEXT NOT NULL,
  state TEXT NOT NULL,
  created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS containers_image ON containers(image_id);
CREATE TABLE IF NOT EXISTS container_locks (
  container_id TEXT PRIMARY KEY,  -- one holder at a time: a copy in or out, an export, a removal
  op TEXT NOT NULL,
  pid INTEGER NOT NULL,           -- the holder; a lock whose process is gone (or was replaced) is stale
  pid_start TEXT NOT NULL,
  token TEXT NOT NULL,
  created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS volumes (
  name TEXT PRIMARY KEY,
  driver TEXT NOT NULL,
  created TEXT NOT NULL,
  labels TEXT,
  anonymous INTEGER NOT NULL DEFAULT 0
);
`;

const ready = new WeakSet<DB>();
export function ensureSchema(db: DB): void {
  if (ready.has(db)) return;
  db.exec(SCHEMA);
  ready.add(db);
}

/** A mount as the user asked for it (-v / --mount / image VOLUME). */
export interface MountSpec {
  Type: 'volume' | 'bind';
  /** volume name or host path */
  Source: string;
  Target: string;
  ReadOnly?: boolean;
  /** an anonymous volume made for this container (rm -v removes it) */
  Anonymous?: boolean;
}

export interface HostConfig {
  AutoRemove: boolean;
  NetworkMode: string;
  Mounts: MountSpec[];
  Binds: string[];
  LogConfig: { Type: string; Config: Record<string, string> };
  Runtime?: string;
  ReadonlyRootfs?: boolean;
  /** --tmpfs: mount path -> options */
  Tmpfs?: Record<string, string>;
  CapAdd?: string[];
  CapDrop?: string[];
  Privileged?: boolean;
  /** -m: bytes (0 = no limit); --memory-swap: memory + swap bytes (-1 = unlimited) */
  Memory?: number;
  MemorySwap?: number;
  /** --cpus in units of 1e-9 CPUs; --cpu-shares; --cpuset-cpus */
  NanoCpus?: number;
  CpuShares?: number;
  CpusetCpus?: string;
  /** --pids-limit (0 or -1 = no limit) */
  PidsLimit?: number;
  /** --restart: no | always | unless-stopped | on-failure (with MaximumRetryCount) */
  RestartPolicy?: { Name: string; MaximumRetryCount: number };
  /** --init: docker-init (tini) is pid 1 */
  Init?: boolean;
}

/** Config adds docker's container fields to the image's ContainerConfig. */
export interface CConfig extends ContainerConfig {
  Hostname: string;
  Image: string;
  AttachStdin: boolean;
  AttachStdout: boolean;
  AttachStderr: boolean;
  OpenStdin: boolean;
  Tty: boolean;
  StopTimeout?: number;
}

export type Status = 'created' | 'running' | 'exited' | 'dead' | 'removing';

export interface State {
  Status: Status;
  Running: boolean;
  Paused: boolean;
  Restarting: boolean;
  OOMKilled: boolean;
  Dead: boolean;
  Pid: number;
  ExitCode: number;
  Error: string;
  StartedAt: string;
  FinishedAt: string;
  /** the process supervising the runtime (detached shim or the foreground CLI) */
  ShimPid?: number;
  /** times the restart policy started it again */
  RestartCount?: number;
  /** stopped or killed by a user (docker's rule: the restart policy leaves it stopped) */
  ManualStop?: boolean;
}

export interface Container {
  id: string;
  name: string;
  imageId: string;
  config: CConfig;
  hostConfig: HostConfig;
  state: State;
  created: string;
}

export const ZERO_TIME = '0001-01-01T00:00:00Z';

export function newState(): State {
  return { Status: 'created', Running: false, Paused: false, Restarting: false, OOMKilled: false, Dead: false, Pid: 0, ExitCode: 0, Error: '', StartedAt: ZERO_TIME, FinishedAt: ZERO_TIME };
}

interface Row { id: string; name: string; image_id: string; config: string; host_config: string; state: string; created: string }

function fromRow(r: Row): Container {
  return { id: r.id, name: r.name, imageId: r.image_id, config: JSON.parse(r.config), hostConfig: JSON.parse(r.host_config), state: JSON.parse(r.state), created: r.created };
}

/** The start time of a process (field 22 of /proc/<pid>/stat), '' if there is no such process. */
export interface LockHolder { op: string; pid: number }

export function newId(): string {
  return randomBytes(32).toString('hex');
}

const ADJ = ['admiring', 'brave', 'busy', 'clever', 'eager', 'elegant', 'focused', 'gallant', 'happy', 'jolly', 'keen', 'loving', 'modest', 'nifty', 'quirky', 'relaxed', 'serene', 'sharp', 'stoic', 'vibrant', 'wizardly', 'zen'];
const NAMES = ['albattani', 'babbage', 'curie', 'darwin', 'euclid', 'fermi', 'galileo', 'hopper', 'jepsen', 'kepler', 'lovelace', 'mayer', 'noether', 'pasteur', 'ritchie', 'shannon', 'thompson', 'turing', 'wozniak', 'yonath'];

export const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export class ContainerStore {
  readonly db: DB;
  constructor(readonly engine: Store) {
    this.db = engine.db;
    ensureSchema(this.db);
  }

  dir(id: string): string {
    return join(resolve(this.engine.root), 'containers', id);
  }

  randomName(): string {
    for (let i = 0; ; i++) {
      const n = `${ADJ[Math.floor(Math.random() * ADJ.length)]}_${NAMES[Math.floor(Math.random() * NAMES.length)]}${i > 5 ? Math.floor(Math.random() * 10) : ''}`;
      if (!this.byName(n)) return n;
    }
  }

  insert(c: Container): void {
    if (!NAME_RE.test(c.name)) throw invalidArgument(`Invalid container name (${c.name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    try {
      tx(this.db, () => {
        this.db.prepare('INSERT INTO containers (id, name, image_id, config, host_config, state, created) VALUES (?, ?, ?, ?, ?, ?, ?)').run(c.id, c.name, c.imageId, JSON.stringify(c.config), JSON.stringify(c.hostConfig), JSON.stringify(c.state), c.created);
      });
    } catch (e) {
      if (/UNIQUE constraint failed: containers.name/.test((e as Error).message)) {
        const other = this.byName(c.name);
        throw alreadyExists(`Conflict. The container name "/${c.name}" is already in use by container "${other?.id ?? '?'}". You have to remove (or rename) that container to be able to reuse that name.`, 'pick another --name or `shale rm` the old container');
      }
      throw e;
    }
  }

  byName(name: string): Container | undefined {
    const r = this.db.prepare('SELECT * FROM containers WHERE name = ?').get(name.replace(/^\//, '')) as Row | undefined;
    return r && fromRow(r);
  }

  get(id: string): Container | undefined {
    const r = this.db.prepare('SELECT * FROM containers WHERE id = ?').get(id) as Row | undefined;
    return r && fromRow(r);
  }

  /** By name, full ID or unique ID prefix (docker's lookup order). */
  tryResolve(ref: string): Container | undefined {
    const full = this.get(ref);
    if (full) return full;
    const named = this.byName(ref);
    if (named) return named;
    if (/^[a-f0-9]{1,64}$/.test(ref)) {
      const rows = this.db.prepare('SELECT * FROM containers WHERE id LIKE ?').all(`${ref}%`) as Row[];
      if (rows.length === 1) return fromRow(rows[0]);
      if (rows.length > 1) throw invalidArgument(`multiple IDs found with provided prefix: ${ref}`, 'use more characters of the ID');
    }
    return undefined;
  }

  resolve(ref: string): Container {
    const c = this.tryResolve(ref);
    if (!c) throw notFound(`No such container: ${ref}`, 'see `shale ps -a`');
    return c;
  }

  list(): Container[] {
    return (this.db.prepare('SELECT * FROM containers ORDER BY created DESC, rowid DESC').all() as Row[]).map(fromRow);
  }

  usingImage(imageId: string): Container[] {
    return (this.db.prepare('SELECT * FROM containers WHERE image_id = ?').all(imageId) as Row[]).map(fromRow);
  }

  /** Read-modify-write of a container's state in one transaction. Returns the new state (undefined if the row is gone). */
  updateState(id: string, fn: (s: State) => State | void): State | undefined {
    return tx(this.db, () => {
      const r = this.db.prepare('SELECT state FROM containers WHERE id = ?').get(id) as { state: string } | undefined;
      if (!r) return undefined;
      const s = JSON.parse(r.state) as State;
      const next = fn(s) ?? s;
      this.db.prepare('UPDATE containers SET state = ? WHERE id = ?').run(JSON.stringify(next), id);
      return next;
    });
  }

  updateConfig(id: string, config: CConfig, hostConfig: HostConfig): void {
    this.db.prepare('UPDATE containers SET config = ?, host_config = ? WHERE id = ?').run(JSON.stringify(config), JSON.stringify(hostConfig), id);
  }

  rename(id: string, name: string): void {
    if (!NAME_RE.test(name)) throw invalidArgument(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    const other = this.byName(name);
    if (other && other.id !== id) throw alreadyExists(`Error when allocating new name: Conflict. The container name "/${name}" is already in use by container "${other.id}". You have to remove (or rename) that container to be able to reuse that name.`);
    tx(this.db, () => this.db.prepare('UPDATE containers SET name = ? WHERE id = ?').run(name, id));
  }

  /**
   * Take a container's exclusive lock for `op` (copy, export, remove) if nobody alive holds it.
   * Node has no flock: the lock is a row, taken in one transaction; a row whose process died
   * (or whose pid now belongs to another process) is stale and taken over.
   */
  tryLock(id: string, op: string): { release: () => void } | { holder: LockHolder } {
    const token = randomBytes(12).toString('hex');
    const start = processStartTime(process.pid);
    return tx(this.db, () => {
      const r = this.db.prepare('SELECT op, pid, pid_start FROM container_locks WHERE container_id = ?').get(id) as { op: string; pid: number; pid_start: string } | undefined;
      if (r && processStartTime(r.pid) === r.pid_start && r.pid_start !== '') return { holder: { op: r.op, pid: r.pid } };
      this.db.prepare('INSERT OR REPLACE INTO container_locks (container_id, op, pid, pid_start, token, created) VALUES (?, ?, ?, ?, ?, ?)').run(id, op, process.pid, start, token, new Date().toISOString());
      return { release: () => { tx(this.db, () => this.db.prepare('DELETE FROM container_locks WHERE container_id = ? AND token = ?').run(id, token)); } };
    });
  }

  /** Take the lock, waiting while a live process holds it (docker's rm waits for a copy to finish, as its container mutex does). */
  async lock(id: string, op: string, opts: { wait?: boolean } = {}): Promise<() => void> {
    for (;;) {
      const r = this.tryLock(id, op);
      if ('release' in r) return r.release;
      if (opts.wait === false) throw conflict(`container ${shortCid(id)} is busy: ${r.holder.op} in progress (pid ${r.holder.pid})`, 'wait for it to finish');
      await new Promise((res) => setTimeout(res, 25));
    }
  }

  /** Who holds the container's lock, if anyone alive does. */
  lockHolder(id: string): LockHolder | undefined {
    const r = this.db.prepare('SELECT op, pid, pid_start FROM container_locks WHERE container_id = ?').get(id) as { op: string; pid: number; pid_start: string } | undefined;
    return r && r.pid_start !== '' && processStartTime(r.pid) === r.pid_start ? { op: r.op, pid: r.pid } : undefined;
  }

  delete(id: string): void {
    tx(this.db, () => this.db.prepare('DELETE FROM containers WHERE id = ?').run(id));
  }
}

export function shortCid(id: string): string {
  return id.slice(0, 12);
}
