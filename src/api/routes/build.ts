// POST /build: the legacy builder protocol. The body is the context as a tar (plain or
// compressed), bounded; the Dockerfile is named by `dockerfile` inside it. Output is docker's
// JSON stream: {"stream": …} lines, {"aux":{"ID": …}} for the image, {"errorDetail": …} on failure.
import { Transform } from 'node:stream';
import { Writable } from 'node:stream';
import { buildImage } from '../../engine/build.js';
import { pruneBuildCache } from '../../engine/prune.js';
import { invalidArgument } from '../../errors.js';
import { errorResponse, HttpError, qbool, sendJSON } from '../http.js';
import type { Ctx, Router } from '../router.js';

/** A build context larger than this is refused (SHALE_MAX_CONTEXT bytes; docker has no limit but disk). */
export function maxContext(): number {
  const v = Number(process.env.SHALE_MAX_CONTEXT);
  return Number.isFinite(v) && v > 0 ? v : 8 * 1024 * 1024 * 1024;
}

function jsonMap(q: URLSearchParams, name: string): Record<string, string> {
  const v = q.get(name);
  if (!v) return {};
  try {
    const o = JSON.parse(v) as Record<string, unknown>;
    if (!o || typeof o !== 'object' || Array.isArray(o)) throw new Error('not an object');
    return Object.fromEntries(Object.entries(o).filter(([, x]) => x !== null).map(([k, x]) => [k, String(x)]));
  } catch {
    throw invalidArgument(`invalid ${name}: ${v.slice(0, 100)}`);
  }
}

async function build(ctx: Ctx): Promise<void> {
  const q = ctx.query;
  const quiet = qbool(q, 'q');
  const tags = q.getAll('t');
  const network = q.get('networkmode') || 'none';
  if (!['none', 'host', 'default', 'bridge'].includes(network)) throw invalidArgument(`network mode ${network}: builds support none and host`);
  const buildArgs = jsonMap(q, 'buildargs');
  const labels = jsonMap(q, 'labels');
  const limit = maxContext();
  if (Number(ctx.req.headers['content-length'] ?? 0) > limit) throw new HttpError(413, `the build context is larger than the limit of ${limit} bytes (SHALE_MAX_CONTEXT)`);
  let seen = 0;
  const bounded = new Transform({
    transform(chunk: Buffer, _e, cb) {
      seen += chunk.length;
      if (seen > limit) return cb(new HttpError(413, `the build context is larger than the limit of ${limit} bytes (SHALE_MAX_CONTEXT)`));
      cb(null, chunk);
    },
  });
  ctx.req.on('error', (e) => bounded.destroy(e));
  // a client that goes away before the builder reads the context: the builder sees the destroyed
  // stream when it gets there; until then nobody listens, and an unheard 'error' would crash the server
  bounded.on('error', () => undefined);
  ctx.req.pipe(bounded);
  const res = ctx.res!;
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.flushHeaders();
  const line = (o: unknown) => { if (!res.writableEnded && !res.destroyed) res.write(JSON.stringify(o) + '\r\n'); };
  const output = new Writable({ write(chunk: Buffer, _e, cb) { if (!quiet) line({ stream: chunk.toString() }); cb(); } });
  try {
    const r = await buildImage(ctx.engine, {
      context: { tar: bounded },
      dockerfile: q.get('dockerfile') || 'Dockerfile',
      tags,
      buildArgs,
      labels,
      target: q.get('target') || undefined,
      noCache: qbool(q, 'nocache'),
      network: network === 'host' ? 'host' : 'none',
      progress: quiet ? undefined : (l) => line({ stream: l + '\n' }),
      output,
    });
    line({ aux: { ID: r.id } });
    if (quiet) line({ stream: `${r.id}\n` }); // what `docker build -q` prints
    else {
      line({ stream: `Successfully built ${r.id.replace(/^sha256:/, '').slice(0, 12)}\n` });
      for (const t of tags) line({ stream: `Successfully tagged ${t.includes(':') ? t : `${t}:latest`}\n` });
    }
  } catch (e) {
    const m = errorResponse(e).message;
    line({ errorDetail: { message: m }, error: m });
  } finally {
    ctx.req.unpipe(bounded);
    ctx.req.resume();
    res.end();
  }
}

export function register(r: Router): void {
  r.add('POST', '/build', build)
    .add('POST', '/build/prune', async (ctx) => {
      const rep = await pruneBuildCache(ctx.engine);
      sendJSON(ctx.res!, 200, { CachesDeleted: rep.removed, SpaceReclaimed: rep.reclaimed });
    })
    .add('POST', '/session', (ctx) => sendJSON(ctx.res!, 501, { message: 'BuildKit sessions (POST /session) are not implemented: use the legacy builder (DOCKER_BUILDKIT=0)' }));
}
