// exec: a process in a running container, its spec handed to the runtime in a 0600 file.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { Store } from '../store/index.js';
import { conflict, invalidArgument, ShaleError } from '../errors.js';
import { runtimeArgv, signalNumber, type Runtime } from './runtime.js';
import { capabilities, containerEnv } from './spec.js';
import { ContainerStore, type Container } from './store.js';
import { startFailureCode } from './supervise.js';
import { resolveUser } from './user.js';

import { reconcile, runtimeFor } from './lifecycle.js';
import { replaceEnv } from './create.js';

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
