// System verbs: disk usage (docker system df / GET /system/df), info (docker info / GET /info),
// the build cache's records, and version.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { cpus, hostname, release, totalmem, type as osType } from 'node:os';
import { reconcile, type Container } from '../containers/index.js';
import { diskUsage } from '../containers/inspect.js';
import { findRuntime, hybridCgroups } from '../containers/runtime.js';
import { imageSummaries, type ImageSummary } from './images.js';
import type { Engine } from './index.js';

export const VERSION = '0.1.0';
/** The Engine API version shale speaks (docker 20.10's), and the oldest it accepts. */
export const API_VERSION = '1.41';
export const MIN_API_VERSION = '1.24';

export interface CacheRecord { key: string; size: number; created: string; lastUsed: string; shared: boolean }

/** The builder's cache (build_cache rows -> layer blobs): what it holds, and what pruning it frees (blobs no image uses). */
export function buildCacheUsage(engine: Engine): { count: number; size: number; reclaimable: number; records: CacheRecord[] } {
  const rows = engine.db.prepare(`SELECT b.key AS key, b.blob AS blob, b.created AS created, b.last_used AS last_used,
    COALESCE(l.size, 0) AS size, EXISTS (SELECT 1 FROM image_layers il WHERE il.blob = b.blob) AS shared
    FROM build_cache b LEFT JOIN layers l ON l.blob = b.blob`).all() as { key: string; blob: string; created: string; last_used: string; size: number; shared: number }[];
  const blobs = new Map<string, { size: number; shared: boolean }>();
  for (const r of rows) blobs.set(r.blob, { size: r.size, shared: !!r.shared });
  let size = 0;
  let reclaimable = 0;
  for (const b of blobs.values()) {
    size += b.size;
    if (!b.shared) reclaimable += b.size;
  }
  return { count: rows.length, size, reclaimable, records: rows.map((r) => ({ key: r.key, size: r.size, created: r.created, lastUsed: r.last_used, shared: !!r.shared })) };
}

export interface DiskUsage {
  images: ImageSummary[];
  /** bytes of every layer blob, each counted once, and of those used by a container's image */
  imagesSize: number;
  imagesActiveSize: number;
  containers: { c: Container; disk: number }[];
  volumes: { name: string; size: number; links: number; created: string; labels: Record<string, string>; mountpoint: string }[];
  buildCache: ReturnType<typeof buildCacheUsage>;
}

export async function systemDiskUsage(engine: Engine): Promise<DiskUsage> {
  const containers = await Promise.all(engine.containers.list().map((c) => reconcile(engine, c)));
  const images = imageSummaries(engine);
  const used = new Set(containers.map((c) => c.imageId));
  // layers counted once: by blob, with the images that use them
  const layerSize = new Map<string, number>();
  const active = new Set<string>();
  for (const img of images) {
    for (const l of engine.images.layers(img.id)) {
      layerSize.set(l.blob, l.size);
      if (used.has(img.id)) active.add(l.blob);
    }
  }
  const disks = await Promise.all(containers.map((c) => diskUsage(engine, c)));
  const vols = engine.volumes;
  const volumes = await Promise.all(vols.list().map(async (v) => ({
    name: v.name, size: await vols.size(v.name), links: vols.users(v.name, containers).length, created: v.created, labels: v.labels, mountpoint: vols.dataPath(v.name),
  })));
  return {
    images,
    imagesSize: [...layerSize.values()].reduce((a, b) => a + b, 0),
    imagesActiveSize: [...active].reduce((a, b) => a + (layerSize.get(b) ?? 0), 0),
    containers: containers.map((c, i) => ({ c, disk: disks[i] })),
    volumes,
    buildCache: buildCacheUsage(engine),
  };
}

/** docker info's object (the fields docker's CLI prints, with shale's values). */
export async function systemInfo(engine: Engine): Promise<Record<string, unknown>> {
  const containers = await Promise.all(engine.containers.list().map((c) => reconcile(engine, c)));
  let runtime = 'none';
  try {
    runtime = findRuntime(engine.root, engine.opts.runtime).name;
  } catch { /* reported as none */ }
  const running = containers.filter((c) => c.state.Running).length;
  const hybrid = hybridCgroups();
  return {
    ID: '', Containers: containers.length, ContainersRunning: running, ContainersPaused: 0, ContainersStopped: containers.length - running,
    Images: engine.images.list().length, Driver: engine.snapshots.name, DriverStatus: [['Backing Filesystem', 'extfs']],
    Plugins: { Volume: ['local'], Network: ['host', 'null'], Authorization: null, Log: ['json-file'] },
    MemoryLimit: false, SwapLimit: false, KernelMemory: false, CpuCfsPeriod: false, CpuCfsQuota: false, CPUShares: false, CPUSet: false, PidsLimit: false,
    IPv4Forwarding: false, BridgeNfIptables: false, BridgeNfIp6tables: false, Debug: false, NFd: 0, OomKillDisable: false, NGoroutines: 0,
    SystemTime: new Date().toISOString(), LoggingDriver: 'json-file', CgroupDriver: 'cgroupfs',
    CgroupVersion: hybrid ? '1' : existsSync('/sys/fs/cgroup/cgroup.controllers') ? '2' : '1', NEventsListener: 0,
    KernelVersion: release(), OperatingSystem: osType(), OSVersion: '', OSType: 'linux',
    Architecture: process.arch === 'x64' ? 'x86_64' : process.arch, IndexServerAddress: 'https://index.docker.io/v1/',
    RegistryConfig: { AllowNondistributableArtifactsCIDRs: [], AllowNondistributableArtifactsHostnames: [], InsecureRegistryCIDRs: ['127.0.0.0/8'], IndexConfigs: {}, Mirrors: [] },
    NCPU: cpus().length, MemTotal: totalmem(), GenericResources: null, DockerRootDir: resolve(engine.root), HttpProxy: '', HttpsProxy: '', NoProxy: '',
    Name: hostname(), Labels: [], ExperimentalBuild: false, ServerVersion: VERSION, Runtimes: { [runtime]: { path: runtime } }, DefaultRuntime: runtime,
    Swarm: { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '', RemoteManagers: null },
    LiveRestoreEnabled: true, Isolation: '', InitBinary: '', ContainerdCommit: { ID: '', Expected: '' }, RuncCommit: { ID: '', Expected: '' },
    InitCommit: { ID: '', Expected: '' }, SecurityOptions: [], Warnings: [], Volumes: engine.volumes.list().length, Hybrid: hybrid,
  };
}

/** docker version's server part (GET /version). */
export function versionInfo(): Record<string, unknown> {
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  return {
    Platform: { Name: 'shale' },
    Components: [{ Name: 'Engine', Version: VERSION, Details: { ApiVersion: API_VERSION, Arch: arch, BuildTime: '', Experimental: 'false', GitCommit: '', GoVersion: process.version, KernelVersion: release(), MinAPIVersion: MIN_API_VERSION, Os: 'linux' } }],
    Version: VERSION, ApiVersion: API_VERSION, MinAPIVersion: MIN_API_VERSION, GitCommit: '', GoVersion: process.version, Os: 'linux', Arch: arch,
    KernelVersion: release(), BuildTime: '',
  };
}
