// Containers: create (a record plus a thin writable snapshot on the image's layers), start
// (mount the rootfs, resolve mounts and user, write the OCI bundle, hand it to the runtime
// under a supervisor), stop/kill/wait, exec, remove. The CLI and the shim both use these.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, type Stats } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Readable, Writable } from 'node:stream';
import type { Socket } from 'node:net';
import type { Store } from '../store/index.js';
import { getSnapshotter, unpackImage } from '../store/rootfs.js';
import { emit } from '../store/events.js';
import { conflict, invalidArgument, isShaleError, notFound, ShaleError } from '../errors.js';
import { mountAll } from '../snapshots/index.js';
import { mountedAt, unmountRootfs } from './mounts.js';
import { logOptions } from './logs.js';
import { Scope } from '../scope/index.js';
import { fillFromRootfs } from './archive.js';
import { findRuntime, runtimeArgv, signalNumber, type Runtime } from './runtime.js';
import { buildSpec, capabilities, containerEnv, type SpecMount } from './spec.js';
import { ContainerStore, newId, newState, shortCid, type CConfig, type Container, type HostConfig, type MountSpec } from './store.js';
import { startFailureCode, supervise, type Ready } from './supervise.js';
import { resolveUser } from './user.js';
import { VolumeStore, VOLUME_NAME_RE } from './volumes.js';
import { pidAlive } from '../sys/index.js';

export { ContainerStore, shortCid, type Container } from './store.js';
export { VolumeStore } from './volumes.js';

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
}

function replaceEnv(env: string[], kv: string): string[] {
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
  const parent = await unpackImage(engine, img.id);
  const c: Container = { id, name, imageId: img.id, config, hostConfig: hostCfg, state: newState(), created: new Date().toISOString() };
  store.insert(c);
  try {
    mkdirSync(store.dir(id), { recursive: true, mode: 0o710 });
    try {
      await sn.prepare(id, parent, { 'shale.container': id });
    } catch (e) {
      // a concurrent cleanup took an unpacked layer no image owned when it looked (this image
      // arrived since, sharing it): unpack again and go on
      if (!isShaleError(e, 'NotFound') || !/parent snapshot/.test((e as Error).message)) throw e;
      await sn.prepare(id, await unpackImage(engine, img.id), { 'shale.container': id });
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

/** Mark a container whose supervisor died as exited (the CLI never leaves "running" ghosts). */
export async function reconcile(engine: Store, c: Container): Promise<Container> {
  if (!c.state.Running) return c;
  if (pidAlive(c.state.ShimPid) || pidAlive(c.state.Pid)) return c;
  const store = new ContainerStore(engine);
  const s = store.updateState(c.id, (s) => (s.Running && !pidAlive(s.ShimPid) ? { ...s, Status: 'exited', Running: false, Pid: 0, ExitCode: 255, Error: 'the supervising process died', FinishedAt: new Date().toISOString() } : s));
  await unmountRootfs(join(store.dir(c.id), 'rootfs'));
  return s ? { ...c, state: s } : c;
}

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
async function prepareBundle(engine: Store, c: Container): Promise<void> {
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
    const spec = buildSpec(c, { rootfs, user, mounts, dir, network: host ? 'host' : 'none' });
    // runc and crun bring lo up themselves in a new network namespace (docker's --network none)
    writeFileSync(join(dir, 'config.json'), JSON.stringify(spec));
  } catch (e) {
    await unmountRootfs(rootfs);
    throw e;
  }
}

function startError(r: Extract<Ready, { ok: false }>): ShaleError {
  const e = new ShaleError('FailedPrecondition', `failed to start container: ${r.error}`, r.exitCode === 127 ? 'check the command: it is not in the image' : undefined) as ShaleError & { exitCode: number };
  e.exitCode = r.exitCode;
  return e;
}

/** Start detached: a shim process supervises the run; resolves once the container is running. */
export async function startDetached(engine: Store, c: Container): Promise<void> {
  c = await reconcile(engine, c);
  if (c.state.Running) return;
  await prepareBundle(engine, c);
  const store = new ContainerStore(engine);
  const shim = fileURLToPath(new URL('./shim.js', import.meta.url));
  const args = { root: resolve(engine.root), storageDriver: getSnapshotter(engine).name, runtime: engine.opts.runtime, id: c.id, dir: store.dir(c.id) };
  const child = spawn(process.execPath, [shim, JSON.stringify(args)], { cwd: '/', detached: true, stdio: ['ignore', 'ignore', 'ignore', 'pipe'] });
  const pipe = child.stdio[3] as Socket;
  const r = await new Promise<Ready>((res) => {
    let buf = '';
    pipe.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('\n')) res(JSON.parse(buf.slice(0, buf.indexOf('\n'))) as Ready);
    });
    pipe.on('error', () => undefined);
    child.on('exit', (code) => res({ ok: false, error: `the shim exited with ${code} (see ${store.dir(c.id)}/shim.log)`, exitCode: 125 }));
    child.on('error', (e) => res({ ok: false, error: e.message, exitCode: 125 }));
  });
  pipe.destroy();
  child.unref();
  if (!r.ok) {
    await unmountRootfs(join(store.dir(c.id), 'rootfs')); // a shim that died early left prepareBundle's mount behind
    throw startError(r);
  }
}

