// system check, image prune, info, version.
import type { Command } from 'commander';
import { getEngine, out, err, collect } from '../context.js';
import { compileFormat, timeArg } from '../format.js';
import { engineEvents } from '../../engine/events.js';
import { filtersFromFlags } from '../../engine/containers.js';
import { humanSize } from '../format.js';
import { checkStore } from '../../engine/check.js';
import { pruneImages, pruneSystem } from '../../engine/prune.js';
import { invalidArgument } from '../../errors.js';
import { join, resolve } from 'node:path';

/** One line from stdin (the answer to a prompt); '' at end of input, as docker takes it for "no". */
function readLine(): Promise<string> {
  return new Promise((res) => {
    let buf = '';
    const done = (v: string) => { process.stdin.off('data', onData); process.stdin.off('end', onEnd); process.stdin.pause(); res(v); };
    const onData = (d: Buffer) => { buf += d.toString(); const i = buf.indexOf('\n'); if (i >= 0) done(buf.slice(0, i)); };
    const onEnd = () => done(buf);
    process.stdin.on('data', onData);
    process.stdin.on('end', onEnd);
  });
}

export function register(program: Command): void {
  const system = program.command('system').description('Manage shale');
  const events = (c: Command) => c
    .description('Get real time events from shale (following; --until ends the stream)')
    .option('--since <time>', 'Show all events created since timestamp (seconds, RFC 3339, or a duration like 10m)')
    .option('--until <time>', 'Stream events until this timestamp')
    .option('-f, --filter <filter>', 'Filter output based on conditions provided (type, event, container, image, volume, label)', collect, [])
    .option('--format <format>', 'Format the output using the given Go template')
    .action(async (o: { since?: string; until?: string; filter: string[]; format?: string }) => {
      const fmt = o.format ? compileFormat(o.format) : undefined;
      const ac = new AbortController();
      const stop = () => ac.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        for await (const e of engineEvents(getEngine(), { since: timeArg(o.since), until: timeArg(o.until), filters: filtersFromFlags(o.filter), signal: ac.signal })) {
          if (fmt) out(fmt.row(e) + '\n');
          else {
            const attrs = Object.entries(e.Actor.Attributes).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${v}`).join(', ');
            const t = new Date(Math.floor(e.timeNano / 1e6)).toISOString().replace(/\.(\d{3})Z$/, `.$1${String(e.timeNano % 1e6).padStart(6, '0')}Z`);
            out(`${t} ${e.Type} ${e.Action} ${e.Actor.ID}${attrs ? ` (${attrs})` : ''}\n`);
          }
        }
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    });
  events(program.command('events'));
  events(system.command('events'));
  system
    .command('service')
    .description('Serve the Docker Engine API (for the docker CLI, compose, dockerode) on a socket, as `podman system service`')
    .argument('[uri]', 'unix:///path/to.sock or tcp://127.0.0.1:PORT (default: unix://<root>/shale.sock)')
    .option('-t, --time <seconds>', 'Seconds with no request before the service exits (0 = never)', '5')
    .action(async (uri: string | undefined, o: { time: string }) => {
      const idle = Number(o.time);
      if (!Number.isFinite(idle) || idle < 0) throw invalidArgument(`--time ${o.time}: expected seconds (0 = never exit)`);
      const engine = getEngine();
      const { serve } = await import('../../api/server.js');
      const l = await serve(engine, uri ?? `unix://${join(resolve(engine.root), 'shale.sock')}`, { idleSeconds: idle, log: (m) => err(`${new Date().toISOString()} ${m}\n`) });
      err(`API listening on ${l.address}\n`);
      // a server outlives its clients' mistakes: an error no request handler caught is logged, not fatal
      const lastResort = (e: unknown) => err(`${new Date().toISOString()} internal error (the server keeps serving): ${(e as Error)?.stack ?? e}\n`);
      process.on('uncaughtException', lastResort);
      const stop = () => void l.close();
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
      await l.closed;
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
    });
  system
    .command('check')
    .description('Verify every blob digest and every reference in the store')
    .option('--repair', 'Remove orphaned blobs and stale temporary files')
    .action(async (o: { repair?: boolean }) => {
      const engine = getEngine();
      const r = await checkStore(engine, { repair: o.repair });
      for (const i of r.info) out(`${i}\n`);
      for (const p of r.problems) err(`problem: ${p}\n`);
      out(`checked ${r.blobs} blobs, ${r.images} images, ${r.layers} layers: ${r.problems.length ? `${r.problems.length} problem(s)` : 'no problems'}\n`);
      if (r.problems.length) process.exitCode = 1;
    });

  system
    .command('prune')
    .description('Remove unused data')
    .option('-a, --all', 'Remove all unused images not just dangling ones')
    .option('-f, --force', 'Do not prompt for confirmation')
    .option('--volumes', 'Prune anonymous volumes')
    .option('--filter <filter>', 'Provide filter values (not supported yet)')
    .action(async (o: { all?: boolean; force?: boolean; volumes?: boolean; filter?: string }) => {
      if (o.filter) throw invalidArgument('system prune --filter is not supported yet', 'prune without a filter, or use the per-kind prune commands');
      if (!o.force) {
        const what = ['all stopped containers', ...(o.volumes ? ['all anonymous volumes not used by at least one container'] : []), o.all ? 'all images without at least one container associated to them' : 'all dangling images', o.all ? 'all build cache' : 'unused build cache'];
        out(`WARNING! This will remove:\n${what.map((w) => `  - ${w}\n`).join('')}\nAre you sure you want to continue? [y/N] `);
        if (!/^y(es)?$/i.test((await readLine()).trim())) return;
      }
      const r = await pruneSystem(getEngine(), { all: o.all, volumes: o.volumes });
      if (r.containers.removed.length) out(`Deleted Containers:\n${r.containers.removed.join('\n')}\n\n`);
      if (r.volumes?.removed.length) out(`Deleted Volumes:\n${r.volumes.removed.join('\n')}\n\n`);
      for (const e of r.images.errors) err(`${e}\n`);
      if (r.images.removed.length) out(`Deleted Images:\n${r.images.removed.join('\n')}\n\n`);
      if (r.cache.removed.length) out(`Deleted build cache objects:\n${r.cache.removed.join('\n')}\n\n`);
      out(`Total reclaimed space: ${humanSize(r.reclaimed)}\n`);
    });

  const image = program.command('image').description('Manage images');
  image
    .command('prune')
    .description('Remove unused images')
    .option('-a, --all', 'Remove all unused images, not just dangling ones')
    .option('-f, --force', 'Do not prompt for confirmation')
    .action(async (o: { all?: boolean }) => {
      const r = await pruneImages(getEngine(), { all: o.all });
      for (const e of r.errors) err(`${e}\n`);
      if (r.removed.length) out(`Deleted Images:\n${r.removed.join('\n')}\n\n`);
      out(`Total reclaimed space: ${humanSize(r.reclaimed)}\n`);
    });
}
