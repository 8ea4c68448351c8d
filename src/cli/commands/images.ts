// Image commands: import, load, save, images, history, inspect, tag, rmi, image prune, bootstrap.
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { getEngine, out, err, collect } from '../context.js';
import { compileFormat, goTime, humanSize, printFormatted, rfc3339, since, table, truncate } from '../format.js';
import {
  bootstrapBusybox, imageHistory, imageSummaries, importTarball, inspectImage, loadArchive, openFile, removeImage, saveDockerArchive, saveOciArchive, saveOciDir, shortId, tagImage,
} from '../../engine/images.js';
import { filtersFromFlags, type Filters } from '../../engine/containers.js';
import { inspectOther } from '../../engine/hooks.js';
import { familiarName, parseReference } from '../../reference/index.js';
import { invalidArgument, notFound } from '../../errors.js';
import type { Engine } from '../../engine/index.js';


export interface ImageRow {
  ID: string;
  Repository: string;
  Tag: string;
  Digest: string;
  CreatedSince: string;
  CreatedAt: string;
  Size: string;
  SharedSize: string;
  UniqueSize: string;
  VirtualSize: string;
  Containers: string;
}

/** docker marshals a format context as a map, so `{{json .}}` prints its keys in sorted order. */
function sortedKeys<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) as T;
}

export function imageRows(engine: Engine, opts: { filters?: Filters } = {}): ImageRow[] {
  const rows: ImageRow[] = [];
  for (const s of imageSummaries(engine, { filters: opts.filters })) {
    const base = {
      ID: shortId(s.id), CreatedSince: since(s.created), CreatedAt: goTime(s.created), Size: humanSize(s.size), VirtualSize: humanSize(s.size),
      SharedSize: humanSize(s.shared), UniqueSize: humanSize(s.unique), Containers: String(s.containers),
    };
    if (s.tags.length === 0) rows.push(sortedKeys({ ...base, Repository: '<none>', Tag: '<none>', Digest: s.digests[0]?.split('@')[1] ?? '<none>' }));
    for (const t of s.tags) {
      const r = parseReference(t);
      const fam = familiarName({ ...r, tag: undefined });
      const dg = s.digests.find((d) => d.startsWith(`${fam}@`));
      rows.push(sortedKeys({ ...base, Repository: fam, Tag: r.tag ?? '<none>', Digest: dg?.split('@')[1] ?? '<none>' }));
    }
  }
  return rows;
}

function historyRows(engine: Engine, image: string, human: boolean, noTrunc: boolean) {
  return imageHistory(engine, image).map((h) => {
    // docker: tabs become spaces, then (unless --no-trunc) an ellipsis at 45 characters
    const createdBy = h.createdBy.replace(/\t/g, ' ');
    return sortedKeys({
      ID: h.id === '<missing>' || noTrunc ? h.id : shortId(h.id),
      CreatedSince: human ? since(h.created) : rfc3339(h.created),
      CreatedAt: rfc3339(h.created),
      CreatedBy: noTrunc ? createdBy : truncate(createdBy, 45),
      Size: human ? humanSize(h.size) : String(h.size),
      Comment: h.comment,
    });
  });
}

