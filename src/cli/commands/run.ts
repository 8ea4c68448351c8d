// create, run, start, exec: docker's run flags turned into the engine's create options.
import type { Command } from 'commander';
import { getEngine, out, collect, exitWith, forEach } from '../context.js';
import { invalidArgument, ShaleError } from '../../errors.js';
import {
  createContainer, execInContainer, removeContainer, startAttached, startDetached, type CreateOptions,
} from '../../engine/containers.js';

// ---------------------------------------------------------------- create/run options

interface RunOpts {
  name?: string; env: string[]; envFile: string[]; workdir?: string; user?: string; entrypoint?: string; volume: string[]; mount: string[];
  network?: string; net?: string; rm?: boolean; interactive?: boolean; tty?: boolean; detach?: boolean; logOpt: string[]; logDriver?: string; label: string[];
  hostname?: string; runtime?: string; pull?: string; platform?: string;
  readOnly?: boolean; tmpfs: string[]; capAdd: string[]; capDrop: string[]; privileged?: boolean; stopSignal?: string; stopTimeout?: string; publish: string[];
  memory?: string; memorySwap?: string; cpus?: string; cpuShares?: string; cpusetCpus?: string; pidsLimit?: string; restart?: string; init?: boolean;
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
    .option('-m, --memory <bytes>', 'Memory limit')
    .option('--memory-swap <bytes>', "Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
    .option('--cpus <decimal>', 'Number of CPUs')
    .option('-c, --cpu-shares <int>', 'CPU shares (relative weight)')
    .option('--cpuset-cpus <cpus>', 'CPUs in which to allow execution (0-3, 0,1)')
    .option('--pids-limit <int>', 'Tune container pids limit (set -1 for unlimited)')
    .option('--restart <policy>', 'Restart policy to apply when a container exits (no, always, unless-stopped, on-failure[:N])', 'no')
    .option('--init', 'Run an init inside the container that forwards signals and reaps processes')
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
    memory: o.memory, memorySwap: o.memorySwap, cpus: o.cpus, cpuShares: intFlag(o.cpuShares, '--cpu-shares'), cpusetCpus: o.cpusetCpus,
    pidsLimit: intFlag(o.pidsLimit, '--pids-limit'), restart: o.restart, init: o.init,
  };
}

function intFlag(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw invalidArgument(`invalid argument "${v}" for "${flag}" flag: strconv.ParseInt: parsing "${v}": invalid syntax`);
  return n;
}

export function defineRunCommands(p: Command): void {
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

}
