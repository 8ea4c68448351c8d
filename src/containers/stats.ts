// A running container's resource usage from its cgroup (cgroupsPath /shale/<id>): on cgroup v1
// each controller's directory, on v2 the unified one. Returned in the Engine API's stats shape
// (cpu_stats, precpu_stats, memory_stats, pids_stats, blkio_stats), which `docker stats` reads.
import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import type { Container } from './store.js';

const CG = '/sys/fs/cgroup';

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

const num = (s: string | undefined): number => {
  const n = Number(s);
  return Number.isFinite(n) ? n : 0;
};

function kv(text: string | undefined): Record<string, number> {
  const o: Record<string, number> = {};
  for (const l of (text ?? '').split('\n')) {
    const [k, v] = l.trim().split(/\s+/);
    if (k && v !== undefined) o[k] = Number(v);
  }
  return o;
}

/** Host CPU time in ns, as docker's system_cpu_usage (from /proc/stat, USER_HZ = 100). */
function systemCpu(): number {
  const line = read('/proc/stat')?.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) return 0;
  return line.trim().split(/\s+/).slice(1, 8).reduce((a, v) => a + Number(v), 0) * 1e7;
}

export interface Sample {
  read: string;
  cpu_stats: { cpu_usage: { total_usage: number; usage_in_kernelmode: number; usage_in_usermode: number }; system_cpu_usage: number; online_cpus: number; throttling_data: { periods: number; throttled_periods: number; throttled_time: number } };
  memory_stats: { usage: number; limit: number; stats: Record<string, number> };
  pids_stats: { current: number; limit?: number };
  blkio_stats: { io_service_bytes_recursive: { major: number; minor: number; op: string; value: number }[] | null };
}

export function sampleStats(c: Container): Sample {
  const rel = join('shale', c.id);
  const v2 = existsSync(join(CG, 'cgroup.controllers')) && !existsSync(join(CG, 'memory'));
  const hostMem = num(read('/proc/meminfo')?.match(/^MemTotal:\s+(\d+)/m)?.[1]) * 1024;
  let cpu = 0, kernel = 0, user = 0, memUsage = 0, memLimit = hostMem, pids = 0, pidsLimit: number | undefined;
  let memStats: Record<string, number> = {};
  const io: Sample['blkio_stats']['io_service_bytes_recursive'] = [];
  if (v2) {
    const d = join(CG, rel);
    const st = kv(read(join(d, 'cpu.stat')));
    cpu = (st.usage_usec ?? 0) * 1000; user = (st.user_usec ?? 0) * 1000; kernel = (st.system_usec ?? 0) * 1000;
    memUsage = num(read(join(d, 'memory.current')));
    const max = read(join(d, 'memory.max'));
    if (max && max !== 'max') memLimit = Math.min(memLimit, num(max));
    memStats = kv(read(join(d, 'memory.stat')));
    pids = num(read(join(d, 'pids.current')));
    const pm = read(join(d, 'pids.max'));
    if (pm && pm !== 'max') pidsLimit = num(pm);
    for (const l of (read(join(d, 'io.stat')) ?? '').split('\n')) {
      const [dev, ...fields] = l.trim().split(/\s+/);
      if (!dev) continue;
      const [major, minor] = dev.split(':').map(Number);
      const f = Object.fromEntries(fields.map((x) => x.split('=')));
      io.push({ major, minor, op: 'read', value: num(f.rbytes) }, { major, minor, op: 'write', value: num(f.wbytes) });
    }
  } else {
    const cpuacct = existsSync(join(CG, 'cpuacct', rel)) ? join(CG, 'cpuacct', rel) : join(CG, 'cpu,cpuacct', rel);
    cpu = num(read(join(cpuacct, 'cpuacct.usage')));
    const ticks = kv(read(join(cpuacct, 'cpuacct.stat')));
    user = (ticks.user ?? 0) * 1e7; kernel = (ticks.system ?? 0) * 1e7;
    const mem = join(CG, 'memory', rel);
    memUsage = num(read(join(mem, 'memory.usage_in_bytes')));
    memLimit = Math.min(memLimit, num(read(join(mem, 'memory.limit_in_bytes'))) || memLimit);
    memStats = kv(read(join(mem, 'memory.stat')));
    pids = num(read(join(CG, 'pids', rel, 'pids.current')));
    const pm = read(join(CG, 'pids', rel, 'pids.max'));
    if (pm && pm !== 'max') pidsLimit = num(pm);
    for (const l of (read(join(CG, 'blkio', rel, 'blkio.throttle.io_service_bytes')) ?? '').split('\n')) {
      const [dev, op, v] = l.trim().split(/\s+/);
      if (!dev || !op || v === undefined || dev === 'Total') continue;
      const [major, minor] = dev.split(':').map(Number);
      io.push({ major, minor, op: op.toLowerCase(), value: num(v) });
    }
  }
  return {
    read: new Date().toISOString(),
    cpu_stats: { cpu_usage: { total_usage: cpu, usage_in_kernelmode: kernel, usage_in_usermode: user }, system_cpu_usage: systemCpu(), online_cpus: cpus().length, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } },
    memory_stats: { usage: memUsage, limit: memLimit, stats: memStats },
    pids_stats: { current: pids, ...(pidsLimit !== undefined ? { limit: pidsLimit } : {}) },
    blkio_stats: { io_service_bytes_recursive: io.length ? io : null },
  };
}

/** docker's CPU %: the container's share of the host's CPU time between two samples, times the CPUs. */
export function cpuPercent(prev: Sample, cur: Sample): number {
  const dc = cur.cpu_stats.cpu_usage.total_usage - prev.cpu_stats.cpu_usage.total_usage;
  const ds = cur.cpu_stats.system_cpu_usage - prev.cpu_stats.system_cpu_usage;
  return dc > 0 && ds > 0 ? (dc / ds) * cur.cpu_stats.online_cpus * 100 : 0;
}

/** docker's memory usage: usage minus the page cache that could be dropped (inactive file pages). */
export function memUsed(s: Sample): number {
  const st = s.memory_stats.stats;
  const cache = st.total_inactive_file ?? st.inactive_file ?? 0;
  return Math.max(0, s.memory_stats.usage - (cache < s.memory_stats.usage ? cache : 0));
}
