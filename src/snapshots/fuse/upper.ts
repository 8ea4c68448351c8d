// Reading a fuse-overlayfs upper dir. It is kernel-overlay-like with extras the kernel never
// writes, which must not leak into changes or layer tars:
//   - an opaque dir gets trusted.overlay.opaque=y (or user.fuseoverlayfs.opaque / user.overlay.opaque
//     when unprivileged) AND a .wh..wh..opq file, plus a 0/0 whiteout named .wh..opq
//   - without CAP_MKNOD a whiteout is a .wh.NAME file instead of a 0/0 char device
//   - copied-up files carry a user.fuseoverlayfs.origin xattr
import { lstat, readdir, readlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { isOverlayWhiteout, lstatIfExists, OPAQUE, typeOf, writeTar, WHITEOUT_PREFIX, type Change, type TarHeader, type TarSourceEntry } from '../../archive/index.js';
import { xattrsOfTree } from '../../sys/index.js';
import type { Usage } from '../types.js';

const OPAQUE_XATTRS = ['trusted.overlay.opaque', 'user.fuseoverlayfs.opaque', 'user.overlay.opaque'];
const XATTR_KEEP = /^(security\.capability|user\.)/;
const XATTR_INTERNAL = /^(user\.fuseoverlayfs\.|user\.overlay\.|trusted\.overlay\.)/;

export interface UpperEntry {
  rel: string; // "etc/passwd"
  path: string;
  st: Stats;
  whiteout: boolean; // rel was deleted
  opaque: boolean; // a directory hiding what lower layers have under it
}

function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}


/** Entries of an upper dir in their meaning: parents first, siblings in byte order. */
export async function* walkUpper(upper: string, xattrs: Map<string, Map<string, Buffer>>, rel = ''): AsyncGenerator<UpperEntry> {
  const dir = rel ? join(upper, rel) : upper;
  const names = (await readdir(dir)).sort(byteCompare);
  for (const n of names) {
    if (n === OPAQUE) continue;
    const path = join(dir, n);
    const st = await lstat(path);
    const r = rel ? `${rel}/${n}` : n;
    if (n.startsWith(WHITEOUT_PREFIX)) {
      // .wh.NAME file: NAME deleted (unprivileged form); anything else with the prefix is bookkeeping
      const target = n.slice(WHITEOUT_PREFIX.length);
      if (st.isFile() && target !== '' && !target.startsWith(WHITEOUT_PREFIX)) yield { rel: rel ? `${rel}/${target}` : target, path, st, whiteout: true, opaque: false };
      continue;
    }
    if (isOverlayWhiteout(st)) {
      yield { rel: r, path, st, whiteout: true, opaque: false };
      continue;
    }
    let opaque = false;
    if (st.isDirectory()) {
      const xa = xattrs.get(path);
      opaque = OPAQUE_XATTRS.some((k) => xa?.get(k)?.toString() === 'y') || (await lstatIfExists(join(path, OPAQUE))) !== undefined;
    }
    yield { rel: r, path, st, whiteout: false, opaque };
    if (st.isDirectory()) yield* walkUpper(upper, xattrs, r);
  }
}

/** Is rel visible in the lower dirs (topmost first)? */
async function inLowers(lowers: string[], rel: string): Promise<boolean> {
  const slash = rel.lastIndexOf('/');
  const wh = slash < 0 ? WHITEOUT_PREFIX + rel : `${rel.slice(0, slash)}/${WHITEOUT_PREFIX}${rel.slice(slash + 1)}`;
  for (const l of lowers) {
    const st = await lstatIfExists(join(l, rel));
    if (st) return !isOverlayWhiteout(st);
    if (await lstatIfExists(join(l, wh))) return false;
  }
  return false;
}

/** docker's A/C/D from a fuse-overlayfs upper dir (parents of changes reported as C). */
export async function changesFuseUpper(upper: string, lowers: string[]): Promise<Change[]> {
  const out = new Map<string, Change>();
  for await (const e of walkUpper(upper, new Map())) {
    const p = '/' + e.rel;
    if (e.whiteout) {
      if (await inLowers(lowers, e.rel)) out.set(p, { kind: 'D', path: p });
      continue;
    }
    out.set(p, { kind: (await inLowers(lowers, e.rel)) ? 'C' : 'A', path: p, st: e.st });
  }
  for (const c of [...out.values()]) {
    let p = c.path;
    for (;;) {
      p = p.slice(0, p.lastIndexOf('/'));
      if (p === '' || out.has(p)) break;
      out.set(p, { kind: 'C', path: p, st: await lstatIfExists(join(upper, p)) });
    }
  }
  return [...out.values()].sort((a, b) => byteCompare(a.path, b.path));
}


function whiteoutName(rel: string): string {
  const slash = rel.lastIndexOf('/');
  return slash < 0 ? WHITEOUT_PREFIX + rel : `${rel.slice(0, slash)}/${WHITEOUT_PREFIX}${rel.slice(slash + 1)}`;
}

/** du -b of an upper dir without fuse-overlayfs bookkeeping entries (root included). */
export async function usageFuseUpper(upper: string): Promise<Usage> {
  const seen = new Set<number>([(await lstat(upper)).ino]);
  let size = 0;
  for await (const e of walkUpper(upper, new Map())) {
    if (seen.has(e.st.ino)) continue;
    seen.add(e.st.ino);
    if (!e.st.isDirectory()) size += e.st.size;
  }
  return { size, inodes: seen.size };
}

/**
 * A fuse-overlayfs upper dir as an OCI layer tar. fuse-overlayfs marks every directory it
 * creates opaque; the marker is only written where a lower layer has that directory.
 */
export function tarFuseUpper(upper: string, lowers: string[]): Readable {
  async function* entries(): AsyncGenerator<TarSourceEntry> {
    const xattrs = await xattrsOfTree(upper);
    const links = new Map<string, string>();
    for await (const e of walkUpper(upper, xattrs)) {
      const mtime = Math.floor(e.st.mtimeMs / 1000);
      if (e.whiteout) {
        yield { header: { name: whiteoutName(e.rel), type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime } };
        continue;
      }
      const type = typeOf(e.st);
      if (!type) continue;
      const st = e.st;
      const h: TarHeader = { name: e.rel, type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: 0, mtime };
      const xa = xattrs.get(e.path);
      if (xa) {
        const keep = new Map([...xa].filter(([k]) => XATTR_KEEP.test(k) && !XATTR_INTERNAL.test(k)));
        if (keep.size) h.xattrs = keep;
      }
      if (type === 'file') {
        if (st.nlink > 1) {
          const id = `${st.dev}:${st.ino}`;
          const first = links.get(id);
          if (first !== undefined) {
            yield { header: { ...h, type: 'link', linkname: first } };
            continue;
          }
          links.set(id, e.rel);
        }
        h.size = st.size;
        yield { header: h, file: e.path };
        continue;
      }
      if (type === 'symlink') h.linkname = await readlink(e.path);
      if (type === 'char' || type === 'block') {
        h.devmajor = Math.floor(st.rdev / 256) & 0xfff;
        h.devminor = (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00);
      }
      yield { header: h };
      if (e.opaque && (await inLowers(lowers, e.rel))) yield { header: { name: `${e.rel}/${OPAQUE}`, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime } };
    }
  }
  return writeTar(entries());
}
