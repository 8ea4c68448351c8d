// /volumes/*: create, list, inspect, delete, prune.
import { createVolume, inspectVolume, listVolumes, removeVolume } from '../../engine/volumes.js';
import { filtersFromJSON } from '../../engine/containers.js';
import { pruneVolumes } from '../../engine/prune.js';
import { invalidArgument, notFound } from '../../errors.js';
import { noContent, qbool, readJSON, sendJSON } from '../http.js';
import type { Ctx, Router } from '../router.js';

function inspect(ctx: Ctx, name: string): Record<string, unknown> {
  const v = inspectVolume(ctx.engine, name);
  if (!v) throw notFound(`get ${name}: no such volume`);
  return v;
}

export function register(r: Router): void {
  r.add('GET', '/volumes', (ctx) => {
    const vols = listVolumes(ctx.engine, filtersFromJSON(ctx.query.get('filters')));
    sendJSON(ctx.res!, 200, { Volumes: vols.map((v) => inspect(ctx, v.name)), Warnings: [] });
  })
    .add('POST', '/volumes/create', async (ctx) => {
      const b = await readJSON(ctx.req);
      if (b.Name !== undefined && typeof b.Name !== 'string') throw invalidArgument('Name must be a string');
      const labels = (b.Labels ?? {}) as Record<string, string>;
      const v = createVolume(ctx.engine, (b.Name as string) || undefined, { labels, driver: (b.Driver as string) || undefined });
      sendJSON(ctx.res!, 201, inspect(ctx, v.name));
    })
    .add('POST', '/volumes/prune', async (ctx) => {
      const f = filtersFromJSON(ctx.query.get('filters'));
      const rep = await pruneVolumes(ctx.engine, { all: (f.all ?? []).some((v) => v === 'true' || v === '1') });
      sendJSON(ctx.res!, 200, { VolumesDeleted: rep.removed, SpaceReclaimed: rep.reclaimed });
    })
    .add('GET', '/volumes/{name}', (ctx) => sendJSON(ctx.res!, 200, inspect(ctx, ctx.params[0])))
    .add('DELETE', '/volumes/{name}', (ctx) => {
      inspect(ctx, ctx.params[0]);
      removeVolume(ctx.engine, ctx.params[0], { force: qbool(ctx.query, 'force') });
      noContent(ctx.res!);
    });
}