/** Start attached: supervise in this process, streaming output; resolves with the exit code. */
export async function startAttached(engine: Store, c: Container, opts: { stdin?: Readable; stdout?: Writable; stderr?: Writable; forwardSignals?: boolean; onReady?: (r: Ready) => void } = {}): Promise<number> {
  c = await reconcile(engine, c);
  if (c.state.Running) throw conflict(`container ${c.name} is already running`, 'use `shale logs -f` or `shale exec`');
  await prepareBundle(engine, c);
  let failure: Extract<Ready, { ok: false }> | undefined;
  const forward = (sig: NodeJS.Signals) => () => void killContainer(engine, c.id, sig).catch(() => undefined);
  const onInt = forward('SIGINT');
  const onTerm = forward('SIGTERM');
  const fwd = opts.forwardSignals ?? true;
  if (fwd) {
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  }
  try {
    const code = await supervise(engine, c.id, {
      runtime: engine.opts.runtime,
      attach: { stdin: opts.stdin, stdout: opts.stdout ?? process.stdout, stderr: opts.stderr ?? process.stderr },
      onReady: (r) => { if (!r.ok) failure = r; opts.onReady?.(r); },
      remove: c.hostConfig.AutoRemove ? () => removeContainer(engine, c.id, { force: true, volumes: true, fromShim: true }) : undefined,
    });
    if (failure) throw startError(failure);
    return code;
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
    if (opts.stdin) {
      opts.stdin.pause();
      (opts.stdin as Readable & { unref?: () => void }).unref?.();
    }
  }
}

/** The OCI runtime a container runs under: its own --runtime, else the engine's. */
export function runtimeFor(engine: Store, c: Container): Runtime {
  return findRuntime(engine.root, c.hostConfig.Runtime ?? engine.opts.runtime);
}

function runRuntime(engine: Store, c: Container, args: string[]): Promise<{ code: number; stderr: string }> {
  const argv = runtimeArgv(runtimeFor(engine, c), args);
  return new Promise((res, rej) => {
    const p = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', rej);
    p.on('close', (code) => res({ code: code ?? 1, stderr }));
  });
}

/**
 * Run fn with the container frozen if it is running (docker's commit --pause): a process that
 * cannot run cannot swap files for symlinks under a reader. Resumed on every exit path.
 */
export async function whilePaused<T>(engine: Store, ref: string, fn: () => Promise<T>): Promise<T> {
  const c = await reconcile(engine, new ContainerStore(engine).resolve(ref));
  if (!c.state.Running) return fn();
  const p = await runRuntime(engine, c, ['pause', c.id]);
  if (p.code !== 0) throw new ShaleError('FailedPrecondition', `pausing ${c.name} for the commit failed: ${p.stderr.trim().split('\n').pop()}`, 'stop the container and commit it then');
  try {
    return await fn();
  } finally {
    await runRuntime(engine, c, ['resume', c.id]);
  }
}

export async function killContainer(engine: Store, ref: string, signal = 'SIGKILL'): Promise<void> {
  const store = new ContainerStore(engine);
  const c = await reconcile(engine, store.resolve(ref));
  const n = signalNumber(signal);
  if (!c.state.Running) throw conflict(`Cannot kill container: ${ref}: Container ${c.id} is not running`);
  const r = await runRuntime(engine, c, ['kill', c.id, String(n)]);
  if (r.code !== 0) {
    const now = store.get(c.id);
    if (now && now.state.Running && !/not running|does not exist/.test(r.stderr)) throw new ShaleError('Internal', `killing ${c.name}: ${r.stderr.trim()}`);
  }
}

