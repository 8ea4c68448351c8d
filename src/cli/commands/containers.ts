// Container commands, following docker's flags, headers and --format fields: create, run,
// start, stop, restart, kill, wait, rm, ps, logs, exec, diff, commit, export, cp,
// container prune (and the `container` group), system df, info.
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { cpus, release, totalmem, type as osType } from 'node:os';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { getEngine, out, err, collect } from '../context.js';
import { goTime, humanDuration, humanSize, printFormatted, since, table, truncate, compileFormat } from '../format.js';
import { imageRows } from './images.js';
import type { Engine } from '../../engine/index.js';
import { getSnapshotter } from '../../store/rootfs.js';
import { applyChanges } from '../../builder/config.js';
import { ingestTar } from '../../images/layers.js';
import { shortId } from '../../images/store.js';
import { conflict, invalidArgument, ShaleError } from '../../errors.js';
import type { ContainerConfig, ImageConfig } from '../../oci/index.js';
import {
  ContainerStore, VolumeStore, createContainer, execInContainer, killContainer, mountRootfs, reconcile, removeContainer, runtimeFor,
  shortCid, startAttached, startDetached, stopContainer, waitStopped, whilePaused, type Container, type CreateOptions,
} from '../../containers/index.js';
import { containerArgs } from '../../containers/spec.js';
import { logPath, recordedExit } from '../../containers/supervise.js';
import { readLogs, readLogsFrom, type LogEntry } from '../../containers/logs.js';
import { archiveFromContainer, copyFromContainer, copyToContainer, exportRootfs } from '../../containers/archive.js';
import { findRuntime, hybridCgroups, runtimeArgv } from '../../containers/runtime.js';
import { register as registerVolumes } from './volumes.js';
import { diskUsage, inspectContainer, sizeRw } from '../../containers/inspect.js';
import { pruneContainers } from '../../engine/prune.js';


function exitWith(code: number): void {
  process.exitCode = code;
}

// ---------------------------------------------------------------- ps rows

function commandOf(c: Container): string {
  return containerArgs(c).join(' ');
}

function statusOf(c: Container): string {
  const s = c.state;
  switch (s.Status) {
    case 'running': return `Up ${humanDuration(Date.now() - Date.parse(s.StartedAt))}`;
    case 'exited': return `Exited (${s.ExitCode}) ${humanDuration(Date.now() - Date.parse(s.FinishedAt))} ago`;
    case 'removing': return 'Removal In Progress';
    case 'dead': return 'Dead';
    default: return 'Created';
  }
}

/**
 * What ps shows of a container's image: the name it was created with while that still names the
 * image (else the short ID), and the image's size. Memoized: many containers share few images.
 */
function imageLookup(engine: Engine): { name(c: Container): string; size(id: string): number } {
  const names = new Map<string, string>();
  const sizes = new Map<string, number>();
  return {
    name(c) {
      const key = `${c.imageId} ${c.config.Image}`;
      let n = names.get(key);
      if (n === undefined) {
        n = shortId(c.imageId);
        try {
          if (engine.images.tryResolve(c.config.Image)?.id === c.imageId) n = c.config.Image;
        } catch { /* a ref that no longer parses */ }
        names.set(key, n);
      }
      return n;
    },
    size(id) {
      let n = sizes.get(id);
      if (n === undefined) sizes.set(id, (n = engine.images.get(id)?.size ?? 0));
      return n;
    },
  };
}

export interface PsRow {
  ID: string; Image: string; Command: string; CreatedAt: string; RunningFor: string; Status: string; Ports: string;
  Names: string; Size: string; State: string; Labels: string; Mounts: string; Networks: string; LocalVolumes: string;
}

async function psRow(engine: Engine, images: ReturnType<typeof imageLookup>, c: Container, o: { size?: boolean; noTrunc?: boolean }): Promise<PsRow> {
  let size = '';
  if (o.size) {
    const rw = await sizeRw(engine, c);
    size = `${humanSize(rw)} (virtual ${humanSize(rw + images.size(c.imageId))})`;
  }
  const cmd = commandOf(c);
  return {
    ID: o.noTrunc ? c.id : shortCid(c.id),
    Image: images.name(c),
    Command: `"${o.noTrunc ? cmd : truncate(cmd, 20)}"`,
    CreatedAt: goTime(c.created),
    RunningFor: since(c.created),
    Status: statusOf(c),
    Ports: '',
    Names: c.name,
    Size: size,
    State: c.state.Status,
    Labels: Object.entries(c.config.Labels ?? {}).map(([k, v]) => `${k}=${v}`).join(','),
    Mounts: c.hostConfig.Mounts.map((m) => (m.Type === 'volume' ? truncate(m.Source, 16) : m.Source)).join(','),
    Networks: c.hostConfig.NetworkMode,
    LocalVolumes: String(c.hostConfig.Mounts.filter((m) => m.Type === 'volume').length),
  };
}

