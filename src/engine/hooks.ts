// Where the image commands meet containers and storage drivers. Kept apart so that the
// image store does not depend on containers; the containers module fills these in.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Engine } from './index.js';
import { ContainerStore, shortCid, ZERO_TIME } from '../containers/store.js';
import { getSnapshotter, imageSnapshotKeys } from './rootfs.js';
import { BUILD_OWNER_LABEL, isAlive } from './owner.js';

/** Name or short ID of a container that uses the image, if any. */
export function containerUsingImage(engine: Engine, imageId: string): string | undefined {
  const c = new ContainerStore(engine).usingImage(imageId)[0];
  return c ? shortCid(c.id) : undefined;
}

/**
 * Remove unpacked layers (snapshots) that no image or container needs any more: committed
 * chains and init layers of deleted images, and leftovers of interrupted unpacks.
 */
export async function gcSnapshots(engine: Engine): Promise<void> {
  // nothing unpacked yet: do not open (and so create, after probing mounts) a storage driver
  if (!['overlay2', 'vfs', 'fuse-overlayfs'].some((d) => existsSync(join(engine.root, d, 'metadata.db')))) return;
  const sn = getSnapshotter(engine);
  const keep = imageSnapshotKeys(engine);
  for (const c of new ContainerStore(engine).list()) keep.add(c.id);
  // remove children before parents: repeat while something went
  for (let pass = 0; pass < 1000; pass++) {
    const all = await sn.list();
    const parents = new Set(all.map((s) => s.parent).filter((p): p is string => !!p));
    let removed = 0;
    for (const s of all) {
      if (keep.has(s.key) || parents.has(s.key)) continue;
      if (s.kind === 'active' && s.key.startsWith('extract-') && Date.now() - Date.parse(s.created) < 3600_000) continue; // an unpack under way
      await sn.remove(s.key).catch(() => undefined);
      removed++;
    }
    if (!removed) break;
  }
}

/** A killed build's RUN container (stopped and removed) and its untagged intermediate image. */
async function removeBuildLeftover(engine: Engine, id: string, imageId: string): Promise<void> {
  const { removeContainer } = await import('../containers/index.js');
  await removeContainer(engine, id, { force: true, volumes: true });
  const img = engine.images.get(imageId);
  if (!img || engine.images.tagsOf(imageId).length || new ContainerStore(engine).usingImage(imageId).length) return;
  const cfg = engine.images.config(imageId);
  if (cfg.history?.length === 1 && cfg.history[0].created_by === 'shale build intermediate') engine.images.remove(imageId, { force: true });
}

/** inspect for non-image objects (containers, volumes). */
export async function inspectOther(engine: Engine, name: string, opts: { size?: boolean; type?: string }): Promise<unknown | undefined> {
  const { inspectContainer, inspectVolume } = await import('../containers/inspect.js');
  if (!opts.type || opts.type === 'container') {
    const c = new ContainerStore(engine).tryResolve(name);
    if (c) return inspectContainer(engine, c, !!opts.size);
  }
  if (!opts.type || opts.type === 'volume') {
    const v = inspectVolume(engine, name);
    if (v) return v;
  }
  return undefined;
}

/**
 * system check: containers whose writable layer or image is missing (problems), and what an
 * interrupted `create` leaves (a record without its layer, or a layer without its record):
 * information, removed with `repair`.
 */
export async function checkContainers(engine: Engine, repair = false): Promise<{ problems: string[]; info: string[] }> {
  const problems: string[] = [];
  const info: string[] = [];
  const store = new ContainerStore(engine);
  const containers = store.list();
  if (containers.length === 0 && !existsSync(join(engine.root, 'containers'))) return { problems, info };
  const sn = getSnapshotter(engine);
  for (const c of containers) {
    const never = c.state.Status === 'created' && c.state.StartedAt === ZERO_TIME;
    if (!sn.exists(c.id)) {
      if (never) {
        info.push(`container ${shortCid(c.id)} (${c.name}) was interrupted while being created${repair ? ': removed' : '; `shale rm` or `system check --repair` removes it'}`);
        if (repair) store.delete(c.id);
      } else problems.push(`container ${shortCid(c.id)} (${c.name}): its writable layer is missing`);
    }
    if (!engine.images.get(c.imageId)) problems.push(`container ${shortCid(c.id)} (${c.name}): its image ${c.imageId} is missing`);
    const owner = c.config.Labels?.[BUILD_OWNER_LABEL];
    if (owner && !isAlive(owner)) {
      info.push(`container ${shortCid(c.id)} (${c.name}) was left by a killed build${repair ? ': removed, with its intermediate image' : '; `system check --repair` removes it and its intermediate image'}`);
      if (repair) await removeBuildLeftover(engine, c.id, c.imageId);
    }
  }
  const ids = new Set(store.list().map((c) => c.id));
  for (const s of await sn.list()) {
    if (!s.labels?.['shale.container'] || ids.has(s.key)) continue;
    info.push(`writable layer ${s.key} belongs to no container (an interrupted create or rm)${repair ? ': removed' : '; `system check --repair` removes it'}`);
    if (repair) await sn.remove(s.key);
  }
  return { problems, info };
}
