// Walk a directory tree in a stable (byte-sorted) order, lstat-ing every entry.
import { lstat, readdir } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join } from 'node:path';

export interface WalkEntry {
  rel: string; // "a/b" (no leading slash); "" for the root
  path: string;
  st: Stats;
}

function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/**
 * Depth-first, parents before children, siblings in byte order. Root itself is not yielded.
 * Symlinks are never followed; `descend` (default: always) chooses which directories to enter.
 */
export async function* walk(root: string, rel = '', descend?: (e: WalkEntry) => boolean): AsyncGenerator<WalkEntry> {
  const dir = rel ? join(root, rel) : root;
  const names = (await readdir(dir)).sort(byteCompare);
  for (const n of names) {
    const r = rel ? `${rel}/${n}` : n;
    const path = join(root, r);
    const st = await lstat(path, { bigint: false });
    const e = { rel: r, path, st };
    yield e;
    if (st.isDirectory() && (!descend || descend(e))) yield* walk(root, r, descend);
  }
}
