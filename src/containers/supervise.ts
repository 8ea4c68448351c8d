// Supervising one container run: `runtime run --bundle DIR ID` with piped stdio, output into
// the json-file log (and to the terminal when attached), pid/state/exit code into the DB,
// and cleanup when it exits (unmount the rootfs; remove the container for --rm).
// The detached shim (shim.ts) runs this in its own process; a foreground `run` runs it
// in-process so output streams live and the CLI exits with the container's code.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join, resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { Store } from '../store/index.js';
import { unmountRootfs } from './mounts.js';
import { JsonLogWriter, logOptions } from './logs.js';
import { findRuntime, runtimeArgv, type Runtime } from './runtime.js';
import { ContainerStore } from './store.js';
import { emit as emitEvent } from '../store/events.js';

export type Ready = { ok: true; pid: number } | { ok: false; error: string; exitCode: number };

export interface SuperviseOptions {
  runtime?: string;
  attach?: { stdin?: Readable; stdout: Writable; stderr: Writable };
  onReady: (r: Ready) => void;
  /** remove the container after it exits (--rm); done by the caller's removeContainer */
  remove?: () => Promise<unknown>;
}

/** docker's exit codes for a process that could not start (the docker CLI's rules). */
export function startFailureCode(msg: string): number {
  if (/executable file not found|no such file or directory/i.test(msg)) return 127;
  if (/permission denied|is a directory/i.test(msg)) return 126;
  return 125;
}

export function logPath(dir: string, id: string): string {
  return join(dir, `${id}-json.log`);
}

