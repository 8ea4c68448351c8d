// start (detached under a shim, or attached here), reconcile a dead supervisor, pause for a
// read, kill, wait, stop, remove.
import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Readable, Writable } from 'node:stream';
import type { Socket } from 'node:net';
import type { Store } from '../store/index.js';
import { getSnapshotter } from '../store/rootfs.js';
import { emit } from '../store/events.js';
import { conflict, isShaleError, notFound, ShaleError } from '../errors.js';
import { unmountRootfs } from './mounts.js';
import { findRuntime, runtimeArgv, signalNumber, type Runtime } from './runtime.js';
import { ContainerStore, type Container } from './store.js';
import { supervise, type Ready } from './supervise.js';
import { VolumeStore } from './volumes.js';
import { pidAlive } from '../sys/index.js';

import { prepareBundle } from './bundle.js';

/** Mark a container whose supervisor died as exited (the CLI never leaves "running" ghosts). */
export async function reconcile(engine: Store, c: Container): Promise<Container> {
  if (!c.state.Running) return c;
  if (pidAlive(c.state.ShimPid) || pidAlive(c.state.Pid)) return c;
  const store = new ContainerStore(engine);
  const s = store.updateState(c.id, (s) => (s.Running && !pidAlive(s.ShimPid) ? { ...s, Status: 'exited', Running: false, Pid: 0, ExitCode: 255, Error: 'the supervising process died', FinishedAt: new Date().toISOString() } : s));
  await unmountRootfs(join(store.dir(c.id), 'rootfs'));
  return s ? { ...c, state: s } : c;
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
  const store = new ContainerStore(engine);
  store.updateState(c.id, (s) => ({ ...s, ManualStop: false, Restarting: false }));
  await prepareBundle(engine, c);
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

export function runRuntime(engine: Store, c: Container, args: string[]): Promise<{ code: number; stderr: string }> {
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
  if (!c.state.Running || c.state.Paused) return fn(); // a paused container is frozen already
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
  // stopped by a user: its restart policy leaves it stopped (docker's rule)
  store.updateState(c.id, (s) => ({ ...s, ManualStop: true }));
  const r = await runRuntime(engine, c, ['kill', c.id, String(n)]);
  if (r.code !== 0) {
    const now = store.get(c.id);
    if (now && now.state.Running && !/not running|does not exist/.test(r.stderr)) throw new ShaleError('Internal', `killing ${c.name}: ${r.stderr.trim()}`);
  }
  // a frozen process gets its signal when thawed (docker thaws a paused container it kills)
  if (c.state.Paused) await unpauseContainer(engine, c.id).catch(() => undefined);
}

/** docker pause: freeze every process of the container (the cgroup freezer, through the runtime). */
export async function pauseContainer(engine: Store, ref: string): Promise<void> {
  const store = new ContainerStore(engine);
  const c = await reconcile(engine, store.resolve(ref));
  if (!c.state.Running) throw conflict(`Container ${c.id} is not running`);
  if (c.state.Paused) throw conflict(`Container ${c.id} is already paused`);
  const r = await runRuntime(engine, c, ['pause', c.id]);
  if (r.code !== 0) throw new ShaleError('Internal', `pausing ${c.name}: ${r.stderr.trim().split('\n').pop()}`);
  store.updateState(c.id, (s) => ({ ...s, Paused: true }));
  emit(engine.root, 'container', 'pause', c.id, { image: c.config.Image, name: c.name });
}

export async function unpauseContainer(engine: Store, ref: string): Promise<void> {
  const store = new ContainerStore(engine);
  const c = await reconcile(engine, store.resolve(ref));
  if (!c.state.Running || !c.state.Paused) throw conflict(`Container ${c.id} is not paused`);
  const r = await runRuntime(engine, c, ['resume', c.id]);
  if (r.code !== 0 && !/not paused|not running/.test(r.stderr)) throw new ShaleError('Internal', `unpausing ${c.name}: ${r.stderr.trim().split('\n').pop()}`);
  store.updateState(c.id, (s) => ({ ...s, Paused: false }));
  emit(engine.root, 'container', 'unpause', c.id, { image: c.config.Image, name: c.name });
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
  if (!c.state.Running) {
    // between two runs of its restart policy: stopping it means it stays stopped
    if (c.state.Restarting) store.updateState(c.id, (s) => ({ ...s, ManualStop: true, Restarting: false }));
    return;
  }
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
