// Where the image commands meet containers and storage drivers. Kept apart so that the
// image store does not depend on containers; the containers module fills these in.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { mountPoints, pidAlive, unmount } from '../sys/index.js';
import type { Engine } from './index.js';
import { ContainerStore, shortCid, ZERO_TIME } from '../containers/store.js';
import { reconcile, removeContainer } from '../containers/index.js';
import { findRuntime, runtimeArgv } from '../containers/runtime.js';
import { inspectContainer, inspectVolume } from '../containers/inspect.js';
import { getSnapshotter, imageSnapshotKeys } from '../store/rootfs.js';
import { BUILD_OWNER_LABEL, isAlive } from '../store/owner.js';

/** Name or short ID of a container that uses the image, if any. */
export function containerUsingImage(engine: Engine, imageId: string): string | undefined {
  const c = new ContainerStore(engine).usingImage(imageId)[0];
  return c ? shortCid(c.id) : undefined;
}

/**
 * What owns snapshots now: the keys images and containers use, and the time since which a live
 * build or load (a '*' lease) owns what it made (its stage chains and views belong to no image yet).
 */
function owners(engine: Engine, store = new ContainerStore(engine)): { keep: Set<string>; since?: number } {
  const keep = imageSnapshotKeys(engine);
  for (const c of store.list()) keep.add(c.id);
  return { keep, since: engine.images.liveLeases().since };
}

/**
 * Remove unpacked layers (snapshots) that no image or container needs any more: committed
 * chains and init layers of deleted images, and leftovers of interrupted unpacks.
 */
export async function gcSnapshots(engine: Engine): Promise<void> {
  // nothing unpacked yet: do not open (and so create, after probing mounts) a storage driver
  if (!['overlay2', 'vfs', 'fuse-overlayfs'].some((d) => existsSync(join(engine.root, d, 'metadata.db')))) return;
  const sn = getSnapshotter(engine);
  const store = new ContainerStore(engine);
  // remove children before parents: repeat while something went
  for (let pass = 0; pass < 1000; pass++) {
    // list first, then decide what to keep: whoever makes a snapshot records its owner (the
    // image, the container row) before it, so every snapshot in this list has its owner in the
    // keep set read after it. Deciding once up front would take what others made meanwhile.
    const all = await sn.list();
    const { keep, since } = owners(engine, store);
    const parents = new Set(all.map((s) => s.parent).filter((p): p is string => !!p));
    let removed = 0;
    for (const s of all) {
      if (keep.has(s.key) || parents.has(s.key)) continue;
      if (since !== undefined && Date.parse(s.created) >= since) continue;
      if (s.kind === 'active' && s.key.startsWith('extract-') && unpackUnderWay(s.key, s.created)) continue;
      await sn.remove(s.key).catch(() => undefined);
      removed++;
    }
    if (!removed) break;
  }
}

/** An unpack's active snapshot (extract-<pid>-…) whose process lives; older keys without a pid: for an hour. */
function unpackUnderWay(key: string, created: string): boolean {
  const m = /^extract-(?:init-)?(\d+)-[0-9a-f]+$/.exec(key);
  return m ? pidAlive(Number(m[1])) : Date.now() - Date.parse(created) < 3600_000;
}

/** A killed build's RUN container (stopped and removed) and its untagged intermediate image. */
async function removeBuildLeftover(engine: Engine, id: string, imageId: string): Promise<void> {
  await removeContainer(engine, id, { force: true, volumes: true });
  const img = engine.images.get(imageId);
  if (!img || engine.images.tagsOf(imageId).length || new ContainerStore(engine).usingImage(imageId).length) return;
  const cfg = engine.images.config(imageId);
  if (cfg.history?.length === 1 && cfg.history[0].created_by === 'shale build intermediate') engine.images.remove(imageId, { force: true });
}

/**
 * system check: runtime state (runc/crun's per-container dirs under <root>/runtime/NAME) of
 * containers the store no longer has, as a killed rm or start leaves it; --repair deletes it
 * through the runtime (which also kills what still runs there).
 */
export async function checkRuntimeState(engine: Engine, repair = false): Promise<{ info: string[] }> {
  const info: string[] = [];
  const base = join(resolve(engine.root), 'runtime');
  const store = new ContainerStore(engine);
  let names: string[] = [];
  try { names = readdirSync(base); } catch { return { info }; }
  for (const rt of names.filter((n) => n === 'runc' || n.startsWith('crun'))) {
    let ids: string[] = [];
    try { ids = readdirSync(join(base, rt)).filter((x) => /^[0-9a-f]{64}$/.test(x)); } catch { continue; }
    for (const id of ids) {
      if (store.get(id)) continue;
      info.push(`runtime state of container ${shortCid(id)} (${rt}) belongs to no container${repair ? ': deleted' : '; `system check --repair` deletes it'}`);
      if (!repair) continue;
      try {
        const argv = runtimeArgv(findRuntime(engine.root, rt), ['delete', '--force', id]);
        spawnSync(argv[0], argv.slice(1), { stdio: 'ignore' });
      } catch { /* the runtime is gone: its state can only be removed */ }
      rmSync(join(base, rt, id), { recursive: true, force: true });
    }
  }
  return { info };
}

