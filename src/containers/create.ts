// create: a container record plus a thin writable snapshot on the image's layers (and the init
// layer), with docker's -v/--mount parsing, env files, names and labels. The image is leased
// while the record goes in, so an rmi cannot take it from under the new container.
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, hostname as osHostname } from 'node:os';
import { resolve } from 'node:path';
import type { Store } from '../store/index.js';
import { getSnapshotter, unpackHeld } from '../store/rootfs.js';
import { emit } from '../store/events.js';
import { invalidArgument, notFound, ShaleError } from '../errors.js';
import { logOptions } from './logs.js';
import { signalNumber } from './runtime.js';
import { ContainerStore, newId, newState, shortCid, type CConfig, type Container, type HostConfig, type MountSpec } from './store.js';
import { VolumeStore, VOLUME_NAME_RE } from './volumes.js';


export interface CreateOptions {
  image: string;
  name?: string;
  cmd?: string[];
  /** --entrypoint (one command) or the API's array; '' or [] clears the image's */
  entrypoint?: string | string[];
  env?: string[];
  envFiles?: string[];
  workdir?: string;
  user?: string;
  volumes?: string[];
  mounts?: string[];
  network?: string;
  rm?: boolean;
  interactive?: boolean;
  detach?: boolean;
  logOpts?: string[];
  logDriver?: string;
  labels?: string[];
  hostname?: string;
  runtime?: string;
  readOnly?: boolean;
  tmpfs?: string[];
  capAdd?: string[];
  capDrop?: string[];
  privileged?: boolean;
  stopSignal?: string;
  stopTimeout?: number;
  /** -m, --memory-swap (docker's sizes: 64m, 1g, or bytes) */
  memory?: string | number;
  memorySwap?: string | number;
  /** --cpus (a decimal), --cpu-shares, --cpuset-cpus */
  cpus?: string | number;
  nanoCpus?: number;
  cpuShares?: number;
  cpusetCpus?: string;
  pidsLimit?: number;
  /** --restart no|always|unless-stopped|on-failure[:N] */
  restart?: string;
  init?: boolean;
}

/** docker's RAMInBytes: 64m, 1.5g, 512k, 100b or plain bytes (binary units). */
export function parseMemory(v: string | number | undefined, flag: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  if (typeof v === 'number') return v;
  if (v === '-1') return -1;
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgtp]?)(?:i?b)?$/i.exec(v.trim());
  if (!m) throw invalidArgument(`invalid argument "${v}" for "${flag}" flag: invalid size: '${v}'`);
  const mult = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 }[m[2].toLowerCase()] ?? 1;
  return Math.floor(Number(m[1]) * mult);
}

/** --restart as docker parses it. */
export function parseRestart(v: string | undefined): { Name: string; MaximumRetryCount: number } {
  if (!v || v === 'no') return { Name: 'no', MaximumRetryCount: 0 };
  const [name, n] = v.split(':');
  if (name === 'on-failure') {
    const max = n === undefined ? 0 : Number(n);
    if (!Number.isInteger(max) || max < 0) throw invalidArgument(`invalid restart policy format: maximum retry count must be a non-negative integer: ${v}`);
    return { Name: name, MaximumRetryCount: max };
  }
  if ((name === 'always' || name === 'unless-stopped') && n === undefined) return { Name: name, MaximumRetryCount: 0 };
  if (n !== undefined && (name === 'always' || name === 'unless-stopped')) throw invalidArgument(`invalid restart policy format: maximum retry count cannot be used with restart policy '${name}'`);
  throw invalidArgument(`invalid restart policy format: ${v}`, 'use no, always, unless-stopped or on-failure[:N]');
}

export function replaceEnv(env: string[], kv: string): string[] {
  const k = kv.split('=')[0];
  return [...env.filter((e) => e.split('=')[0] !== k), kv];
}

function readEnvFile(path: string): string[] {
  const out: string[] = [];
  for (const raw of readFileSync(path, 'utf8').split('\n')) {
    const l = raw.replace(/^\s+/, '');
    if (!l || l.startsWith('#')) continue;
    out.push(l);
  }
  return out;
}

function checkTarget(t: string, flag: string): string {
  if (!t) throw invalidArgument(`invalid ${flag} spec: no destination`);
  if (!t.startsWith('/')) throw invalidArgument(`invalid mount config for type "${flag}": invalid mount path: '${t}' mount path must be absolute`);
  const norm = '/' + t.split('/').filter(Boolean).join('/');
  if (norm === '/') throw invalidArgument(`invalid ${flag} spec: destination can't be '/'`);
  return norm;
}