/** Wait until the container is no longer running (or is gone). Returns the latest record, if any. */
export async function waitStopped(engine: Store, id: string, timeoutMs = Infinity): Promise<Container | undefined> {
  const store = new ContainerStore(engine);
  const end = Date.now() + timeoutMs;
  for (;;) {
    let c = store.get(id);
    if (!c) return undefined;
    c = await reconcile(engine, c);
    if (!c.state.Running) return c;
    if (Date.now() >= end) return c;
    await new Promise((r) => setTimeout(r, 15));
  }
}

export async function stopContainer(engine: Store, ref: string, timeoutSec?: number, signal?: string): Promise<void> {
  const store = new ContainerStore(engine);
  const c = await reconcile(engine, store.resolve(ref));
  if (!c.state.Running) return;
  const sig = signal ?? c.config.StopSignal ?? 'SIGTERM';
  const t = timeoutSec ?? c.config.StopTimeout ?? 10;
  await killContainer(engine, c.id, sig).catch((e) => { if (!isShaleError(e, 'Conflict')) throw e; });
  const after = await waitStopped(engine, c.id, Math.max(0, t) * 1000);
  if (after?.state.Running) {
    await killContainer(engine, c.id, 'SIGKILL').catch((e) => { if (!isShaleError(e, 'Conflict')) throw e; });
    await waitStopped(engine, c.id, 30_000);
  }
}

/** Remove a container: its writable layer, directory and record (and with volumes, its anonymous volumes). */
export async function removeContainer(engine: Store, ref: string, opts: { force?: boolean; volumes?: boolean; fromShim?: boolean } = {}): Promise<Container | undefined> {
  const store = new ContainerStore(engine);
  let c = store.tryResolve(ref);
  if (!c) {
    if (opts.fromShim) return undefined;
    throw notFound(`No such container: ${ref}`);
  }
  // one removal at a time, and never under a copy in flight: wait for it (docker's rm waits on the container's lock too)
  const unlock = await store.lock(c.id, 'remove');
  try {
    const now = store.get(c.id);
    if (!now) {
      if (opts.fromShim) return undefined;
      throw notFound(`No such container: ${ref}`);
    }
    return await removeLocked(engine, store, now, opts);
  } finally {
    unlock();
  }
}

async function removeLocked(engine: Store, store: ContainerStore, c: Container, opts: { force?: boolean; volumes?: boolean; fromShim?: boolean }): Promise<Container | undefined> {
  c = await reconcile(engine, c);
  if (c.state.Running) {
    if (!opts.force) throw conflict(`cannot remove container "/${c.name}": container is running: stop the container before removing or force remove`, 'use `shale stop` first, or rm -f');
    await killContainer(engine, c.id, 'SIGKILL').catch(() => undefined);
    await waitStopped(engine, c.id, 30_000);
  }
  const dir = store.dir(c.id);
  await unmountRootfs(join(dir, 'rootfs'));
  const rt = (() => { try { return runtimeFor(engine, c!); } catch { return undefined; } })();
  if (rt && existsSync(join(rt.stateDir, c.id))) await runRuntime(engine, c, ['delete', '--force', c.id]).catch(() => undefined);
  const sn = getSnapshotter(engine);
  if (sn.exists(c.id)) await sn.remove(c.id).catch((e) => { if (sn.exists(c!.id)) throw e; });
  rmSync(dir, { recursive: true, force: true });
  store.delete(c.id);
  emit(engine.root, 'container', 'destroy', c.id, { image: c.config.Image, name: c.name, ...(c.config.Labels ?? {}) });
  const anonymous = opts.volumes ? c.hostConfig.Mounts.filter((m) => m.Type === 'volume' && m.Anonymous) : [];
  if (anonymous.length) {
    const vols = new VolumeStore(engine);
    const others = store.list();
    for (const m of anonymous) {
      try { vols.remove(m.Source, others); } catch { /* in use or gone */ }
    }
  }
  return c;
}

export interface ExecOptions {
  cmd: string[];
  env?: string[];
  workdir?: string;
  user?: string;
  interactive?: boolean;
  detach?: boolean;
  /** streams instead of this process's stdio (the API's exec start) */
  stdio?: { stdin?: Readable; stdout: Writable; stderr: Writable };
}