export function register(program: Command): void {
  program
    .command('import')
    .description('Import the contents from a tarball to create a filesystem image')
    .argument('<file>', 'tarball path, or - for stdin')
    .argument('[reference]', 'REPOSITORY[:TAG]')
    .option('-c, --change <instruction>', 'Apply Dockerfile instruction to the created image', collect, [])
    .option('-m, --message <message>', 'Set commit message for imported image')
    .option('--platform <platform>', 'Set platform if server is multi-platform capable')
    .action(async (file: string, reference: string | undefined, o: { change: string[]; message?: string; platform?: string }) => {
      if (/^https?:\/\//.test(file)) throw invalidArgument(`importing from a URL (${file}) needs the network, which shale does not use`, 'download the file first and import it by path');
      const engine = getEngine();
      const [os, architecture] = (o.platform ?? '').split('/');
      const img = await importTarball(engine, file === '-' ? process.stdin : openFile(file), {
        tag: reference, message: o.message,
        changes: o.change,
        platform: o.platform ? { os, architecture } : undefined,
      });
      out(`${img.id}\n`);
    });

  program
    .command('load')
    .description('Load an image from a tar archive or STDIN')
    .option('-i, --input <file>', 'Read from tar archive file, instead of STDIN')
    .option('-q, --quiet', 'Suppress the load output')
    .action(async (o: { input?: string; quiet?: boolean }) => {
      const engine = getEngine();
      if (!o.input && process.stdin.isTTY) throw invalidArgument('requested load from stdin, but stdin is empty', 'use -i FILE or pipe an archive in');
      await loadArchive(engine, o.input ? openFile(o.input) : process.stdin, { onProgress: (m) => !o.quiet && out(m + '\n') });
    });

  program
    .command('save')
    .description('Save one or more images to a tar archive (streamed to STDOUT by default)')
    .argument('<images...>')
    .option('-o, --output <file>', 'Write to a file, instead of STDOUT')
    .option('--format <format>', 'docker-archive (default), oci-archive, or oci-dir (needs -o DIR)', 'docker-archive')
    .action(async (images: string[], o: { output?: string; format: string }) => {
      const engine = getEngine();
      if (o.format === 'oci-dir') {
        if (!o.output) throw invalidArgument('--format oci-dir needs -o DIRECTORY');
        await saveOciDir(engine, images, o.output);
        return;
      }
      if (!o.output && process.stdout.isTTY) throw invalidArgument('cowardly refusing to save to a terminal', 'use the -o flag or redirect');
      const stream = o.format === 'oci-archive' ? saveOciArchive(engine, images) : o.format === 'docker-archive' ? saveDockerArchive(engine, images) : undefined;
      if (!stream) throw invalidArgument(`unknown save format ${o.format}`, 'use docker-archive, oci-archive or oci-dir');
      if (o.output) {
        const tmp = `${o.output}.tmp-${process.pid}`;
        await pipeline(stream, createWriteStream(tmp));
        const { rename } = await import('node:fs/promises');
        await rename(tmp, o.output);
      } else await pipeline(stream, process.stdout);
    });

  const listImages = (o: { all?: boolean; quiet?: boolean; format?: string; digests?: boolean; noTrunc?: boolean; filter?: string[] }, repo?: string) => {
    const engine = getEngine();
    let rows = imageRows(engine, { filters: filtersFromFlags((o.filter ?? []).filter((f) => !f.startsWith('reference='))) });
    if (repo) {
      const want = parseReference(repo, { noDefaultTag: true });
      rows = rows.filter((r) => r.Repository === familiarName({ ...want, tag: undefined, digest: undefined }) && (!want.tag || r.Tag === want.tag));
    }
    for (const f of o.filter ?? []) {
      const [k, v] = f.split('=');
      if (k === 'reference') rows = rows.filter((r) => new RegExp('^' + v.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*') + '$').test(`${r.Repository}:${r.Tag}`) || r.Repository === v);
    }
    if (o.noTrunc) {
      const full = new Map(engine.images.list().map((i) => [shortId(i.id), i.id]));
      rows = rows.map((r) => ({ ...r, ID: full.get(r.ID) ?? r.ID }));
    }
    if (o.quiet) {
      out([...new Set(rows.map((r) => r.ID))].map((i) => i + '\n').join(''));
      return;
    }
    if (o.format) {
      out(printFormatted(rows, o.format, { ID: 'IMAGE ID', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT', SharedSize: 'SHARED SIZE', UniqueSize: 'UNIQUE SIZE' }));
      return;
    }
    const head = o.digests ? ['REPOSITORY', 'TAG', 'DIGEST', 'IMAGE ID', 'CREATED', 'SIZE'] : ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'];
    out(table([head, ...rows.map((r) => (o.digests ? [r.Repository, r.Tag, r.Digest, r.ID, r.CreatedSince, r.Size] : [r.Repository, r.Tag, r.ID, r.CreatedSince, r.Size]))]));
  };
  const imagesOpts = (c: Command) =>
    c.option('-a, --all', 'Show all images').option('-q, --quiet', 'Only show image IDs').option('--format <format>', 'Format output using a Go template')
      .option('--digests', 'Show digests').option('--no-trunc', "Don't truncate output").option('-f, --filter <filter>', 'Filter output', collect, []);
  imagesOpts(program.command('images').description('List images (see --format {{.SharedSize}} {{.UniqueSize}})').argument('[repository]')).action((repo: string | undefined, o) => listImages({ ...o, noTrunc: o.trunc === false }, repo));

  program
    .command('history')
    .description('Show the history of an image')
    .argument('<image>')
    .option('-H, --human [bool]', 'Print sizes and dates in human readable format', 'true')
    .option('--no-trunc', "Don't truncate output")
    .option('-q, --quiet', 'Only show image IDs')
    .option('--format <format>', 'Format output using a Go template')
    .action((image: string, o: { human: string | boolean; trunc: boolean; quiet?: boolean; format?: string }) => {
      const engine = getEngine();
      const human = !(o.human === 'false' || o.human === false);
      const rows = historyRows(engine, image, human, o.trunc === false);
      if (o.quiet) return out(rows.map((r) => r.ID + '\n').join(''));
      if (o.format) return out(printFormatted(rows, o.format, { ID: 'IMAGE', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT', CreatedBy: 'CREATED BY' }));
      out(table([['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'], ...rows.map((r) => [r.ID, r.CreatedSince, r.CreatedBy, r.Size, r.Comment])]));
    });

  program
    .command('tag')
    .description('Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE')
    .argument('<source>')
    .argument('<target>')
    .action((source: string, target: string) => tagImage(getEngine(), source, target));

  const rmi = async (images: string[], o: { force?: boolean; prune?: boolean }) => {
    const engine = getEngine();
    let failed = 0;
    for (const ref of images) {
      try {
        const r = await removeImage(engine, ref, { force: o.force });
        for (const u of r.untagged) out(`Untagged: ${u}\n`);
        for (const d of r.deleted) out(`Deleted: ${d}\n`);
      } catch (e) {
        failed++;
        err(`Error response from daemon: ${(e as Error).message}\n`);
      }
    }
    if (failed) process.exitCode = 1;
  };
  program.command('rmi').description('Remove one or more images').argument('<images...>').option('-f, --force', 'Force removal of the image').option('--no-prune', 'Do not delete untagged parents').action(rmi);

  program
    .command('inspect')
    .description('Return low-level information on shale objects')
    .argument('<names...>')
    .option('-f, --format <format>', 'Format output using a Go template')
    .option('-s, --size', 'Display total file sizes if the type is container')
    .option('--type <type>', 'Return JSON for specified type')
    .action(async (names: string[], o: { format?: string; size?: boolean; type?: string }) => {
      const engine = getEngine();
      const objs: unknown[] = [];
      let missing = 0;
      for (const n of names) {
        let obj: unknown;
        if (!o.type || o.type === 'image') {
          const img = engine.images.tryResolve(n);
          if (img) obj = inspectImage(engine, img);
        }
        if (!obj && o.type !== 'image') obj = await inspectOther(engine, n, { size: o.size, type: o.type });
        if (!obj) {
          missing++;
          err(`Error: No such object: ${n}\n`);
          continue;
        }
        objs.push(obj);
      }
      if (o.format) out(objs.map((x) => compileFormat(o.format!).row(x) + '\n').join(''));
      else out(JSON.stringify(objs, null, 4) + '\n');
      if (missing) process.exitCode = 1;
    });

  program
    .command('bootstrap')
    .description('Make a base image offline: `bootstrap busybox` builds busybox:latest from Debian\'s busybox-static')
    .argument('<what>', 'busybox')
    .option('-t, --tag <tag>', 'Name of the image', 'busybox:latest')
    .option('--busybox <path>', 'The static busybox binary to use', '/bin/busybox')
    .action(async (what: string, o: { tag: string; busybox: string }) => {
      if (what !== 'busybox') throw notFound(`nothing to bootstrap called ${what}`, 'use `shale bootstrap busybox`');
      const img = await bootstrapBusybox(getEngine(), o.tag, o.busybox);
      out(`${img.id}\n`);
    });
}
