// ps / container ls: docker's columns, --format fields (PsRow), filters and sizes.
import type { Command } from 'commander';
import { getEngine, out, collect } from '../context.js';
import { goTime, humanDuration, humanSize, printFormatted, since, table, truncate } from '../format.js';
import type { Engine } from '../../engine/index.js';
import { commandOf, filtersFromFlags, listContainers, shortCid, type Container } from '../../engine/containers.js';
import { shortId } from '../../engine/images.js';

// ---------------------------------------------------------------- ps rows

export function statusOf(c: Container): string {
  const s = c.state;
  switch (s.Status) {
    case 'running': return `Up ${humanDuration(Date.now() - Date.parse(s.StartedAt))}${s.Paused ? ' (Paused)' : ''}`;
    case 'exited': if (s.Restarting) return `Restarting (${s.ExitCode}) ${humanDuration(Date.now() - Date.parse(s.FinishedAt))} ago`;
      return `Exited (${s.ExitCode}) ${humanDuration(Date.now() - Date.parse(s.FinishedAt))} ago`;
    case 'removing': return 'Removal In Progress';
    case 'dead': return 'Dead';
    default: return 'Created';
  }
}

/**
 * What ps shows of a container's image: the name it was created with while that still names the
 * image (else the short ID), and the image's size. Memoized: many containers share few images.
 */
export function imageLookup(engine: Engine): { name(c: Container): string; size(id: string): number } {
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

export function psRow(images: ReturnType<typeof imageLookup>, c: Container, o: { sizeRw?: number; sizeRootFs?: number; noTrunc?: boolean }): PsRow {
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

export function definePs(p: Command, group: boolean): void {
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

}
