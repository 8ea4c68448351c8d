// Container commands, following docker's flags, headers and --format fields: create, run,
// start, stop, restart, kill, wait, rm, ps, logs, exec, diff, commit, export, cp,
// container prune (and the `container` group), system df, info.
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { getEngine, out, err, collect } from '../context.js';
import { goTime, humanDuration, humanSize, printFormatted, since, table, truncate, compileFormat } from '../format.js';
import { imageRows } from './images.js';
import type { Engine } from '../../engine/index.js';
import { invalidArgument, ShaleError } from '../../errors.js';
import {
  archiveFromContainer, commandOf, commitContainer, containerChanges, containerLogs, containerTop, copyFromContainer, copyToContainer, createContainer,
  execInContainer, exportContainer, filtersFromFlags, inspectContainer, killContainer, listContainers, recordedExit, removeContainer, shortCid,
  startAttached, startDetached, stopContainer, waitStopped, withRootfs, type Container, type CreateOptions, type LogEntry,
} from '../../engine/containers.js';
import { shortId } from '../../engine/images.js';
import { systemDiskUsage, systemInfo } from '../../engine/system.js';
import { register as registerVolumes } from './volumes.js';
import { pruneContainers } from '../../engine/prune.js';

function exitWith(code: number): void {
  process.exitCode = code;
}

// ---------------------------------------------------------------- ps rows

function statusOf(c: Container): string {
  const s = c.state;
  switch (s.Status) {
    case 'running': return `Up ${humanDuration(Date.now() - Date.parse(s.StartedAt))}`;
    case 'exited': return `Exited (${s.ExitCode}) ${humanDuration(Date.now() - Date.parse(s.FinishedAt))} ago`;
    case 'removing': return 'Removal In Progress';
    case 'dead': return 'Dead';
    default: return 'Created';
  }
}

/**
 * What ps shows of a container's image: the name it was created with while that still names the
 * image (else the short ID), and the image's size. Memoized: many containers share few images.
 */
function imageLookup(engine: Engine): { name(c: Container): string; size(id: string): number } {
  const names = new Map<string, string>();
  const sizes = new Map<string, number>();
  return {
    name(c) {
      const key = `${c.imageId} ${c.config.Image}`;
      let n = names.get(key);
      if (n === undefined) {
        n = shortId(c.imageId);
        try {
          if (engine.images.tryResolve(c.config.Image)?.id === c.imageId) n = c.config.Image;
        } catch { /* a ref that no longer parses */ }
        names.set(key, n);
      }
      return n;
    },
    size(id) {
      let n = sizes.get(id);
      if (n === undefined) sizes.set(id, (n = engine.images.get(id)?.size ?? 0));
      return n;
    },
  };
}

export interface PsRow {
  ID: string; Image: string; Command: string; CreatedAt: string; RunningFor: string; Status: string; Ports: string;
  Names: string; Size: string; State: string; Labels: string; Mounts: string; Networks: string; LocalVolumes: string;
}

function psRow(images: ReturnType<typeof imageLookup>, c: Container, o: { sizeRw?: number; sizeRootFs?: number; noTrunc?: boolean }): PsRow {
  const size = o.sizeRw !== undefined ? `${humanSize(o.sizeRw)} (virtual ${humanSize(o.sizeRootFs ?? o.sizeRw)})` : '';
  const cmd = commandOf(c);
  return {
    ID: o.noTrunc ? c.id : shortCid(c.id),
    Image: images.name(c),
    Command: `"${o.noTrunc ? cmd : truncate(cmd, 20)}"`,
    CreatedAt: goTime(c.created),
    RunningFor: since(c.created),
    Status: statusOf(c),
    Ports: '',
    Names: c.name,
    Size: size,
    State: c.state.Status,
    Labels: Object.entries(c.config.Labels ?? {}).map(([k, v]) => `${k}=${v}`).join(','),
    Mounts: c.hostConfig.Mounts.map((m) => (m.Type === 'volume' ? truncate(m.Source, 16) : m.Source)).join(','),
    Networks: c.hostConfig.NetworkMode,
    LocalVolumes: String(c.hostConfig.Mounts.filter((m) => m.Type === 'volume').length),
  };
}

