// Apply a layer (an uncompressed tar stream) onto a directory.
//   whiteouts: 'apply'   — delete what .wh. entries name (vfs, flattening, export)
//              'overlay' — write them in overlayfs form into an empty diff dir (overlay2)
// Every entry is resolved inside root (safe-path.ts); nothing outside root is touched.
import { chmod, chown, lchown, link, lstat, lutimes, mkdir, open, readdir, rm, symlink, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { invalidArgument } from '../errors.js';
import { mknod, setXattr } from '../sys/index.js';
import { readTar } from './tar/reader.js';
import type { TarHeader } from './tar/header.js';
import { cleanName, ensureParents, forget } from './safe-path.js';
import { classify, OVERLAY_OPAQUE_XATTR } from './whiteout.js';
import { lstatIfExists } from './walk.js';

export interface ApplyOptions {
  whiteouts?: 'apply' | 'overlay';
  /** chown entries to their recorded owner (default: when running as root) */
  sameOwner?: boolean;
  /** allow block devices and char devices outside the standard set (null, zero, tty…) */
  allowDevices?: boolean;
  onWarning?: (msg: string) => void;
}

export interface ApplyResult {
  /** docker's layer size: lstat sizes of non-directory entries (files, symlink targets) */
  size: number;
  entries: number;
}

// overlayfs' private xattrs (opaque, redirect, origin, metacopy...): never taken from a layer
const OVERLAY_XATTR_PREFIX = 'trusted.overlay.';
// char devices a container may legitimately ship in its image (docker creates these anyway)
const SAFE_CHAR_DEVICES = new Set(['1:3', '1:5', '1:7', '1:8', '1:9', '5:0', '5:1', '5:2', '0:0']);

export async function applyLayer(root: string, tar: AsyncIterable<Buffer>, opts: ApplyOptions = {}): Promise<ApplyResult> {
  const mode = opts.whiteouts ?? 'apply';
  const sameOwner = opts.sameOwner ?? process.getuid?.() === 0;
  const verified = new Set<string>();
  const written = new Set<string>(); // relative paths this layer created, and all their parent dirs
  const whiteouts = new Set<string>(); // overlay mode: whiteout devices this layer made
  let dirs: { rel: string; h: TarHeader }[] = [];
  let opaques: string[] = []; // relative dirs whose lower content is hidden ('' = root)
  let size = 0;
  let entries = 0;
  const abs = (rel: string) => (rel ? join(root, rel) : root);
  const markWritten = (rel: string) => {
    for (let r = rel; r && !written.has(r); r = r.slice(0, Math.max(0, r.lastIndexOf('/')))) written.add(r);
  };
  // the directory at rel was removed or replaced: what was pending for it (and below it) is void,
  // or its metadata would be applied through whatever now stands there (a symlink, say)
  const replacedDir = (rel: string) => {
    forget(verified, rel);
    const under = (r: string) => r === rel || r.startsWith(rel + '/');
    if (dirs.some((d) => under(d.rel))) dirs = dirs.filter((d) => !under(d.rel));
    if (opaques.some(under)) opaques = opaques.filter((o) => !under(o));
  };

  for await (const { header: h, body } of readTar(tar)) {
    entries++;
    const parts = cleanName(h.name);
    if (parts.length === 0) {
      if (h.type === 'dir') { dirs.push({ rel: '', h }); continue; }
      throw invalidArgument(`tar entry ${JSON.stringify(h.name)} names the root itself but is not a directory`);
    }
    const rel = parts.join('/');
    const base = parts[parts.length - 1];
    const wh = classify(base);
    if (wh) {
      const dirRel = parts.slice(0, -1).join('/');
      await ensureParents(root, parts, verified, h.name); // the whiteout's directory: real, inside root
      if (wh.kind === 'meta') continue; // aufs bookkeeping (.wh..wh.plnk etc.)
      if (wh.kind === 'opaque') { opaques.push(dirRel); continue; }
      const t = cleanName(wh.target, 'whiteout');
      if (t.length !== 1 || t[0] !== wh.target) throw invalidArgument(`tar whiteout ${JSON.stringify(h.name)} is malformed`, 'a whiteout names one entry of its own directory');
      const targetRel = dirRel ? `${dirRel}/${wh.target}` : wh.target;
      const target = join(root, targetRel);
      if (written.has(targetRel)) {
        // OCI: a whiteout hides lower layers only; what this layer wrote stays, lower content under it goes
        const st = await lstatIfExists(target);
        if (st?.isDirectory()) opaques.push(targetRel);
        continue;
      }
      replacedDir(targetRel);
      await rm(target, { recursive: true, force: true });
      if (mode === 'overlay') {
        await mknod(target, 'c', 0, 0);
        whiteouts.add(targetRel);
      }
      continue;
    }

    const path = await ensureParents(root, parts, verified, h.name);
    // something already there? a dir stays a dir; anything else is replaced (never followed)
    const existing = await lstatIfExists(path);
    if (existing && !(existing.isDirectory() && h.type === 'dir')) {
      if (existing.isDirectory()) {
        replacedDir(rel);
        await rm(path, { recursive: true, force: true });
      } else await unlink(path);
    }
    // overlay: a directory where this layer put a whiteout replaces the lower one, it does not merge
    if (whiteouts.delete(rel) && h.type === 'dir') opaques.push(rel);
    markWritten(rel);

    switch (h.type) {
      case 'dir':
        if (!existing || !existing.isDirectory()) await mkdir(path, { mode: 0o700 });
        dirs.push({ rel, h });
        continue; // metadata after the children are written
      case 'file': {
        const fh = await open(path, 'wx', 0o600);
        try {
          for await (const chunk of body) await fh.write(chunk);
        } finally {
          await fh.close();
        }
        size += h.size;
        break;
      }
      case 'symlink':
        if (!h.linkname) throw invalidArgument(`tar symlink ${JSON.stringify(h.name)} has no target`);
        await symlink(h.linkname, path);
        size += Buffer.byteLength(h.linkname);
        break;
      case 'link': {
        if (!h.linkname) throw invalidArgument(`tar hardlink ${JSON.stringify(h.name)} has no target`);
        const tparts = cleanName(h.linkname, 'hardlink target');
        if (tparts.length === 0) throw invalidArgument(`tar hardlink ${JSON.stringify(h.name)} points at the root`);
        const target = await ensureParents(root, tparts, verified, h.linkname);
        let tst;
        try { tst = await lstat(target); } catch { throw invalidArgument(`tar hardlink ${JSON.stringify(h.name)} points at ${JSON.stringify(h.linkname)}, which does not exist in the layer`); }
        if (tst.isDirectory()) throw invalidArgument(`tar hardlink ${JSON.stringify(h.name)} points at a directory`);
        await link(target, path);
        continue; // a hardlink shares its target's metadata; docker counts it as 0 extra bytes
      }
      case 'char':
      case 'block': {
        const key = `${h.devmajor}:${h.devminor}`;
        if (!opts.allowDevices && (h.type === 'block' || !SAFE_CHAR_DEVICES.has(key))) {
          throw invalidArgument(`tar entry ${JSON.stringify(h.name)} is a ${h.type} device ${key}: refusing to create device nodes that give access to host hardware`, 'only null, zero, full, random, urandom, tty, console and ptmx are allowed in layers');
        }
        try {
          await mknod(path, h.type === 'char' ? 'c' : 'b', h.devmajor ?? 0, h.devminor ?? 0);
        } catch (e) {
          opts.onWarning?.(`skipped device ${h.name}: ${(e as Error).message}`);
          continue;
        }
        break;
      }
      case 'fifo':
        await mknod(path, 'p');
        break;
    }
    await setMeta(path, h, sameOwner, opts);
  }

  // Everything below acts on paths recorded earlier; each is re-checked to be a real directory
  // reached through real directories, so a later entry that put a symlink there is never followed.
  // opaque dirs: drop what lower layers had (apply) or mark them for overlayfs (overlay)
  for (const o of opaques) {
    if (!(await isRealDir(root, o))) continue;
    if (mode === 'overlay') await setXattr(abs(o), OVERLAY_OPAQUE_XATTR, Buffer.from('y'));
    else await prune(root, o, written);
  }
  // directories last and deepest first, so writing children does not disturb their mtimes
  for (const d of dirs.reverse()) {
    if (await isRealDir(root, d.rel)) await setMeta(abs(d.rel), d.h, sameOwner, opts);
  }
  return { size, entries };
}


/** rel ('' = root) is a directory, and so is every component leading to it (no symlinks). */
async function isRealDir(root: string, rel: string): Promise<boolean> {
  let p = root;
  for (const part of rel ? rel.split('/') : []) {
    p = join(p, part);
    const st = await lstatIfExists(p);
    if (!st || !st.isDirectory()) return false;
  }
  return true;
}

/** Remove everything under rel that this layer did not write (recursively: docker's opaque semantics). */
async function prune(root: string, rel: string, written: Set<string>): Promise<void> {
  const dir = rel ? join(root, rel) : root;
  for (const n of await readdir(dir)) {
    const r = rel ? `${rel}/${n}` : n;
    const p = join(dir, n);
    if (!written.has(r)) await rm(p, { recursive: true, force: true });
    else if ((await lstat(p)).isDirectory()) await prune(root, r, written);
  }
}

async function setMeta(path: string, h: TarHeader, sameOwner: boolean, opts: ApplyOptions): Promise<void> {
  const isLink = h.type === 'symlink';
  if (sameOwner) {
    try {
      if (isLink) await lchown(path, h.uid, h.gid);
      else await chown(path, h.uid, h.gid);
    } catch (e) {
      opts.onWarning?.(`cannot chown ${h.name} to ${h.uid}:${h.gid}: ${(e as Error).message}`);
    }
  }
  if (!isLink) await chmod(path, h.mode & 0o7777);
  if (h.xattrs) {
    for (const [k, v] of h.xattrs) {
      if (k.startsWith(OVERLAY_XATTR_PREFIX)) {
        // overlayfs' own metadata (opaque, redirect, origin, metacopy) is never taken from a layer
        opts.onWarning?.(`ignored xattr ${k} on ${h.name}: overlayfs metadata is not accepted from a layer`);
        continue;
      }
      try {
        await setXattr(path, k, v);
      } catch (e) {
        opts.onWarning?.(`cannot set xattr ${k} on ${h.name}: ${(e as Error).message}`);
      }
    }
  }
  const t = h.mtime;
  if (isLink) await lutimes(path, t, t);
  else await utimes(path, t, t);
}
