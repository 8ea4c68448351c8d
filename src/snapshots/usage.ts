// du -b style accounting of a snapshot's own directory.
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Usage } from './types.js';

/** lstat sizes of non-directories (each inode once) and the number of distinct inodes, root included. */
export async function dirUsage(dir: string): Promise<Usage> {
  const seen = new Set<number>();
  let size = 0;
  const stack = [dir];
  while (stack.length) {
    const p = stack.pop() as string;
    const st = await lstat(p);
    if (seen.has(st.ino)) continue;
    seen.add(st.ino);
    if (st.isDirectory()) {
      for (const n of await readdir(p)) stack.push(join(p, n));
    } else {
      size += st.size;
    }
  }
  return { size, inodes: seen.size };
}