/** Unpacked layers (committed snapshots) that no image uses and nothing is built on. */
export async function checkSnapshots(engine: Engine, repair = false): Promise<{ info: string[] }> {
  if (!['overlay2', 'vfs', 'fuse-overlayfs'].some((d) => existsSync(join(engine.root, d, 'metadata.db')))) return { info: [] };
  const sn = getSnapshotter(engine);
  const all = await sn.list();
  const { keep, since } = owners(engine);
  const needed = new Set<string>();
  const byKey = new Map(all.map((x) => [x.key, x]));
  for (const k of keep) for (let x = byKey.get(k); x && !needed.has(x.key); x = x.parent ? byKey.get(x.parent) : undefined) needed.add(x.key);
  const stray = all.filter((x) => x.kind === 'committed' && !needed.has(x.key) && !(since !== undefined && Date.parse(x.created) >= since));
  if (!stray.length) return { info: [] };
  if (repair) await gcSnapshots(engine);
  return { info: [`${stray.length} unpacked layer(s) no image or container uses${repair ? ': removed' : '; `system check --repair` or `image prune` removes them'}`] };
}

/** Mount points under the data root, deepest first. */
function mountsUnder(root: string): string[] {
  return [...new Set(mountPoints().filter((t) => t.startsWith(root + '/')))].sort((a, b) => b.length - a.length);
}

/**
 * system check: mounts under the root that nothing alive owns — a container's rootfs left
 * mounted by a killed cp/start, an init-layer or overlay-probe mount of a killed process.
 * Unknown mounts are reported, never touched.
 */
export async function checkMounts(engine: Engine, repair = false): Promise<{ problems: string[]; info: string[] }> {
  const info: string[] = [];
  const root = resolve(engine.root);
  const store = new ContainerStore(engine);
  for (const m of mountsUnder(root)) {
    const rel = m.slice(root.length + 1);
    let leaked: boolean;
    const ctr = /^containers\/([0-9a-f]{64})\/rootfs$/.exec(rel);
    const temp = /^(?:.*\/)?(?:\.overlay-probe|tmp-init|tmp\/build-(?:ctx|from|dest))-(\d+)-[^/]+(?:\/m)?$/.exec(rel);
    if (ctr) {
      // nobody's: the container is gone, or stopped (its supervisor dead) with no cp or export holding it
      const c = store.get(ctr[1]);
      const now = c?.state.Running ? await reconcile(engine, c) : c;
      leaked = !now || (!now.state.Running && !store.lockHolder(now.id));
    } else if (temp) leaked = !pidAlive(Number(temp[1]));
    else {
      info.push(`${m} is mounted under the data root by something shale does not know; left alone`);
      continue;
    }
    if (!leaked) continue;
    info.push(`mount ${m} was left by an interrupted command${repair ? ': unmounted' : '; `system check --repair` unmounts it'}`);
    if (repair) {
      await unmount(m).catch(() => unmount(m, true));
      if (temp) rmSync(join(root, rel.replace(/\/m$/, '')), { recursive: true, force: true });
    }
  }
  // the directories of those temporary mounts, left by a process killed before it removed them
  const mountedNow = new Set(mountsUnder(root));
  const tmpEntries = (() => { try { return readdirSync(join(root, 'tmp')).map((n) => `tmp/${n}`); } catch { return []; } })();
  for (const name of [...readdirSync(root), ...tmpEntries]) {
    const m = /^(?:\.overlay-probe|tmp-init|tmp\/build-(?:ctx|from|dest))-(\d+)-/.exec(name);
    const p = join(root, name);
    if (!m || pidAlive(Number(m[1])) || [...mountedNow].some((x) => x === p || x.startsWith(p + '/'))) continue;
    info.push(`temporary directory ${p} was left by an interrupted command${repair ? ': removed' : '; `system check --repair` removes it'}`);
    if (repair) rmSync(p, { recursive: true, force: true });
  }
  return { problems: [], info };
}

/** inspect for non-image objects (containers, volumes). */
export async function inspectOther(engine: Engine, name: string, opts: { size?: boolean; type?: string }): Promise<unknown | undefined> {
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