function matchFilter(engine: Engine, c: Container, f: string): boolean {
  const i = f.indexOf('=');
  if (i < 0) throw invalidArgument(`bad format of filter (expected name=value): ${f}`);
  const k = f.slice(0, i);
  const v = f.slice(i + 1);
  switch (k) {
    case 'name': return new RegExp(v).test(c.name);
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
    default: throw invalidArgument(`invalid filter '${k}'`);
  }
}

const PS_HEADERS: Record<string, string> = { ID: 'CONTAINER ID', RunningFor: 'CREATED', CreatedAt: 'CREATED AT', LocalVolumes: 'LOCAL VOLUMES' };

// ---------------------------------------------------------------- create/run options

interface RunOpts {
  name?: string; env: string[]; envFile: string[]; workdir?: string; user?: string; entrypoint?: string; volume: string[]; mount: string[];
  network?: string; net?: string; rm?: boolean; interactive?: boolean; tty?: boolean; detach?: boolean; logOpt: string[]; logDriver?: string; label: string[];
  hostname?: string; runtime?: string; pull?: string; platform?: string;
  readOnly?: boolean; tmpfs: string[]; capAdd: string[]; capDrop: string[]; privileged?: boolean; stopSignal?: string; stopTimeout?: string; publish: string[];
}

function runFlags(c: Command): Command {
  return c
    .option('--name <name>', 'Assign a name to the container')
    .option('-e, --env <KEY=VAL>', 'Set environment variables', collect, [])
    .option('--env-file <file>', 'Read in a file of environment variables', collect, [])
    .option('-w, --workdir <dir>', 'Working directory inside the container')
    .option('-u, --user <user>', 'Username or UID (format: <name|uid>[:<group|gid>])')
    .option('--entrypoint <cmd>', 'Overwrite the default ENTRYPOINT of the image')
    .option('-v, --volume <spec>', 'Bind mount a volume (NAME:/path[:ro], /host:/path[:ro], /path)', collect, [])
    .option('--mount <spec>', 'Attach a filesystem mount (type=volume|bind,src=,dst=[,readonly])', collect, [])
    .option('--network <mode>', 'Connect a container to a network: none (default) or host')
    .option('--net <mode>', 'Alias of --network')
    .option('--rm', 'Automatically remove the container when it exits')
    .option('-i, --interactive', 'Keep STDIN open')
    .option('-t, --tty', 'Allocate a pseudo-TTY (not supported: output is piped)')
    .option('--log-driver <driver>', 'Logging driver (json-file)')
    .option('--log-opt <opt>', 'Log driver options (max-size=, max-file=)', collect, [])
    .option('-l, --label <label>', 'Set meta data on a container', collect, [])
    .option('-h, --hostname <name>', 'Container host name')
    .option('--pull <policy>', 'Pull image before running (only "never" and "missing" without network)')
    .option('--platform <platform>', 'Set platform')
    .option('--read-only', "Mount the container's root filesystem as read only")
    .option('--tmpfs <path[:opts]>', 'Mount a tmpfs directory', collect, [])
    .option('--cap-add <cap>', 'Add Linux capabilities', collect, [])
    .option('--cap-drop <cap>', 'Drop Linux capabilities', collect, [])
    .option('--privileged', 'Give extended privileges to this container')
    .option('--stop-signal <signal>', 'Signal to stop the container')
    .option('--stop-timeout <seconds>', 'Timeout (in seconds) to stop a container')
    .option('-p, --publish <ports>', 'Publish a container\'s port(s) to the host (not supported: no network)', collect, []);
}