function hostSource(src: string): string {
  return resolve(src);
}

/** -v SRC:DST[:OPTS] or -v DST */
export function parseVolumeFlag(v: string): MountSpec {
  const parts = v.split(':');
  if (parts.length === 1) return { Type: 'volume', Source: '', Target: checkTarget(parts[0], 'volume'), Anonymous: true };
  if (parts.length > 3) throw invalidArgument(`invalid volume specification: '${v}'`);
  const [src, dst, mode = ''] = parts;
  const modes = mode.split(',').filter(Boolean);
  for (const m of modes) if (!['ro', 'rw', 'z', 'Z', 'nocopy', 'private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave', 'consistent', 'cached', 'delegated'].includes(m)) throw invalidArgument(`invalid mode: ${m}`);
  const ro = modes.includes('ro');
  if (src.startsWith('/') || src.startsWith('.')) return { Type: 'bind', Source: hostSource(src), Target: checkTarget(dst, 'bind'), ReadOnly: ro };
  if (!VOLUME_NAME_RE.test(src)) throw invalidArgument(`create ${src}: "${src}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`);
  return { Type: 'volume', Source: src, Target: checkTarget(dst, 'volume'), ReadOnly: ro };
}

/** --mount type=volume|bind,src=…,dst=…[,readonly] */
export function parseMountFlag(v: string): MountSpec {
  let type = 'volume';
  let src = '';
  let dst = '';
  let ro = false;
  for (const f of v.split(',')) {
    const [k, val] = f.includes('=') ? [f.slice(0, f.indexOf('=')), f.slice(f.indexOf('=') + 1)] : [f, undefined];
    switch (k.toLowerCase()) {
      case 'type': type = val ?? ''; break;
      case 'source': case 'src': src = val ?? ''; break;
      case 'destination': case 'dst': case 'target': dst = val ?? ''; break;
      case 'readonly': case 'ro':
        if (val === undefined || ['1', 'true'].includes(val.toLowerCase())) ro = true;
        else if (['0', 'false'].includes(val.toLowerCase())) ro = false;
        else throw invalidArgument(`invalid value for ${k}: ${val}`);
        break;
      case 'bind-propagation': case 'volume-nocopy': case 'consistency': case 'volume-driver': break;
      default: throw invalidArgument(`unexpected key '${k}' in '${f}'`);
    }
  }
  if (!dst) throw invalidArgument('invalid argument for --mount: target is required');
  if (type === 'bind') {
    if (!src) throw invalidArgument('invalid mount config for type "bind": field Source must not be empty');
    const s = hostSource(src);
    if (!existsSync(s)) throw invalidArgument(`invalid mount config for type "bind": bind source path does not exist: ${s}`);
    return { Type: 'bind', Source: s, Target: checkTarget(dst, 'bind'), ReadOnly: ro };
  }
  if (type !== 'volume') throw invalidArgument(`mount type ${type} is not supported`, 'use type=volume or type=bind');
  if (src && !VOLUME_NAME_RE.test(src)) throw invalidArgument(`invalid volume name ${src}`);
  return { Type: 'volume', Source: src, Target: checkTarget(dst, 'volume'), ReadOnly: ro, Anonymous: !src };
}

export async function createContainer(engine: Store, o: CreateOptions): Promise<Container> {
  const store = new ContainerStore(engine);
  const vols = new VolumeStore(engine);
  const img = engine.images.tryResolve(o.image);
  if (!img) throw notFound(`Unable to find image '${o.image}' locally`, 'shale does not pull on run: pull, load, import or build it first');
  const id = newId();
  // from here until the row is in, the image is leased: rmi refuses it (or with -f only untags it)
  const release = engine.images.leaseImage(img.id, id);
  try {
    // an rmi that won the race deleted it between the resolve and the lease
    if (!engine.images.get(img.id)) throw notFound(`Unable to find image '${o.image}' locally`, 'it was removed while the container was being created');
    return await createLeased(engine, o, store, vols, img.id, id);
  } finally {
    release();
  }
}

