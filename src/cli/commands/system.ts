// system check, image prune, info, version.
import type { Command } from 'commander';
import { getEngine, out, err } from '../context.js';
import { humanSize } from '../format.js';
import { checkStore } from '../../engine/check.js';

export function register(program: Command): void {
  const system = program.command('system').description('Manage shale');
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

  const image = program.command('image').description('Manage images');
  image
    .command('prune')
    .description('Remove unused images')
    .option('-a, --all', 'Remove all unused images, not just dangling ones')
    .option('-f, --force', 'Do not prompt for confirmation')
    .action(async (o: { all?: boolean }) => {
      const engine = getEngine();
      const { containerUsingImage, gcSnapshots } = await import('../../engine/hooks.js');
      const before = engine.content.totalSize();
      const deleted: string[] = [];
      for (const img of engine.images.list()) {
        const tags = engine.images.tagsOf(img.id);
        if ((tags.length && !o.all) || containerUsingImage(engine, img.id)) continue;
        try {
          const r = engine.images.remove(img.id, { force: true });
          for (const u of r.untagged) deleted.push(`untagged: ${u}`);
          for (const d of r.deleted) deleted.push(`deleted: ${d}`);
        } catch (e) {
          err(`${(e as Error).message}\n`);
        }
      }
      await engine.images.gc();
      await gcSnapshots(engine);
      const after = engine.content.totalSize();
      if (deleted.length) out(`Deleted Images:\n${deleted.join('\n')}\n\n`);
      out(`Total reclaimed space: ${humanSize(Math.max(0, before - after))}\n`);
    });
}
