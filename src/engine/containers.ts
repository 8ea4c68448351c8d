// Container verbs over the engine: list (docker's filters), commit, logs, changes, the rootfs
// for archive/export, top. Lifecycle verbs (create, start, stop, kill, wait, rm, exec) live in
// src/containers and are re-exported here, so adapters need only the engine.
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { applyChanges } from '../builder/config.js';
import { ingestTar } from '../images/layers.js';
import { conflict, invalidArgument, ShaleError } from '../errors.js';
import type { ContainerConfig, ImageConfig } from '../oci/index.js';
import { mountRootfs, reconcile, runtimeFor, whilePaused, type Container } from '../containers/index.js';
import { containerArgs } from '../containers/spec.js';
import { logPath } from '../containers/supervise.js';
import { readLogs, readLogsFrom, type LogEntry } from '../containers/logs.js';
import { exportRootfs } from '../containers/archive.js';
import { diskUsage, sizeRw } from '../containers/inspect.js';
import { runtimeArgv } from '../containers/runtime.js';
import { sampleStats, type Sample } from '../containers/stats.js';
import { ZERO_TIME } from '../containers/store.js';
import { emit } from '../store/events.js';
import type { Engine } from './index.js';

export {
  createContainer, execInContainer, killContainer, mountRootfs, reconcile, removeContainer, startAttached, startDetached, stopContainer,
  waitStopped, parseVolumeFlag, parseMountFlag, shortCid, type Container, type CreateOptions, type ExecOptions,
} from '../containers/index.js';
export { recordedExit } from '../containers/supervise.js';
export { inspectContainer, sizeRw, diskUsage } from '../containers/inspect.js';
export { archiveFromContainer, copyFromContainer, copyToContainer, containerPath } from '../containers/archive.js';
export type { LogEntry } from '../containers/logs.js';

/** docker's filter arguments: each key's values are alternatives, different keys must all match. */
export type Filters = Record<string, string[]>;

/** `-f k=v` flags (repeatable) as docker's filter map. */
export function filtersFromFlags(flags: string[]): Filters {
  const f: Filters = {};
  for (const s of flags) {
    const i = s.indexOf('=');
    if (i < 0) throw invalidArgument(`bad format of filter (expected name=value): ${s}`);
    (f[s.slice(0, i)] ??= []).push(s.slice(i + 1));
  }
  return f;
}

/** The API's `filters` query parameter: {"k":["v"]} or the old {"k":{"v":true}}. */
export function filtersFromJSON(text: string | null | undefined): Filters {
  if (!text) return {};
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw invalidArgument(`invalid filter: ${text.slice(0, 100)}`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw invalidArgument('invalid filter: expected an object');
  const f: Filters = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (Array.isArray(v)) f[k] = v.map(String);
    else if (v && typeof v === 'object') f[k] = Object.entries(v as Record<string, unknown>).filter(([, on]) => on).map(([x]) => x);
    else throw invalidArgument(`invalid filter '${k}'`);
  }
  return f;
}

const CONTAINER_FILTERS = ['name', 'id', 'status', 'exited', 'ancestor', 'label', 'volume', 'before', 'since', 'health', 'isolation', 'network', 'publish', 'expose', 'is-task'];

