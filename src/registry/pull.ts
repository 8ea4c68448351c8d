// `pull NAME[:TAG|@DIGEST]`: tag -> manifest (an index picks the platform) -> config -> the
// layers this store lacks, each streamed straight into the content store with its digest,
// size and diff_id checked on the way. A cut connection resumes with a Range request; a pull
// that fails anyway removes the blobs it wrote, so the store is as it was before.
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Store } from '../store/index.js';
import { isDigest, sha256, type Digest } from '../digest/index.js';
import { ShaleError, dataLoss, errno, invalidArgument, notFound, permissionDenied, unavailable } from '../errors.js';
import { hostPlatform, isIndexMediaType, isManifestMediaType, MediaType, type Descriptor, type ImageConfig, type Index, type Manifest, type Platform } from '../oci/index.js';
import { familiarName, familiarRepository, fullName, parseReference, repository, type Reference } from '../reference/index.js';
import { ingestBlob, type LayerRecord } from '../images/layers.js';
import { shortId, type ImageRecord } from '../images/store.js';
import { MEDIA_TYPES } from '../archive/index.js';
import { TAG_LIST_LIMIT, Transport, type TransportOptions } from './transport.js';
import { connectionError, isConnectionError, registryError } from './errors.js';
import { silent, type Progress } from './progress.js';
import { recordSources } from './sources.js';
import { dropBody, errorText, formatLimit, parsePlatform, readBody, readLimited, runLimited, variantOf } from './util.js';

/** Manifests and indexes larger than this are refused (docker's limit). */
export const MANIFEST_LIMIT = 4 << 20;
/** Image configs larger than this are refused. */
export const CONFIG_LIMIT = 8 << 20;

export const MANIFEST_ACCEPT = [MediaType.ociManifest, MediaType.dockerManifest, MediaType.ociIndex, MediaType.dockerManifestList].join(', ');

const LAYER_TYPES = new Set<string>([MEDIA_TYPES.ociLayer, MEDIA_TYPES.ociLayerGzip, MEDIA_TYPES.ociLayerZstd, MEDIA_TYPES.dockerLayer, MEDIA_TYPES.dockerLayerGzip]);
const CONFIG_TYPES = new Set<string>([MediaType.ociConfig, MediaType.dockerConfig]);

export interface PullOptions {
  /** os/arch[/variant]; default: this machine's */
  platform?: string;
  /** layers fetched at once (default 3) */
  maxConcurrentDownloads?: number;
  progress?: Progress;
  transport?: TransportOptions;
  signal?: AbortSignal;
  /** attempts without progress before a layer download gives up (default 5) */
  downloadAttempts?: number;
}

export interface PullResult {
  image: ImageRecord;
  /** what the name resolved to: the manifest's digest, or the index's for a multi-platform image */
  digest: Digest;
  /** the fully qualified name docker prints last */
  name: string;
  upToDate: boolean;
  /** layer blobs fetched from the registry (not those already here) */
  downloaded: Digest[];
}

export interface FetchedManifest {
  bytes: Buffer;
  digest: Digest;
  mediaType: string;
}

function pullScope(r: Reference): string {
  return `repository:${r.path}:pull`;
}

/** Run a small fetch again when its connection breaks mid-body (the transport retries only until headers). */
async function again<T>(t: Transport, url: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (signal?.aborted || !isConnectionError(e)) throw e;
      if (attempt >= 3) throw e instanceof ShaleError ? e : connectionError(t.domain, t.url(url), e);
      await sleep(200 * attempt, undefined, { signal });
    }
  }
}

/** GET a manifest by tag or digest, refusing large ones and checking its digest. */
export async function fetchManifest(t: Transport, r: Reference, ref: string, signal?: AbortSignal): Promise<FetchedManifest> {
  return again(t, `/v2/${r.path}/manifests/${ref}`, () => fetchManifestOnce(t, r, ref, signal), signal);
}

