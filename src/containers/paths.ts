// Resolving a path inside a container's root filesystem, as the container would see it,
// without ever leaving that root. Symlinks are followed with chroot semantics (an absolute
// target starts again at the container's /), and a path that climbs above the root through
// ".." (directly or in a symlink's target) is refused with an error naming the culprit.
// Used for mount targets (-v, --mount), `cp` in both directions, workdir creation, and
// reading /etc/passwd for -u.
import { lstatSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { errno, invalidArgument } from '../errors.js';

export interface Resolved {
  /** the path on the host (inside root) */
  host: string;
  /** the same path as the container sees it, with every symlink resolved ("/var/run/x" -> "/run/x") */
  inner: string;
  /** whether it exists */
  exists: boolean;
}

/**
 * Resolve `path` inside `root`. With followFinal false, a symlink as the last component is
 * returned as is (cp copies the link itself). `what` names the path in errors.
 */
export function resolveInRootfs(root: string, path: string, opts: { followFinal?: boolean; what?: string } = {}): Resolved {
  const what = opts.what ?? 'path';
  const followFinal = opts.followFinal ?? true;
  const queue: { c: string; via?: string }[] = path.split('/').filter((c) => c !== '' && c !== '.').map((c) => ({ c }));
  const stack: string[] = [];
  let links = 0;
  let exists = true;
  while (queue.length) {
    const { c, via } = queue.shift()!;
    if (c === '..') {
      if (stack.length === 0) {
        if (via) throw invalidArgument(`${what} ${path} escapes the container's root filesystem through the symlink ${via}`, 'refusing to follow a symlink that points outside the container');
        throw invalidArgument(`${what} ${path} climbs out of the container's root filesystem with ".."`, 'use a path inside the container');
      }
      stack.pop();
      continue;
    }
    if (!exists) {
      stack.push(c);
      continue;
    }
    const host = join(root, ...stack, c);
    let st;
    try {
      st = lstatSync(host);
    } catch (e) {
      if (errno(e) !== 'ENOENT' && errno(e) !== 'ENOTDIR') throw e;
      exists = false;
      stack.push(c);
      continue;
    }
    const last = queue.length === 0;
    if (st.isSymbolicLink() && (!last || followFinal)) {
      if (++links > 40) throw invalidArgument(`${what} ${path}: too many levels of symbolic links`);
      const target = readlinkSync(host);
      const linkPath = '/' + [...stack, c].join('/');
      const parts = target.split('/').filter((x) => x !== '' && x !== '.').map((x) => ({ c: x, via: via ?? `${linkPath} (-> ${target})` }));
      if (target.startsWith('/')) stack.length = 0;
      queue.unshift(...parts);
      continue;
    }
    if (!last && !st.isDirectory()) {
      exists = false; // a file in the middle: nothing exists below it
    }
    stack.push(c);
  }
  return { host: join(root, ...stack), inner: '/' + stack.join('/'), exists };
}
