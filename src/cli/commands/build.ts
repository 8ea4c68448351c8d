// shale build and builder prune.
import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { getEngine, out, err, collect, readStdin } from '../context.js';
import { humanSize } from '../format.js';
import { buildImage, ENTITLEMENTS } from '../../engine/build.js';
import { invalidArgument } from '../../errors.js';
import { pruneBuildCache } from '../../engine/prune.js';

const kv = (list: string[], what: string) =>
  Object.fromEntries(list.map((s) => {
    const i = s.indexOf('=');
    if (i < 0) {
      if (what === 'build-arg' && process.env[s] !== undefined) return [s, process.env[s]!];
      if (what === 'label') return [s, ''];
      throw invalidArgument(`--${what} ${s}: expected KEY=VALUE`);
    }
    return [s.slice(0, i), s.slice(i + 1)];
  }));


export function register(program: Command): void {
  program
    .command('build')
    .description('Build an image from a Dockerfile')
    .argument('<context>', 'PATH, or - for a tar context on stdin')
    .option('-t, --tag <name>', 'Name and optionally a tag (name:tag)', collect, [])
    .option('-f, --file <file>', 'Name of the Dockerfile (default: PATH/Dockerfile; - reads stdin)')
    .option('--build-arg <arg>', 'Set build-time variables', collect, [])
    .option('--label <label>', 'Set metadata for an image', collect, [])
    .option('--target <stage>', 'Set the target build stage to build')
    .option('--no-cache', 'Do not use cache when building the image')
    .option('--pull', 'Always attempt to pull a newer version of the image (local images are used as they are)')
    .option('-q, --quiet', 'Suppress the build output and print image ID on success')
    .option('--iidfile <file>', 'Write the image ID to the file')
    .option('--network <mode>', 'Networking mode for the RUN instructions during build: none (default) or host', 'none')
    .option('--allow <entitlement>', `Allow extra privileged entitlement (${ENTITLEMENTS.join(', ')}), as docker buildx build --allow`, collect, [])
    .option('--progress <type>', 'Set type of progress output (plain)', 'plain')
    .action(async (context: string, o: { tag: string[]; file?: string; buildArg: string[]; label: string[]; target?: string; cache: boolean; quiet?: boolean; iidfile?: string; network: string; allow: string[] }) => {
      const engine = getEngine();
      if (o.network !== 'none' && o.network !== 'host') throw invalidArgument(`--network ${o.network}: builds support none and host`);
      if (o.file === '-' && context === '-') throw invalidArgument('cannot read both the context and the Dockerfile from stdin');
      const dockerfileText = o.file === '-' ? await readStdin() : undefined;
      // -f names a file from the working directory (as docker's CLI takes it), read by build():
      // through the context's scope when it lies in the context, as named when it is outside
      const t0 = Date.now();
      const res = await buildImage(engine, {
        context: context === '-' ? { tar: process.stdin } : { dir: context },
        dockerfile: o.file && o.file !== '-' ? o.file : 'Dockerfile',
        // with a tar context on stdin, -f names a file in that context
        dockerfileFromCwd: !!o.file && o.file !== '-' && context !== '-',
        dockerfileText,
        tags: o.tag,
        buildArgs: kv(o.buildArg, 'build-arg'),
        labels: kv(o.label, 'label'),
        target: o.target,
        noCache: o.cache === false,
        network: o.network as 'none' | 'host',
        allow: o.allow,
        progress: o.quiet ? undefined : (l) => err(l + '\n'),
        output: o.quiet ? undefined : process.stderr,
      });
      if (o.iidfile) await writeFile(o.iidfile, res.id);
      if (o.quiet) out(`${res.id}\n`);
      else err(`#done ${((Date.now() - t0) / 1000).toFixed(1)}s\n`);
    });

  const builder = program.command('builder').description('Manage builds');
  builder
    .command('prune')
    .description('Remove build cache')
    .option('-a, --all', 'Remove all unused build cache')
    .option('-f, --force', 'Do not prompt for confirmation')
    .action(async () => {
      const r = await pruneBuildCache(getEngine());
      if (r.removed.length) out(`Deleted build cache objects:\n${r.removed.join('\n')}\n\n`);
      out(`Total:\t${humanSize(r.reclaimed)}\n`);
    });
}
