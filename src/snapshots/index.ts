// Storage drivers: pick one, open it. Driver data lives in <shale root>/<driver>.
//
// Auto-detection (driver undefined): a driver that already holds data under root wins (in the
// order overlay2, fuse-overlayfs, vfs), so images never seem to vanish; otherwise overlay2 if
// a real test overlay mount works in root, else fuse-overlayfs if the binary exists and
// /dev/fuse opens, else vfs. The answer is computed once per root and process.
import { accessSync, closeSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { invalidArgument } from '../errors.js';
import { probeMountSync } from '../sys/index.js';
import { FuseOverlaySnapshotter } from './fuse/index.js';
import { OverlaySnapshotter } from './overlay/index.js';
import { VfsSnapshotter } from './vfs/index.js';
import { DRIVER_NAMES, type DriverName, type Snapshotter } from './types.js';

export * from './types.js';
export { mountAll, unmountAll, isMountPoint, overlayMountData, MOUNT_DATA_MAX, OVERLAY_EPERM_HINT } from './mount.js';
export { OverlaySnapshotter } from './overlay/index.js';
export { FuseOverlaySnapshotter } from './fuse/index.js';
export { VfsSnapshotter } from './vfs/index.js';

export function isDriverName(d: unknown): d is DriverName {
  return typeof d === 'string' && (DRIVER_NAMES as readonly string[]).includes(d);
}

export function checkDriverName(d: string): DriverName {
  if (!isDriverName(d)) throw invalidArgument(`unknown storage driver ${d}; use overlay2, vfs or fuse-overlayfs`);
  return d;
}

/** Can the kernel mount overlayfs with two lower layers on the filesystem of root? */
export function overlayWorks(root: string): { ok: boolean; why?: string } {
  mkdirSync(root, { recursive: true });
  const dir = mkdtempSync(join(root, `.overlay-probe-${process.pid}-`)); // the pid tells system check whether its owner lives
  try {
    for (const d of ['l1', 'l2', 'u', 'w', 'm']) mkdirSync(join(dir, d));
    const r = probeMountSync({ type: 'overlay', source: 'overlay', options: [`lowerdir=${join(dir, 'l2')}:${join(dir, 'l1')}`, `upperdir=${join(dir, 'u')}`, `workdir=${join(dir, 'w')}`] }, join(dir, 'm'));
    return r.ok ? { ok: true } : { ok: false, why: r.error };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function onPath(bin: string): boolean {
  for (const d of (process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter)) {
    try {
      accessSync(join(d, bin), constants.X_OK);
      return true;
    } catch {
      // next
    }
  }
  return false;
}

/** fuse-overlayfs installed and /dev/fuse usable? */
export function fuseWorks(): { ok: boolean; why?: string } {
  if (!onPath('fuse-overlayfs')) return { ok: false, why: 'fuse-overlayfs is not installed (Debian package fuse-overlayfs)' };
  try {
    closeSync(openSync('/dev/fuse', 'r+'));
  } catch (e) {
    return { ok: false, why: `/dev/fuse is not usable: ${(e as Error).message}` };
  }
  return { ok: true };
}

const detected = new Map<string, DriverName>();

export function detectDriver(root: string): DriverName {
  const abs = resolve(root);
  const known = detected.get(abs);
  if (known) return known;
  let d: DriverName | undefined = DRIVER_NAMES.find((n) => existsSync(join(abs, n, 'metadata.db')));
  if (!d) d = overlayWorks(abs).ok ? 'overlay2' : fuseWorks().ok ? 'fuse-overlayfs' : 'vfs';
  detected.set(abs, d);
  return d;
}

/** Open the storage driver under <root>/<driver> (detected when not given). */
export function openSnapshotter(root: string, driver?: string): Snapshotter {
  const name = driver === undefined ? detectDriver(root) : checkDriverName(driver);
  const dir = join(resolve(root), name);
  switch (name) {
    case 'overlay2':
      return new OverlaySnapshotter(dir);
    case 'fuse-overlayfs':
      return new FuseOverlaySnapshotter(dir);
    case 'vfs':
      return new VfsSnapshotter(dir);
  }
}
