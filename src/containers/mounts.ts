// Is a container's rootfs mounted, and taking it off. Reads /proc/self/mounts directly (no
// child process), so the start and exit paths of a container spawn as little as possible.
import { resolve } from 'node:path';
import { isMounted, unmount } from '../sys/index.js';

export function mountedAt(path: string): boolean {
  return isMounted(resolve(path));
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
