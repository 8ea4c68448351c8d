// The prune verbs (containers, images, build cache, volumes, and all of them as `system prune`),
// once, for every adapter. Each returns what it removed and the bytes that freed, as docker's
// prune commands print them.
import type { Engine } from './index.js';
import { containerUsingImage, gcSnapshots } from './hooks.js';
import { ContainerStore, reconcile, removeContainer, VolumeStore } from '../containers/index.js';
import { diskUsage } from '../containers/inspect.js';

export interface PruneReport {
  /** removed names or IDs, in docker's words ("deleted: sha256:…", "untagged: x:y", a container ID) */
  removed: string[];
  reclaimed: number;
}

/** Every container that is not running. */
export async function pruneContainers(engine: Engine): Promise<PruneReport> {
  const store = new ContainerStore(engine);
  const removed: string[] = [];
  let reclaimed = 0;
  for (const c of store.list()) {
    const now = await reconcile(engine, c);
    if (now.state.Running) continue;
    const size = await diskUsage(engine, now);
    try {
      await removeContainer(engine, now.id, {});
    } catch {
      continue; // started, or removed by someone else, meanwhile
    }
    reclaimed += size;
    removed.push(now.id);
  }
  return { removed, reclaimed };
}

/** Dangling images (untagged), or with `all` every image no container uses. */
export async function pruneImages(engine: Engine, o: { all?: boolean } = {}): Promise<PruneReport & { errors: string[] }> {
  const before = engine.content.totalSize();
  const removed: string[] = [];
  const errors: string[] = [];
  for (const img of engine.images.list()) {
    if ((engine.images.tagsOf(img.id).length && !o.all) || containerUsingImage(engine, img.id)) continue;
    try {
      const r = engine.images.remove(img.id, { force: true });
      for (const u of r.untagged) removed.push(`untagged: ${u}`);
      for (const d of r.deleted) removed.push(`deleted: ${d}`);
    } catch (e) {
      errors.push((e as Error).message);
    }
  }
  await engine.images.gc();
  await gcSnapshots(engine);
  return { removed, errors, reclaimed: Math.max(0, before - engine.content.totalSize()) };
}

/** The builder's cache records, and the layer blobs only they kept. */
export async function pruneBuildCache(engine: Engine): Promise<PruneReport> {
  const rows = engine.db.prepare('SELECT key FROM build_cache').all() as { key: string }[];
  const before = engine.content.totalSize();
  engine.db.prepare('DELETE FROM build_cache').run();
  await engine.images.gc();
  return { removed: rows.map((r) => r.key.slice(7, 32)), reclaimed: Math.max(0, before - engine.content.totalSize()) };
}

/** Volumes no container uses: anonymous ones, or with `all` named ones too. */
export async function pruneVolumes(engine: Engine, o: { all?: boolean } = {}): Promise<PruneReport> {
  const vols = new VolumeStore(engine);
  const containers = new ContainerStore(engine).list();
  const removed: string[] = [];
  let reclaimed = 0;
  for (const v of vols.list()) {
    if (!o.all && !v.anonymous) continue;
    if (vols.users(v.name, containers).length) continue;
    reclaimed += await vols.size(v.name);
    vols.remove(v.name, containers);
    removed.push(v.name);
  }
  return { removed, reclaimed };
}

/** docker system prune: stopped containers, dangling (or all unused) images, build cache, and with `volumes` anonymous volumes. */
export async function pruneSystem(engine: Engine, o: { all?: boolean; volumes?: boolean } = {}): Promise<{ containers: PruneReport; images: PruneReport & { errors: string[] }; volumes?: PruneReport; cache: PruneReport; reclaimed: number }> {
  const containers = await pruneContainers(engine);
  const volumes = o.volumes ? await pruneVolumes(engine) : undefined;
  const images = await pruneImages(engine, { all: o.all });
  const cache = await pruneBuildCache(engine);
  return { containers, images, volumes, cache, reclaimed: containers.reclaimed + images.reclaimed + (volumes?.reclaimed ?? 0) + cache.reclaimed };
}
