// Volume commands: volume create/ls/inspect/rm/prune (local driver, data in
// <root>/volumes/<name>/_data), with docker's headers and --format fields.
import type { Command } from 'commander';
import { getEngine, out, err, collect } from '../context.js';
import { compileFormat, humanSize, printFormatted, table } from '../format.js';
import type { Engine } from '../../engine/index.js';
import { inspectVolume } from '../../engine/volumes.js';
import { invalidArgument, ShaleError } from '../../errors.js';
import { pruneVolumes } from '../../engine/prune.js';


interface VolumeRow { Driver: string; Name: string; Mountpoint: string; Scope: string; Labels: string; Links: string; Size: string }

function volumeRows(engine: Engine): VolumeRow[] {
  const vols = engine.volumes;
  const containers = engine.containers.list();
  return vols.list().map((v) => ({
    Driver: v.driver, Name: v.name, Mountpoint: vols.dataPath(v.name), Scope: 'local',
    Labels: Object.entries(v.labels).map(([k, x]) => `${k}=${x}`).join(','), Links: String(vols.users(v.name, containers).length), Size: 'N/A',
  }));
}

function labelsOf(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of list) {
    const i = l.indexOf('=');
    out[i < 0 ? l : l.slice(0, i)] = i < 0 ? '' : l.slice(i + 1);
  }
  return out;
}

export function register(program: Command): void {
  const volume = program.command('volume').description('Manage volumes');
  volume.command('create').description('Create a volume').argument('[name]')
    .option('-d, --driver <driver>', 'Specify volume driver name', 'local')
    .option('--label <label>', 'Set metadata for a volume', collect, [])
    .option('-o, --opt <opt>', 'Set driver specific options', collect, [])
    .option('--name <name>', 'Specify volume name')
    .action((name: string | undefined, o: { driver: string; label: string[]; opt: string[]; name?: string }) => {
      if (o.opt.length) throw invalidArgument('volume driver options are not supported by the local driver here');
      const v = getEngine().volumes.create(name ?? o.name, { labels: labelsOf(o.label), driver: o.driver });
      out(`${v.name}\n`);
    });

  const ls = (c: Command) => c
    .option('-q, --quiet', 'Only display volume names')
    .option('-f, --filter <filter>', 'Provide filter values (dangling=, name=, label=, driver=)', collect, [])
    .option('--format <format>', 'Format output using a Go template')
    .action((o: { quiet?: boolean; filter: string[]; format?: string }) => {
      let rows = volumeRows(getEngine());
      for (const f of o.filter) {
        const [k, v = ''] = [f.slice(0, f.indexOf('=')), f.slice(f.indexOf('=') + 1)];
        if (k === 'dangling') rows = rows.filter((r) => (r.Links === '0') === (v === 'true' || v === '1'));
        else if (k === 'name') rows = rows.filter((r) => r.Name.includes(v));
        else if (k === 'driver') rows = rows.filter((r) => r.Driver === v);
        else if (k === 'label') rows = rows.filter((r) => r.Labels.split(',').some((l) => l === v || l.split('=')[0] === v));
        else throw invalidArgument(`invalid filter '${k}'`);
      }
      if (o.quiet) return out(rows.map((r) => `${r.Name}\n`).join(''));
      if (o.format) return out(printFormatted(rows, o.format, { Name: 'VOLUME NAME' }));
      out(table([['DRIVER', 'VOLUME NAME'], ...rows.map((r) => [r.Driver, r.Name])]));
    });
  ls(volume.command('ls').description('List volumes'));
  ls(volume.command('list').description('List volumes'));

  volume.command('inspect').description('Display detailed information on one or more volumes').argument('<names...>')
    .option('-f, --format <format>', 'Format output using a Go template')
    .action((names: string[], o: { format?: string }) => {
      const engine = getEngine();
      const objs: unknown[] = [];
      for (const n of names) {
        const v = inspectVolume(engine, n);
        if (!v) {
          err(`Error: No such volume: ${n}\n`);
          process.exitCode = 1;
          continue;
        }
        objs.push(v);
      }
      if (o.format) out(objs.map((x) => compileFormat(o.format!).row(x) + '\n').join(''));
      else out(JSON.stringify(objs, null, 4) + '\n');
    });

  volume.command('rm').description('Remove one or more volumes').argument('<names...>')
    .option('-f, --force', 'Force the removal of one or more volumes')
    .action((names: string[], o: { force?: boolean }) => {
      const engine = getEngine();
      const vols = engine.volumes;
      const containers = engine.containers.list();
      for (const n of names) {
        try {
          vols.remove(n, containers, { force: o.force });
          out(`${n}\n`);
        } catch (e) {
          err(`Error response from daemon: ${e instanceof ShaleError ? e.describe() : (e as Error).message}\n`);
          process.exitCode = 1;
        }
      }
    });

  volume.command('prune').description('Remove unused local volumes (anonymous ones; -a for all)')
    .option('-a, --all', 'Remove all unused volumes, not just anonymous ones')
    .option('-f, --force', 'Do not prompt for confirmation')
    .option('--filter <filter>', 'Provide filter values', collect, [])
    .action(async (o: { all?: boolean }) => {
      const r = await pruneVolumes(getEngine(), { all: o.all });
      if (r.removed.length) out(`Deleted Volumes:\n${r.removed.join('\n')}\n\n`);
      out(`Total reclaimed space: ${humanSize(r.reclaimed)}\n`);
    });
}
