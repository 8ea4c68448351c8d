// Trees read out of and written into a scope through held directory fds (see index.ts), for
// the paths that touch a live container or a user's directory: `cp` both ways and `export`.
//   readTree     a directory or file as tar entries; every directory is opened O_NOFOLLOW
//                relative to its parent, every file opened O_NOFOLLOW and checked against its
//                lstat, so a container that swaps a file or directory for a symlink while it is
//                read makes the read fail, never reach the host.
//   extractTree  tar entries written under a directory of a scope; parents are resolved in the
//                scope (symlinks re-rooted there), the final component is created without
//                following anything. Names are taken literally: ".wh.x" is a file called
//                ".wh.x", as docker cp writes it (whiteouts belong to layers, not to cp).
import { closeSync, constants as C, createReadStream, fchmodSync, fstatSync, fchownSync, futimesSync, lchownSync, linkSync, lstatSync, lutimesSync, openSync, readdirSync, readlinkSync, symlinkSync, unlinkSync, writeSync, type Stats } from 'node:fs';
import { posix } from 'node:path';
import { spawnSync } from 'node:child_process';
import type { TarSourceEntry } from '../archive/tar/writer.js';
import type { TarHeader } from '../archive/tar/header.js';
import { devNumbers, typeOf } from '../archive/create.js';
import { sortBytes } from '../archive/walk.js';
import { errno, invalidArgument, permissionDenied, ShaleError } from '../errors.js';
import { at, DIR_FLAGS, lstatAt, openFileAt, reopenDir, type Scope } from './index.js';

export interface ReadTreeOptions {
  /** xattrs by name relative to the tree's top ('' = the top), e.g. from getfattr */
  xattrs?: (rel: string) => Map<string, Buffer> | undefined;
}

/**
 * The entry NAME of the held directory dirFd (or the directory itself when name is ''), and
 * everything under it, as tar entries named prefix/... (prefix '' with name '': the directory's
 * contents at the top of the archive, as export writes them).
 */
export async function* readTree(dirFd: number, name: string, prefix: string, opts: ReadTreeOptions = {}): AsyncGenerator<TarSourceEntry> {
  const links = new Map<string, string>();
  const top = name ? lstatSync(at(dirFd, name)) : fstatSync(dirFd);
  async function* one(parentFd: number, n: string, st: Stats, tarName: string, rel: string): AsyncGenerator<TarSourceEntry> {
    const type = typeOf(st);
    if (!type) return;
    const h: TarHeader = { name: tarName, type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: 0, mtime: Math.floor(st.mtimeMs / 1000) };
    const xa = opts.xattrs?.(rel);
    if (xa?.size) h.xattrs = xa;
    if (type === 'dir') {
      const fd = n ? openSync(at(parentFd, n), DIR_FLAGS) : reopenDir(parentFd);
      try {
        const now = fstatOk(fd, st);
        if (!now) throw new ShaleError('Conflict', `${rel || '/'} was replaced while it was read`, 'retry when the container is not rewriting that path');
        if (tarName) yield { header: { ...h, name: tarName.endsWith('/') ? tarName : tarName + '/' } };
        for (const child of sortBytes(readdirSync(at(fd)))) {
          const cst = lstatAt(fd, child);
          if (!cst) continue; // gone meanwhile, as tar skips it
          yield* one(fd, child, cst, tarName ? `${tarName.replace(/\/$/, '')}/${child}` : child, rel ? `${rel}/${child}` : child);
        }
      } finally {
        closeSync(fd);
      }
      return;
    }
    if (type === 'file') {
      if (st.nlink > 1) {
        const key = `${st.dev}:${st.ino}`;
        const first = links.get(key);
        if (first !== undefined) { yield { header: { ...h, type: 'link', linkname: first } }; return; }
        links.set(key, tarName);
      }
      h.size = st.size;
      yield { header: h, stream: () => fileStream(parentFd, n, st) };
      return;
    }
    if (type === 'symlink') {
      try {
        h.linkname = readlinkSync(at(parentFd, n));
      } catch (e) {
        if (errno(e) === 'ENOENT' || errno(e) === 'EINVAL') return; // gone or replaced meanwhile: skipped, as tar does
        throw e;
      }
    }
    if (type === 'char' || type === 'block') Object.assign(h, devNumbers(st.rdev));
    yield { header: h };
  }
  yield* one(dirFd, name, top, prefix, '');
}

function fstatOk(fd: number, st: Stats): boolean {
  const now = fstatSync(fd);
  return now.ino === st.ino && now.dev === st.dev;
}

async function* fileStream(dirFd: number, name: string, st: Stats): AsyncGenerator<Buffer> {
  const fd = openFileAt(dirFd, name, st);
  const s = createReadStream('', { fd, highWaterMark: 1 << 20, autoClose: true });
  try {
    for await (const c of s) yield c as Buffer;
  } finally {
    s.destroy();
  }
}

export interface ExtractOptions {
  /** chown entries to their recorded owner (docker cp -a); otherwise root:root as docker cp does */
  sameOwner?: boolean;
  /** refuse device nodes other than fifos (host sources are the user's; container data is not) */
  devices?: boolean;
}

export interface ExtractEntry {
  header: TarHeader;
  body?: AsyncIterable<Buffer>;
}

/**
 * Write entries (names relative to destInner) into the scope. Parents that do not exist are
 * created; an existing non-directory is replaced (docker cp's --remove-destination behaviour),
 * an existing directory is never replaced by a non-directory.
 */