async function fetchManifestOnce(t: Transport, r: Reference, ref: string, signal?: AbortSignal): Promise<FetchedManifest> {
  const display = familiarName(r);
  const denied = (why: string) => permissionDenied(`pull access denied for ${familiarRepository(r)}, repository does not exist or may require 'shale login': ${why}`, `shale login ${r.domain}`);
  let res;
  try {
    res = await t.request('GET', `/v2/${r.path}/manifests/${ref}`, { headers: { accept: MANIFEST_ACCEPT }, scopes: [pullScope(r)], signal });
  } catch (e) {
    if (e instanceof ShaleError && e.code === 'PermissionDenied') throw denied(e.message); // the token server said no
    throw e;
  }
  if (res.status !== 200) {
    const text = await errorText(res);
    const e = registryError(`pulling ${display}`, res.status, res.statusText, text);
    if (res.status === 404 || e.has('MANIFEST_UNKNOWN') || e.has('NAME_UNKNOWN')) {
      const why = e.has('NAME_UNKNOWN') && !e.has('MANIFEST_UNKNOWN') ? 'name unknown: repository name not known to registry' : 'manifest unknown';
      throw notFound(`manifest for ${display} not found: ${why}`, `check the name and tag; \`skopeo list-tags docker://${repository(r)}\` lists the tags`);
    }
    if (res.status === 401 || res.status === 403) throw denied(e.message.replace(/^pulling [^:]*: /, ''));
    throw e;
  }
  const bytes = await readLimited(res, MANIFEST_LIMIT, `manifest for ${display}`);
  const digest = sha256(bytes);
  if (isDigest(ref) && ref !== digest) throw dataLoss(`manifest for ${display}: digest mismatch: asked for ${ref}, got ${digest}`, 'the registry returned other content than asked for; nothing was stored');
  const claimed = res.header('docker-content-digest');
  if (claimed && claimed.startsWith('sha256:') && claimed !== digest) throw dataLoss(`manifest for ${display}: digest mismatch: the registry says ${claimed}, the content is ${digest}`, 'the registry or a proxy changed the manifest; nothing was stored');
  const ct = (res.header('content-type') ?? '').split(';')[0].trim();
  return { bytes, digest, mediaType: ct };
}

type Parsed = { kind: 'index'; index: Index; mediaType: string } | { kind: 'manifest'; manifest: Manifest; mediaType: string };

function checkDescriptor(d: unknown, what: string): asserts d is Descriptor {
  const x = d as Descriptor;
  if (!x || typeof x !== 'object') throw invalidArgument(`${what} is not an object`);
  if (typeof x.digest !== 'string' || !isDigest(x.digest)) throw invalidArgument(`${what} has an invalid or unsupported digest ${JSON.stringify(x.digest)}`, 'only sha256 digests are supported');
  if (typeof x.size !== 'number' || !Number.isSafeInteger(x.size) || x.size < 0) throw invalidArgument(`${what} has an invalid size ${JSON.stringify(x.size)}`);
}

