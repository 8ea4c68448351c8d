// A container's record -> the OCI runtime spec (config.json) that runc/crun runs, with
// docker's defaults: mount, pid, ipc, uts (and network unless --network host) namespaces,
// the usual /proc /dev /sys mounts, docker's default capability set, masked and read-only
// /proc paths, PATH and HOSTNAME in the environment, /etc/hosts, /etc/hostname and
// /etc/resolv.conf bind-mounted from the container's directory.
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

export function buildSpec(c: Container, opts: { rootfs: string; user: User; mounts: SpecMount[]; dir: string; network: 'none' | 'host' }): Record<string, unknown> {
  const caps = [...DEFAULT_CAPS];
  const namespaces = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }];
  if (opts.network !== 'host') namespaces.push({ type: 'network' });
  const base: SpecMount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
  ];
  const etc: SpecMount[] = ['resolv.conf', 'hostname', 'hosts'].map((f) => ({ destination: `/etc/${f}`, type: 'bind', source: `${opts.dir}/${f}`, options: ['rbind', 'rprivate'] }));
  // a user mount over one of the defaults replaces it, as in docker
  const userDests = new Set(opts.mounts.map((m) => m.destination));
  const mounts = [...base, ...etc].filter((m) => !userDests.has(m.destination)).concat(opts.mounts);
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: opts.user.uid, gid: opts.user.gid, ...(opts.user.additionalGids.length ? { additionalGids: opts.user.additionalGids } : {}) },
      args: containerArgs(c),
      env: containerEnv(c),
      cwd: c.config.WorkingDir || '/',
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      noNewPrivileges: false,
    },
    root: { path: opts.rootfs, readonly: false },
    hostname: c.config.Hostname,
    mounts,
    linux: {
      cgroupsPath: `/shale/${c.id}`,
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces,
      maskedPaths: MASKED,
      readonlyPaths: READONLY,
    },
  };
}
