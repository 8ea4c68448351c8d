// Resolving archive paths inside a root without ever leaving it.
// Rules (stricter than docker, on purpose): no absolute names, no ".." component, and no
// symlink among the parents of an entry. A name that breaks one is refused, never rewritten.
import { lstat, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { invalidArgument, errno } from '../errors.js';

/** Split and check a tar entry name; returns its components. */
export function cleanName(name: string, what = 'entry'): string[] {
  if (name.includes('\0')) throw invalidArgument(`tar ${what} ${JSON.stringify(name)} contains a NUL byte`);
  if (name.startsWith('/')) throw invalidArgument(`tar ${what} ${JSON.stringify(name)} is an absolute path: refusing to write outside the target`, 'layer entries must be relative to the root');
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw invalidArgument(`tar ${what} ${JSON.stringify(name)} climbs out with "..": refusing to write outside the target`, 'layer entries must stay inside the root');
  return parts;
}

/**
 * Checks that every parent directory of `parts` inside root is a real directory (creating
 * missing ones), never a symlink. `verified` caches relative dirs already checked.
 */
export async function ensureParents(root: string, parts: string[], verified: Set<string>, entryName: string): Promise<string> {
  let rel = '';
  for (let i = 0; i < parts.length - 1; i++) {
    rel = rel ? `${rel}/${parts[i]}` : parts[i];
    if (verified.has(rel)) continue;
    const p = join(root, rel);
    try {
      const st = await lstat(p);
      if (st.isSymbolicLink()) throw invalidArgument(`tar entry ${JSON.stringify(entryName)} goes through the symlink /${rel}: refusing to write through it`, 'a layer may not put files under a symlinked directory');
      if (!st.isDirectory()) throw invalidArgument(`tar entry ${JSON.stringify(entryName)}: parent /${rel} is not a directory`);
    } catch (e) {
      if (errno(e) !== 'ENOENT') throw e;
      await mkdir(p, { mode: 0o755 });
    }
    verified.add(rel);
  }
  return join(root, ...parts);
}

/** Forget cached dirs at or under rel (the entry there was replaced). */
export function forget(verified: Set<string>, rel: string): void {
  if (verified.size === 0) return;
  const prefix = rel + '/';
  for (const v of verified) if (v === rel || v.startsWith(prefix)) verified.delete(v);
}
