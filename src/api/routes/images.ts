// /images/*: list, inspect, history, tag, delete, prune, save (get), load, import and pull
// (create), push. Progress streams are docker's JSON lines.
import type { ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import {
  imageHistory, imageSummaries, importTarball, inspectImage, loadArchive, removeImage, saveDockerArchive, tagImage,
} from '../../engine/images.js';
import { filtersFromJSON } from '../../engine/containers.js';
import { pruneImages } from '../../engine/prune.js';
import { pull, push, type Progress } from '../../engine/registry.js';
import { familiarName, parseReference } from '../../reference/index.js';
import { invalidArgument, notFound } from '../../errors.js';
import { emit } from '../../store/events.js';
import { errorResponse, noContent, qbool, sendJSON } from '../http.js';
import type { Ctx, Router } from '../router.js';

const unix = (iso: string | undefined) => Math.floor(Date.parse(iso ?? '') / 1000) || 0;

function list(ctx: Ctx): void {
  const rows = imageSummaries(ctx.engine, { filters: filtersFromJSON(ctx.query.get('filters')) });
  const all = qbool(ctx.query, 'all');
  void all; // shale keeps no intermediate parent images: -a shows the same list
  sendJSON(ctx.res!, 200, rows.map((s) => ({
    Id: s.id, ParentId: '', RepoTags: s.tags.length ? s.tags : ['<none>:<none>'], RepoDigests: s.digests.length ? s.digests : (s.tags.length ? [] : ['<none>@<none>']),
    Created: unix(s.created), Size: s.size, SharedSize: qbool(ctx.query, 'shared-size') ? s.shared : -1, VirtualSize: s.size, Labels: s.labels, Containers: s.containers,
  })));
}

function resolveImage(ctx: Ctx, name: string) {
  const img = ctx.engine.images.tryResolve(name);
  if (!img) throw notFound(`No such image: ${name}`);
  return img;
}

/** A JSON-lines progress stream (pull, push, load, import): headers now, lines as they come, errors in the stream. */
function progressStream(res: ServerResponse): { line: (o: unknown) => void; fail: (e: unknown) => void; end: () => void; progress: Progress } {
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.flushHeaders();
  const line = (o: unknown) => { if (!res.writableEnded) res.write(JSON.stringify(o) + '\r\n'); };
  return {
    line,
    fail: (e) => { const m = errorResponse(e).message; line({ errorDetail: { message: m }, error: m }); res.end(); },
    end: () => res.end(),
    progress: {
      line: (text) => line({ status: text }),
      update: (id, status, bytes) => line({ status, id, ...(bytes ? { progressDetail: { current: bytes.current, total: bytes.total } } : { progressDetail: {} }) }),
    },
  };
}

async function create(ctx: Ctx): Promise<void> {
  const q = ctx.query;
  const fromSrc = q.get('fromSrc');
  const fromImage = q.get('fromImage');
  if (fromSrc !== null) {
    if (fromSrc !== '-') throw invalidArgument(`importing from a URL (${fromSrc}) needs the network, which shale does not use`);
    const repo = q.get('repo');
    const tag = q.get('tag');
    const changes = q.getAll('changes');
    const platform = q.get('platform') ?? '';
    const [os, architecture] = platform.split('/');
    const s = progressStream(ctx.res!);
    try {
      const img = await importTarball(ctx.engine, ctx.req, {
        tag: repo ? (tag ? `${repo}:${tag}` : repo) : undefined, message: q.get('message') ?? undefined,
        changes,
        platform: platform ? { os, architecture } : undefined,
      });
      s.line({ status: img.id });
      s.end();
    } catch (e) {
      s.fail(e);
    }
    return;
  }
  if (fromImage === null) throw invalidArgument('fromImage or fromSrc is required');
  const tag = q.get('tag');
  const ref = tag ? (tag.startsWith('sha256:') ? `${fromImage}@${tag}` : `${fromImage}:${tag}`) : fromImage;
  const s = progressStream(ctx.res!);
  try {
    const r = parseReference(ref);
    s.line({ status: `Pulling from ${familiarName({ ...r, tag: undefined, digest: undefined })}`, id: r.tag ?? 'latest' });
    const res = await pull(ctx.engine, ref, { progress: s.progress, signal: ctx.signal, platform: q.get('platform') || undefined });
    s.line({ status: `Digest: ${res.digest ?? ''}` });
    s.line({ status: `Status: Downloaded newer image for ${familiarName(r)}` });
    s.end();
  } catch (e) {
    s.fail(e);
  }
}

async function pushImage(ctx: Ctx, name: string): Promise<void> {
  const tag = ctx.query.get('tag');
  const ref = tag ? `${name}:${tag}` : name;
  resolveImage(ctx, ref);
  const s = progressStream(ctx.res!);
  try {
    const r = await push(ctx.engine, ref, { progress: s.progress, signal: ctx.signal });
    s.line({ status: `${parseReference(ref).tag ?? 'latest'}: digest: ${r.digest} size: ${r.size ?? 0}` });
    s.line({ progressDetail: {}, aux: { Tag: parseReference(ref).tag ?? 'latest', Digest: r.digest, Size: r.size ?? 0 } });
    s.end();
  } catch (e) {
    s.fail(e);
  }
}

async function save(ctx: Ctx, names: string[]): Promise<void> {
  if (!names.length) throw invalidArgument('no image names given');
  for (const n of names) resolveImage(ctx, n);
  const stream = saveDockerArchive(ctx.engine, names);
  ctx.res!.writeHead(200, { 'Content-Type': 'application/x-tar' });
  await pipeline(stream, ctx.res!).catch(() => ctx.res!.destroy());
}

async function load(ctx: Ctx): Promise<void> {
  // quiet only drops progress bars (which shale's load has none of): "Loaded image" lines always come, as from dockerd
  const s = progressStream(ctx.res!);
  try {
    const r = await loadArchive(ctx.engine, ctx.req, { onProgress: (m) => s.line({ stream: m + '\n' }) });
    for (const i of r.images) emit(ctx.engine.root, 'image', 'load', i.id, { name: i.tags[0] ?? i.id });
    s.end();
  } catch (e) {
    s.fail(e);
  }
}

export function register(r: Router): void {
  r.add('GET', '/images/json', list)
    .add('POST', '/images/create', create)
    .add('POST', '/images/load', load)
    .add('GET', '/images/get', (ctx) => save(ctx, ctx.query.getAll('names')))
    .add('POST', '/images/prune', async (ctx) => {
      const f = filtersFromJSON(ctx.query.get('filters'));
      const all = (f.dangling ?? []).some((v) => v === 'false' || v === '0');
      const rep = await pruneImages(ctx.engine, { all });
      sendJSON(ctx.res!, 200, {
        ImagesDeleted: rep.removed.map((x) => (x.startsWith('untagged: ') ? { Untagged: x.slice(10) } : { Deleted: x.replace(/^deleted: /, '') })),
        SpaceReclaimed: rep.reclaimed,
      });
    })
    .add('GET', '/images/{name*}/json', (ctx) => sendJSON(ctx.res!, 200, inspectImage(ctx.engine, resolveImage(ctx, ctx.params[0]))))
    .add('GET', '/images/{name*}/history', (ctx) => {
      resolveImage(ctx, ctx.params[0]);
      sendJSON(ctx.res!, 200, imageHistory(ctx.engine, ctx.params[0]).map((h) => ({
        Id: h.id, Created: unix(h.created), CreatedBy: h.createdBy, Tags: h.tags.length ? h.tags : null, Size: h.size, Comment: h.comment,
      })));
    })
    .add('GET', '/images/{name*}/get', (ctx) => save(ctx, [ctx.params[0]]))
    .add('POST', '/images/{name*}/tag', (ctx) => {
      const repo = ctx.query.get('repo');
      if (!repo) throw invalidArgument('repository name must have at least one component');
      const tag = ctx.query.get('tag');
      resolveImage(ctx, ctx.params[0]);
      tagImage(ctx.engine, ctx.params[0], tag ? `${repo}:${tag}` : repo);
      noContent(ctx.res!, 201);
    })
    .add('POST', '/images/{name*}/push', (ctx) => pushImage(ctx, ctx.params[0]))
    .add('DELETE', '/images/{name*}', async (ctx) => {
      resolveImage(ctx, ctx.params[0]);
      const rr = await removeImage(ctx.engine, ctx.params[0], { force: qbool(ctx.query, 'force') });
      sendJSON(ctx.res!, 200, [...rr.untagged.map((u) => ({ Untagged: u })), ...rr.deleted.map((d) => ({ Deleted: d }))]);
    });
}