const PS_HEADERS: Record<string, string> = { ID: 'CONTAINER ID', RunningFor: 'CREATED', CreatedAt: 'CREATED AT', LocalVolumes: 'LOCAL VOLUMES' };

// ---------------------------------------------------------------- create/run options

interface RunOpts {
  name?: string; env: string[]; envFile: string[]; workdir?: string; user?: string; entrypoint?: string; volume: string[]; mount: string[];
  network?: string; net?: string; rm?: boolean; interactive?: boolean; tty?: boolean; detach?: boolean; logOpt: string[]; logDriver?: string; label: string[];
  hostname?: string; runtime?: string; pull?: string; platform?: string;
  readOnly?: boolean; tmpfs: string[]; capAdd: string[]; capDrop: string[]; privileged?: boolean; stopSignal?: string; stopTimeout?: string; publish: string[];
}

function runFlags(c: Command): Command {
  return c
    .option('--name <name>', 'Assign a name to the container')
    .option('-e, --env <KEY=VAL>', 'Set environment variables', collect, [])
    .option('--env-file <file>', 'Read in a file of environment variables', collect, [])
    .option('-w, --workdir <dir>', 'Working directory inside the container')
    .option('-u, --user <user>', 'Username or UID (format: <name|uid>[:<group|gid>])')
    .option('--entrypoint <cmd>', 'Overwrite the default ENTRYPOINT of the image')
    .option('-v, --volume <spec>', 'Bind mount a volume (NAME:/path[:ro], /host:/path[:ro], /path)', collect, [])
    .option('--mount <spec>', 'Attach a filesystem mount (type=volume|bind,src=,dst=[,readonly])', collect, [])
    .option('--network <mode>', 'Connect a container to a network: none (default) or host')
    .option('--net <mode>', 'Alias of --network')
    .option('--rm', 'Automatically remove the container when it exits')
    .option('-i, --interactive', 'Keep STDIN open')
    .option('-t, --tty', 'Allocate a pseudo-TTY (not supported: output is piped)')
    .option('--log-driver <driver>', 'Logging driver (json-file)')
    .option('--log-opt <opt>', 'Log driver options (max-size=, max-file=)', collect, [])
    .option('-l, --label <label>', 'Set meta data on a container', collect, [])
    .option('-h, --hostname <name>', 'Container host name')
    .option('--pull <policy>', 'Pull image before running (only "never" and "missing" without network)')
    .option('--platform <platform>', 'Set platform')
    .option('--read-only', "Mount the container's root filesystem as read only")
    .option('--tmpfs <path[:opts]>', 'Mount a tmpfs directory', collect, [])
    .option('--cap-add <cap>', 'Add Linux capabilities', collect, [])
    .option('--cap-drop <cap>', 'Drop Linux capabilities', collect, [])
    .option('--privileged', 'Give extended privileges to this container')
    .option('--stop-signal <signal>', 'Signal to stop the container')
    .option('--stop-timeout <seconds>', 'Timeout (in seconds) to stop a container')
    .option('-p, --publish <ports>', 'Publish a container\'s port(s) to the host (not supported: no network)', collect, []);
}

