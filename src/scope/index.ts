// Paths from outside, resolved inside a scope (a container's rootfs, a build context, a
// flattened image, a volume) and never anywhere else. The rule: no path from outside is joined
// and then followed. Every component is looked at on its own, relative to a directory we hold
// open, so nothing a container swaps in afterwards can move us out:
//
//   - each directory is opened with O_DIRECTORY|O_NOFOLLOW relative to its parent's fd
//     (through /proc/self/fd/N/NAME, which is openat(N, NAME) for a process without openat);
//   - a symlink is read and its target re-rooted at the scope's root (absolute targets) or
//     resolved from the directory it sits in (relative ones), as docker's FollowSymlinkInScope
//     does; ".." pops our own stack of names and is clamped at the root (or refused, for a
//     build context, where leaving is an error);
//   - missing components are created one at a time (mkdir of one name in a held directory),
//     never with mkdir -p on a joined path;
//   - the caller gets the fd of the final component's directory and its name, and does the last
//     operation relative to it with O_NOFOLLOW (open, mkdir, symlink and unlink never follow).
import { closeSync, constants as C, fstatSync, lstatSync, mkdirSync, openSync, readlinkSync, readSync, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { errno, invalidArgument, notFound, ShaleError } from '../errors.js';

/** The path that reaches NAME inside the directory held open as fd (openat for path-based calls). */
export function at(fd: number, name?: string): string {
  return name === undefined || name === '' ? `/proc/self/fd/${fd}` : `/proc/self/fd/${fd}/${name}`;
}

export const DIR_FLAGS = C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW;

/** lstat of NAME in the directory held as fd (never following it), or undefined when it is not there. */
export function lstatAt(fd: number, name: string): Stats | undefined {
  try {
    return lstatSync(at(fd, name));
  } catch (e) {
    if (errno(e) === 'ENOENT') return undefined;
    throw e;
  }
}

/** A second fd on the directory held as fd (its /proc link is followed: it is that directory). */
export function reopenDir(fd: number): number {
  return openSync(at(fd), C.O_RDONLY | C.O_DIRECTORY);
}
const MAX_LINKS = 40;
const MAX_RETRIES = 8; // a component swapped between lstat and open is looked at again, this often

export interface ScopeOptions {
  /** names the scope in errors: "container", "build context", "volume" */
  label?: string;
  /** what a symlink or ".." that leaves the scope does: clamp at the root (docker's rootfs rule) or fail */
  escape?: 'clamp' | 'error';
}

export interface WalkOptions {
  /** follow a symlink in the final component (default true) */
  followFinal?: boolean;
  /** create missing directories (every component, the final one included) with this mode */
  mkdir?: number;
  /** names the path in errors ("working directory", "destination path") */
  what?: string;
}

/** Where a walk ended: the final component's directory, held open, and its name. */
export class Found {
  constructor(
    /** the path inside the scope with every symlink resolved ("/" for the root) */
    readonly inner: string,
    /** fd of the directory holding the final component (the root's fd when inner is "/"), or -1 when that directory does not exist */
    readonly dirFd: number,
    /** the final component ('' for the root itself) */
    readonly name: string,
    /** lstat of the final component, when it exists */
    readonly st: Stats | undefined,
  ) {}
  get exists(): boolean {
    return this.st !== undefined;
  }
  /** the final component as a path for *at-style calls (never follows it) */
  get path(): string {
    if (this.dirFd < 0) throw notFound(`${this.inner}: its parent directory does not exist`);
    return this.name ? at(this.dirFd, this.name) : at(this.dirFd);
  }
  /** Open the final component as a directory we hold (it must be one). */
  openDir(): number {
    if (!this.name) return reopenDir(this.dirFd);
    return openSync(this.path, DIR_FLAGS);
  }
  close(): void {
    if (this.dirFd >= 0) closeSync(this.dirFd);
  }
}

function split(path: string): string[] {
  return path.split('/').filter((c) => c !== '' && c !== '.');
}

export class Scope {
  readonly label: string;
  readonly escape: 'clamp' | 'error';
  constructor(readonly root: string, opts: ScopeOptions = {}) {
    this.label = opts.label ?? 'scope';
    this.escape = opts.escape ?? 'clamp';
  }

  /** Open the scope's root directory (the root itself is trusted: it is ours). */
  openRoot(): number {
    return openSync(this.root, C.O_RDONLY | C.O_DIRECTORY);
  }

  /**
   * Resolve `path` inside the scope, component by component (see the top of this file).
   * The caller owns the returned Found and must close() it.
   */
  walk(path: string, opts: WalkOptions = {}): Found {
    const what = opts.what ?? 'path';
    const followFinal = opts.followFinal ?? true;
    const queue: { c: string; via?: string }[] = split(path).map((c) => ({ c }));
    // names from the root, each with the fd of that directory (-1: it does not exist)
    const stack: { name: string; fd: number }[] = [];
    const rootFd = this.openRoot();
    const top = () => (stack.length ? stack[stack.length - 1].fd : rootFd);
    const innerOf = (extra?: string) => '/' + [...stack.map((s) => s.name), ...(extra === undefined ? [] : [extra])].join('/');
    const closeAll = () => {
      for (const s of stack) if (s.fd >= 0) closeSync(s.fd);
      stack.length = 0;
    };
    let links = 0;
    let retries = 0;
    try {
      while (queue.length) {
        const { c, via } = queue.shift()!;
        if (c === '..') {
          if (stack.length === 0) {
            if (this.escape === 'error') {
              throw invalidArgument(
                via ? `${what} ${path} leaves the ${this.label} through the symlink ${via}` : `${what} ${path} leaves the ${this.label} with ".."`,
                `use a path inside the ${this.label}`,
              );
            }
            continue; // clamped at the root, as a chroot does
          }
          const s = stack.pop()!;
          if (s.fd >= 0) closeSync(s.fd);
          continue;
        }
        const last = queue.length === 0;
        const dirFd = top();
        let st = dirFd >= 0 ? lstatAt(dirFd, c) : undefined;
        if (st?.isSymbolicLink() && (!last || followFinal)) {
          if (++links > MAX_LINKS) throw invalidArgument(`${what} ${path}: too many levels of symbolic links`);
          let target: string;
          try {
            target = readlinkSync(at(dirFd, c));
          } catch (e) {
            if (errno(e) === 'EINVAL' || errno(e) === 'ENOENT') { queue.unshift({ c, via }); if (++retries > MAX_RETRIES) throw changed(what, path); continue; }
            throw e;
          }
          const linkPath = innerOf(c);
          const parts = split(target).map((x) => ({ c: x, via: via ?? `${linkPath} -> ${target}` }));
          if (target.startsWith('/')) {
            if (this.escape === 'error') throw invalidArgument(`${what} ${path} leaves the ${this.label} through the symlink ${linkPath} -> ${target}`, `use a path inside the ${this.label}`);
            closeAll();
          }
          queue.unshift(...parts);
          continue;
        }
        if (last) {
          if (!st && opts.mkdir !== undefined && dirFd >= 0) {
            mkdirOne(dirFd, c, opts.mkdir);
            st = lstatSync(at(dirFd, c));
            if (st.isSymbolicLink()) { queue.unshift({ c, via }); if (++retries > MAX_RETRIES) throw changed(what, path); continue; }
          }
          const found = new Found(innerOf(c), dirFd >= 0 ? dirFd : -1, c, st);
          // hand the directory's fd to the caller; close the rest
          if (stack.length) stack.pop();
          closeAll();
          if (dirFd !== rootFd) closeSync(rootFd);
          return found;
        }
        // a directory in the middle
        if (!st) {
          if (opts.mkdir !== undefined && dirFd >= 0) {
            mkdirOne(dirFd, c, opts.mkdir);
            queue.unshift({ c, via }); // look again: open it the safe way
            continue;
          }
          stack.push({ name: c, fd: -1 }); // missing: accepted, as docker does; a later ".." may pop it
          continue;
        }
        if (!st.isDirectory()) throw new ShaleError('InvalidArgument', `${what} ${path}: ${innerOf(c)} is not a directory`);
        let fd: number;
        try {
          fd = openSync(at(dirFd, c), DIR_FLAGS);
        } catch (e) {
          // swapped for a symlink or a file since the lstat: look at it again
          if (errno(e) === 'ELOOP' || errno(e) === 'ENOTDIR' || errno(e) === 'ENOENT') {
            if (++retries > MAX_RETRIES) throw changed(what, path);
            queue.unshift({ c, via });
            continue;
          }
          throw e;
        }
        stack.push({ name: c, fd });
      }
      if (stack.length === 0) return new Found('/', rootFd, '', fstatSync(rootFd)); // the path named the root itself
      // the walk ended on a directory already held ("a/b/..", or a link to "."): hand out its parent and name
      const s = stack.pop()!;
      if (s.fd >= 0) closeSync(s.fd);
      const parentFd = top();
      const inner = innerOf(s.name);
      let st: Stats | undefined;
      if (parentFd >= 0) {
        try { st = lstatSync(at(parentFd, s.name)); } catch (e) { if (errno(e) !== 'ENOENT') throw e; }
      }
      if (stack.length) stack.pop();
      closeAll();
      if (parentFd !== rootFd) closeSync(rootFd);
      return new Found(inner, parentFd, s.name, st);
    } catch (e) {
      closeAll();
      try { closeSync(rootFd); } catch { /* handed out already */ }
      throw e;
    }
  }

  /** Resolve a path and return where it leads, without keeping anything open. */
  resolve(path: string, opts: WalkOptions = {}): { inner: string; exists: boolean; st?: Stats } {
    const f = this.walk(path, opts);
    try {
      return { inner: f.inner, exists: f.exists, st: f.st };
    } finally {
      f.close();
    }
  }

  /** mkdir -p inside the scope, one component at a time; returns the resolved path. */
  mkdirAll(path: string, mode = 0o755, what?: string): string {
    const f = this.walk(path, { mkdir: mode, what });
    try {
      if (!f.st?.isDirectory()) throw invalidArgument(`${what ?? 'path'} ${path}: ${f.inner} exists and is not a directory`);
      return f.inner;
    } finally {
      f.close();
    }
  }

  /** Open a directory inside the scope (following symlinks in scope); the caller closes the fd. */
  openDir(path: string, opts: WalkOptions = {}): { fd: number; inner: string } {
    const f = this.walk(path, opts);
    try {
      if (!f.st) throw notFound(`${opts.what ?? 'path'} ${path}: no such directory in the ${this.label}`);
      if (!f.st.isDirectory()) throw invalidArgument(`${opts.what ?? 'path'} ${path}: not a directory`);
      return { fd: f.openDir(), inner: f.inner };
    } finally {
      f.close();
    }
  }

  /**
   * Read a regular file inside the scope, at most `max` bytes (more is an error). Undefined when
   * it does not exist. The open never follows a symlink swapped in after the walk.
   */
  readFile(path: string, max: number, what = 'file'): Buffer | undefined {
    const f = this.walk(path, { what });
    try {
      if (!f.st) return undefined;
      if (!f.st.isFile()) throw invalidArgument(`${what} ${path} in the ${this.label} is not a regular file`);
      const fd = openFileAt(f.dirFd, f.name, f.st);
      try {
        const out: Buffer[] = [];
        let n = 0;
        const buf = Buffer.alloc(64 * 1024);
        for (;;) {
          const r = readSync(fd, buf, 0, buf.length, null);
          if (r === 0) break;
          n += r;
          if (n > max) throw invalidArgument(`${what} ${path} in the ${this.label} is larger than ${max} bytes`);
          out.push(Buffer.from(buf.subarray(0, r)));
        }
        return Buffer.concat(out);
      } finally {
        closeSync(fd);
      }
    } finally {
      f.close();
    }
  }
}

function changed(what: string, path: string): ShaleError {
  return new ShaleError('Conflict', `${what} ${path} kept changing while it was resolved`, 'retry when the container is not rewriting that path');
}

/** mkdir of one name inside a held directory; losing a race to another mkdir is fine. */
function mkdirOne(dirFd: number, name: string, mode: number): void {
  try {
    mkdirSync(at(dirFd, name), { mode });
  } catch (e) {
    if (errno(e) !== 'EEXIST') throw e;
  }
}

/** A file's identity when it was looked at: an open must find this very file. */
export interface Identity {
  dev: number;
  ino: number;
}

const OPEN_FILE = C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK;
const RETRY = 'retry when nothing is rewriting that path';

/** The open of a file looked at before failed: it was swapped for a link or removed meanwhile. */
function openFailed(e: unknown, what: string, during: string): unknown {
  if (errno(e) === 'ELOOP') return new ShaleError('Conflict', `${what} was replaced by a symlink while ${during}`, RETRY);
  if (errno(e) === 'ENOENT') return new ShaleError('Conflict', `${what} was removed while ${during}`, RETRY);
  return e;
}

/** What was opened is a regular file and, when given, the one with this identity. */
function sameFile(st: Stats, expect: Identity | undefined): boolean {
  return st.isFile() && (!expect || (st.ino === expect.ino && st.dev === expect.dev));
}

function replaced(what: string, during: string): ShaleError {
  return new ShaleError('Conflict', `${what} was replaced while ${during}`, RETRY);
}

/**
 * Open a regular file NAME in a held directory for reading without following a symlink, and
 * check it is still the file that was lstat-ed (same device and inode).
 */
export function openFileAt(dirFd: number, name: string, expect?: Identity): number {
  let fd: number;
  try {
    fd = openSync(at(dirFd, name), OPEN_FILE);
  } catch (e) {
    throw openFailed(e, name, 'it was read');
  }
  if (!sameFile(fstatSync(fd), expect)) {
    closeSync(fd);
    throw replaced(name, 'it was read');
  }
  return fd;
}

/**
 * The same for a path whose parents are trusted (resolved in scope before, or the store's own):
 * the last component is never followed, and the file must be the one looked at. `during` says
 * what was going on, for the error ("the build read it", "it was archived").
 */
export async function openVerified(path: string, expect: Identity | undefined, what: string, during: string): Promise<FileHandle> {
  let fh: FileHandle;
  try {
    fh = await open(path, OPEN_FILE);
  } catch (e) {
    throw openFailed(e, what, during);
  }
  if (!sameFile(await fh.stat(), expect)) {
    await fh.close();
    throw replaced(what, during);
  }
  return fh;
}

/** openVerified, read whole (for files known to be small). */
export async function readVerified(path: string, expect: Identity | undefined, what: string, during: string): Promise<Buffer> {
  const fh = await openVerified(path, expect, what, during);
  try {
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}