/** runtime exec in a running container, with the CLI's stdio. Resolves with the command's exit code. */
export async function execInContainer(engine: Store, ref: string, o: ExecOptions): Promise<number> {
  const store = new ContainerStore(engine);
  const c = await reconcile(engine, store.resolve(ref));
  if (!c.state.Running) throw conflict(`container ${c.id} is not running`, 'start it first');
  if (o.cmd.length === 0) throw invalidArgument('no command given to exec');
  if (o.workdir && !isAbsolute(o.workdir)) throw invalidArgument(`the working directory '${o.workdir}' is invalid, it needs to be an absolute path`);
  const rootfs = join(store.dir(c.id), 'rootfs');
  const user = resolveUser(rootfs, o.user ?? c.config.User);
  const rt = runtimeFor(engine, c);
  // the whole process goes to the runtime in a file (--process), never on its command line: an
  // env value there would be in /proc/<pid>/cmdline, readable by every user of the host
  const dir = store.dir(c.id);
  const base = execBase(dir, c);
  let env = [...base.env];
  for (const e of o.env ?? []) {
    if (e.includes('=')) env = replaceEnv(env, e);
    else if (process.env[e] !== undefined) env = replaceEnv(env, `${e}=${process.env[e]}`);
    else env = env.filter((x) => x.split('=')[0] !== e); // docker: a bare unset NAME unsets it
  }
  const proc = {
    ...base.process,
    terminal: false,
    args: o.cmd,
    env,
    cwd: o.workdir || (base.process.cwd as string | undefined) || '/',
    user: { ...(base.process.user as object | undefined), uid: user.uid, gid: user.gid, ...(user.additionalGids.length ? { additionalGids: user.additionalGids } : { additionalGids: undefined }) },
  };
  delete (proc as Record<string, unknown>).consoleSize;
  const procFile = join(dir, `exec-${randomBytes(8).toString('hex')}.json`);
  writeFileSync(procFile, JSON.stringify(proc), { mode: 0o600, flag: 'wx' });
  const args = ['exec', '--process', procFile];
  if (o.detach) args.push('--detach');
  args.push(c.id);
  try {
    return await execRun(rt, args, !!o.interactive, o.stdio);
  } finally {
    rmSync(procFile, { force: true });
  }
}

/** The container's own process spec (what `runtime exec` starts from without --process): its config.json, else rebuilt. */
function execBase(dir: string, c: Container): { process: Record<string, unknown>; env: string[] } {
  try {
    const spec = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { process?: Record<string, unknown> };
    if (spec.process && Array.isArray(spec.process.env)) return { process: spec.process, env: spec.process.env as string[] };
  } catch { /* rebuilt below */ }
  const caps = capabilities(c);
  return { process: { capabilities: { bounding: caps, effective: caps, permitted: caps }, noNewPrivileges: false, cwd: c.config.WorkingDir || '/' }, env: containerEnv(c) };
}

function execRun(rt: Runtime, args: string[], interactive: boolean, stdio?: ExecOptions['stdio']): Promise<number> {
  const argv = runtimeArgv(rt, args);
  return new Promise((res, rej) => {
    const p = spawn(argv[0], argv.slice(1), { stdio: [interactive ? (stdio ? 'pipe' : 'inherit') : 'ignore', stdio ? 'pipe' : 'inherit', 'pipe'] });
    if (stdio) {
      p.stdout!.pipe(stdio.stdout, { end: false });
      if (interactive && stdio.stdin && p.stdin) {
        stdio.stdin.pipe(p.stdin);
        p.stdin.on('error', () => undefined);
      }
    }
    const errOut = stdio ? stdio.stderr : process.stderr;
    // the command's stderr passes through; the runtime's own failure becomes docker's message and code
    let tail = '';
    p.stderr!.on('data', (d: Buffer) => {
      tail = (tail + d.toString()).slice(-4096);
      if (!/level=error msg=/.test(d.toString())) errOut.write(d);
    });
    p.on('error', rej);
    p.on('close', (code, sig) => {
      const m = /level=error msg="((?:[^"\\]|\\.)*)"/.exec(tail);
      if (code === 255 && m) {
        let msg = m[1];
        try { msg = JSON.parse(`"${m[1]}"`) as string; } catch { /* raw */ }
        const e = new ShaleError('FailedPrecondition', `OCI runtime exec failed: ${msg}`) as ShaleError & { exitCode: number };
        const code = startFailureCode(msg);
        e.exitCode = code === 125 ? 126 : code;
        rej(e);
        return;
      }
      res(code ?? (sig ? 128 + signalNumber(sig) : 1));
    });
  });
}
