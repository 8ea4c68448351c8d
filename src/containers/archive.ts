// Copying in and out of a container (`cp`, `export`, a volume's first fill), always through a
// Scope: the path is resolved inside the container as the container sees it (symlinks re-rooted
// at its /, ".." clamped there, volumes and bind mounts resolved inside their own source), and
// every read and write happens relative to directories held open, so neither a hostile image
// nor a running container can steer the copy onto the host.
import { closeSync, createReadStream, lstatSync, readlinkSync, statSync, type Stats } from 'node:fs';
import { basename, dirname, resolve as resolveHost } from 'node:path';
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import { readTar } from '../archive/tar/reader.js';
import { writeTar, type TarSourceEntry } from '../archive/tar/writer.js';
import type { TarHeader } from '../archive/tar/header.js';
import { walk } from '../archive/walk.js';
import { devNumbers, typeOf } from '../archive/create.js';
import { xattrsOfTree } from '../sys/index.js';
import type { Store } from '../store/index.js';
import { errno, invalidArgument, notFound } from '../errors.js';
import { Scope } from '../scope/index.js';
import { extractTree, readTree, type ExtractEntry } from '../scope/tree.js';
import type { Container } from './store.js';
import { VolumeStore } from './volumes.js';

/** The scope a container path lives in: the rootfs, or the volume / bind mount over it. */
export interface ContainerPath {
  scope: Scope;
  /** path inside that scope */
  inner: string;
  /** the path as the container sees it */
  containerPath: string;
  readOnly: boolean;
  /** lstat of where it leads (of the link itself when the final link was not followed), if it exists */
  st?: Stats;
}

/**
 * Where `p` lands as the container sees it: below a volume or bind mount's target it resolves
 * inside that volume or host directory (clamped there), elsewhere inside the rootfs.
 */
export function containerPath(engine: Store, c: Container, rootfs: string, p: string, opts: { followFinal?: boolean; what?: string } = {}): ContainerPath {
  const root = new Scope(rootfs, { label: 'container' });
  const r = root.resolve(p, opts);
  let best: { t: string; source: string; ro: boolean } | undefined;
  const vols = new VolumeStore(engine);
  for (const m of c.hostConfig.Mounts) {
    let t: string;
    try {
      t = root.resolve(m.Target).inner;
    } catch {
      continue;
    }
    if ((r.inner === t || r.inner.startsWith(t === '/' ? '/' : t + '/')) && (!best || t.length > best.t.length)) {
      best = { t, source: m.Type === 'volume' ? vols.dataPath(m.Source) : m.Source, ro: !!m.ReadOnly };
    }
  }
  if (!best) return { scope: root, inner: r.inner, containerPath: r.inner, readOnly: false, st: r.st };
  const scope = new Scope(best.source, { label: 'volume' });
  const inVol = scope.resolve(r.inner.slice(best.t.length) || '/', opts);
  return { scope, inner: inVol.inner, containerPath: r.inner, readOnly: best.ro, st: inVol.st };
}

/** tar source entries as entries to extract (bodies opened lazily, in order). */
async function* asExtract(entries: AsyncIterable<TarSourceEntry>): AsyncGenerator<ExtractEntry> {
  for await (const e of entries) {
    if (e.header.type !== 'file') yield { header: e.header };
    else if (e.stream) yield { header: e.header, body: e.stream() };
    else if (e.data) yield { header: e.header, body: [e.data] as unknown as AsyncIterable<Buffer> };
    else if (e.file) yield { header: e.header, body: createReadStream(e.file) as AsyncIterable<Buffer> };
    else yield { header: e.header };
  }
}

async function* fromTar(tar: Readable): AsyncGenerator<ExtractEntry> {
  for await (const { header, body } of readTar(tar)) yield { header, body: body as AsyncIterable<Buffer> };
}