function createOpts(image: string, cmd: string[], o: RunOpts, detach: boolean): CreateOptions {
  if (o.tty) throw invalidArgument('-t (a pseudo-TTY) is not supported', 'drop -t; output and -i input are piped');
  if (o.publish.length) throw invalidArgument('publishing ports (-p) needs a container network, which shale does not make', 'use --network host and listen on the host\'s ports');
  if (o.pull && !['never', 'missing'].includes(o.pull)) throw invalidArgument(`--pull ${o.pull} needs the network; shale runs local images only`, 'use --pull never, or `shale pull` first');
  return {
    readOnly: o.readOnly, tmpfs: o.tmpfs, capAdd: o.capAdd, capDrop: o.capDrop, privileged: o.privileged, stopSignal: o.stopSignal,
    stopTimeout: o.stopTimeout !== undefined ? Number(o.stopTimeout) : undefined,
    image, cmd, name: o.name, env: o.env, envFiles: o.envFile, workdir: o.workdir, user: o.user, entrypoint: o.entrypoint, volumes: o.volume, mounts: o.mount,
    network: o.network ?? o.net, rm: o.rm, interactive: o.interactive, detach, logOpts: o.logOpt, logDriver: o.logDriver, labels: o.label, hostname: o.hostname,
    runtime: getEngine().opts.runtime,
  };
}

// ---------------------------------------------------------------- logs

function printEntries(entries: LogEntry[], ts: boolean): void {
  for (const e of entries) {
    const line = (ts ? `${e.time} ` : '') + e.log;
    (e.stream === 'stderr' ? process.stderr : process.stdout).write(line);
  }
}

async function showLogs(engine: Engine, ref: string, o: { follow?: boolean; tail?: string; timestamps?: boolean; since?: string; until?: string }): Promise<void> {
  if (o.tail !== undefined && o.tail !== 'all' && !(Number.isInteger(Number(o.tail)) && Number(o.tail) >= 0)) throw invalidArgument(`invalid --tail value ${o.tail}`);
  for await (const e of containerLogs(engine, ref, { follow: o.follow, tail: o.tail, since: timeArg(o.since), until: timeArg(o.until) })) printEntries([e], !!o.timestamps);
}

/** docker's --since/--until: unix seconds, an RFC 3339 time, or a duration back from now (10m, 1h30m). */
export function timeArg(v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v);
  const d = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$/.exec(v);
  if (d && v) return Date.now() / 1000 - (Number(d[1] ?? 0) * 3600 + Number(d[2] ?? 0) * 60 + Number(d[3] ?? 0));
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw invalidArgument(`invalid time value ${v}`, 'use seconds since the epoch, an RFC 3339 time, or a duration like 10m');
  return t / 1000;
}

// ---------------------------------------------------------------- cp

function splitCpArg(a: string): { container?: string; path: string } {
  if (a === '-' || a.startsWith('/') || a.startsWith('.')) return { path: a };
  const i = a.indexOf(':');
  if (i <= 0) return { path: a };
  return { container: a.slice(0, i), path: a.slice(i + 1) };
}

async function copy(engine: Engine, srcArg: string, dstArg: string, o: { followLink?: boolean; archive?: boolean }): Promise<void> {
  const src = splitCpArg(srcArg);
  const dst = splitCpArg(dstArg);
  if (src.container && dst.container) throw invalidArgument('copying between containers is not supported');
  if (!src.container && !dst.container) throw invalidArgument('must specify at least one container source');
  await withRootfs(engine, (src.container ?? dst.container)!, async (c, rootfs) => {
    if (src.container) {
      if (dst.path === '-') {
        const a = archiveFromContainer(engine, c, rootfs, src.path, o);
        try {
          await pipeline(a.stream, process.stdout);
        } finally {
          a.close();
        }
      } else await copyFromContainer(engine, c, rootfs, src.path, dst.path, o);
    } else {
      await copyToContainer(engine, c, rootfs, src.path === '-' ? { tar: process.stdin } : { hostPath: src.path }, dst.path, o);
    }
  });
}

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

// ---------------------------------------------------------------- registration

async function forEach(refs: string[], fn: (ref: string) => Promise<void>): Promise<void> {
  let failed = 0;
  for (const r of refs) {
    try {
      await fn(r);
    } catch (e) {
      failed++;
      err(`Error response from daemon: ${e instanceof ShaleError ? e.describe() : (e as Error).message}\n`);
    }
  }
  if (failed) exitWith(1);
}

