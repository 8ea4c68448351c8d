// Make layer tars from directories:
//   tarDirectory(dir)              every entry (import of a rootfs, vfs base layer, export)
//   tarOverlayUpper(upper, lowers) an overlayfs upper dir, whiteouts converted to OCI form
//   tarChanges(changes, newRoot)   the entries a Change list names (vfs diff of two trees)
// Entries are sorted and hardlinks detected, so the same tree always gives the same bytes
// (with `mtime` set, timestamps are clamped as SOURCE_DATE_EPOCH asks).
import type { Readable } from 'node:stream';
import { readlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join, resolve } from 'node:path';
import { xattrsOfTree } from '../sys/index.js';
import { writeTar, type TarSourceEntry } from './tar/writer.js';
import type { EntryType, TarHeader } from './tar/header.js';
import { walk, type WalkEntry } from './walk.js';
import { isOverlayWhiteout, OPAQUE, OVERLAY_OPAQUE_XATTR, WHITEOUT_PREFIX } from './whiteout.js';
import type { Change } from './changes.js';

export interface TarOptions {
  /** clamp mtimes to at most this (seconds since epoch), for reproducible layers */
  mtime?: number;
  /** read xattrs (security.capability, user.*) with getfattr; default true */
  xattrs?: boolean;
}

const XATTR_KEEP = /^(security\.capability|user\.)/;

/** The tar entry type of a file, or undefined for sockets (not archived, as tar does). */
export function typeOf(st: Stats): EntryType | undefined {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return undefined; // sockets are not archived, as tar does
}

/** major and minor of a device number as tar headers carry them (Linux's encoding of dev_t). */
export function devNumbers(rdev: number): { devmajor: number; devminor: number } {
  return { devmajor: Math.floor(rdev / 256) & 0xfff, devminor: (rdev & 0xff) | ((rdev >> 12) & 0xfff00) };
}

class EntryMaker {
  private links = new Map<string, string>();
  private xattrs?: Map<string, Map<string, Buffer>>;
  private root: string;
  // getfattr reports paths as given ("dir//a" for "dir/"): keep one normal, absolute spelling
  constructor(root: string, private opts: TarOptions) {
    this.root = resolve(root);
  }
  async init(): Promise<void> {
    if (this.opts.xattrs !== false) this.xattrs = await xattrsOfTree(this.root);
  }
  xattrsOf(path: string): Map<string, Buffer> | undefined {
    return this.xattrs?.get(path);
  }
  async make(e: WalkEntry): Promise<TarSourceEntry | undefined> {
    const type = typeOf(e.st);
    if (!type) return undefined;
    const st = e.st;
    const mtime = this.opts.mtime !== undefined ? Math.min(Math.floor(st.mtimeMs / 1000), this.opts.mtime) : Math.floor(st.mtimeMs / 1000);
    const h: TarHeader = { name: e.rel, type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: 0, mtime };
    const xa = this.xattrsOf(e.path);
    if (xa) {
      const keep = new Map([...xa].filter(([k]) => XATTR_KEEP.test(k)));
      if (keep.size) h.xattrs = keep;
    }
    if (type === 'file') {
      if (st.nlink > 1) {
        const key = `${st.dev}:${st.ino}`;
        const first = this.links.get(key);
        if (first !== undefined) return { header: { ...h, type: 'link', linkname: first } };
        this.links.set(key, e.rel);
      }
      h.size = st.size;
      return { header: h, file: e.path, expect: { dev: st.dev, ino: st.ino } };
    }
    if (type === 'symlink') h.linkname = await readlink(e.path);
    if (type === 'char' || type === 'block') Object.assign(h, devNumbers(st.rdev));
    return { header: h };
  }
}

export function tarDirectory(dir: string, opts: TarOptions = {}): Readable {
  const root = resolve(dir);
  async function* entries(): AsyncGenerator<TarSourceEntry> {
    const m = new EntryMaker(root, opts);
    await m.init();
    for await (const e of walk(root)) {
      const t = await m.make(e);
      if (t) yield t;
    }
  }
  return writeTar(entries());
}

/** An overlayfs upper dir as an OCI layer: 0/0 char devices become .wh.NAME, opaque dirs get .wh..wh..opq. */
export function tarOverlayUpper(upperDir: string, opts: TarOptions = {}): Readable {
  const upper = resolve(upperDir);
  async function* entries(): AsyncGenerator<TarSourceEntry> {
    const m = new EntryMaker(upper, { ...opts, xattrs: true });
    await m.init();
    for await (const e of walk(upper)) {
      if (isOverlayWhiteout(e.st)) {
        const slash = e.rel.lastIndexOf('/');
        const name = slash < 0 ? WHITEOUT_PREFIX + e.rel : `${e.rel.slice(0, slash)}/${WHITEOUT_PREFIX}${e.rel.slice(slash + 1)}`;
        yield { header: { name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: opts.mtime ?? Math.floor(e.st.mtimeMs / 1000) } };
        continue;
      }
      const t = await m.make(e);
      if (!t) continue;
      const opaque = e.st.isDirectory() && m.xattrsOf(e.path)?.get(OVERLAY_OPAQUE_XATTR)?.toString() === 'y';
      if (t.header.xattrs) t.header.xattrs.delete(OVERLAY_OPAQUE_XATTR);
      yield t;
      if (opaque) yield { header: { name: `${e.rel}/${OPAQUE}`, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: t.header.mtime } };
    }
  }
  return writeTar(entries());
}

/** The entries named by a change list, read from newRoot; deletions become whiteouts. */
export function tarChanges(changes: Change[], newRootDir: string, opts: TarOptions = {}): Readable {
  const newRoot = resolve(newRootDir);
  async function* entries(): AsyncGenerator<TarSourceEntry> {
    const m = new EntryMaker(newRoot, opts);
    await m.init();
    for (const c of changes) {
      const rel = c.path.replace(/^\//, '');
      if (c.kind === 'D') {
        const slash = rel.lastIndexOf('/');
        const name = slash < 0 ? WHITEOUT_PREFIX + rel : `${rel.slice(0, slash)}/${WHITEOUT_PREFIX}${rel.slice(slash + 1)}`;
        yield { header: { name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: opts.mtime ?? 0 } };
        continue;
      }
      if (!c.st) continue;
      const t = await m.make({ rel, path: join(newRoot, rel), st: c.st });
      if (t) yield t;
    }
  }
  return writeTar(entries());
}
