// system df and info: the engine's disk usage and system info as docker prints them.
import type { Command } from 'commander';
import { getEngine, out } from '../context.js';
import { humanSize, printFormatted, since, table, compileFormat } from '../format.js';
import { imageRows } from './images.js';
import { systemDiskUsage, systemInfo } from '../../engine/system.js';
import { imageLookup, psRow } from './ps.js';

// ---------------------------------------------------------------- system df

function pct(part: number, total: number): string {
  return total > 0 ? `${humanSize(part)} (${Math.floor((part * 100) / total)}%)` : humanSize(part);
}

async function systemDf(o: { verbose?: boolean; format?: string }): Promise<void> {
  const engine = getEngine();
  const du = await systemDiskUsage(engine);
  const containers = du.containers.map((x) => x.c);
  const csizes = du.containers.map((x) => x.disk);
  const cTotal = csizes.reduce((a, b) => a + b, 0);
  const cReclaim = du.containers.reduce((a, x) => a + (x.c.state.Running ? 0 : x.disk), 0);
  const vTotal = du.volumes.reduce((a, v) => a + v.size, 0);
  const vReclaim = du.volumes.reduce((a, v) => a + (v.links ? 0 : v.size), 0);
  const bc = du.buildCache;
  const rows = [
    { Type: 'Images', TotalCount: String(du.images.length), Active: String(du.images.filter((i) => i.containers > 0).length), Size: humanSize(du.imagesSize), Reclaimable: pct(du.imagesSize - du.imagesActiveSize, du.imagesSize) },
    { Type: 'Containers', TotalCount: String(containers.length), Active: String(containers.filter((c) => c.state.Running).length), Size: humanSize(cTotal), Reclaimable: pct(cReclaim, cTotal) },
    { Type: 'Local Volumes', TotalCount: String(du.volumes.length), Active: String(du.volumes.filter((v) => v.links).length), Size: humanSize(vTotal), Reclaimable: pct(vReclaim, vTotal) },
    { Type: 'Build Cache', TotalCount: String(bc.count), Active: '0', Size: humanSize(bc.size), Reclaimable: humanSize(bc.reclaimable) },
  ];
  if (o.format) {
    out(printFormatted(rows, o.format, { TotalCount: 'TOTAL' }));
    return;
  }
  if (!o.verbose) {
    out(table([['TYPE', 'TOTAL', 'ACTIVE', 'SIZE', 'RECLAIMABLE'], ...rows.map((r) => [r.Type, r.TotalCount, r.Active, r.Size, r.Reclaimable])]));
    return;
  }
  const irows = imageRows(engine);
  out('Images space usage:\n\n');
  out(table([['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE', 'SHARED SIZE', 'UNIQUE SIZE', 'CONTAINERS'], ...irows.map((r) => [r.Repository, r.Tag, r.ID, r.CreatedSince, r.Size, r.SharedSize, r.UniqueSize, r.Containers])]));
  out('\nContainers space usage:\n\n');
  const lookup = imageLookup(engine);
  const crow = containers.map((c) => psRow(lookup, c, {}));
  out(table([['CONTAINER ID', 'IMAGE', 'COMMAND', 'LOCAL VOLUMES', 'SIZE', 'CREATED', 'STATUS', 'NAMES'], ...crow.map((r, i) => [r.ID, r.Image, r.Command, r.LocalVolumes, humanSize(csizes[i]), r.RunningFor, r.Status, r.Names])]));
  out('\nLocal Volumes space usage:\n\n');
  out(table([['VOLUME NAME', 'LINKS', 'SIZE'], ...du.volumes.map((v) => [v.name, String(v.links), humanSize(v.size)])]));
  out(`\nBuild cache usage: ${humanSize(bc.size)}\n\n`);
  out(table([['CACHE ID', 'CACHE TYPE', 'SIZE', 'CREATED', 'LAST USED', 'USAGE', 'SHARED'], ...bc.records.map((r) => [r.key.replace(/^sha256:/, '').slice(0, 25), 'regular', humanSize(r.size), since(r.created), since(r.lastUsed), '1', String(r.shared)])]));
}

// ---------------------------------------------------------------- info

async function info(o: { format?: string }): Promise<void> {
  const engine = getEngine();
  const obj = await systemInfo(engine) as Record<string, unknown> & { Containers: number; ContainersRunning: number; ContainersStopped: number; Images: number; Volumes: number; ServerVersion: string; Driver: string; CgroupVersion: string; DefaultRuntime: string; KernelVersion: string; OperatingSystem: string; Architecture: string; NCPU: number; MemTotal: number; DockerRootDir: string; Hybrid: boolean };
  const running = obj.ContainersRunning;
  const runtime = obj.DefaultRuntime;
  const sn = { name: obj.Driver };
  const hybridCgroups = () => obj.Hybrid;
  if (o.format) {
    out(compileFormat(o.format).row(obj) + '\n');
    return;
  }
  out([
    'Client:', ' Version:    0.1.0', '', 'Server:',
    ` Containers: ${obj.Containers}`, `  Running: ${running}`, '  Paused: 0', `  Stopped: ${obj.ContainersStopped}`,
    ` Images: ${obj.Images}`, ` Volumes: ${obj.Volumes}`, ` Server Version: shale ${obj.ServerVersion}`, ` Storage Driver: ${sn.name}`,
    ` Logging Driver: json-file`, ` Cgroup Driver: cgroupfs`, ` Cgroup Version: ${obj.CgroupVersion}${hybridCgroups() ? ' (hybrid)' : ''}`,
    ` Runtimes: ${runtime}`, ` Default Runtime: ${runtime}`, ` Kernel Version: ${obj.KernelVersion}`, ` Operating System: ${obj.OperatingSystem}`,
    ` Architecture: ${obj.Architecture}`, ` CPUs: ${obj.NCPU}`, ` Total Memory: ${humanSize(obj.MemTotal)}`, ` Docker Root Dir: ${obj.DockerRootDir}`, '',
  ].join('\n'));
}

export function registerSystemInfo(program: Command): void {
  let system = program.commands.find((c) => c.name() === 'system');
  if (!system) system = program.command('system').description('Manage shale');
  system.command('df').description('Show shale disk usage')
    .option('-v, --verbose', 'Show detailed information on space usage')
    .option('--format <format>', 'Format output using a Go template')
    .action(systemDf);
  const infoCmd = (c: Command) => c.description('Display system-wide information').option('-f, --format <format>', 'Format the output using the given Go template').action(info);
  infoCmd(program.command('info'));
  infoCmd(system.command('info'));
}
