// Is a container's rootfs mounted, and taking it off. Reads /proc/self/mounts directly (no
// child process), so the start and exit paths of a container spawn as little as possible.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { unmount } from '../sys/index.js';

/** /proc/self/mounts escapes space, tab, newline and backslash as \ooo */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function mountedAt(path: string): boolean {
  const abs = resolve(path);
  try {
    return readFileSync('/proc/self/mounts', 'utf8').split('\n').some((l) => unescapeMount(l.split(' ')[1] ?? '') === abs);
  } catch {
    return false;
  }
}

/** Unmount everything stacked on path; lazily if a normal unmount fails (a process still uses it). */
export async function unmountRootfs(path: string): Promise<void> {
  for (let i = 0; i < 16 && mountedAt(path); i++) {
    try {
      await unmount(path);
    } catch {
      await unmount(path, true).catch(() => undefined);
    }
  }
}