/** A host file or tree (the user's own) as entries named under `top` ('' = its contents only). */
async function* hostEntries(src: string, st: Stats, top: string): AsyncGenerator<ExtractEntry> {
  const head = (name: string, s: Stats, linkname?: string): TarHeader => ({
    name, type: typeOf(s) ?? 'file', mode: s.mode & 0o7777, uid: s.uid, gid: s.gid, size: s.isFile() ? s.size : 0, mtime: Math.floor(s.mtimeMs / 1000), linkname,
    ...devNumbers(s.rdev),
  });
  const entry = (name: string, path: string, s: Stats): ExtractEntry | undefined => {
    if (s.isSocket()) return undefined;
    if (s.isSymbolicLink()) return { header: head(name, s, readlinkSync(path)) };
    if (s.isFile()) return { header: head(name, s), body: createReadStream(path) as AsyncIterable<Buffer> };
    return { header: head(name, s) };
  };
  if (top) {
    const e = entry(top, src, st);
    if (e) yield e;
  }
  if (!st.isDirectory()) return;
  for await (const w of walk(src)) {
    const e = entry(top ? `${top}/${w.rel}` : w.rel, w.path, w.st);
    if (e) yield e;
  }
}

export interface CopyOptions {
  /** -L: follow a symlink named as the source */
  followLink?: boolean;
  /** -a: keep owners (otherwise files are root:root in the container, and the caller's outside) */
  archive?: boolean;
}

/** `cp HOST ctr:DEST` and `cp - ctr:DEST` (a tar on `tar`). */
export async function copyToContainer(engine: Store, c: Container, rootfs: string, src: { hostPath: string } | { tar: Readable }, dest: string, o: CopyOptions = {}): Promise<void> {
  const d = containerPath(engine, c, rootfs, dest, { what: 'destination path' });
  if (d.readOnly) throw invalidArgument(`mounted volume is marked read-only: ${d.containerPath}`);
  const opts = { sameOwner: !!o.archive };
  if ('tar' in src) {
    if (!d.st?.isDirectory()) throw invalidArgument(`destination ${dest} must be a directory when copying a tar archive from stdin`);
    await extractTree(d.scope, d.inner, fromTar(src.tar), opts);
    return;
  }
  const source = resolveHost(src.hostPath);
  let st: Stats;
  try {
    st = o.followLink ? statSync(source) : lstatSync(source);
  } catch (e) {
    if (errno(e) === 'ENOENT') throw notFound(`stat ${source}: no such file or directory`);
    throw e;
  }
  const contents = /\/\.$/.test(src.hostPath);
  if (d.st?.isDirectory()) {
    await extractTree(d.scope, d.inner, hostEntries(source, st, contents && st.isDirectory() ? '' : basename(source)), opts);
    return;
  }
  if (st.isDirectory() && d.st) throw invalidArgument(`cannot copy directory ${src.hostPath} over the file ${dest}`);
  if (dest.endsWith('/')) throw notFound(`destination directory ${dest} does not exist in container ${c.name}`);
  const parent = d.scope.resolve(posix.dirname(d.inner));
  if (!parent.st?.isDirectory()) throw notFound(`Could not find the file ${posix.dirname(dest)} in container ${c.name}`);
  await extractTree(d.scope, parent.inner, hostEntries(source, st, posix.basename(d.inner)), opts);
}

/** The source of `cp ctr:SRC ...`: where it resolved, and its entries named under `top`. */
function openSource(engine: Store, c: Container, rootfs: string, srcPath: string, o: CopyOptions): { st: Stats; inner: string; entries: (top: string) => AsyncGenerator<TarSourceEntry>; close: () => void } {
  const contents = /\/\.$/.test(srcPath);
  const s = containerPath(engine, c, rootfs, srcPath, { followFinal: !!o.followLink || contents || srcPath.endsWith('/'), what: 'path' });
  const f = s.scope.walk(s.inner, { followFinal: !!o.followLink || contents || srcPath.endsWith('/') });
  if (!f.st || f.dirFd < 0) {
    f.close();
    throw notFound(`Could not find the file ${srcPath} in container ${c.name}`);
  }
  return { st: f.st, inner: s.containerPath, entries: (top) => readTree(f.dirFd, f.name, top), close: () => f.close() };
}

