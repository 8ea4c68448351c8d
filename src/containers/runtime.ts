// The OCI runtime (runc or crun): finding it, and the command lines shale runs. crun refuses
// hybrid cgroups (v1 plus a cgroup2 mount at /sys/fs/cgroup/unified), so there it runs in a
// private mount namespace with that mount taken off (the host's mounts are untouched).
// The runtime's state lives under <shale root>/runtime/<name>, apart from other tools'.
import { accessSync, constants, readFileSync } from 'node:fs';
import { basename, delimiter, isAbsolute, join, resolve } from 'node:path';
import { failedPrecondition } from '../errors.js';

export interface Runtime {
  name: string; // runc | crun | other basename
  path: string;
  /** prefix a runtime command with this (the unshare wrapper for crun), or [] */
  wrap: string[];
  stateDir: string;
}

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function which(bin: string): string | undefined {
  const dirs = (process.env.PATH || '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter);
  for (const d of [...dirs, '/usr/sbin', '/usr/bin', '/sbin', '/usr/local/sbin']) {
    const p = join(d, bin);
    if (executable(p)) return p;
  }
  return undefined;
}

/** cgroup v1 hierarchy with a cgroup2 mount at /sys/fs/cgroup/unified */
export function hybridCgroups(): boolean {
  try {
    const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' '));
    return mounts.some((m) => m[1] === '/sys/fs/cgroup/unified' && m[2] === 'cgroup2') && !mounts.some((m) => m[1] === '/sys/fs/cgroup' && m[2] === 'cgroup2');
  } catch {
    return false;
  }
}

export function findRuntime(shaleRoot: string, wanted?: string): Runtime {
  let path: string | undefined;
  if (wanted) {
    path = isAbsolute(wanted) || wanted.includes('/') ? resolve(wanted) : which(wanted);
    if (!path || !executable(path)) throw failedPrecondition(`OCI runtime ${wanted} not found`, 'install runc or crun, or pass --runtime with the path of one');
  } else {
    path = which('runc') ?? which('crun');
    if (!path) throw failedPrecondition('no OCI runtime found: install runc or crun, or pass --runtime');
  }
  const name = basename(path);
  const wrap = name.startsWith('crun') && hybridCgroups() ? ['unshare', '-m', 'sh', '-c', 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$0" "$@"'] : [];
  return { name, path, wrap, stateDir: join(resolve(shaleRoot), 'runtime', name) };
}

/** argv (program first) for `runtime --root STATE <args...>` */
export function runtimeArgv(rt: Runtime, args: string[]): string[] {
  return [...rt.wrap, rt.path, '--root', rt.stateDir, ...args];
}

/** Signal names and numbers as `kill -s` and STOPSIGNAL accept them, to a name runc takes. */
const SIGNALS: Record<string, number> = { HUP: 1, INT: 2, QUIT: 3, ILL: 4, TRAP: 5, ABRT: 6, BUS: 7, FPE: 8, KILL: 9, USR1: 10, SEGV: 11, USR2: 12, PIPE: 13, ALRM: 14, TERM: 15, STKFLT: 16, CHLD: 17, CONT: 18, STOP: 19, TSTP: 20, TTIN: 21, TTOU: 22, URG: 23, XCPU: 24, XFSZ: 25, VTALRM: 26, PROF: 27, WINCH: 28, IO: 29, PWR: 30, SYS: 31 };

export function signalNumber(sig: string): number {
  const s = sig.toUpperCase().replace(/^SIG/, '');
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n < 1 || n > 64) throw failedPrecondition(`Invalid signal: ${sig}`);
    return n;
  }
  const n = SIGNALS[s];
  if (!n) throw failedPrecondition(`Invalid signal: ${sig}`, 'use a name like SIGTERM or KILL, or a number');
  return n;
}
