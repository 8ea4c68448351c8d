// Walk a directory tree in a stable (byte-sorted) order, lstat-ing every entry.
import { lstat, readdir } from 'node:fs/promises';
import { errno } from '../errors.js';
import type { Stats } from 'node:fs';
import { join } from 'node:path';

export interface WalkEntry {
  rel: string; // "a/b" (no leading slash); "" for the root
  path: string;
  st: Stats;
}

/** Names in byte order (what tar and docker sort by), each encoded once. */
export function sortBytes(names: string[]): string[] {
  return names.map((n) => ({ n, b: Buffer.from(n) })).sort((x, y) => Buffer.compare(x.b, y.b)).map((x) => x.n);
}

const BATCH = 64; // lstat calls in flight per directory

/**
 * Depth-first, parents before children, siblings in byte order. Root itself is not yielded.
 * Symlinks are never followed; `descend` (default: always) chooses which directories to enter.
 */
export async function* walk(root: string, rel = '', descend?: (e: WalkEntry) => boolean): AsyncGenerator<WalkEntry> {
  const dir = rel ? join(root, rel) : root;
  const names = sortBytes(await readdir(dir));
  for (let i = 0; i < names.length; i += BATCH) {
    const batch = await Promise.all(
      names.slice(i, i + BATCH).map(async (n) => {
        const r = rel ? `${rel}/${n}` : n;
        const path = join(root, r);
        return { rel: r, path, st: await lstat(path) };
      }),
    );
    for (const e of batch) {
      yield e;
      if (e.st.isDirectory() && (!descend || descend(e))) yield* walk(root, e.rel, descend);
    }
  }
}

/** lstat, or undefined when the path (or a parent of it) does not exist. */
export async function lstatIfExists(p: string): Promise<Stats | undefined> {
  try {
    return await lstat(p);
  } catch (e) {
    if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') return undefined;
    throw e;
  }
}
