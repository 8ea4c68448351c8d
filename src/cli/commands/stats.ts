// stats, pause, unpause: docker's columns and --format fields over the engine's verbs.
import type { Command } from 'commander';
import { getEngine, out, forEach } from '../context.js';
import { humanSize, printFormatted, table } from '../format.js';
import { bytesSize } from '../../units/index.js';
import { containerStats, cpuPercent, listContainers, memUsed, pauseContainer, unpauseContainer, shortCid, type StatsItem } from '../../engine/containers.js';

interface StatsRow { Container: string; ID: string; Name: string; CPUPerc: string; MemUsage: string; MemPerc: string; NetIO: string; BlockIO: string; PIDs: string }

function row(ref: string, s: StatsItem): StatsRow {
  const mem = memUsed(s);
  const limit = s.memory_stats.limit;
  const io = s.blkio_stats.io_service_bytes_recursive ?? [];
  const sum = (op: string) => io.filter((x) => x.op === op).reduce((a, x) => a + x.value, 0);
  const net = Object.values(s.networks).reduce((a, n) => [a[0] + n.rx_bytes, a[1] + n.tx_bytes], [0, 0]);
  const cpu = cpuPercent({ ...s, cpu_stats: s.precpu_stats }, s);
  return {
    Container: ref, ID: shortCid(s.id), Name: s.name.replace(/^\//, ''),
    CPUPerc: `${cpu.toFixed(2)}%`, MemUsage: `${bytesSize(mem)} / ${bytesSize(limit)}`, MemPerc: `${(limit ? (mem / limit) * 100 : 0).toFixed(2)}%`,
    NetIO: `${humanSize(net[0])} / ${humanSize(net[1])}`, BlockIO: `${humanSize(sum('read'))} / ${humanSize(sum('write'))}`, PIDs: String(s.pids_stats.current),
  };
}

const HEAD = ['CONTAINER ID', 'NAME', 'CPU %', 'MEM USAGE / LIMIT', 'MEM %', 'NET I/O', 'BLOCK I/O', 'PIDS'];
const HEADERS: Record<string, string> = { Container: 'CONTAINER', ID: 'CONTAINER ID', CPUPerc: 'CPU %', MemUsage: 'MEM USAGE / LIMIT', MemPerc: 'MEM %', NetIO: 'NET I/O', BlockIO: 'BLOCK I/O', PIDs: 'PIDS' };

export function defineStatsCommands(p: Command): void {
  p.command('stats').description('Display a live stream of container(s) resource usage statistics').argument('[containers...]')
    .option('-a, --all', 'Show all containers (default shows just running)')
    .option('--no-stream', 'Disable streaming stats and only pull the first result')
    .option('--no-trunc', 'Do not truncate output')
    .option('--format <format>', 'Format output using a Go template')
    .action(async (refs: string[], o: { all?: boolean; stream: boolean; format?: string }) => {
      const engine = getEngine();
      const names = refs.length ? refs : (await listContainers(engine, { all: o.all })).map((x) => x.c.name);
      const ac = new AbortController();
      const stop = () => ac.abort();
      process.once('SIGINT', stop);
      try {
        const latest = new Map<string, StatsRow>();
        const print = () => {
          const rows = names.map((n) => latest.get(n)).filter((r): r is StatsRow => !!r);
          if (o.format) out(printFormatted(rows, o.format, HEADERS));
          else out(table([HEAD, ...rows.map((r) => [r.ID, r.Name, r.CPUPerc, r.MemUsage, r.MemPerc, r.NetIO, r.BlockIO, r.PIDs])]));
        };
        await Promise.all(names.map(async (n) => {
          for await (const s of containerStats(engine, n, { stream: o.stream, signal: ac.signal })) {
            latest.set(n, row(n, s));
            if (o.stream && latest.size === names.length) { out('\x1b[2J\x1b[H'); print(); }
          }
        }));
        if (!o.stream) print();
      } finally {
        process.off('SIGINT', stop);
      }
    });
  p.command('pause').description('Pause all processes within one or more containers').argument('<containers...>')
    .action((refs: string[]) => forEach(refs, async (r) => { await pauseContainer(getEngine(), r); out(`${r}\n`); }));
  p.command('unpause').description('Unpause all processes within one or more containers').argument('<containers...>')
    .action((refs: string[]) => forEach(refs, async (r) => { await unpauseContainer(getEngine(), r); out(`${r}\n`); }));
}