async function createLeased(engine: Store, o: CreateOptions, store: ContainerStore, vols: VolumeStore, imageId: string, id: string): Promise<Container> {
  const img = { id: imageId };
  const icfg = engine.images.config(img.id).config ?? {};
  const name = o.name ?? store.randomName();
  const taken = o.name !== undefined ? store.byName(o.name) : undefined;
  if (taken) {
    throw new ShaleError('Conflict', `Conflict. The container name "/${o.name}" is already in use by container "${taken.id}". You have to remove (or rename) that container to be able to reuse that name.`, 'pick another --name or `shale rm` the old container');
  }
  let env = [...(icfg.Env ?? [])];
  const extra = [...(o.envFiles ?? []).flatMap(readEnvFile), ...(o.env ?? [])];
  for (const e of extra) {
    if (e.includes('=')) env = replaceEnv(env, e);
    else if (process.env[e] !== undefined) env = replaceEnv(env, `${e}=${process.env[e]}`);
    else env = env.filter((x) => x.split('=')[0] !== e);
  }
  let entrypoint = icfg.Entrypoint ?? null;
  let cmd = icfg.Cmd ?? null;
  if (o.entrypoint !== undefined) {
    entrypoint = Array.isArray(o.entrypoint) ? (o.entrypoint.length ? o.entrypoint : null) : o.entrypoint === '' ? null : [o.entrypoint];
    cmd = null; // docker: --entrypoint resets the image's CMD
  }
  if (o.cmd && o.cmd.length) cmd = o.cmd;
  if (!(entrypoint?.length) && !(cmd?.length)) throw invalidArgument('No command specified', 'give a command after the image name, or use an image with CMD or ENTRYPOINT');
  const network = o.network ?? 'none';
  if (!['none', 'host', 'default', 'bridge'].includes(network)) throw invalidArgument(`network ${network} not found`, 'shale supports --network none (the default) and --network host');
  const labels: Record<string, string> = { ...(icfg.Labels ?? {}) };
  for (const l of o.labels ?? []) {
    const i = l.indexOf('=');
    labels[i < 0 ? l : l.slice(0, i)] = i < 0 ? '' : l.slice(i + 1);
  }
  const logCfg: Record<string, string> = {};
  for (const kv of o.logOpts ?? []) {
    const i = kv.indexOf('=');
    if (i < 0) throw invalidArgument(`invalid key value pair format in log opts: ${kv}`);
    logCfg[kv.slice(0, i)] = kv.slice(i + 1);
  }
  if (o.logDriver && o.logDriver !== 'json-file') throw invalidArgument(`log driver ${o.logDriver} is not supported`, 'shale writes json-file logs');
  logOptions(logCfg);

  // mounts: -v, --mount, then the image's VOLUMEs nobody mounted
  const mounts: MountSpec[] = [...(o.volumes ?? []).map(parseVolumeFlag), ...(o.mounts ?? []).map(parseMountFlag)];
  const seen = new Set<string>();
  for (const m of mounts) {
    if (seen.has(m.Target)) throw invalidArgument(`Duplicate mount point: ${m.Target}`);
    seen.add(m.Target);
  }
  for (const v of Object.keys(icfg.Volumes ?? {})) {
    const t = '/' + v.split('/').filter(Boolean).join('/');
    if (!seen.has(t)) {
      mounts.push({ Type: 'volume', Source: '', Target: t, Anonymous: true });
      seen.add(t);
    }
  }
  const hostCfg: HostConfig = {
    AutoRemove: !!o.rm,
    NetworkMode: network === 'host' ? 'host' : 'none',
    Mounts: mounts,
    Binds: (o.volumes ?? []).filter((v) => v.includes(':')),
    LogConfig: { Type: 'json-file', Config: logCfg },
    Runtime: o.runtime,
    ReadonlyRootfs: !!o.readOnly,
    Tmpfs: Object.fromEntries((o.tmpfs ?? []).map((t) => {
      const i = t.indexOf(':');
      return [checkTarget(i < 0 ? t : t.slice(0, i), 'tmpfs'), i < 0 ? '' : t.slice(i + 1)];
    })),
    CapAdd: o.capAdd ?? [],
    CapDrop: o.capDrop ?? [],
    Privileged: !!o.privileged,
    ...resources(o),
  };
  const config: CConfig = {
    ...icfg,
    Hostname: o.hostname ?? (network === 'host' ? osHostname() : shortCid(id)),
    Image: o.image,
    Env: env,
    Entrypoint: entrypoint,
    Cmd: cmd,
    WorkingDir: o.workdir ?? icfg.WorkingDir ?? '',
    User: o.user ?? icfg.User ?? '',
    Labels: labels,
    AttachStdin: !!o.interactive,
    AttachStdout: !o.detach,
    AttachStderr: !o.detach,
    OpenStdin: !!o.interactive,
    Tty: false,
    ...(o.stopSignal ? { StopSignal: o.stopSignal } : {}),
    ...(o.stopTimeout !== undefined ? { StopTimeout: o.stopTimeout } : {}),
  };
  if (config.StopSignal) signalNumber(config.StopSignal);
  if (config.WorkingDir && !config.WorkingDir.startsWith('/')) throw invalidArgument(`the working directory '${config.WorkingDir}' is invalid, it needs to be an absolute path`);
  // everything is checked: only now touch the host
  for (const m of mounts) {
    if (m.Type === 'bind' && !existsSync(m.Source)) mkdirSync(m.Source, { recursive: true }); // docker's -v makes a missing host dir
  }

  const sn = getSnapshotter(engine);
  // the image's layers stay held (a cleanup cannot take them) until the writable layer is on them
  const unpacked = await unpackHeld(engine, img.id);
  const c: Container = { id, name, imageId: img.id, config, hostConfig: hostCfg, state: newState(), created: new Date().toISOString() };
  store.insert(c);
  try {
    mkdirSync(store.dir(id), { recursive: true, mode: 0o710 });
    try {
      await sn.prepare(id, unpacked.key, { 'shale.container': id });
    } finally {
      unpacked.release();
    }
    // volumes now, so that `volume ls` shows them and rm -v knows them
    for (const m of mounts) {
      if (m.Type !== 'volume') continue;
      if (m.Anonymous) m.Source = vols.create(undefined, { anonymous: true }).name;
      else vols.create(m.Source);
    }
    store.updateConfig(id, config, hostCfg);
  } catch (e) {
    store.delete(id);
    await sn.remove(id).catch(() => undefined);
    rmSync(store.dir(id), { recursive: true, force: true });
    throw e;
  }
  const made = store.get(id)!;
  emit(engine.root, 'container', 'create', id, { image: made.config.Image, name: made.name, ...(made.config.Labels ?? {}) });
  return made;
}