/** Parse and validate a manifest or index; a clear error for anything malformed or unsupported. */
export function parseManifest(bytes: Buffer, headerType: string, what: string): Parsed {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw invalidArgument(`${what}: malformed manifest: ${(e as Error).message}`, 'the registry returned something that is not a JSON manifest');
  }
  try {
    if (!j || typeof j !== 'object' || Array.isArray(j)) throw invalidArgument('not a JSON object');
    const mt = typeof j.mediaType === 'string' ? j.mediaType : headerType;
    if (j.schemaVersion === 1 || /distribution\.manifest\.v1\+/.test(mt)) {
      throw invalidArgument('Docker image manifest schema 1 is not supported (it was deprecated in 2015)', 'push the image again with a current tool, or convert it with `skopeo copy --format v2s2`');
    }
    if (j.schemaVersion !== 2) throw invalidArgument(`unsupported schemaVersion ${JSON.stringify(j.schemaVersion)}`);
    if (isIndexMediaType(mt) || (!isManifestMediaType(mt) && Array.isArray(j.manifests))) {
      if (!Array.isArray(j.manifests)) throw invalidArgument('an index without a "manifests" list');
      j.manifests.forEach((d, i) => checkDescriptor(d, `manifests[${i}]`));
      return { kind: 'index', index: j as unknown as Index, mediaType: mt || MediaType.ociIndex };
    }
    if (isManifestMediaType(mt) || (j.config && Array.isArray(j.layers))) {
      checkDescriptor(j.config, 'config');
      if (!Array.isArray(j.layers)) throw invalidArgument('a manifest without a "layers" list');
      const m = j as unknown as Manifest;
      if (m.config.mediaType && !CONFIG_TYPES.has(m.config.mediaType)) throw invalidArgument(`not a container image: its config has media type ${m.config.mediaType}`);
      m.layers.forEach((d, i) => {
        checkDescriptor(d, `layers[${i}]`);
        if (!LAYER_TYPES.has(d.mediaType)) {
          throw invalidArgument(d.mediaType === MEDIA_TYPES.dockerForeignGzip ? `layers[${i}] is a foreign (non-distributable) layer, which shale cannot fetch` : `layers[${i}] has unsupported media type ${JSON.stringify(d.mediaType)}`);
        }
      });
      return { kind: 'manifest', manifest: m, mediaType: mt || MediaType.ociManifest };
    }
    throw invalidArgument(`unknown manifest media type ${JSON.stringify(mt)}`);
  } catch (e) {
    if (e instanceof ShaleError && e.code === 'InvalidArgument') throw invalidArgument(`${what}: malformed manifest: ${e.message}`, e.hint ?? 'the image in the registry is not a valid OCI or Docker image');
    throw e;
  }
}

function platformString(p: Partial<Platform>): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

function platformMatches(want: { os: string; architecture: string; variant?: string }, p: Partial<Platform> | undefined): boolean {
  if (!p || p.os !== want.os || p.architecture !== want.architecture) return false;
  if (!want.variant) return true;
  return variantOf(want.architecture, want.variant) === variantOf(p.architecture!, p.variant);
}

/** The manifest of an index for a platform (exact variant first, then the default variant). */
export function choosePlatform(index: Index, want: { os: string; architecture: string; variant?: string }): Descriptor | undefined {
  const cands = index.manifests.filter((d) => isManifestMediaType(d.mediaType ?? MediaType.ociManifest) && platformMatches(want, d.platform));
  if (cands.length <= 1) return cands[0];
  const preferred = variantOf(want.architecture, want.variant);
  return cands.find((d) => variantOf(d.platform!.architecture, d.platform!.variant) === preferred) ?? cands[0];
}

/** A failure worth another attempt (a 5xx, a body cut short). */
class Retry extends Error {}

/** A blob's bytes as one stream; a cut connection resumes with Range (or skips what it had). */
function blobStream(t: Transport, r: Reference, desc: Descriptor, opts: { signal?: AbortSignal; attempts: number; onBytes: (n: number) => void; onEnd: () => void }): Readable {
  async function* gen(): AsyncGenerator<Buffer> {
    let got = 0;
    let failures = 0;
    for (;;) {
      opts.signal?.throwIfAborted();
      const before = got;
      try {
        const headers: Record<string, string> = got > 0 ? { range: `bytes=${got}-` } : {};
        const res = await t.request('GET', `/v2/${r.path}/blobs/${desc.digest}`, { headers, scopes: [pullScope(r)], signal: opts.signal, retries: 0 });
        if (res.status !== 200 && res.status !== 206) {
          const text = await errorText(res);
          const e = registryError(`pulling blob ${desc.digest} of ${familiarRepository(r)}`, res.status, res.statusText, text);
          if (res.status >= 500 || res.status === 429) throw new Retry(e.message);
          throw e;
        }
        let skip = 0;
        if (got > 0) {
          const cr = res.header('content-range');
          const start = res.status === 206 && cr ? Number(/bytes (\d+)-/.exec(cr)?.[1]) : 0;
          if (res.status === 206 && start !== got) {
            dropBody(res);
            throw invalidArgument(`pulling blob ${desc.digest}: the registry resumed at byte ${start}, not ${got}`);
          }
          if (res.status === 200) skip = got; // no Range support: read past what we have
        }
        try {
          for await (const chunk of res.body) {
            let c = chunk as Buffer;
            if (skip > 0) {
              if (c.length <= skip) { skip -= c.length; continue; }
              c = c.subarray(skip);
              skip = 0;
            }
            got += c.length;
            if (got > desc.size) throw dataLoss(`layer ${desc.digest}: the registry sent more than the ${desc.size} bytes the manifest says`, 'the image in the registry is corrupt; nothing was stored');
            opts.onBytes(got);
            yield c;
          }
        } finally {
          dropBody(res);
        }
        if (got < desc.size) throw new Retry(`the connection closed after ${got} of ${desc.size} bytes`);
        opts.onEnd();
        return;
      } catch (e) {
        if (opts.signal?.aborted || !(e instanceof Retry || isConnectionError(e))) throw e;
        failures = got > before ? 1 : failures + 1;
        if (failures >= opts.attempts) {
          throw unavailable(`pulling layer ${shortId(desc.digest)} from ${t.domain}: the connection was lost after ${got} of ${desc.size} bytes (${failures} attempts without progress): ${(e as Error).message}`, 'nothing partial was kept; check the registry and pull again');
        }
        await sleep(Math.min(2000, 200 * 2 ** (failures - 1)), undefined, { signal: opts.signal });
      }
    }
  }
  return Readable.from(gen(), { objectMode: false });
}

