// The bundle a runtime starts from: the rootfs mounted at <dir>/rootfs, /etc/hosts,
// hostname and resolv.conf, volumes filled on first use, and config.json from the spec.
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import type { Store } from '../store/index.js';
import { getSnapshotter } from '../store/rootfs.js';
import { failedPrecondition, invalidArgument, notFound } from '../errors.js';
import { mountAll } from '../snapshots/index.js';
import { mountedAt, unmountRootfs } from './mounts.js';
import { Scope } from '../scope/index.js';
import { fillFromRootfs } from './archive.js';
import { buildSpec, findInit, type SpecMount } from './spec.js';
import { ContainerStore, type Container } from './store.js';
import { resolveUser } from './user.js';
import { VolumeStore } from './volumes.js';


/** Mount the container's writable snapshot at <dir>/rootfs unless it is there already; says whether it was. */
async function ensureRootfs(engine: Store, store: ContainerStore, id: string): Promise<{ path: string; already: boolean }> {
  const path = join(store.dir(id), 'rootfs');
  mkdirSync(path, { recursive: true });
  if (mountedAt(path)) return { path, already: true };
  await mountAll(await getSnapshotter(engine).mounts(id), path);
  return { path, already: false };
}

/** The container's rootfs mounted at <dir>/rootfs for host-side work (cp, export); release() unmounts it if the container is not running. */
export async function mountRootfs(engine: Store, c: Container, op = 'copy'): Promise<{ path: string; release: () => Promise<void> }> {
  const store = new ContainerStore(engine);
  // exclusive with rm (and other copies) of this container until release(): an rm -f waits for
  // the copy, so a copy that reports success has really landed in the container
  const unlock = await store.lock(c.id, op);
  try {
    if (!store.get(c.id)) throw notFound(`No such container: ${c.name}`, 'it was removed before the copy could start');
    const { path, already } = await ensureRootfs(engine, store, c.id);
    if (already) return { path, release: async () => unlock() };
    return {
      path,
      release: async () => {
        try {
          const now = store.get(c.id);
          if (!now?.state.Running) await unmountRootfs(path);
        } finally {
          unlock();
        }
      },
    };
  } catch (e) {
    unlock();
    throw e;
  }
}

const HOSTS = '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n';

/** Copy what the image has at a volume's mount path into the volume if it is empty (docker's first-use copy). */
async function fillVolume(vols: VolumeStore, name: string, rootfs: string, inner: string, st: Stats): Promise<void> {
  if (!vols.isEmpty(name)) return;
  if (!st.isDirectory()) return;
  await fillFromRootfs(rootfs, inner, vols.dataPath(name));
  // the volume's root takes the owner and mode of the image's directory, as in docker
  chownSync(vols.dataPath(name), st.uid, st.gid);
  chmodSync(vols.dataPath(name), st.mode & 0o7777);
}

/** Everything up to handing the bundle to the runtime: mount rootfs, mounts, user, config.json. */
export async function prepareBundle(engine: Store, c: Container): Promise<void> {
  const store = new ContainerStore(engine);
  const vols = new VolumeStore(engine);
  const dir = store.dir(c.id);
  const { path: rootfs } = await ensureRootfs(engine, store, c.id);
  try {
    const scope = new Scope(rootfs, { label: 'container' });
    const mounts: SpecMount[] = [];
    for (const m of c.hostConfig.Mounts) {
      // the runtime makes a missing mount point itself, inside the rootfs (runc's securejoin)
      const dest = scope.resolve(m.Target, { what: 'mount target' });
      let source: string;
      if (m.Type === 'volume') {
        vols.create(m.Source, { anonymous: m.Anonymous }); // the existing one, or again if it was removed
        if (dest.st) await fillVolume(vols, m.Source, rootfs, dest.inner, dest.st);
        source = vols.dataPath(m.Source);
      } else {
        source = m.Source;
        if (!existsSync(source)) throw invalidArgument(`bind source path does not exist: ${source}`);
      }
      mounts.push({ destination: dest.inner, type: 'bind', source, options: ['rbind', m.ReadOnly ? 'ro' : 'rw', 'rprivate'] });
    }
    const wd = c.config.WorkingDir;
    if (wd) scope.mkdirAll(wd, 0o755, 'working directory'); // one component at a time, inside the rootfs
    const user = resolveUser(rootfs, c.config.User);
    const host = c.hostConfig.NetworkMode === 'host';
    writeFileSync(join(dir, 'hostname'), `${c.config.Hostname}\n`);
    if (host && existsSync('/etc/hosts')) copyFileSync('/etc/hosts', join(dir, 'hosts'));
    else writeFileSync(join(dir, 'hosts'), HOSTS);
    let resolv = '';
    try {
      resolv = readFileSync('/etc/resolv.conf', 'utf8');
    } catch { /* none */ }
    if (!host) resolv = resolv.split('\n').filter((l) => !/^\s*nameserver\s+(127\.|::1)/.test(l)).join('\n');
    writeFileSync(join(dir, 'resolv.conf'), resolv);
    let init: string | undefined;
    if (c.hostConfig.Init) {
      init = findInit();
      if (!init) throw failedPrecondition('--init needs docker-init (tini), which is not installed', 'install Debian\'s tini (apt-get install tini), or drop --init');
    }
    const spec = buildSpec(c, { rootfs, user, mounts, dir, network: host ? 'host' : 'none', init });
    // runc and crun bring lo up themselves in a new network namespace (docker's --network none)
    writeFileSync(join(dir, 'config.json'), JSON.stringify(spec));
  } catch (e) {
    await unmountRootfs(rootfs);
    throw e;
  }
}
