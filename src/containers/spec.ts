// A container's record -> the OCI runtime spec (config.json) that runc/crun runs, with
// docker's defaults: mount, pid, ipc, uts (and network unless --network host) namespaces,
// the usual /proc /dev /sys mounts, docker's default capability set, masked and read-only
// /proc paths, PATH and HOSTNAME in the environment, /etc/hosts, /etc/hostname and
// /etc/resolv.conf bind-mounted from the container's directory.
import { existsSync, readFileSync } from 'node:fs';
import { invalidArgument } from '../errors.js';
import type { Container } from './store.js';
import type { User } from './user.js';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export const DEFAULT_CAPS = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE'];

const MASKED = ['/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap'];
const READONLY = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export interface SpecMount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

/** docker's env: PATH unless the image sets it, HOSTNAME, then the container's Env (later wins). */
export function containerEnv(c: Container): string[] {
  const env = new Map<string, string>();
  const put = (kv: string) => {
    const i = kv.indexOf('=');
    env.set(i < 0 ? kv : kv.slice(0, i), kv);
  };
  put(`PATH=${DEFAULT_PATH}`);
  put(`HOSTNAME=${c.config.Hostname}`);
  for (const kv of c.config.Env ?? []) put(kv);
  return [...env.values()];
}

/** The process's argv: entrypoint + cmd. */
export function containerArgs(c: Container): string[] {
  return [...(c.config.Entrypoint ?? []), ...(c.config.Cmd ?? [])];
}

/** Every capability the kernel knows (for --privileged and --cap-add ALL). */
export const ALL_CAPS = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ'];

/** The capabilities this process may hand on (its bounding set; ALL_CAPS is in bit order). */
function boundingSet(): string[] {
  try {
    const hex = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    if (!hex) return ALL_CAPS;
    const bits = BigInt('0x' + hex);
    return ALL_CAPS.filter((_, i) => (bits >> BigInt(i)) & 1n);
  } catch {
    return ALL_CAPS;
  }
}

/** docker's capability set: the defaults, --cap-add, --cap-drop (names with or without CAP_, or ALL). */
export function capabilities(c: Container): string[] {
  const have = boundingSet();
  if (c.hostConfig.Privileged) return have;
  const norm = (x: string) => (x.toUpperCase() === 'ALL' ? 'ALL' : 'CAP_' + x.toUpperCase().replace(/^CAP_/, ''));
  const add = (c.hostConfig.CapAdd ?? []).map(norm);
  const drop = (c.hostConfig.CapDrop ?? []).map(norm);
  for (const x of [...add, ...drop]) if (x !== 'ALL' && !ALL_CAPS.includes(x)) throw invalidArgument(`unknown capability: "${x}"`);
  let caps = drop.includes('ALL') ? [] : DEFAULT_CAPS.filter((x) => !drop.includes(x));
  caps = add.includes('ALL') ? ALL_CAPS.filter((x) => !drop.includes(x) || add.includes(x)) : [...new Set([...caps, ...add])];
  return caps.filter((x) => have.includes(x));
}

/** docker-init for --init: Debian's tini (static first: it needs nothing from the image). */
export function findInit(): string | undefined {
  for (const p of ['/usr/bin/docker-init', '/usr/libexec/docker/docker-init', '/usr/bin/tini-static', '/usr/bin/tini']) if (existsSync(p)) return p;
  return undefined;
}

/** The cgroup limits (docker's HostConfig resources) as the runtime spec's linux.resources. */
export function specResources(c: Container): Record<string, unknown> {
  const h = c.hostConfig;
  const privileged = !!h.Privileged;
  const r: Record<string, unknown> = { devices: [{ allow: privileged, access: 'rwm' }] };
  if (h.Memory) r.memory = { limit: h.Memory, ...(h.MemorySwap ? { swap: h.MemorySwap } : {}) };
  const cpu: Record<string, unknown> = {};
  if (h.NanoCpus) { cpu.period = 100000; cpu.quota = Math.round((h.NanoCpus * 100000) / 1e9); }
  if (h.CpuShares) cpu.shares = h.CpuShares;
  if (h.CpusetCpus) cpu.cpus = h.CpusetCpus;
  if (Object.keys(cpu).length) r.cpu = cpu;
  if (h.PidsLimit && h.PidsLimit > 0) r.pids = { limit: h.PidsLimit };
  return r;
}

export function buildSpec(c: Container, opts: { rootfs: string; user: User; mounts: SpecMount[]; dir: string; network: 'none' | 'host'; init?: string }): Record<string, unknown> {
  const caps = capabilities(c);
  const privileged = !!c.hostConfig.Privileged;
  const namespaces = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }];
  if (opts.network !== 'host') namespaces.push({ type: 'network' });
  const base: SpecMount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', privileged ? 'rw' : 'ro'] },
    // the container's own cgroups (its limits are readable inside, as in docker)
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', privileged ? 'rw' : 'ro'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
  ];
  for (const [dest, o] of Object.entries(c.hostConfig.Tmpfs ?? {})) {
    base.push({ destination: dest, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'noexec', ...(o ? o.split(',') : [])] });
  }
  const etc: SpecMount[] = ['resolv.conf', 'hostname', 'hosts'].map((f) => ({ destination: `/etc/${f}`, type: 'bind', source: `${opts.dir}/${f}`, options: ['rbind', 'rprivate'] }));
  // a user mount over one of the defaults replaces it, as in docker
  const userDests = new Set(opts.mounts.map((m) => m.destination));
  const mounts = [...base, ...etc].filter((m) => !userDests.has(m.destination)).concat(opts.mounts);
  if (opts.init) mounts.push({ destination: '/sbin/docker-init', type: 'bind', source: opts.init, options: ['rbind', 'ro', 'rprivate'] });
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: opts.user.uid, gid: opts.user.gid, ...(opts.user.additionalGids.length ? { additionalGids: opts.user.additionalGids } : {}) },
      args: opts.init ? ['/sbin/docker-init', '--', ...containerArgs(c)] : containerArgs(c),
      env: containerEnv(c),
      cwd: c.config.WorkingDir || '/',
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      noNewPrivileges: false,
    },
    root: { path: opts.rootfs, readonly: !!c.hostConfig.ReadonlyRootfs },
    hostname: c.config.Hostname,
    mounts,
    linux: {
      cgroupsPath: `/shale/${c.id}`,
      resources: specResources(c),
      namespaces,
      maskedPaths: privileged ? [] : MASKED,
      readonlyPaths: privileged ? [] : READONLY,
    },
  };
}