/** Run the container to its end. Resolves with its exit code (or the start failure's). */
export async function supervise(engine: Store, id: string, opts: SuperviseOptions): Promise<number> {
  const store = new ContainerStore(engine);
  const attrs = (): Record<string, string> => {
    const c = store.get(id);
    return c ? { image: c.config.Image, name: c.name, ...(c.config.Labels ?? {}) } : {};
  };
  const c = store.get(id);
  if (!c) throw new Error(`container ${id} vanished before it started`);
  const dir = store.dir(id);
  const pidFile = join(dir, 'init.pid');
  let rt: Runtime;
  let log: JsonLogWriter;
  try {
    rt = findRuntime(engine.root, c.hostConfig.Runtime ?? opts.runtime);
    rmSync(pidFile, { force: true });
    log = new JsonLogWriter(logPath(dir, id), logOptions(c.hostConfig.LogConfig.Config));
  } catch (e) {
    await unmountRootfs(join(dir, 'rootfs')); // the caller mounted it for this run, which never began
    throw e;
  }
  const argv = runtimeArgv(rt, ['run', '--bundle', dir, '--pid-file', pidFile, id]);
  // its own process group: a terminal's ^C reaches the CLI only, which forwards it once (sig-proxy)
  const child = spawn(argv[0], argv.slice(1), { cwd: dir, detached: true, stdio: [opts.attach?.stdin || c.config.OpenStdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  // -i without anything attached (run -di): stdin stays open and empty, as docker keeps it
  child.stdin?.on('error', () => undefined);
  store.updateState(id, (s) => ({ ...s, ShimPid: process.pid }));

  let ready = false;
  const early: { s: 'stdout' | 'stderr'; d: Buffer }[] = [];
  // a reader that went away (`| head`) must not stop the container's supervision
  const broken = new Set<Writable>();
  for (const w of [opts.attach?.stdout, opts.attach?.stderr]) w?.on('error', () => broken.add(w));
  const emit = (s: 'stdout' | 'stderr', d: Buffer) => {
    log.write(s, d);
    const w = s === 'stdout' ? opts.attach?.stdout : opts.attach?.stderr;
    if (w && !broken.has(w) && !w.destroyed) w.write(d);
  };
  const onData = (s: 'stdout' | 'stderr') => (d: Buffer) => {
    if (ready) emit(s, d);
    else early.push({ s, d });
  };
  child.stdout!.on('data', onData('stdout'));
  child.stderr!.on('data', onData('stderr'));
  if (opts.attach?.stdin && child.stdin) {
    const stdin = opts.attach.stdin;
    stdin.pipe(child.stdin);
    child.stdin.on('error', () => undefined); // the container closed its stdin
  }

  let notRecorded: Error | undefined; // the start could not be recorded (a full disk): the container is stopped
  const markReady = (pid: number) => {
    if (ready || notRecorded) return;
    try {
      store.updateState(id, (s) => ({ ...s, Status: 'running', Running: true, Pid: pid, ExitCode: 0, Error: '', StartedAt: new Date().toISOString(), FinishedAt: s.FinishedAt, ShimPid: process.pid }));
      emitEvent(engine.root, 'container', 'start', id, attrs());
    } catch (e) {
      // a container shale cannot account for must not run: stop it, and report why it did not start
      notRecorded = e as Error;
      try { if (pid > 0) process.kill(pid, 'SIGKILL'); } catch { /* gone already */ }
      return;
    }
    ready = true;
    for (const e of early.splice(0)) emit(e.s, e.d);
    opts.onReady({ ok: true, pid });
  };
  const readPid = (): number | undefined => {
    try {
      const n = Number(readFileSync(pidFile, 'utf8').trim());
      return n > 0 ? n : undefined;
    } catch {
      return undefined;
    }
  };
  const poll = setInterval(() => {
    const pid = readPid();
    if (pid) {
      clearInterval(poll);
      markReady(pid);
    }
  }, 4);

  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res, rej) => {
    child.on('error', rej);
    child.on('close', (code, signal) => res({ code, signal }));
  }).catch((e: Error) => ({ code: null, signal: null, error: e }) as { code: number | null; signal: NodeJS.Signals | null });
  clearInterval(poll);
  opts.attach?.stdin?.unpipe();

  let exitCode: number;
  if (!ready && existsSync(pidFile)) markReady(readPid() ?? 0);
  // clean up before the state says "exited", so whoever waits for that finds it unmounted
  log.close();
  await unmountRootfs(join(dir, 'rootfs'));
  if (ready) {
    exitCode = code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : 255);
    try {
      store.updateState(id, (s) => ({ ...s, Status: 'exited', Running: false, Paused: false, Pid: 0, ExitCode: exitCode, FinishedAt: new Date().toISOString() }));
      emitEvent(engine.root, 'container', 'die', id, { ...attrs(), exitCode: String(exitCode) });
    } catch { /* a full disk: the state still says running, and reconcile sees this supervisor gone (exit 255) */ }
  } else {
    let msg = notRecorded ? `recording the start failed: ${notRecorded.message}` : Buffer.concat(early.filter((e) => e.s === 'stderr').map((e) => e.d)).toString().trim().split('\n').filter(Boolean).pop() ?? `${rt.name} exited with ${code}`;
    const m = /msg="((?:[^"\\]|\\.)*)"/.exec(msg);
    if (m) {
      try { msg = JSON.parse(`"${m[1]}"`) as string; } catch { msg = m[1]; }
    }
    exitCode = startFailureCode(msg);
    try {
      store.updateState(id, (s) => ({ ...s, Status: 'created', Running: false, Pid: 0, ExitCode: exitCode, Error: msg }));
    } catch { /* a full disk: the error still reaches the caller below */ }
    opts.onReady({ ok: false, error: msg, exitCode });
  }
  if (opts.remove) {
    recordExit(engine.root, id, exitCode); // `wait` can still tell the code once the container is gone
    await opts.remove().catch(() => undefined);
  }
  return exitCode;
}

/** Exit codes of auto-removed containers, kept ten minutes for `wait`: <root>/runtime/exits/<id>. */
function exitsDir(root: string): string {
  return join(resolve(root), 'runtime', 'exits');
}

export function recordExit(root: string, id: string, code: number): void {
  try {
    const dir = exitsDir(root);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, id), String(code));
    for (const f of readdirSync(dir)) {
      try {
        if (Date.now() - statSync(join(dir, f)).mtimeMs > 600_000) rmSync(join(dir, f), { force: true });
      } catch { /* gone */ }
    }
  } catch { /* best effort */ }
}

export function recordedExit(root: string, id: string): number | undefined {
  try {
    return Number(readFileSync(join(exitsDir(root), id), 'utf8'));
  } catch {
    return undefined;
  }
}