export async function extractTree(scope: Scope, destInner: string, entries: AsyncIterable<ExtractEntry>, opts: ExtractOptions = {}): Promise<{ entries: number }> {
  const dirMeta: { inner: string; h: TarHeader }[] = [];
  let n = 0;
  // the directory the last non-directory entry went into, held open: the entries of one
  // directory (an archive lists them together) resolve it once
  let held: { inner: string; fd: number; resolved: string } | undefined;
  const dirOf = (parentInner: string) => {
    if (held?.inner === parentInner) return held;
    if (held) closeSync(held.fd);
    held = undefined;
    const d = scope.openDir(parentInner, { mkdir: 0o755, what: 'archive entry' });
    return (held = { inner: parentInner, fd: d.fd, resolved: d.inner });
  };
  try {
    for await (const { header: h, body } of entries) {
      n++;
      const parts = h.name.split('/').filter((p) => p !== '' && p !== '.');
      if (parts.includes('..')) throw invalidArgument(`archive entry ${JSON.stringify(h.name)} climbs out with ".."`, 'entries must stay inside the destination');
      const inner = posix.join(destInner, ...parts);
      if (h.type === 'dir') {
        scope.mkdirAll(inner, 0o755, 'archive entry');
        dirMeta.push({ inner, h });
        if (body) for await (const _ of body) { /* directories carry no data */ }
        continue;
      }
      if (parts.length === 0) throw invalidArgument(`archive entry ${JSON.stringify(h.name)} names the destination itself but is not a directory`);
      const dir = dirOf(posix.dirname(inner));
      const name = parts[parts.length - 1];
      const path = at(dir.fd, name); // never followed: every call below acts on the name itself
      const st = lstatAt(dir.fd, name);
      if (st?.isDirectory()) throw invalidArgument(`cannot overwrite directory ${posix.join(dir.resolved, name)} with non-directory ${h.name}`);
      if (st) unlinkSync(path);
      const owner = opts.sameOwner ? { uid: h.uid, gid: h.gid } : { uid: 0, gid: 0 };
      switch (h.type) {
        case 'file': {
          const fd = openSync(path, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
          try {
            let got = 0;
            if (body) {
              for await (const c of body) {
                let off = 0;
                while (off < c.length) off += writeSync(fd, c, off, c.length - off);
                got += c.length;
              }
            }
            if (got !== h.size) throw invalidArgument(`archive entry ${h.name}: ${got} of ${h.size} bytes`);
            chownIfRoot(() => fchownSync(fd, owner.uid, owner.gid));
            fchmodSync(fd, h.mode & 0o7777);
            futimesSync(fd, h.mtime, h.mtime);
          } finally {
            closeSync(fd);
          }
          break;
        }
        case 'symlink':
          symlinkSync(h.linkname ?? '', path);
          chownIfRoot(() => lchownSync(path, owner.uid, owner.gid));
          lutimesSync(path, h.mtime, h.mtime);
          break;
        case 'link': {
          const tparts = (h.linkname ?? '').split('/').filter((p) => p !== '' && p !== '.');
          if (tparts.includes('..') || tparts.length === 0) throw invalidArgument(`archive hardlink ${h.name} -> ${h.linkname} leaves the destination`);
          const t = scope.walk(posix.join(destInner, ...tparts), { followFinal: false, what: 'hardlink target' });
          try {
            if (!t.st || t.st.isDirectory()) throw invalidArgument(`archive hardlink ${h.name} -> ${h.linkname}: no such file in the destination`);
            linkSync(t.path, path); // link(2) never follows a symlink named as its source
          } finally {
            t.close();
          }
          break;
        }
        case 'fifo':
        case 'char':
        case 'block': {
          if (h.type !== 'fifo' && !opts.devices) throw invalidArgument(`archive entry ${h.name} is a device node: not copied`, 'copy device nodes with mknod in the container');
          // mknod(1) gets the directory as its fd 3, so the name resolves inside it and nowhere else
          const args = h.type === 'fifo' ? [`/proc/self/fd/3/${name}`, 'p'] : [`/proc/self/fd/3/${name}`, h.type === 'char' ? 'c' : 'b', String(h.devmajor ?? 0), String(h.devminor ?? 0)];
          const r = spawnSync('mknod', ['-m', (h.mode & 0o7777).toString(8), ...args], { stdio: ['ignore', 'ignore', 'pipe', dir.fd], encoding: 'utf8' });
          if (r.status !== 0) throw permissionDenied(`mknod ${h.name}: ${(r.stderr || '').trim() || 'failed'}`);
          chownIfRoot(() => lchownSync(path, owner.uid, owner.gid));
          break;
        }
        default:
          break; // other types are skipped, as tar does
      }
      if (body && h.type !== 'file') for await (const _ of body) { /* drain */ }
    }
  } finally {
    if (held) closeSync(held.fd);
  }
  // directory metadata last (deepest first), so writing into them did not change their times
  for (const { inner, h } of dirMeta.reverse()) {
    const { fd } = scope.openDir(inner, { followFinal: false, what: 'archive entry' });
    try {
      if (opts.sameOwner) chownIfRoot(() => fchownSync(fd, h.uid, h.gid));
      fchmodSync(fd, h.mode & 0o7777);
      futimesSync(fd, h.mtime, h.mtime);
    } finally {
      closeSync(fd);
    }
  }
  return { entries: n };
}

function chownIfRoot(fn: () => void): void {
  if (process.getuid?.() !== 0) return;
  fn();
}