/** `cp ctr:SRC -`: the tar docker writes (the source under its base name). */
export function archiveFromContainer(engine: Store, c: Container, rootfs: string, srcPath: string, o: CopyOptions = {}): { stream: Readable; close: () => void } {
  const src = openSource(engine, c, rootfs, srcPath, o);
  const name = posix.basename(src.inner) || '';
  return { stream: writeTar(src.entries(name)), close: src.close };
}

/** `cp ctr:SRC HOSTDEST`: written under the host destination and nowhere else. */
export async function copyFromContainer(engine: Store, c: Container, rootfs: string, srcPath: string, hostDest: string, o: CopyOptions = {}): Promise<void> {
  const src = openSource(engine, c, rootfs, srcPath, o);
  try {
    const contents = /\/\.$/.test(srcPath);
    const dest = resolveHost(hostDest);
    let dst: Stats | undefined;
    try {
      dst = statSync(dest);
    } catch (e) {
      if (errno(e) !== 'ENOENT') throw e;
    }
    const opts = { sameOwner: !!o.archive, devices: false };
    if (src.st.isDirectory()) {
      if (dst && !dst.isDirectory()) throw invalidArgument(`cannot copy a directory to the file ${hostDest}`);
      // the copy's top is the destination itself (made if missing); what the container sends
      // is resolved inside it, so no link it carries can lead outside
      let topDir = dest;
      if (dst && !contents) topDir = `${dest}/${posix.basename(src.inner) || 'root'}`;
      const parent = new Scope(dirname(topDir), { label: 'destination' });
      parent.mkdirAll(basename(topDir), 0o755, 'destination');
      await extractTree(new Scope(topDir, { label: 'destination' }), '/', asExtract(src.entries('')), opts);
      return;
    }
    if (hostDest.endsWith('/') && !dst) throw notFound(`destination directory ${hostDest} does not exist`);
    const target = dst?.isDirectory() ? `${dest}/${posix.basename(src.inner)}` : dest;
    await extractTree(new Scope(dirname(target), { label: 'destination' }), '/', asExtract(src.entries(basename(target))), opts);
  } finally {
    src.close();
  }
}

/** `export`: the container's whole filesystem, read through held directories. */
export async function exportRootfs(rootfs: string): Promise<Readable> {
  const scope = new Scope(rootfs, { label: 'container' });
  const xattrs = await xattrsOfTree(rootfs);
  const keep = /^(security\.capability|user\.)/;
  const fd = scope.openRoot();
  const root = rootfs.replace(/\/+$/, '');
  async function* entries(): AsyncGenerator<TarSourceEntry> {
    try {
      yield* readTree(fd, '', '', {
        xattrs: (rel) => {
          const all = xattrs.get(rel ? `${root}/${rel}` : root);
          if (!all) return undefined;
          const m = new Map([...all].filter(([k]) => keep.test(k)));
          return m.size ? m : undefined;
        },
      });
    } finally {
      closeSync(fd);
    }
  }
  return writeTar(entries());
}

/** A volume's first use: what the image has at the mount point, copied in (docker's copy-up). */
export async function fillFromRootfs(rootfs: string, inner: string, volumeData: string): Promise<void> {
  const src = new Scope(rootfs, { label: 'container' });
  const { fd } = src.openDir(inner, { what: 'volume mount point' });
  try {
    await extractTree(new Scope(volumeData, { label: 'volume' }), '/', asExtract(readTree(fd, '', '')), { sameOwner: true, devices: true });
  } finally {
    closeSync(fd);
  }
}
