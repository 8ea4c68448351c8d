// From image to root filesystem: unpack an image's layers into committed snapshots named by
// their chain IDs (shared by every image and container that has the same chain), and the
// per-image "init" layer that holds the mount points a container needs (/etc/hosts,
// /etc/hostname, /etc/resolv.conf, /proc, /sys, /dev), so they never show up in `diff`.
// The engine's storage driver is opened lazily here, once per engine.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { closeSync, constants, fchmodSync, mkdirSync, openSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { openUncompressed } from '../archive/index.js';
import { hex } from '../digest/index.js';
import { DIR_FLAGS, Scope } from '../scope/index.js';
import { ShaleError } from '../errors.js';
import { openSnapshotter, mountAll, unmountAll, type Snapshotter } from '../snapshots/index.js';
import type { Store } from './index.js';

const snapshotters = new WeakMap<Store, Snapshotter>();

/** The engine's storage driver (opened on first use, closed with the engine). */
export function getSnapshotter(engine: Store): Snapshotter {
  let s = snapshotters.get(engine);
  if (!s) {
    s = openSnapshotter(engine.root, engine.opts.storageDriver);
    snapshotters.set(engine, s);
    const opened = s;
    engine.onClose(() => {
      opened.close();
      snapshotters.delete(engine);
    });
  }
  return s;
}

/** Snapshot key of an image's init layer. */
export function initKey(topChain: string | undefined): string {
  return `init-${topChain ? hex(topChain) : 'scratch'}`;
}

async function ignoreRace(fn: () => Promise<void>, sn: Snapshotter, name: string): Promise<void> {
  try {
    await fn();
  } catch (e) {
    // another process committed the same chain while we worked: theirs is as good as ours
    if (sn.exists(name)) return;
    throw e;
  }
}

/** The paths the init layer holds: empty files and directories that containers mount over. */
const INIT_DIRS = ['proc', 'sys', 'dev', 'dev/pts', 'dev/shm', 'etc'];
const INIT_FILES = ['etc/hosts', 'etc/hostname', 'etc/resolv.conf'];

/**
 * Make sure every layer of the image is a committed snapshot named by its chain ID, plus the
 * image's init layer on top. Returns the key a container's writable layer is prepared on.
 * Safe when several processes unpack the same image at once.
 */
export async function unpackImage(engine: Store, imageId: string): Promise<string> {
  const u = await unpackHeld(engine, imageId);
  u.release();
  return u.key;
}

/**
 * unpackImage, with every snapshot of the chain held (against a concurrent cleanup's remove)
 * until release(): the caller prepares its container or view on the key first. The hold is
 * taken before anything is looked at, so what this finds unpacked stays unpacked.
 */
export async function unpackHeld(engine: Store, imageId: string): Promise<{ key: string; release: () => void }> {
  const sn = getSnapshotter(engine);
  const layers = engine.images.layers(imageId);
  const release = sn.hold([...layers.map((l) => l.chainId), initKey(layers[layers.length - 1]?.chainId)]);
  try {
    return { key: await unpackLayers(engine, sn, layers), release };
  } catch (e) {
    release();
    throw e;
  }
}

async function unpackLayers(engine: Store, sn: Snapshotter, layers: { chainId: string; blob: string }[]): Promise<string> {
  let parent: string | undefined;
  for (const l of layers) {
    if (!sn.exists(l.chainId)) {
      const key = `extract-${process.pid}-${randomBytes(8).toString('hex')}`; // the pid tells a cleanup whether the unpack is still under way
      await ignoreRace(async () => {
        await sn.prepare(key, parent, { 'shale.chain': l.chainId });
        try {
          // the same limits as load: a size cap, and free space checked where the layer is unpacked
          const { tar } = await openUncompressed(engine.content.open(l.blob), { freeSpaceAt: engine.root });
          await sn.applyTar(key, tar);
          await sn.commit(l.chainId, key);
        } catch (e) {
          await sn.remove(key).catch(() => undefined);
          throw e;
        }
      }, sn, l.chainId);
    }
    parent = l.chainId;
  }
  const init = initKey(parent);
  if (!sn.exists(init)) {
    const key = `extract-init-${process.pid}-${randomBytes(8).toString('hex')}`;
    await ignoreRace(async () => {
      const mounts = await sn.prepare(key, parent, { 'shale.init': 'true' });
      const dir = await mkdtemp(join(engine.root, `tmp-init-${process.pid}-`)); // the pid tells system check whether its owner lives
      try {
        await mountAll(mounts, dir);
        try {
          await makeInitEntries(dir);
        } finally {
          await unmountAll(dir);
        }
        await sn.commit(init, key);
      } catch (e) {
        await sn.remove(key).catch(() => undefined);
        throw e;
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }, sn, init);
  }
  return init;
}

/**
 * Create the init layer's entries. Like docker's init layer, each of them and every directory
 * above it is made real: an image's symlink (or file) at /dev, /proc, /etc or /etc/hosts is
 * replaced in the init layer, never followed, so neither shale nor the runtime (which creates
 * /dev/fd, /dev/ptmx... by joined paths) can be led out of the rootfs through it.
 */
async function makeInitEntries(root: string): Promise<void> {
  const scope = new Scope(root, { label: 'image' });
  const make = (p: string, file: boolean) => {
    const f = scope.walk(p, { followFinal: false });
    try {
      if (f.inner !== `/${p}` || f.dirFd < 0) throw new ShaleError('Internal', `init layer: /${p} resolved to ${f.inner}`);
      if (f.st && (file ? f.st.isFile() || f.st.isDirectory() : f.st.isDirectory())) return; // already what a container needs
      if (f.st) unlinkSync(f.path); // a link or file the image put there: replaced, as docker's init layer does
      if (file) closeSync(openSync(f.path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644));
      else {
        mkdirSync(f.path, { mode: 0o755 });
        const fd = openSync(f.path, DIR_FLAGS);
        try { fchmodSync(fd, 0o755); } finally { closeSync(fd); } // whatever the umask
      }
    } finally {
      f.close();
    }
  };
  for (const d of INIT_DIRS) make(d, false); // parents come before children in the list
  for (const f of INIT_FILES) make(f, true);
}

/** Snapshots (by key) that images use: their chains and init layers. */
export function imageSnapshotKeys(engine: Store): Set<string> {
  const keep = new Set<string>();
  for (const img of engine.images.list()) {
    const ls = engine.images.layers(img.id);
    for (const l of ls) keep.add(l.chainId);
    keep.add(initKey(ls[ls.length - 1]?.chainId));
  }
  return keep;
}
