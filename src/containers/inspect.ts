// docker's views of a container and a volume: inspect objects (State, Config, Mounts,
// GraphDriver, SizeRw/SizeRootFs) and sizes (the writable layer's diff, and what it takes on
// disk: the diff on overlay2, the whole copy on vfs). Used by the CLI and by `inspect`'s hook.
import { join } from 'node:path';
import type { Store } from '../store/index.js';
import { getSnapshotter } from '../store/rootfs.js';
import { errno, isShaleError } from '../errors.js';
import { VfsSnapshotter } from '../snapshots/index.js';
import { dirUsage } from '../snapshots/usage.js';
import { containerArgs } from './spec.js';
import { logPath } from './supervise.js';
import { ContainerStore, type Container } from './store.js';
import { VolumeStore } from './volumes.js';
import { reconcile } from './index.js';

/** The writable layer's size (docker's SizeRw); 0 when the container has none. */
export async function sizeRw(engine: Store, c: Container): Promise<number> {
  try {
    return (await getSnapshotter(engine).usage(c.id)).size;
  } catch (e) {
    // no writable layer, or it went while it was walked (an rm beside a `ps -s`): nothing to count
    if (isShaleError(e, 'NotFound') || errno(e) === 'ENOENT') return 0;
    throw e;
  }
}

/** Bytes the container's writable layer takes on disk: its diff on overlay, its whole copy on vfs. */
export async function diskUsage(engine: Store, c: Container): Promise<number> {
  const sn = getSnapshotter(engine);
  if (sn instanceof VfsSnapshotter && sn.exists(c.id)) {
    try {
      return (await dirUsage(sn.path(c.id))).size;
    } catch (e) {
      if (errno(e) === 'ENOENT') return 0; // removed while it was walked
      throw e;
    }
  }
  return sizeRw(engine, c);
}

export async function inspectContainer(engine: Store, c: Container, size: boolean): Promise<Record<string, unknown>> {
  c = await reconcile(engine, c);
  const store = new ContainerStore(engine);
  const vols = new VolumeStore(engine);
  const sn = getSnapshotter(engine);
  const dir = store.dir(c.id);
  const args = containerArgs(c);
  const data: Record<string, string> = {};
  try {
    const m = (await sn.mounts(c.id))[0];
    for (const o of m?.options ?? []) {
      const [k, v] = o.split('=');
      if (k === 'lowerdir') data.LowerDir = v.split(':').map((p) => (p.startsWith('/') ? p : join(sn.root, p))).join(':');
      if (k === 'upperdir') data.UpperDir = v;
      if (k === 'workdir') data.WorkDir = v;
    }
    if (m?.type === 'bind') data.UpperDir = m.source;
    data.MergedDir = join(dir, 'rootfs');
  } catch { /* no snapshot */ }
  const obj: Record<string, unknown> = {
    Id: c.id,
    Created: c.created,
    Path: args[0] ?? '',
    Args: args.slice(1),
    State: { Status: c.state.Paused && c.state.Running ? 'paused' : c.state.Status, Running: c.state.Running, Paused: !!c.state.Paused && c.state.Running, Restarting: !!c.state.Restarting && !c.state.Running, OOMKilled: false, Dead: c.state.Dead, Pid: c.state.Pid, ExitCode: c.state.ExitCode, Error: c.state.Error, StartedAt: c.state.StartedAt, FinishedAt: c.state.FinishedAt },
    Image: c.imageId,
    ResolvConfPath: join(dir, 'resolv.conf'),
    HostnamePath: join(dir, 'hostname'),
    HostsPath: join(dir, 'hosts'),
    LogPath: logPath(dir, c.id),
    Name: `/${c.name}`,
    RestartCount: c.state.RestartCount ?? 0,
    Driver: sn.name,
    Platform: 'linux',
    MountLabel: '',
    ProcessLabel: '',
    AppArmorProfile: '',
    ExecIDs: null,
    HostConfig: {
      Binds: c.hostConfig.Binds.length ? c.hostConfig.Binds : null,
      LogConfig: c.hostConfig.LogConfig,
      NetworkMode: c.hostConfig.NetworkMode,
      AutoRemove: c.hostConfig.AutoRemove,
      Runtime: c.hostConfig.Runtime ?? 'runc',
      Mounts: c.hostConfig.Mounts.filter((m) => !m.Anonymous).map((m) => ({ Type: m.Type, Source: m.Source, Target: m.Target, ReadOnly: !!m.ReadOnly })),
      RestartPolicy: c.hostConfig.RestartPolicy ?? { Name: 'no', MaximumRetryCount: 0 },
      Memory: c.hostConfig.Memory ?? 0,
      MemorySwap: c.hostConfig.MemorySwap ?? 0,
      NanoCpus: c.hostConfig.NanoCpus ?? 0,
      CpuShares: c.hostConfig.CpuShares ?? 0,
      CpusetCpus: c.hostConfig.CpusetCpus ?? '',
      PidsLimit: c.hostConfig.PidsLimit ?? null,
      Init: c.hostConfig.Init ?? null,
      ReadonlyRootfs: !!c.hostConfig.ReadonlyRootfs,
      Tmpfs: c.hostConfig.Tmpfs && Object.keys(c.hostConfig.Tmpfs).length ? c.hostConfig.Tmpfs : null,
      CapAdd: c.hostConfig.CapAdd?.length ? c.hostConfig.CapAdd : null,
      CapDrop: c.hostConfig.CapDrop?.length ? c.hostConfig.CapDrop : null,
      Privileged: !!c.hostConfig.Privileged,
    },
    GraphDriver: { Name: sn.name, Data: Object.keys(data).length ? data : null },
    Mounts: c.hostConfig.Mounts.map((m) => m.Type === 'volume'
      ? { Type: 'volume', Name: m.Source, Source: vols.dataPath(m.Source), Destination: m.Target, Driver: 'local', Mode: m.ReadOnly ? 'ro' : 'z', RW: !m.ReadOnly, Propagation: '' }
      : { Type: 'bind', Source: m.Source, Destination: m.Target, Mode: m.ReadOnly ? 'ro' : '', RW: !m.ReadOnly, Propagation: 'rprivate' }),
    Config: c.config,
    NetworkSettings: { Networks: { [c.hostConfig.NetworkMode]: {} } },
  };
  if (size) {
    const rw = await sizeRw(engine, c);
    obj.SizeRw = rw;
    obj.SizeRootFs = rw + (engine.images.get(c.imageId)?.size ?? 0);
  }
  return obj;
}

export function inspectVolume(engine: Store, name: string): Record<string, unknown> | undefined {
  const vols = new VolumeStore(engine);
  const v = vols.get(name);
  if (!v) return undefined;
  return { CreatedAt: v.created.replace(/\.\d+Z$/, 'Z'), Driver: v.driver, Labels: v.labels, Mountpoint: vols.dataPath(v.name), Name: v.name, Options: null, Scope: 'local' };
}