function matchOne(engine: Engine, c: Container, k: string, v: string, all: Container[]): boolean {
  switch (k) {
    case 'name': {
      try { return new RegExp(v.replace(/^\//, '')).test(c.name); } catch { return c.name === v; }
    }
    case 'id': return c.id.startsWith(v);
    case 'status': return c.state.Status === v;
    case 'exited': return c.state.Status === 'exited' && c.state.ExitCode === Number(v);
    case 'ancestor': {
      const img = engine.images.tryResolve(v);
      return img ? img.id === c.imageId : c.config.Image === v;
    }
    case 'label': {
      const j = v.indexOf('=');
      const labels = c.config.Labels ?? {};
      return j < 0 ? v in labels : labels[v.slice(0, j)] === v.slice(j + 1);
    }
    case 'volume': return c.hostConfig.Mounts.some((m) => m.Source === v || m.Target === v);
    case 'before':
    case 'since': {
      const ref = all.find((x) => x.id === v || x.name === v.replace(/^\//, '') || x.id.startsWith(v));
      if (!ref) throw invalidArgument(`No such container: ${v}`);
      return k === 'before' ? c.created < ref.created : c.created > ref.created;
    }
    case 'network': return c.hostConfig.NetworkMode === v;
    case 'is-task': return v === 'false';
    default: return false; // health, isolation, publish, expose: nothing shale makes has them
  }
}

function checkFilters(filters: Filters): void {
  for (const k of Object.keys(filters)) if (!CONTAINER_FILTERS.includes(k)) throw invalidArgument(`invalid filter '${k}'`);
}

export function matchesFilters(engine: Engine, c: Container, filters: Filters, all: Container[] = []): boolean {
  checkFilters(filters);
  for (const [k, values] of Object.entries(filters)) {
    if (values.length && !values.some((v) => matchOne(engine, c, k, v, all))) return false;
  }
  return true;
}

export interface ContainerListing {
  c: Container;
  /** with size: the writable layer (SizeRw) and it plus the image (SizeRootFs) */
  sizeRw?: number;
  sizeRootFs?: number;
}

/** docker ps / GET /containers/json: newest first, running only unless all, filtered, limited. */
export async function listContainers(engine: Engine, o: { all?: boolean; filters?: Filters; limit?: number; size?: boolean } = {}): Promise<ContainerListing[]> {
  if (o.filters) checkFilters(o.filters);
  const all = await Promise.all(engine.containers.list().map((c) => reconcile(engine, c)));
  const limit = o.limit !== undefined && o.limit > 0 ? o.limit : -1;
  let cs = all;
  if (!o.all && limit < 0) cs = cs.filter((c) => c.state.Running);
  if (o.filters) cs = cs.filter((c) => matchesFilters(engine, c, o.filters!, all));
  if (limit >= 0) cs = cs.slice(0, limit);
  if (!o.size) return cs.map((c) => ({ c }));
  const imageSize = new Map<string, number>();
  const sized = await Promise.all(cs.map(async (c) => {
    const rw = await sizeRw(engine, c);
    let is = imageSize.get(c.imageId);
    if (is === undefined) imageSize.set(c.imageId, (is = engine.images.get(c.imageId)?.size ?? 0));
    return { c, sizeRw: rw, sizeRootFs: rw + is };
  }));
  // a container removed while its layer was measured is not listed (it is gone, as in docker's ps)
  return sized.filter((x) => engine.containers.get(x.c.id));
}

/** The command line docker shows for a container (ps COMMAND, history of a commit). */
export function commandOf(c: Container): string {
  return containerArgs(c).join(' ');
}

export interface CommitOptions {
  repo?: string;
  /** Dockerfile instructions (`-c`), applied over the container's config */
  changes?: string[];
  /** the API's body: a container config that replaces the container's own */
  config?: ContainerConfig;
  message?: string;
  author?: string;
}

/** docker commit: the writable layer (read with the container frozen) as a new layer on the image. */
export async function commitContainer(engine: Engine, ref: string, o: CommitOptions = {}): Promise<string> {
  const c = engine.containers.resolve(ref);
  const base = engine.images.config(c.imageId);
  let cfg: ContainerConfig = {};
  const keys: (keyof ContainerConfig)[] = ['User', 'ExposedPorts', 'Env', 'Entrypoint', 'Cmd', 'Volumes', 'WorkingDir', 'Labels', 'StopSignal', 'Healthcheck', 'Shell', 'OnBuild'];
  for (const k of keys) if (c.config[k] !== undefined && c.config[k] !== '') (cfg as Record<string, unknown>)[k] = c.config[k];
  if (o.config) cfg = { ...cfg, ...Object.fromEntries(Object.entries(o.config).filter(([k, v]) => keys.includes(k as keyof ContainerConfig) && v !== null && v !== undefined && v !== '')) };
  applyChanges(cfg, o.changes ?? []);
  // a running container is frozen while its writable layer is read, as docker's commit does
  const layer = await whilePaused(engine, c.id, () => ingestTar(engine.content, engine.snapshots.diffTar(c.id)));
  const layers = engine.images.layers(c.imageId).map(({ chainId: _c, ...l }) => l);
  const now = new Date().toISOString();
  const config: ImageConfig = {
    ...base,
    created: now,
    ...(o.author ? { author: o.author } : {}),
    config: cfg,
    container: c.id,
    rootfs: { type: 'layers', diff_ids: [...(base.rootfs?.diff_ids ?? []), layer.diffId] },
    history: [...(base.history ?? []), { created: now, ...(o.author ? { author: o.author } : {}), created_by: commandOf(c), ...(o.message ? { comment: o.message } : {}) }],
  };
  if (o.message) config.comment = o.message;
  const img = engine.images.createImage(config, [...layers, layer], o.repo ? [o.repo] : []);
  emit(engine.root, 'container', 'commit', c.id, { comment: o.message ?? '', imageID: img.id, name: c.name });
  return img.id;
}

export interface LogsOptions {
  follow?: boolean;
  /** a count, or 'all' */
  tail?: string | number;
  /** unix seconds (fractions allowed) */
  since?: number;
  until?: number;
  /** stop following when this fires (a client went away) */
  signal?: AbortSignal;
  /** how often a follow looks for new lines (ms) */
  pollMs?: number;
}

/** A container's log entries, oldest first; with follow, new ones until the container stops. */
export async function* containerLogs(engine: Engine, ref: string, o: LogsOptions = {}): AsyncGenerator<LogEntry> {
  const c = engine.containers.resolve(ref);
  const path = logPath(engine.containers.dir(c.id), c.id);
  const inRange = (e: LogEntry) => {
    const t = Date.parse(e.time) / 1000;
    return (o.since === undefined || t >= o.since) && (o.until === undefined || o.until <= 0 || t <= o.until);
  };
  let { entries, offset, ino } = readLogs(path);
  entries = entries.filter(inRange);
  if (o.tail !== undefined && o.tail !== 'all' && o.tail !== '') {
    const n = Number(o.tail);
    if (!Number.isInteger(n)) throw invalidArgument(`invalid tail value ${o.tail}`);
    if (n >= 0) entries = n === 0 ? [] : entries.slice(-n);
  }
  yield* entries;
  if (!o.follow) return;
  for (;;) {
    if (o.signal?.aborted) return;
    const now = engine.containers.get(c.id);
    const running = now ? (await reconcile(engine, now)).state.Running : false;
    const r = readLogsFrom(path, offset, ino);
    ({ offset, ino } = r);
    yield* r.entries.filter(inRange);
    if (!running) {
      const last = readLogsFrom(path, offset, ino);
      yield* last.entries.filter(inRange);
      return;
    }
    if (o.until && Date.now() / 1000 > o.until) return;
    await new Promise<void>((res) => {
      const t = setTimeout(res, o.pollMs ?? 100);
      o.signal?.addEventListener('abort', () => { clearTimeout(t); res(); }, { once: true });
    });
  }
}

/** docker diff: the writable layer's changes (A/C/D). */
export async function containerChanges(engine: Engine, ref: string): Promise<{ kind: 'A' | 'C' | 'D'; path: string }[]> {
  const c = engine.containers.resolve(ref);
  return (await engine.snapshots.changes(c.id)) as { kind: 'A' | 'C' | 'D'; path: string }[];
}

/** Run fn with the container's root filesystem mounted (cp, archive, export), released after. */
export async function withRootfs<T>(engine: Engine, ref: string, fn: (c: Container, rootfs: string) => Promise<T>): Promise<T> {
  const c = engine.containers.resolve(ref);
  const m = await mountRootfs(engine, c);
  try {
    return await fn(c, m.path);
  } finally {
    await m.release();
  }
}

/** docker export: the merged filesystem as a tar; release() when the stream is done. */
export async function exportContainer(engine: Engine, ref: string): Promise<{ stream: Readable; release: () => Promise<void> }> {
  const c = engine.containers.resolve(ref);
  const m = await mountRootfs(engine, c);
  try {
    emit(engine.root, 'container', 'export', c.id, { image: c.config.Image, name: c.name });
    return { stream: await exportRootfs(m.path), release: m.release };
  } catch (e) {
    await m.release();
    throw e;
  }
}

/** docker top: the runtime's `ps` of the container, as titles and rows. */
export async function containerTop(engine: Engine, ref: string, psArgs: string[] = []): Promise<{ Titles: string[]; Processes: string[][] }> {
  const c = await reconcile(engine, engine.containers.resolve(ref));
  if (!c.state.Running) throw conflict(`Container ${c.id} is not running`);
  const argv = runtimeArgv(runtimeFor(engine, c), ['ps', c.id, ...(psArgs.length ? psArgs : ['-ef'])]);
  const text = await new Promise<string>((res, rej) => {
    const p = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => { if (out.length < 4 << 20) out += d; });
    p.stderr.on('data', (d: Buffer) => { if (err.length < 65536) err += d; });
    p.on('error', rej);
    p.on('close', (code) => (code === 0 ? res(out) : rej(new ShaleError('Internal', `listing the processes of ${ref} failed: ${err.trim().split('\n').pop() ?? code}`))));
  });
  const lines = text.split('\n').filter((l) => l.trim());
  const titles = (lines[0] ?? '').trim().split(/\s+/);
  const processes = lines.slice(1).map((l) => {
    const f = l.trim().split(/\s+/);
    return [...f.slice(0, titles.length - 1), f.slice(titles.length - 1).join(' ')];
  });
  return { Titles: titles, Processes: processes };
}

/** Bytes a container's writable layer takes on disk (system df). */
export function containerDisk(engine: Engine, c: Container): Promise<number> {
  return diskUsage(engine, c);
}

export interface StatsItem extends Sample {
  id: string;
  name: string;
  preread: string;
  precpu_stats: Sample['cpu_stats'];
  networks: Record<string, { rx_bytes: number; tx_bytes: number }>;
}

/**
 * docker stats: samples of the container's cgroup, each with the previous one's CPU numbers
 * (precpu_stats) so the CPU % can be computed; one sample without stream (taken after a first
 * one `intervalMs` earlier), every intervalMs while it runs with stream.
 */
export async function* containerStats(engine: Engine, ref: string, o: { stream?: boolean; signal?: AbortSignal; intervalMs?: number } = {}): AsyncGenerator<StatsItem> {
  const c0 = engine.containers.resolve(ref);
  const wait = (ms: number) => new Promise<void>((res) => {
    const t = setTimeout(res, ms);
    o.signal?.addEventListener('abort', () => { clearTimeout(t); res(); }, { once: true });
  });
  const interval = o.intervalMs ?? 1000;
  let prev: Sample | undefined;
  for (;;) {
    const c = await reconcile(engine, engine.containers.get(c0.id) ?? c0);
    const zero: Sample = { read: ZERO_TIME, cpu_stats: { cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 }, system_cpu_usage: 0, online_cpus: 0, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } }, memory_stats: { usage: 0, limit: 0, stats: {} }, pids_stats: { current: 0 }, blkio_stats: { io_service_bytes_recursive: null } };
    const cur = c.state.Running ? sampleStats(c) : zero;
    if (!prev && c.state.Running && !o.stream) {
      // one shot: a first sample to measure the CPU against, as dockerd's
      prev = cur;
      await wait(Math.min(interval, 500));
      continue;
    }
    yield { ...cur, id: c.id, name: `/${c.name}`, preread: prev?.read ?? ZERO_TIME, precpu_stats: (prev ?? zero).cpu_stats, networks: {} };
    prev = cur;
    if (!o.stream || !c.state.Running || o.signal?.aborted) return;
    await wait(interval);
    if (o.signal?.aborted) return;
  }
}

export { pauseContainer, unpauseContainer } from '../containers/index.js';
export { cpuPercent, memUsed } from '../containers/stats.js';
