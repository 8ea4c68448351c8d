// `push NAME[:TAG]`: each layer is checked with HEAD first and skipped when the registry has it;
// a layer we know another repository of the same registry holds is mounted from there
// (POST ?mount=&from=) instead of uploaded; the rest is uploaded as one streamed PUT. Then
// the config, then the manifest with its stored bytes, so the digest is the one we have.
import { Transform, type TransformCallback } from 'node:stream';
import type { Store } from '../store/index.js';
import { shortId } from '../images/store.js';
import type { Digest } from '../digest/index.js';
import { dataLoss, invalidArgument, notFound, ShaleError } from '../errors.js';
import { MediaType, type Descriptor, type Manifest } from '../oci/index.js';
import { familiarRepository, parseReference, repository, type Reference } from '../reference/index.js';
import { Transport, type TransportOptions } from './transport.js';
import { connectionError, isConnectionError, registryError } from './errors.js';
import { silent, type Progress } from './progress.js';
import { forgetSource, recordSources, sourcesOf } from './sources.js';
import { discard, errorText, runLimited } from './util.js';

export interface PushOptions {
  /** layers uploaded at once (default 5) */
  maxConcurrentUploads?: number;
  progress?: Progress;
  transport?: TransportOptions;
  signal?: AbortSignal;
}

export type BlobOutcome = { kind: 'exists' } | { kind: 'mounted'; from: string } | { kind: 'pushed'; bytes: number };

export interface PushResult {
  tag: string;
  digest: Digest;
  size: number;
  /** per layer blob, what happened to it */
  layers: Map<string, BlobOutcome>;
  /** bytes of blobs (layers and config) sent */
  bytesUploaded: number;
}

class Counter extends Transform {
  n = 0;
  constructor(private readonly onBytes: (n: number) => void) {
    super();
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.n += chunk.length;
    this.onBytes(this.n);
    cb(null, chunk);
  }
}

function withParam(location: string, key: string, value: string): string {
  return `${location}${location.includes('?') ? '&' : '?'}${key}=${encodeURIComponent(value)}`;
}

async function expectStatus(res: Awaited<ReturnType<Transport['request']>>, ok: number[], what: string): Promise<void> {
  if (ok.includes(res.status)) {
    await discard(res);
    return;
  }
  throw registryError(what, res.status, res.statusText, await errorText(res));
}

/** Push one blob unless the repository has it; mount it from a sibling repository when we can. */
async function pushBlob(engine: Store, t: Transport, r: Reference, desc: Descriptor, onBytes: (n: number) => void, signal?: AbortSignal): Promise<BlobOutcome> {
  const scopes = [`repository:${r.path}:pull,push`];
  const what = `pushing blob ${desc.digest} to ${familiarRepository(r)}`;
  const head = await t.request('HEAD', `/v2/${r.path}/blobs/${desc.digest}`, { scopes, signal });
  await discard(head);
  if (head.status === 200) return { kind: 'exists' };
  if (head.status !== 404) throw registryError(what, head.status, head.statusText, '');

  let location: string | undefined;
  for (const from of sourcesOf(engine.db, r.domain, desc.digest, r.path)) {
    const res = await t.request('POST', `/v2/${r.path}/blobs/uploads/?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(from)}`, {
      scopes: [...scopes, `repository:${from}:pull`], signal, headers: { 'content-length': '0' },
    });
    await discard(res);
    if (res.status === 201) return { kind: 'mounted', from };
    forgetSource(engine.db, r.domain, from, desc.digest);
    if (res.status === 202 && res.header('location')) {
      location = new URL(res.header('location')!, res.url).toString(); // the registry opened an upload instead
      break;
    }
  }

  if (!engine.content.has(desc.digest)) throw notFound(`blob ${desc.digest} is not in the content store`, 'run `shale system check`');
  for (let attempt = 1; ; attempt++) {
    try {
      if (!location) {
        const res = await t.request('POST', `/v2/${r.path}/blobs/uploads/`, { scopes, signal, headers: { 'content-length': '0' } });
        if (res.status !== 202 || !res.header('location')) throw registryError(`${what}: starting the upload`, res.status, res.statusText, await errorText(res));
        await discard(res);
        location = new URL(res.header('location')!, res.url).toString();
      }
      const res = await t.request('PUT', withParam(location, 'digest', desc.digest), {
        scopes, signal, retries: 0,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
        body: () => engine.content.open(desc.digest).pipe(new Counter(onBytes)),
      });
      await expectStatus(res, [201, 204], what);
      return { kind: 'pushed', bytes: desc.size };
    } catch (e) {
      location = undefined;
      if (signal?.aborted || !isConnectionError(e)) throw e;
      if (attempt >= 3) throw e instanceof ShaleError ? e : connectionError(t.domain, t.url(`/v2/${r.path}/blobs/uploads/`), e);
    }
  }
}