/** Pull one image. Output goes to opts.progress (docker's lines); errors are ShaleErrors. */
export async function pull(engine: Store, name: string, opts: PullOptions = {}): Promise<PullResult> {
  const r = parseReference(name);
  const t = new Transport(r.domain, opts.transport);
  const progress = opts.progress ?? silent;
  const want = opts.platform ? parsePlatform(opts.platform) : { ...hostPlatform(), variant: undefined as string | undefined };
  const display = familiarName(r);
  const ref = r.digest ?? r.tag!;
  const release = engine.images.lease(['*']);
  const written = new Set<string>();
  const abort = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, abort.signal]) : abort.signal;
  let ok = false;
  try {
    // --- manifest (through an index when the name is multi-platform)
    const top = await fetchManifest(t, r, ref, signal);
    let parsed = parseManifest(top.bytes, top.mediaType, `manifest for ${display}`);
    let man = top;
    if (parsed.kind === 'index') {
      const d = choosePlatform(parsed.index, want);
      if (!d) {
        const have = parsed.index.manifests.map((m) => m.platform && platformString(m.platform)).filter(Boolean).join(', ');
        throw notFound(`no matching manifest for ${platformString(want)} in the manifest list entries`, have ? `the image is for ${have}; use --platform` : 'the image names no platforms');
      }
      man = await fetchManifest(t, r, d.digest, signal);
      if (man.bytes.length !== d.size) throw dataLoss(`manifest ${d.digest}: size mismatch: the index says ${d.size} bytes, got ${man.bytes.length}`);
      parsed = parseManifest(man.bytes, d.mediaType, `manifest ${d.digest} of ${display}`);
      if (parsed.kind !== 'manifest') throw invalidArgument(`manifest for ${display}: malformed manifest: the index entry for ${platformString(want)} is itself an index`);
    }
    const manifest = parsed.manifest;
    const id = manifest.config.digest as Digest;
    progress.line(`${r.tag && !r.digest ? r.tag : ref}: Pulling from ${r.path}`);

    const tagName = r.tag && !r.digest ? `${repository(r)}:${r.tag}` : undefined;
    const before = tagName ? engine.images.tryResolve(tagName) : undefined;
    const existing = engine.images.get(id);
    let image: ImageRecord;
    const downloaded: Digest[] = [];

    if (existing) {
      // docker: an image whose config is here needs nothing fetched; keep its own manifest
      const cfg = engine.images.config(id);
      image = engine.images.recordImage(id, existing.manifest as Digest, cfg, engine.images.layers(id), tagName ? [tagName] : []);
    } else {
      // --- config
      if (!engine.content.has(id)) {
        written.add(id);
        const path = `/v2/${r.path}/blobs/${id}`;
        const bytes = await again(t, path, async () => {
          const res = await t.request('GET', path, { scopes: [pullScope(r)], signal });
          if (res.status !== 200) throw registryError(`pulling config ${id} of ${display}`, res.status, res.statusText, await errorText(res));
          return readLimited(res, CONFIG_LIMIT, `image config of ${display}`);
        }, signal);
        engine.content.writeBytes(bytes, { digest: id, size: manifest.config.size }, `image config ${id}`);
      }
      let config: ImageConfig;
      try {
        config = engine.content.readJSON<ImageConfig>(id);
      } catch (e) {
        throw invalidArgument(`image config of ${display} is not valid JSON: ${(e as Error).message}`, 'the image in the registry is corrupt');
      }
      const diffIds = config.rootfs?.diff_ids ?? [];
      if (diffIds.length !== manifest.layers.length) throw invalidArgument(`image ${display}: its config lists ${diffIds.length} diff_ids but the manifest has ${manifest.layers.length} layers`, 'the image in the registry is malformed');
      if (opts.platform && !platformMatches(want, { os: config.os, architecture: config.architecture, variant: config.variant })) {
        throw notFound(`image with reference ${display} was found but does not match the specified platform: wanted ${platformString(want)}, actual: ${platformString({ os: config.os, architecture: config.architecture, variant: config.variant })}`);
      }

      // --- layers: only the missing ones, several at once, Pull complete in order
      const records: (LayerRecord | undefined)[] = manifest.layers.map(() => undefined);
      const todo: number[] = [];
      manifest.layers.forEach((d, i) => {
        const have = engine.content.has(d.digest) ? engine.images.getLayer(d.digest) : undefined;
        if (have) {
          if (have.diffId !== diffIds[i]) throw invalidArgument(`layer ${d.digest} is stored with diff_id ${have.diffId}, but the config of ${display} says ${diffIds[i]}`, 'the image in the registry is corrupt');
          records[i] = have;
          progress.update(shortId(d.digest), 'Already exists');
        } else todo.push(i);
      });
      // "Pull complete" goes out in layer order, as docker's (sequential) extraction prints it
      const done: boolean[] = manifest.layers.map((_, i) => records[i] !== undefined);
      const fetched = new Set<number>();
      let nextComplete = 0;
      const advance = () => {
        for (; nextComplete < done.length && done[nextComplete]; nextComplete++) {
          if (fetched.has(nextComplete)) progress.update(shortId(manifest.layers[nextComplete].digest), 'Pull complete');
        }
      };
      const seen = new Set<string>();
      const unique = todo.filter((i) => !seen.has(manifest.layers[i].digest) && seen.add(manifest.layers[i].digest));
      for (const i of unique) progress.update(shortId(manifest.layers[i].digest), 'Pulling fs layer');
      const fetchLayer = async (i: number): Promise<{ rec: LayerRecord; fetched: boolean }> => {
        const d = manifest.layers[i];
        const sid = shortId(d.digest);
        if (engine.content.has(d.digest)) {
          // the blob is here without a layer record (an interrupted pull left it): derive the record locally
          const rec = await ingestBlob(engine.content, engine.content.open(d.digest), { digest: d.digest, size: d.size }, diffIds[i]);
          progress.update(sid, 'Already exists');
          return { rec, fetched: false };
        }
        written.add(d.digest);
        progress.update(sid, 'Downloading', { current: 0, total: d.size });
        const body = blobStream(t, r, d, {
          signal,
          attempts: opts.downloadAttempts ?? 5,
          onBytes: (n) => progress.update(sid, 'Downloading', { current: n, total: d.size }),
          onEnd: () => progress.update(sid, 'Verifying Checksum'),
        });
        let rec: LayerRecord;
        try {
          rec = await ingestBlob(engine.content, body, { digest: d.digest, size: d.size }, diffIds[i]);
        } catch (e) {
          if (signal.aborted || isConnectionError(e)) throw e;
          if (e instanceof ShaleError && (e.code !== 'InvalidArgument' || e.message.includes(d.digest))) throw e;
          // the local disk, not the registry: say so
          if (errno(e) === 'ENOSPC' || errno(e) === 'EDQUOT' || /no space left|free space/i.test((e as Error).message)) {
            throw new ShaleError('Unavailable', `pulling layer ${d.digest} of ${display}: ${(e as Error).message}`, 'free some space on the data root\'s filesystem and pull again; nothing was stored');
          }
          // the decompressor or the tar reader choked on the bytes: the blob is not what its digest names
          throw dataLoss(`layer ${d.digest} of ${display} is corrupt: ${(e as Error).message}`, 'the image in the registry is damaged; nothing was stored');
        }
        progress.update(sid, 'Download complete');
        downloaded.push(d.digest as Digest);
        return { rec, fetched: true };
      };
      const tasks = unique.map((i) => async () => {
        const { rec, fetched: f } = await fetchLayer(i);
        for (const j of todo) {
          if (manifest.layers[j].digest !== manifest.layers[i].digest) continue;
          records[j] = rec;
          done[j] = true;
          if (f) fetched.add(j);
        }
        advance();
      });
      // a failed layer aborts the other downloads: this pull has failed
      await runLimited(opts.maxConcurrentDownloads ?? 3, tasks, { abort, onQueued: (k) => progress.update(shortId(manifest.layers[unique[k]].digest), 'Waiting') });
      advance();

      // --- record the image with the manifest's exact bytes
      if (!engine.content.has(man.digest)) written.add(man.digest);
      engine.content.writeBytes(man.bytes, { digest: man.digest }, `manifest ${man.digest}`);
      image = engine.images.recordImage(id, man.digest, config, records as LayerRecord[], tagName ? [tagName] : []);
    }
    engine.images.addRepoDigest(`${repository(r)}@${top.digest}`, id);
    recordSources(engine.db, r.domain, r.path, [id, ...manifest.layers.map((l) => l.digest)]);
    const upToDate = existing !== undefined && (!tagName || before?.id === id);
    const shown = r.digest ? `${familiarRepository(r)}@${r.digest}` : display;
    progress.line(`Digest: ${top.digest}`);
    progress.line(upToDate ? `Status: Image is up to date for ${shown}` : `Status: Downloaded newer image for ${shown}`);
    ok = true;
    return { image, digest: top.digest, name: fullName(r.digest ? { ...r, tag: undefined } : r), upToDate, downloaded };
  } catch (e) {
    abort.abort(e);
    throw e;
  } finally {
    release();
    // delete blobs this pull wrote that nothing references and no other live writer holds
    if (!ok && written.size) await engine.images.discard(written).catch(() => {});
  }
}

