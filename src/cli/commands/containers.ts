// Container commands, following docker's flags, headers and --format fields: stop, restart,
// kill, wait, rm, logs, rename, top, diff, commit, export, cp, container prune/inspect, and the
// `container` group; create/run/start/exec are in run.ts, ps in ps.ts, system df/info in system-info.ts.
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { getEngine, out, collect, forEach } from '../context.js';
import { humanSize, table, compileFormat, timeArg } from '../format.js';
import type { Engine } from '../../engine/index.js';
import { invalidArgument } from '../../errors.js';
import {
  archiveFromContainer, commitContainer, containerChanges, containerLogs, containerTop, copyFromContainer, copyToContainer, exportContainer, inspectContainer, killContainer, recordedExit, removeContainer, startDetached, stopContainer, waitStopped, withRootfs, type LogEntry,
} from '../../engine/containers.js';
import { pruneContainers } from '../../engine/prune.js';
import { register as registerVolumes } from './volumes.js';
import { defineRunCommands } from './run.js';
import { definePs } from './ps.js';
import { defineStatsCommands } from './stats.js';
import { registerSystemInfo } from './system-info.js';

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

function defineContainerCommands(p: Command, group: boolean): void {
  defineRunCommands(p);
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


  definePs(p, group);
  defineStatsCommands(p);

  p.command('logs').description('Fetch the logs of a container').argument('<container>')
    .option('-f, --follow', 'Follow log output')
    .option('-n, --tail <n>', 'Number of lines to show from the end of the logs', 'all')
    .option('-t, --timestamps', 'Show timestamps')
    .option('--since <time>', 'Show logs since a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)')
    .option('--until <time>', 'Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)')
    .action((ref: string, o: { follow?: boolean; tail?: string; timestamps?: boolean; since?: string; until?: string }) => showLogs(getEngine(), ref, o));


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
  registerSystemInfo(program);
}