function defineContainerCommands(p: Command, group: boolean): void {
  runFlags(p.command('create').description('Create a new container').argument('<image>').argument('[command...]').passThroughOptions())
    .action(async (image: string, cmd: string[], o: RunOpts) => {
      const c = await createContainer(getEngine(), createOpts(image, cmd, o, true));
      out(`${c.id}\n`);
    });

  runFlags(p.command('run').description('Create and run a new container from an image').argument('<image>').argument('[command...]').passThroughOptions())
    .option('-d, --detach', 'Run container in background and print container ID')
    .action(async (image: string, cmd: string[], o: RunOpts) => {
      const engine = getEngine();
      // docker run exits 125 when the daemon refuses (bad flags, names, images, mounts)
      const refused = (e: unknown) => {
        if (e instanceof ShaleError && (e as ShaleError & { exitCode?: number }).exitCode === undefined) (e as ShaleError & { exitCode?: number }).exitCode = 125;
        return e;
      };
      const c = await createContainer(engine, createOpts(image, cmd, o, !!o.detach)).catch((e) => { throw refused(e); });
      try {
        if (o.detach) {
          await startDetached(engine, c);
          out(`${c.id}\n`);
          return;
        }
        exitWith(await startAttached(engine, c, { stdin: o.interactive ? process.stdin : undefined }));
      } catch (e) {
        if (c.hostConfig.AutoRemove) await removeContainer(engine, c.id, { force: true, volumes: true, fromShim: true }).catch(() => undefined);
        throw refused(e);
      }
    });

  p.command('start').description('Start one or more stopped containers').argument('<containers...>')
    .option('-a, --attach', 'Attach STDOUT/STDERR and forward signals')
    .option('-i, --interactive', "Attach container's STDIN")
    .action(async (refs: string[], o: { attach?: boolean; interactive?: boolean }) => {
      const engine = getEngine();
      const store = engine.containers;
      if (o.attach || o.interactive) {
        if (refs.length > 1) throw invalidArgument('you cannot start and attach multiple containers at once');
        exitWith(await startAttached(engine, store.resolve(refs[0]), { stdin: o.interactive ? process.stdin : undefined }));
        return;
      }
      await forEach(refs, async (r) => {
        await startDetached(engine, store.resolve(r));
        out(`${r}\n`);
      });
    });

  p.command('stop').description('Stop one or more running containers').argument('<containers...>')
    .option('-t, --time <seconds>', 'Seconds to wait before killing the container')
    .option('-s, --signal <signal>', 'Signal to send to the container')
    .action(async (refs: string[], o: { time?: string; signal?: string }) => {
      const engine = getEngine();
      await forEach(refs, async (r) => {
        await stopContainer(engine, r, o.time !== undefined ? Number(o.time) : undefined, o.signal);
        out(`${r}\n`);
      });
    });

  p.command('restart').description('Restart one or more containers').argument('<containers...>')
    .option('-t, --time <seconds>', 'Seconds to wait before killing the container')
    .action(async (refs: string[], o: { time?: string }) => {
      const engine = getEngine();
      await forEach(refs, async (r) => {
        await stopContainer(engine, r, o.time !== undefined ? Number(o.time) : undefined);
        await startDetached(engine, engine.containers.resolve(r));
        out(`${r}\n`);
      });
    });

  p.command('kill').description('Kill one or more running containers').argument('<containers...>')
    .option('-s, --signal <signal>', 'Signal to send to the container', 'KILL')
    .action(async (refs: string[], o: { signal: string }) => {
      const engine = getEngine();
      await forEach(refs, async (r) => {
        await killContainer(engine, r, o.signal);
        out(`${r}\n`);
      });
    });

  p.command('wait').description('Block until one or more containers stop, then print their exit codes').argument('<containers...>')
    .action(async (refs: string[]) => {
      const engine = getEngine();
      const store = engine.containers;
      await forEach(refs, async (r) => {
        const c = store.resolve(r);
        const after = await waitStopped(engine, c.id);
        out(`${after?.state.ExitCode ?? recordedExit(engine.root, c.id) ?? c.state.ExitCode}\n`);
      });
    });

  p.command('rm').description('Remove one or more containers').argument('<containers...>')
    .option('-f, --force', 'Force the removal of a running container (uses SIGKILL)')
    .option('-v, --volumes', 'Remove anonymous volumes associated with the container')
    .action(async (refs: string[], o: { force?: boolean; volumes?: boolean }) => {
      const engine = getEngine();
      await forEach(refs, async (r) => {
        await removeContainer(engine, r, { force: o.force, volumes: o.volumes });
        out(`${r}\n`);
      });
    });

  const ps = (cmd: Command) => cmd
    .option('-a, --all', 'Show all containers (default shows just running)')
    .option('-q, --quiet', 'Only display container IDs')
    .option('-s, --size', 'Display total file sizes')
    .option('-n, --last <n>', 'Show n last created containers (includes all states)')
    .option('-l, --latest', 'Show the latest created container (includes all states)')
    .option('-f, --filter <filter>', 'Filter output based on conditions provided', collect, [])
    .option('--format <format>', 'Format output using a Go template')
    .option('--no-trunc', "Don't truncate output")
    .action(async (o: { all?: boolean; quiet?: boolean; size?: boolean; last?: string; latest?: boolean; filter: string[]; format?: string; trunc?: boolean }) => {
      const engine = getEngine();
      const last = o.latest ? 1 : o.last !== undefined ? Number(o.last) : undefined;
      const noTrunc = o.trunc === false;
      const wantSize = !o.quiet && (!!o.size || !!o.format?.includes('.Size'));
      const cs = await listContainers(engine, { all: o.all, limit: last, filters: filtersFromFlags(o.filter), size: wantSize });
      if (o.quiet) {
        out(cs.map(({ c }) => `${noTrunc ? c.id : shortCid(c.id)}\n`).join(''));
        return;
      }
      const images = imageLookup(engine);
      const rows = cs.map((x) => psRow(images, x.c, { sizeRw: x.sizeRw, sizeRootFs: x.sizeRootFs, noTrunc }));
      if (o.format) {
        out(printFormatted(rows, o.format, PS_HEADERS));
        return;
      }
      const head = ['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES', ...(o.size ? ['SIZE'] : [])];
      out(table([head, ...rows.map((r) => [r.ID, r.Image, r.Command, r.RunningFor, r.Status, r.Ports, r.Names, ...(o.size ? [r.Size] : [])])]));
    });
  ps(p.command(group ? 'ls' : 'ps').description('List containers'));
  if (group) ps(p.command('ps').description('List containers'));

  p.command('logs').description('Fetch the logs of a container').argument('<container>')
    .option('-f, --follow', 'Follow log output')
    .option('-n, --tail <n>', 'Number of lines to show from the end of the logs', 'all')
    .option('-t, --timestamps', 'Show timestamps')
    .option('--since <time>', 'Show logs since a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)')
    .option('--until <time>', 'Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)')
    .action((ref: string, o: { follow?: boolean; tail?: string; timestamps?: boolean; since?: string; until?: string }) => showLogs(getEngine(), ref, o));

  p.command('exec').description('Execute a command in a running container').argument('<container>').argument('<command...>').passThroughOptions()
    .option('-d, --detach', 'Detached mode: run command in the background')
    .option('-e, --env <KEY=VAL>', 'Set environment variables', collect, [])
    .option('-w, --workdir <dir>', 'Working directory inside the container')
    .option('-u, --user <user>', 'Username or UID (format: <name|uid>[:<group|gid>])')
    .option('-i, --interactive', 'Keep STDIN open')
    .option('-t, --tty', 'Allocate a pseudo-TTY (not supported)')
    .action(async (ref: string, cmd: string[], o: { detach?: boolean; env: string[]; workdir?: string; user?: string; interactive?: boolean; tty?: boolean }) => {
      if (o.tty) throw invalidArgument('-t (a pseudo-TTY) is not supported', 'drop -t; output and -i input are piped');
      exitWith(await execInContainer(getEngine(), ref, { cmd, env: o.env, workdir: o.workdir, user: o.user, interactive: o.interactive, detach: o.detach }));
    });

  p.command('rename').description('Rename a container').argument('<container>').argument('<new-name>')
    .action((ref: string, name: string) => {
      const store = getEngine().containers;
      store.rename(store.resolve(ref).id, name.replace(/^\//, ''));
    });

  p.command('top').description('Display the running processes of a container').argument('<container>').argument('[ps-options...]')
    .action(async (ref: string, psArgs: string[]) => {
      const engine = getEngine();
      const top = await containerTop(engine, ref, psArgs);
      out(table([top.Titles, ...top.Processes]));
    });

  p.command('diff').description("Inspect changes to files or directories on a container's filesystem").argument('<container>')
    .action(async (ref: string) => {
      const engine = getEngine();
      const changes = await containerChanges(engine, ref);
      out(changes.map((ch) => `${ch.kind} ${ch.path}\n`).join(''));
    });

  p.command('commit').description("Create a new image from a container's changes").argument('<container>').argument('[repository]')
    .option('-a, --author <author>', 'Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")')
    .option('-c, --change <instruction>', 'Apply Dockerfile instruction to the created image', collect, [])
    .option('-m, --message <message>', 'Commit message')
    .option('-p, --pause', 'Pause container during commit (always: a running container is frozen while it is read)')
    .action(async (ref: string, repo: string | undefined, o: { change: string[]; message?: string; author?: string }) => {
      out(`${await commitContainer(getEngine(), ref, { repo, changes: o.change, message: o.message, author: o.author })}\n`);
    });

  p.command('export').description("Export a container's filesystem as a tar archive").argument('<container>')
    .option('-o, --output <file>', 'Write to a file, instead of STDOUT')
    .action(async (ref: string, o: { output?: string }) => {
      const engine = getEngine();
      if (!o.output && process.stdout.isTTY) throw invalidArgument('cowardly refusing to save to a terminal', 'use the -o flag or redirect');
      const x = await exportContainer(engine, ref);
      try {
        await pipeline(x.stream, o.output ? createWriteStream(o.output) : process.stdout);
      } finally {
        await x.release();
      }
    });

  p.command('cp').description('Copy files/folders between a container and the local filesystem').argument('<src>').argument('<dest>')
    .option('-L, --follow-link', 'Always follow symbol link in SRC_PATH')
    .option('-a, --archive', 'Archive mode (copy all uid/gid information)')
    .option('-q, --quiet', 'Suppress progress output')
    .action((src: string, dst: string, o: { followLink?: boolean; archive?: boolean }) => copy(getEngine(), src, dst, o));

  if (group) {
    p.command('prune').description('Remove all stopped containers')
      .option('-f, --force', 'Do not prompt for confirmation')
      .option('--filter <filter>', 'Provide filter values', collect, [])
      .action(async () => {
        const r = await pruneContainers(getEngine());
        if (r.removed.length) out(`Deleted Containers:\n${r.removed.join('\n')}\n\n`);
        out(`Total reclaimed space: ${humanSize(r.reclaimed)}\n`);
      });
    p.command('inspect').description('Display detailed information on one or more containers').argument('<containers...>')
      .option('-f, --format <format>', 'Format output using a Go template')
      .option('-s, --size', 'Display total file sizes')
      .action(async (refs: string[], o: { format?: string; size?: boolean }) => {
        const engine = getEngine();
        const store = engine.containers;
        const objs: unknown[] = [];
        await forEach(refs, async (r) => { objs.push(await inspectContainer(engine, store.resolve(r), !!o.size)); });
        if (o.format) out(objs.map((x) => compileFormat(o.format!).row(x) + '\n').join(''));
        else out(JSON.stringify(objs, null, 4) + '\n');
      });
  }
}

export function register(program: Command): void {
  defineContainerCommands(program, false);
  defineContainerCommands(program.command('container').description('Manage containers'), true);
  registerVolumes(program);
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
