// du -b style accounting of a snapshot's own directory.
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Usage } from './types.js';

/** lstat sizes of non-directories (each inode once) and the number of distinct inodes, root included. */
export async function dirUsage(dir: string): Promise<Usage> {
  const seen = new Set<number>();
  let size = 0;
  const stack = [dir];
  // a running container changes its layer while it is measured: what vanished mid-walk is not
  // counted (as du goes on past it); only the top directory must exist
  const gone = (e: unknown, p: string) => (e as { code?: string }).code === 'ENOENT' && p !== dir;
  while (stack.length) {
    const p = stack.pop() as string;
    let st;
    try {
      st = await lstat(p);
    } catch (e) {
      if (gone(e, p)) continue;
      throw e;
    }
    if (seen.has(st.ino)) continue;
    seen.add(st.ino);
    if (st.isDirectory()) {
      let names: string[];
      try {
        names = await readdir(p);
      } catch (e) {
        if (gone(e, p)) continue;
        throw e;
      }
      for (const n of names) stack.push(join(p, n));
    } else {
      size += st.size;
    }
  }
  return { size, inodes: seen.size };
}