function createOpts(image: string, cmd: string[], o: RunOpts, detach: boolean): CreateOptions {
  if (o.tty) throw invalidArgument('-t (a pseudo-TTY) is not supported', 'drop -t; output and -i input are piped');
  if (o.publish.length) throw invalidArgument('publishing ports (-p) needs a container network, which shale does not make', 'use --network host and listen on the host\'s ports');
  if (o.pull && !['never', 'missing'].includes(o.pull)) throw invalidArgument(`--pull ${o.pull} needs the network; shale runs local images only`, 'use --pull never, or `shale pull` first');
  return {
    readOnly: o.readOnly, tmpfs: o.tmpfs, capAdd: o.capAdd, capDrop: o.capDrop, privileged: o.privileged, stopSignal: o.stopSignal,
    stopTimeout: o.stopTimeout !== undefined ? Number(o.stopTimeout) : undefined,
    image, cmd, name: o.name, env: o.env, envFiles: o.envFile, workdir: o.workdir, user: o.user, entrypoint: o.entrypoint, volumes: o.volume, mounts: o.mount,
    network: o.network ?? o.net, rm: o.rm, interactive: o.interactive, detach, logOpts: o.logOpt, logDriver: o.logDriver, labels: o.label, hostname: o.hostname,
    runtime: getEngine().opts.runtime,
  };
}

// ---------------------------------------------------------------- logs

function printEntries(entries: LogEntry[], ts: boolean): void {
  for (const e of entries) {
    const line = (ts ? `${e.time} ` : '') + e.log;
    (e.stream === 'stderr' ? process.stderr : process.stdout).write(line);
  }
}

async function showLogs(engine: Engine, ref: string, o: { follow?: boolean; tail?: string; timestamps?: boolean }): Promise<void> {
  const store = new ContainerStore(engine);
  const c = store.resolve(ref);
  const path = logPath(store.dir(c.id), c.id);
  let { entries, offset, ino } = readLogs(path);
  if (o.tail !== undefined && o.tail !== 'all') {
    const n = Number(o.tail);
    if (!Number.isInteger(n) || n < 0) throw invalidArgument(`invalid --tail value ${o.tail}`);
    entries = n === 0 ? [] : entries.slice(-n);
  }
  printEntries(entries, !!o.timestamps);
  if (!o.follow) return;
  for (;;) {
    const now = store.get(c.id);
    const running = now ? (await reconcile(engine, now)).state.Running : false;
    const r = readLogsFrom(path, offset, ino);
    printEntries(r.entries, !!o.timestamps);
    offset = r.offset;
    ino = r.ino;
    if (!running) {
      const last = readLogsFrom(path, offset, ino);
      printEntries(last.entries, !!o.timestamps);
      return;
    }
    await new Promise((res) => setTimeout(res, 100));
  }
}

// ---------------------------------------------------------------- cp

function splitCpArg(a: string): { container?: string; path: string } {
  if (a === '-' || a.startsWith('/') || a.startsWith('.')) return { path: a };
  const i = a.indexOf(':');
  if (i <= 0) return { path: a };
  return { container: a.slice(0, i), path: a.slice(i + 1) };
}

async function copy(engine: Engine, srcArg: string, dstArg: string, o: { followLink?: boolean; archive?: boolean }): Promise<void> {
  const src = splitCpArg(srcArg);
  const dst = splitCpArg(dstArg);
  if (src.container && dst.container) throw invalidArgument('copying between containers is not supported');
  if (!src.container && !dst.container) throw invalidArgument('must specify at least one container source');
  const store = new ContainerStore(engine);
  const c = store.resolve((src.container ?? dst.container)!);
  const m = await mountRootfs(engine, c);
  try {
    if (src.container) {
      if (dst.path === '-') {
        const a = archiveFromContainer(engine, c, m.path, src.path, o);
        try {
          await pipeline(a.stream, process.stdout);
        } finally {
          a.close();
        }
      } else await copyFromContainer(engine, c, m.path, src.path, dst.path, o);
    } else {
      await copyToContainer(engine, c, m.path, src.path === '-' ? { tar: process.stdin } : { hostPath: src.path }, dst.path, o);
    }
  } finally {
    await m.release();
  }
}

// ---------------------------------------------------------------- commit

async function commitContainer(engine: Engine, ref: string, repo: string | undefined, o: { change: string[]; message?: string; author?: string }): Promise<string> {
  const store = new ContainerStore(engine);
  const c = store.resolve(ref);
  const sn = getSnapshotter(engine);
  const base = engine.images.config(c.imageId);
  const cfg: ContainerConfig = {};
  const keys: (keyof ContainerConfig)[] = ['User', 'ExposedPorts', 'Env', 'Entrypoint', 'Cmd', 'Volumes', 'WorkingDir', 'Labels', 'StopSignal', 'Healthcheck', 'Shell', 'OnBuild'];
  for (const k of keys) if (c.config[k] !== undefined && c.config[k] !== '') (cfg as Record<string, unknown>)[k] = c.config[k];
  applyChanges(cfg, o.change ?? []);
  // a running container is frozen while its writable layer is read, as docker's commit does
  const layer = await whilePaused(engine, c.id, () => ingestTar(engine.content, sn.diffTar(c.id)));
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
  const img = engine.images.createImage(config, [...layers, layer], repo ? [repo] : []);
  return img.id;
}