/** The resource flags and the restart policy as docker's HostConfig fields, checked. */
function resources(o: CreateOptions): Partial<HostConfig> {
  const r: Partial<HostConfig> = {};
  const mem = parseMemory(o.memory, '--memory');
  if (mem !== undefined && mem !== 0) {
    if (mem > 0 && mem < 6 * 1024 * 1024) throw invalidArgument('Minimum memory limit allowed is 6MB');
    r.Memory = mem;
  }
  const swap = parseMemory(o.memorySwap, '--memory-swap');
  if (swap !== undefined && swap !== 0) {
    if (!r.Memory) throw invalidArgument('You should always set the Memory limit when using Memoryswap limit, see usage');
    if (swap > 0 && swap < r.Memory) throw invalidArgument('Minimum memoryswap limit should be larger than memory limit, see usage');
    r.MemorySwap = swap;
  }
  let nano = o.nanoCpus;
  if (o.cpus !== undefined && o.cpus !== '') {
    const c = Number(o.cpus);
    if (!Number.isFinite(c) || c < 0) throw invalidArgument(`invalid argument "${o.cpus}" for "--cpus" flag`);
    nano = Math.round(c * 1e9);
  }
  if (nano) {
    const ncpu = cpus().length;
    if (nano > ncpu * 1e9) throw invalidArgument(`range of CPUs is from 0.01 to ${ncpu}.00, as there are only ${ncpu} CPUs available`);
    if (nano < 1e7) throw invalidArgument(`range of CPUs is from 0.01 to ${ncpu}.00, as there are only ${ncpu} CPUs available`);
    r.NanoCpus = nano;
  }
  if (o.cpuShares) r.CpuShares = o.cpuShares;
  if (o.cpusetCpus) {
    if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(o.cpusetCpus)) throw invalidArgument(`invalid value ${o.cpusetCpus} for cpuset cpus`);
    r.CpusetCpus = o.cpusetCpus;
  }
  if (o.pidsLimit !== undefined && o.pidsLimit !== 0) {
    if (!Number.isInteger(o.pidsLimit)) throw invalidArgument(`invalid argument "${o.pidsLimit}" for "--pids-limit" flag`);
    r.PidsLimit = o.pidsLimit;
  }
  const rp = parseRestart(o.restart);
  if (rp.Name !== 'no') {
    if (o.rm) throw invalidArgument('Conflicting options: --restart and --rm', 'drop one of them');
    r.RestartPolicy = rp;
  }
  if (o.init) r.Init = true;
  return r;
}
