// What changed between two filesystem trees, as docker's `diff` reports it (A/C/D).
//   changesDirs(lower, upper)     compare two full trees (vfs)
//   changesOverlay(upper, lowers) read an overlayfs upper dir: cost is what changed
import { readlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join, resolve } from 'node:path';
import { xattrsOfTree } from '../sys/index.js';
import { lstatIfExists, walk } from './walk.js';
import { isOverlayWhiteout } from './whiteout.js';

export interface Change {
  kind: 'A' | 'C' | 'D';
  path: string; // "/etc/passwd"
  st?: Stats; // of the new entry (A, C)
}

function statDifferent(a: Stats, b: Stats): boolean {
  if (a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid || a.rdev !== b.rdev) return true;
  if (!a.isDirectory() && (a.mtimeMs !== b.mtimeMs || a.size !== b.size)) return true;
  return false;
}


/** Add parent directories of changes as C (docker does, to keep their permissions) and sort. */
async function withParents(changes: Map<string, Change>, newRoot: string): Promise<Change[]> {
  for (const c of [...changes.values()]) {
    let p = c.path;
    for (;;) {
      p = p.slice(0, p.lastIndexOf('/'));
      if (p === '') break;
      if (changes.has(p)) continue;
      changes.set(p, { kind: 'C', path: p, st: await lstatIfExists(join(newRoot, p)) });
    }
  }
  return [...changes.values()].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}

const CAPABILITY = 'security.capability';

function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

/**
 * Docker's ChangesDirs: A for new paths, C for changed ones (type, mode, owner, rdev, file
 * capability; size and mtime for non-directories), D for the top of each removed tree, plus
 * the parents of all of these as C. Where a path changed between directory and non-directory,
 * the old tree's children are not compared (the new dir's children are all A; a dir replaced
 * by a file reports no deletions below it), and lower is never read through a symlink.
 */
export async function changesDirs(lowerDir: string, upperDir: string): Promise<Change[]> {
  const lower = resolve(lowerDir);
  const upper = resolve(upperDir);
  const [lowerX, upperX] = await Promise.all([xattrsOfTree(lower), xattrsOfTree(upper)]);
  const cap = (x: Map<string, Map<string, Buffer>>, p: string) => x.get(p)?.get(CAPABILITY);
  const out = new Map<string, Change>();
  const seen = new Set<string>();
  const bothDirs = new Set<string>(['']); // real directories in both trees
  for await (const e of walk(upper)) {
    const p = '/' + e.rel;
    seen.add(e.rel);
    // only look in lower below a directory that is a directory there too
    const old = bothDirs.has(parentOf(e.rel)) ? await lstatIfExists(join(lower, e.rel)) : undefined;
    if (!old) {
      out.set(p, { kind: 'A', path: p, st: e.st });
      continue;
    }
    if (old.isDirectory() && e.st.isDirectory()) bothDirs.add(e.rel);
    const oldCap = cap(lowerX, join(lower, e.rel));
    const newCap = cap(upperX, e.path);
    if (
      statDifferent(old, e.st) ||
      (oldCap === undefined) !== (newCap === undefined) || (oldCap && newCap && !oldCap.equals(newCap)) ||
      (e.st.isSymbolicLink() && (await readlink(join(lower, e.rel))) !== (await readlink(e.path)))
    ) {
      out.set(p, { kind: 'C', path: p, st: e.st });
    }
  }
  // deletions: enter only directories that are directories on both sides; report a missing
  // path once, at the top of what is gone
  for await (const e of walk(lower, '', (d) => bothDirs.has(d.rel))) {
    if (!seen.has(e.rel)) out.set('/' + e.rel, { kind: 'D', path: '/' + e.rel });
  }
  return withParents(out, upper);
}

export async function changesOverlay(upper: string, lowers: string[]): Promise<Change[]> {
  const out = new Map<string, Change>();
  const inLower = async (rel: string): Promise<boolean> => {
    for (const l of lowers) {
      const st = await lstatIfExists(join(l, rel));
      if (st) return !isOverlayWhiteout(st);
    }
    return false;
  };
  for await (const e of walk(upper)) {
    const p = '/' + e.rel;
    if (isOverlayWhiteout(e.st)) {
      if (await inLower(e.rel)) out.set(p, { kind: 'D', path: p });
      continue;
    }
    out.set(p, { kind: (await inLower(e.rel)) ? 'C' : 'A', path: p, st: e.st });
  }
  return withParents(out, upper);
}