/** Tags of a repository (GET /v2/NAME/tags/list), for pull --all-tags. */
export async function listTags(name: string, opts: { transport?: TransportOptions; signal?: AbortSignal } = {}): Promise<string[]> {
  const r = parseReference(name, { noDefaultTag: true });
  const t = new Transport(r.domain, opts.transport);
  const res = await t.request('GET', `/v2/${r.path}/tags/list`, { scopes: [pullScope(r)], signal: opts.signal });
  const what = `listing tags of ${familiarRepository(r)}`;
  if (res.status !== 200) throw registryError(what, res.status, res.statusText, await errorText(res));
  const bytes = await readBody(res, {
    limit: TAG_LIST_LIMIT,
    what: `the tag list of ${familiarRepository(r)} from ${res.host}`,
    tooLarge: () => unavailable(`${what}: the tag list is larger than ${formatLimit(TAG_LIST_LIMIT)}`, 'the registry is misbehaving; pull the tags you need by name'),
  });
  let tags: unknown;
  try {
    tags = (JSON.parse(bytes.toString('utf8')) as { tags?: unknown })?.tags ?? [];
  } catch {
    tags = undefined;
  }
  if (!Array.isArray(tags) || tags.some((x) => typeof x !== 'string')) throw unavailable(`${what}: the registry answered with something that is not a tag list`, 'the registry is misbehaving');
  return (tags as string[]).sort();
}