/** Push one tagged image. Output goes to opts.progress (docker's lines); errors are ShaleErrors. */
export async function push(engine: Store, name: string, opts: PushOptions = {}): Promise<PushResult> {
  const r = parseReference(name, { noDefaultTag: true });
  if (r.digest) throw invalidArgument(`cannot push a digest reference (${name})`, 'push a tag: NAME[:TAG]');
  const tag = r.tag ?? 'latest';
  const img = engine.images.tryResolve(`${repository(r)}:${tag}`);
  if (!img) throw notFound(`An image does not exist locally with the tag: ${familiarRepository(r)}${r.tag ? `:${r.tag}` : ''}`, 'tag an image with this name first: shale tag IMAGE NAME');
  const t = new Transport(r.domain, opts.transport);
  const progress = opts.progress ?? silent;
  progress.line(`The push refers to repository [${repository(r)}]`);

  const manifestBytes = engine.content.readBytes(img.manifest);
  const manifest = JSON.parse(manifestBytes.toString('utf8')) as Manifest;
  const mediaType = manifest.mediaType ?? MediaType.ociManifest;
  const diffIds = engine.images.config(img.id).rootfs?.diff_ids ?? [];
  const layers = new Map<string, BlobOutcome>();
  let bytesUploaded = 0;

  // docker lists the top layer first and names layers by their diff_id
  const order: number[] = [];
  const seen = new Set<string>();
  for (let i = manifest.layers.length - 1; i >= 0; i--) {
    if (seen.has(manifest.layers[i].digest)) continue;
    seen.add(manifest.layers[i].digest);
    order.push(i);
  }
  const sid = (i: number) => shortId(diffIds[i] ?? manifest.layers[i].digest);
  for (const i of order) progress.update(sid(i), 'Preparing');
  const abort = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, abort.signal]) : abort.signal;
  const tasks = order.map((i) => async () => {
    const d = manifest.layers[i];
    const o = await pushBlob(engine, t, r, d, (n) => progress.update(sid(i), 'Pushing', { current: n, total: d.size }), signal);
    layers.set(d.digest, o);
    if (o.kind === 'exists') progress.update(sid(i), 'Layer already exists');
    else if (o.kind === 'mounted') progress.update(sid(i), `Mounted from ${o.from}`);
    else {
      bytesUploaded += o.bytes;
      progress.update(sid(i), 'Pushed');
    }
  });
  await runLimited(opts.maxConcurrentUploads ?? 5, tasks, { abort, onQueued: (k) => progress.update(sid(order[k]), 'Waiting') });

  const cfg = await pushBlob(engine, t, r, manifest.config, () => {}, signal);
  if (cfg.kind === 'pushed') bytesUploaded += cfg.bytes;

  const res = await t.request('PUT', `/v2/${r.path}/manifests/${tag}`, {
    scopes: [`repository:${r.path}:pull,push`], signal,
    headers: { 'content-type': mediaType },
    body: () => manifestBytes,
  });
  await expectStatus(res, [200, 201, 202], `pushing manifest for ${familiarRepository(r)}:${tag}`);
  const claimed = res.header('docker-content-digest');
  if (claimed && claimed !== img.manifest) throw dataLoss(`pushing manifest for ${familiarRepository(r)}:${tag}: the registry stored it as ${claimed}, not ${img.manifest}`, 'the registry rewrote the manifest');
  recordSources(engine.db, r.domain, r.path, [img.id, ...manifest.layers.map((l) => l.digest)]);
  engine.images.addRepoDigest(`${repository(r)}@${img.manifest}`, img.id);
  progress.line(`${tag}: digest: ${img.manifest} size: ${manifestBytes.length}`);
  return { tag, digest: img.manifest as Digest, size: manifestBytes.length, layers, bytesUploaded };
}