// ---------------------------------------------------------------- system df

function pct(part: number, total: number): string {
  return total > 0 ? `${humanSize(part)} (${Math.floor((part * 100) / total)}%)` : humanSize(part);
}

interface CacheRecord { key: string; size: number; created: string; lastUsed: string; shared: boolean }

/** The builder's cache (build_cache rows -> layer blobs): what it holds, and what pruning it frees (blobs no image uses). */
function buildCache(engine: Engine): { count: number; size: number; reclaimable: number; records: CacheRecord[] } {
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

async function systemDf(o: { verbose?: boolean; format?: string }): Promise<void> {
  const engine = getEngine();
  const store = new ContainerStore(engine);
  const vols = new VolumeStore(engine);
  const containers = await Promise.all(store.list().map((c) => reconcile(engine, c)));
  const images = engine.images.list();
  const usedImages = new Set(containers.map((c) => c.imageId));
  // layers counted once: by blob, with the images that use them
  const layerSize = new Map<string, number>();
  const activeLayers = new Set<string>();
  for (const img of images) {
    for (const l of engine.images.layers(img.id)) {
      layerSize.set(l.blob, l.size);
      if (usedImages.has(img.id)) activeLayers.add(l.blob);
    }
  }
  const imgTotal = [...layerSize.values()].reduce((a, b) => a + b, 0);
  const imgActive = [...activeLayers].reduce((a, b) => a + (layerSize.get(b) ?? 0), 0);
  const csizes = await Promise.all(containers.map((c) => diskUsage(engine, c)));
  const cTotal = csizes.reduce((a, b) => a + b, 0);
  const cReclaim = containers.reduce((a, c, i) => a + (c.state.Running ? 0 : csizes[i]), 0);
  const volumes = vols.list();
  const vsizes = await Promise.all(volumes.map((v) => vols.size(v.name)));
  const vLinks = volumes.map((v) => vols.users(v.name, containers).length);
  const vTotal = vsizes.reduce((a, b) => a + b, 0);
  const vReclaim = volumes.reduce((a, _v, i) => a + (vLinks[i] ? 0 : vsizes[i]), 0);
  const bc = buildCache(engine);
  const rows = [
    { Type: 'Images', TotalCount: String(images.length), Active: String(images.filter((i) => usedImages.has(i.id)).length), Size: humanSize(imgTotal), Reclaimable: pct(imgTotal - imgActive, imgTotal) },
    { Type: 'Containers', TotalCount: String(containers.length), Active: String(containers.filter((c) => c.state.Running).length), Size: humanSize(cTotal), Reclaimable: pct(cReclaim, cTotal) },
    { Type: 'Local Volumes', TotalCount: String(volumes.length), Active: String(vLinks.filter(Boolean).length), Size: humanSize(vTotal), Reclaimable: pct(vReclaim, vTotal) },
    { Type: 'Build Cache', TotalCount: String(bc.count), Active: '0', Size: humanSize(bc.size), Reclaimable: humanSize(bc.reclaimable) },
  ];
  if (o.format) {
    out(printFormatted(rows, o.format, { TotalCount: 'TOTAL' }));
    return;
  }
  if (!o.verbose) {
    out(table([['TYPE', 'TOTAL', 'ACTIVE', 'SIZE', 'RECLAIMABLE'], ...rows.map((r) => [r.Type, r.TotalCount, r.Active, r.Size, r.Reclaimable])]));
    return;
  }
  const counts = new Map<string, number>();
  for (const c of containers) counts.set(c.imageId, (counts.get(c.imageId) ?? 0) + 1);
  const full = new Map(images.map((i) => [shortId(i.id), i.id]));
  const irows = imageRows(engine, { containersUsing: (id) => counts.get(id) ?? 0 });
  out('Images space usage:\n\n');
  out(table([['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE', 'SHARED SIZE', 'UNIQUE SIZE', 'CONTAINERS'], ...irows.map((r) => [r.Repository, r.Tag, r.ID, r.CreatedSince, r.Size, r.SharedSize, r.UniqueSize, String(counts.get(full.get(r.ID) ?? '') ?? 0)])]));
  out('\nContainers space usage:\n\n');
  const lookup = imageLookup(engine);
  const crow = await Promise.all(containers.map((c) => psRow(engine, lookup, c, {})));
  out(table([['CONTAINER ID', 'IMAGE', 'COMMAND', 'LOCAL VOLUMES', 'SIZE', 'CREATED', 'STATUS', 'NAMES'], ...crow.map((r, i) => [r.ID, r.Image, r.Command, r.LocalVolumes, humanSize(csizes[i]), r.RunningFor, r.Status, r.Names])]));
  out('\nLocal Volumes space usage:\n\n');
  out(table([['VOLUME NAME', 'LINKS', 'SIZE'], ...volumes.map((v, i) => [v.name, String(vLinks[i]), humanSize(vsizes[i])])]));
  out(`\nBuild cache usage: ${humanSize(bc.size)}\n\n`);
  out(table([['CACHE ID', 'CACHE TYPE', 'SIZE', 'CREATED', 'LAST USED', 'USAGE', 'SHARED'], ...bc.records.map((r) => [r.key.replace(/^sha256:/, '').slice(0, 25), 'regular', humanSize(r.size), since(r.created), since(r.lastUsed), '1', String(r.shared)])]));
}

// ---------------------------------------------------------------- info

async function info(o: { format?: string }): Promise<void> {
  const engine = getEngine();
  const store = new ContainerStore(engine);
  const containers = await Promise.all(store.list().map((c) => reconcile(engine, c)));
  const sn = getSnapshotter(engine);
  let runtime = 'none';
  try {
    const rt = findRuntime(engine.root, engine.opts.runtime);
    runtime = rt.name;
  } catch { /* reported as none */ }
  const running = containers.filter((c) => c.state.Running).length;
  const obj = {
    ID: '', Containers: containers.length, ContainersRunning: running, ContainersPaused: 0, ContainersStopped: containers.length - running,
    Images: engine.images.list().length, Driver: sn.name, DriverStatus: [['Backing Filesystem', 'extfs']], LoggingDriver: 'json-file',
    CgroupDriver: 'cgroupfs', CgroupVersion: hybridCgroups() ? '1' : existsSync('/sys/fs/cgroup/cgroup.controllers') ? '2' : '1',
    DefaultRuntime: runtime, Runtimes: { [runtime]: { path: runtime } }, KernelVersion: release(), OperatingSystem: osType(), OSType: 'linux',
    Architecture: process.arch === 'x64' ? 'x86_64' : process.arch, NCPU: cpus().length, MemTotal: totalmem(), DockerRootDir: resolve(engine.root),
    ServerVersion: '0.1.0', Volumes: new VolumeStore(engine).list().length,
  };
  if (o.format) {
    out(compileFormat(o.format).row(obj) + '\n');
    return;
  }
  out([
    'Client:', ' Version:    0.1.0', '', 'Server:',
    ` Containers: ${obj.Containers}`, `  Running: ${running}`, '  Paused: 0', `  Stopped: ${obj.ContainersStopped}`,
    ` Images: ${obj.Images}`, ` Volumes: ${obj.Volumes}`, ` Server Version: shale ${obj.ServerVersion}`, ` Storage Driver: ${sn.name}`,
    ` Logging Driver: json-file`, ` Cgroup Driver: cgroupfs`, ` Cgroup Version: ${obj.CgroupVersion}${hybridCgroups() ? ' (hybrid)' : ''}`,
    ` Runtimes: ${runtime}`, ` Default Runtime: ${runtime}`, ` Kernel Version: ${obj.KernelVersion}`, ` Operating System: ${obj.OperatingSystem}`,
    ` Architecture: ${obj.Architecture}`, ` CPUs: ${obj.NCPU}`, ` Total Memory: ${humanSize(obj.MemTotal)}`, ` Docker Root Dir: ${obj.DockerRootDir}`, '',
  ].join('\n'));
}

// ---------------------------------------------------------------- registration

async function forEach(refs: string[], fn: (ref: string) => Promise<void>): Promise<void> {
  let failed = 0;
  for (const r of refs) {
    try {
      await fn(r);
    } catch (e) {
      failed++;
      err(`Error response from daemon: ${e instanceof ShaleError ? e.describe() : (e as Error).message}\n`);
    }
  }
  if (failed) exitWith(1);
}

function defineContainerCommands(p: Command, group: boolean): void {
  runFlags(p.command('create').description('Create a new container').argument('<image>').argument('[command...]').passThroughOptions())
    .action(async (image: string, cmd: string[], o: RunOpts) => {
      const c = await createContainer(getEngine(), createOpts(image, cmd, o, true));
      out(`${c.id}\n`);
    });

  runFlags(p.command('run').description('Create and run a new container from an image').argument('<image>').argument('[command...]').passThroughOptions())
    .option('-d, --detach', 'Run container in background and print container ID')
    .action(async (image: string, cmd: string[], o: RunOpts) => {
      const engine = getEngine();
      // docker run exits 125 when the daemon refuses (bad flags, names, images, mounts)
      const refused = (e: unknown) => {
        if (e instanceof ShaleError && (e as ShaleError & { exitCode?: number }).exitCode === undefined) (e as ShaleError & { exitCode?: number }).exitCode = 125;
        return e;
      };
      const c = await createContainer(engine, createOpts(image, cmd, o, !!o.detach)).catch((e) => { throw refused(e); });
      try {
        if (o.detach) {
          await startDetached(engine, c);
          out(`${c.id}\n`);
          return;
        }
        exitWith(await startAttached(engine, c, { stdin: o.interactive ? process.stdin : undefined }));
      } catch (e) {
        if (c.hostConfig.AutoRemove) await removeContainer(engine, c.id, { force: true, volumes: true, fromShim: true }).catch(() => undefined);
        throw refused(e);
      }
    });

  p.command('start').description('Start one or more stopped containers').argument('<containers...>')
    .option('-a, --attach', 'Attach STDOUT/STDERR and forward signals')
    .option('-i, --interactive', "Attach container's STDIN")
    .action(async (refs: string[], o: { attach?: boolean; interactive?: boolean }) => {
      const engine = getEngine();
      const store = new ContainerStore(engine);
      if (o.attach || o.interactive) {
        if (refs.length > 1) throw invalidArgument('you cannot start and attach multiple containers at once');
        exitWith(await startAttached(engine, store.resolve(refs[0]), { stdin: o.interactive ? process.stdin : undefined }));
        return;
      }
      await forEach(refs, async (r) => {
        await startDetached(engine, store.resolve(r));
        out(`${r}\n`);
      });
    });

  p.command('stop').description('Stop one or more running containers').argument('<containers...>')
    .option('-t, --time <seconds>', 'Seconds to wait before killing the container')
    .option('-s, --signal <signal>', 'Signal to send to the container')
    .action(async (refs: string[], o: { time?: string; signal?: string }) => {
      const engine = getEngine();
      await forEach(refs, async (r) => {
        await stopContainer(engine, r, o.time !== undefined ? Number(o.time) : undefined, o.signal);
        out(`${r}\n`);
      });
    });

  p.command('restart').description('Restart one or more containers').argument('<containers...>')
    .option('-t, --time <seconds>', 'Seconds to wait before killing the container')
    .action(async (refs: string[], o: { time?: string }) => {
      const engine = getEngine();
      await forEach(refs, async (r) => {
        await stopContainer(engine, r, o.time !== undefined ? Number(o.time) : undefined);
        await startDetached(engine, new ContainerStore(engine).resolve(r));
        out(`${r}\n`);
      });
    });

  p.command('kill').description('Kill one or more running containers').argument('<containers...>')
    .option('-s, --signal <signal>', 'Signal to send to the container', 'KILL')
    .action(async (refs: string[], o: { signal: string }) => {
      const engine = getEngine();
      await forEach(refs, async (r) => {
        await killContainer(engine, r, o.signal);
        out(`${r}\n`);
      });
    });

  p.command('wait').description('Block until one or more containers stop, then print their exit codes').argument('<containers...>')
    .action(async (refs: string[]) => {
      const engine = getEngine();
      const store = new ContainerStore(engine);
      await forEach(refs, async (r) => {
        const c = store.resolve(r);
        const after = await waitStopped(engine, c.id);
        out(`${after?.state.ExitCode ?? recordedExit(engine.root, c.id) ?? c.state.ExitCode}\n`);
      });
    });

  p.command('rm').description('Remove one or more containers').argument('<containers...>')
    .option('-f, --force', 'Force the removal of a running container (uses SIGKILL)')
    .option('-v, --volumes', 'Remove anonymous volumes associated with the container')
    .action(async (refs: string[], o: { force?: boolean; volumes?: boolean }) => {
      const engine = getEngine();
      await forEach(refs, async (r) => {
        await removeContainer(engine, r, { force: o.force, volumes: o.volumes });
        out(`${r}\n`);
      });
    });

  const ps = (cmd: Command) => cmd
    .option('-a, --all', 'Show all containers (default shows just running)')
    .option('-q, --quiet', 'Only display container IDs')
    .option('-s, --size', 'Display total file sizes')
    .option('-n, --last <n>', 'Show n last created containers (includes all states)')
    .option('-l, --latest', 'Show the latest created container (includes all states)')
    .option('-f, --filter <filter>', 'Filter output based on conditions provided', collect, [])
    .option('--format <format>', 'Format output using a Go template')
    .option('--no-trunc', "Don't truncate output")
    .action(async (o: { all?: boolean; quiet?: boolean; size?: boolean; last?: string; latest?: boolean; filter: string[]; format?: string; trunc?: boolean }) => {
      const engine = getEngine();
      const store = new ContainerStore(engine);
      let cs = await Promise.all(store.list().map((c) => reconcile(engine, c)));
      const last = o.latest ? 1 : o.last !== undefined ? Number(o.last) : -1;
      if (!o.all && last < 0) cs = cs.filter((c) => c.state.Running);
      for (const f of o.filter) cs = cs.filter((c) => matchFilter(engine, c, f));
      if (last >= 0) cs = cs.slice(0, last);
      const noTrunc = o.trunc === false;
      if (o.quiet) {
        out(cs.map((c) => `${noTrunc ? c.id : shortCid(c.id)}\n`).join(''));
        return;
      }
      const wantSize = !!o.size || !!o.format?.includes('.Size');
      const images = imageLookup(engine);
      const rows = await Promise.all(cs.map((c) => psRow(engine, images, c, { size: wantSize, noTrunc })));
      if (o.format) {
        out(printFormatted(rows, o.format, PS_HEADERS));
        return;
      }
      const head = ['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES', ...(o.size ? ['SIZE'] : [])];
      out(table([head, ...rows.map((r) => [r.ID, r.Image, r.Command, r.RunningFor, r.Status, r.Ports, r.Names, ...(o.size ? [r.Size] : [])])]));
    });
  ps(p.command(group ? 'ls' : 'ps').description('List containers'));
  if (group) ps(p.command('ps').description('List containers'));

  p.command('logs').description('Fetch the logs of a container').argument('<container>')
    .option('-f, --follow', 'Follow log output')
    .option('-n, --tail <n>', 'Number of lines to show from the end of the logs', 'all')
    .option('-t, --timestamps', 'Show timestamps')
    .action((ref: string, o: { follow?: boolean; tail?: string; timestamps?: boolean }) => showLogs(getEngine(), ref, o));

  p.command('exec').description('Execute a command in a running container').argument('<container>').argument('<command...>').passThroughOptions()
    .option('-d, --detach', 'Detached mode: run command in the background')
    .option('-e, --env <KEY=VAL>', 'Set environment variables', collect, [])
    .option('-w, --workdir <dir>', 'Working directory inside the container')
    .option('-u, --user <user>', 'Username or UID (format: <name|uid>[:<group|gid>])')
    .option('-i, --interactive', 'Keep STDIN open')
    .option('-t, --tty', 'Allocate a pseudo-TTY (not supported)')
    .action(async (ref: string, cmd: string[], o: { detach?: boolean; env: string[]; workdir?: string; user?: string; interactive?: boolean; tty?: boolean }) => {
      if (o.tty) throw invalidArgument('-t (a pseudo-TTY) is not supported', 'drop -t; output and -i input are piped');
      exitWith(await execInContainer(getEngine(), ref, { cmd, env: o.env, workdir: o.workdir, user: o.user, interactive: o.interactive, detach: o.detach }));
    });

  p.command('rename').description('Rename a container').argument('<container>').argument('<new-name>')
    .action((ref: string, name: string) => {
      const store = new ContainerStore(getEngine());
      store.rename(store.resolve(ref).id, name.replace(/^\//, ''));
    });

  p.command('top').description('Display the running processes of a container').argument('<container>').argument('[ps-options...]')
    .action(async (ref: string, psArgs: string[]) => {
      const engine = getEngine();
      const c = await reconcile(engine, new ContainerStore(engine).resolve(ref));
      if (!c.state.Running) throw conflict(`Container ${c.id} is not running`);
      const argv = runtimeArgv(runtimeFor(engine, c), ['ps', c.id, ...(psArgs.length ? psArgs : ['-ef'])]);
      await new Promise<void>((res, rej) => {
        const p = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'inherit', 'inherit'] });
        p.on('error', rej);
        p.on('close', (code) => (code === 0 ? res() : rej(new ShaleError('Internal', `listing the processes of ${ref} failed`))));
      });
    });

  p.command('diff').description("Inspect changes to files or directories on a container's filesystem").argument('<container>')
    .action(async (ref: string) => {
      const engine = getEngine();
      const c = new ContainerStore(engine).resolve(ref);
      const changes = await getSnapshotter(engine).changes(c.id);
      out(changes.map((ch) => `${ch.kind} ${ch.path}\n`).join(''));
    });

  p.command('commit').description("Create a new image from a container's changes").argument('<container>').argument('[repository]')
    .option('-a, --author <author>', 'Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")')
    .option('-c, --change <instruction>', 'Apply Dockerfile instruction to the created image', collect, [])
    .option('-m, --message <message>', 'Commit message')
    .option('-p, --pause', 'Pause container during commit (always: a running container is frozen while it is read)')
    .action(async (ref: string, repo: string | undefined, o: { change: string[]; message?: string; author?: string }) => {
      out(`${await commitContainer(getEngine(), ref, repo, o)}\n`);
    });

  p.command('export').description("Export a container's filesystem as a tar archive").argument('<container>')
    .option('-o, --output <file>', 'Write to a file, instead of STDOUT')
    .action(async (ref: string, o: { output?: string }) => {
      const engine = getEngine();
      const c = new ContainerStore(engine).resolve(ref);
      if (!o.output && process.stdout.isTTY) throw invalidArgument('cowardly refusing to save to a terminal', 'use the -o flag or redirect');
      const m = await mountRootfs(engine, c);
      try {
        await pipeline(await exportRootfs(m.path), o.output ? createWriteStream(o.output) : process.stdout);
      } finally {
        await m.release();
      }
    });

  p.command('cp').description('Copy files/folders between a container and the local filesystem').argument('<src>').argument('<dest>')
    .option('-L, --follow-link', 'Always follow symbol link in SRC_PATH')
    .option('-a, --archive', 'Archive mode (copy all uid/gid information)')
    .option('-q, --quiet', 'Suppress progress output')
    .action((src: string, dst: string, o: { followLink?: boolean; archive?: boolean }) => copy(getEngine(), src, dst, o));

  if (group) {
    p.command('prune').description('Remove all stopped containers')
      .option('-f, --force', 'Do not prompt for confirmation')
      .option('--filter <filter>', 'Provide filter values', collect, [])
      .action(async () => {
        const r = await pruneContainers(getEngine());
        if (r.removed.length) out(`Deleted Containers:\n${r.removed.join('\n')}\n\n`);
        out(`Total reclaimed space: ${humanSize(r.reclaimed)}\n`);
      });
    p.command('inspect').description('Display detailed information on one or more containers').argument('<containers...>')
      .option('-f, --format <format>', 'Format output using a Go template')
      .option('-s, --size', 'Display total file sizes')
      .action(async (refs: string[], o: { format?: string; size?: boolean }) => {
        const engine = getEngine();
        const store = new ContainerStore(engine);
        const objs: unknown[] = [];
        await forEach(refs, async (r) => { objs.push(await inspectContainer(engine, store.resolve(r), !!o.size)); });
        if (o.format) out(objs.map((x) => compileFormat(o.format!).row(x) + '\n').join(''));
        else out(JSON.stringify(objs, null, 4) + '\n');
      });
  }
}

export function register(program: Command): void {
  defineContainerCommands(program, false);
  defineContainerCommands(program.command('container').description('Manage containers'), true);
  registerVolumes(program);
  let system = program.commands.find((c) => c.name() === 'system');
  if (!system) system = program.command('system').description('Manage shale');
  system.command('df').description('Show shale disk usage')
    .option('-v, --verbose', 'Show detailed information on space usage')
    .option('--format <format>', 'Format output using a Go template')
    .action(systemDf);
  const infoCmd = (c: Command) => c.description('Display system-wide information').option('-f, --format <format>', 'Format the output using the given Go template').action(info);
  infoCmd(program.command('info'));
  infoCmd(system.command('info'));
}
