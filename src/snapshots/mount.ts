// Putting a snapshot's Mount list on a directory, and taking it off again.
//
// Overlay mounts carry absolute paths. When the option string of a long chain would not fit
// in the one page the kernel copies for mount(2), the paths are made relative to their common
// directory and the mount runs with that directory as its cwd (what docker's overlay2 does
// with its short l/ links: 120+ layers then stay far below 4096 bytes).
import { existsSync, realpathSync } from 'node:fs';
import { dirname, relative, resolve, sep } from 'node:path';
import { invalidArgument, isShaleError, ShaleError } from '../errors.js';
import { isMounted, mount, unmount, type Mount } from '../sys/index.js';

/** mount(2) copies at most one page of option data, NUL included. */
export const MOUNT_DATA_MAX = 4095;

export const OVERLAY_EPERM_HINT = 'overlayfs needs CAP_SYS_ADMIN; use --storage-driver vfs';

function commonDir(paths: string[]): string {
  let parts = resolve(paths[0]).split(sep);
  for (const p of paths.slice(1)) {
    const q = resolve(p).split(sep);
    let i = 0;
    while (i < parts.length && i < q.length && parts[i] === q[i]) i++;
    parts = parts.slice(0, i);
  }
  return parts.join(sep) || sep;
}

/**
 * The option list and cwd an overlay mount will really use: unchanged when the data fits in
 * a page, else with lowerdir/upperdir/workdir relative to their common directory.
 */
export function overlayMountData(options: string[]): { options: string[]; cwd?: string; length: number } {
  const length = options.join(',').length;
  if (length <= MOUNT_DATA_MAX) return { options, length };
  const paths: string[] = [];
  for (const o of options) {
    if (o.startsWith('lowerdir=')) paths.push(...o.slice(9).split(':'));
    else if (o.startsWith('upperdir=') || o.startsWith('workdir=')) paths.push(o.slice(o.indexOf('=') + 1));
  }
  if (paths.length === 0 || paths.some((p) => !p.startsWith('/'))) {
    throw invalidArgument(`overlay mount options are ${length} bytes, more than the ${MOUNT_DATA_MAX} the kernel accepts`, 'the image has too many layers; squash or flatten it');
  }
  // the common directory of the dirs themselves (a single path would otherwise be its own cwd)
  const cwd = paths.length === 1 ? dirname(paths[0]) : commonDir(paths);
  const rel = (p: string) => relative(cwd, p) || '.';
  const out = options.map((o) => {
    if (o.startsWith('lowerdir=')) return 'lowerdir=' + o.slice(9).split(':').map(rel).join(':');
    if (o.startsWith('upperdir=')) return 'upperdir=' + rel(o.slice(9));
    if (o.startsWith('workdir=')) return 'workdir=' + rel(o.slice(8));
    return o;
  });
  const n = out.join(',').length;
  if (n > MOUNT_DATA_MAX) {
    throw invalidArgument(`overlay mount options are ${n} bytes even with relative paths, more than the ${MOUNT_DATA_MAX} the kernel accepts`, 'the image has too many layers; squash or flatten it');
  }
  return { options: out, cwd, length: n };
}

/** The error a failed overlay mount becomes: EPERM says what to do instead. */
export function overlayMountError(e: unknown, target: string): unknown {
  if (isShaleError(e, 'PermissionDenied') || /permission denied|not permitted|must be superuser|EPERM/i.test(String((e as Error)?.message))) {
    const msg = String((e as Error).message);
    return new ShaleError('PermissionDenied', msg.startsWith('mounting ') ? msg : `mounting overlay on ${target} failed: ${msg}`, OVERLAY_EPERM_HINT, { cause: e });
  }
  return e;
}

/** Mount each entry of mounts on target, in order (later ones stack on earlier ones). */
export async function mountAll(mounts: Mount[], target: string): Promise<void> {
  const abs = resolve(target);
  let done = 0;
  try {
    for (const m of mounts) {
      if (m.type === 'overlay') {
        const { options, cwd } = overlayMountData(m.options);
        try {
          await mount({ ...m, options }, abs, cwd);
        } catch (e) {
          throw overlayMountError(e, abs);
        }
      } else {
        await mount(m, abs);
      }
      done++;
    }
  } catch (e) {
    for (let i = 0; i < done; i++) await unmount(abs).catch(() => unmount(abs, true).catch(() => undefined));
    throw e;
  }
}

function canonical(target: string): string {
  const abs = resolve(target);
  try {
    return existsSync(abs) ? realpathSync(abs) : abs;
  } catch {
    return abs;
  }
}

/** Is something mounted on target? (reads /proc/self/mounts; no process spawned) */
export function isMountPoint(target: string): boolean {
  return isMounted(canonical(target));
}

/** Unmount everything stacked on target (no error if nothing is mounted there). */
export async function unmountAll(target: string, opts: { lazy?: boolean } = {}): Promise<void> {
  const abs = canonical(target);
  for (let i = 0; i < 64 && isMountPoint(abs); i++) await unmount(abs, opts.lazy ?? false);
  if (isMountPoint(abs)) throw new ShaleError('Internal', `${abs} is still mounted after unmounting it 64 times`, 'something keeps mounting there; check /proc/self/mounts');
}
