// Images in and out as files:
//   save: docker-archive (manifest.json + <config>.json + <diff_id>/layer.tar, what `docker
//         save` wrote before v25, read by docker, podman, skopeo) or an OCI image layout
//         (directory or tar; blobs as stored).
//   load: either of those, and docker 25+'s combined archive; streamed, digests checked.
import { createReadStream } from 'node:fs';
import { mkdir, writeFile, copyFile, access } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { readTar, writeTar, type TarSourceEntry } from '../archive/index.js';
import type { Store } from '../store/index.js';
import { hex, sha256, type Digest } from '../digest/index.js';
import { invalidArgument, notFound, dataLoss } from '../errors.js';
import { hostPlatform, isIndexMediaType, MediaType, type ImageConfig, type Index, type Manifest } from '../oci/index.js';
import { familiarName, parseReference, fullName } from '../reference/index.js';
import { ingestBlob, openLayerTar, type LayerRecord } from './layers.js';
import type { ImageRecord } from './store.js';

const MTIME = 0;

interface Resolved { id: Digest; names: string[] }

function resolveAll(engine: Store, refs: string[]): Resolved[] {
  const out = new Map<string, Resolved>();
  for (const ref of refs) {
    const img = engine.images.resolve(ref);
    const r = out.get(img.id) ?? { id: img.id, names: [] };
    let name: string | undefined;
    try {
      const p = parseReference(ref);
      if (!p.digest && !/^(sha256:)?[a-f0-9]{4,64}$/.test(ref)) name = familiarName(p);
    } catch { /* an ID */ }
    if (name) r.names.push(name);
    out.set(img.id, r);
  }
  return [...out.values()];
}

function fileEntry(name: string, data: Buffer): TarSourceEntry {
  return { header: { name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: MTIME }, data };
}
function dirEntry(name: string): TarSourceEntry {
  return { header: { name, type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: MTIME } };
}


export function saveDockerArchive(engine: Store, refs: string[]): Readable {
  const imgs = resolveAll(engine, refs);
  async function* entries(): AsyncGenerator<TarSourceEntry> {
    const manifest: { Config: string; RepoTags: string[] | null; Layers: string[] }[] = [];
    const repositories: Record<string, Record<string, string>> = {};
    const written = new Set<string>();
    for (const img of imgs) {
      const layers = engine.images.layers(img.id);
      const cfgName = `${hex(img.id)}.json`;
      if (!written.has(cfgName)) {
        written.add(cfgName);
        yield fileEntry(cfgName, engine.content.readBytes(img.id));
      }
      const paths: string[] = [];
      for (const l of layers) {
        const dir = hex(l.diffId);
        paths.push(`${dir}/layer.tar`);
        if (written.has(dir)) continue;
        written.add(dir);
        yield dirEntry(dir);
        yield { header: { name: `${dir}/layer.tar`, type: 'file', mode: 0o644, uid: 0, gid: 0, size: l.tarSize, mtime: MTIME }, stream: () => openLayerTar(engine.content, l) };
      }
      manifest.push({ Config: cfgName, RepoTags: img.names.length ? img.names.map((n) => (n.includes(':') && n.lastIndexOf(':') > n.lastIndexOf('/') ? n : `${n}:latest`)) : null, Layers: paths });
      for (const n of img.names) {
        const i = n.lastIndexOf(':');
        const [repo, tag] = i > n.lastIndexOf('/') ? [n.slice(0, i), n.slice(i + 1)] : [n, 'latest'];
        (repositories[repo] ??= {})[tag] = layers.length ? hex(layers[layers.length - 1].diffId) : '';
      }
    }
    yield fileEntry('manifest.json', Buffer.from(JSON.stringify(manifest)));
    yield fileEntry('repositories', Buffer.from(JSON.stringify(repositories)));
  }
  return writeTar(entries());
}

/** OCI image layout entries (oci-layout, index.json, blobs/sha256/*) with blobs as stored. */
function ociLayoutEntries(engine: Store, refs: string[]): { index: Index; blobs: Digest[] } {
  const imgs = resolveAll(engine, refs);
  const blobs = new Set<Digest>();
  const index: Index = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] };
  for (const img of imgs) {
    const rec = engine.images.get(img.id)!;
    const desc = engine.images.manifestDescriptor(img.id);
    const m = engine.images.manifest(img.id);
    blobs.add(rec.manifest);
    blobs.add(m.config.digest as Digest);
    for (const l of m.layers) blobs.add(l.digest as Digest);
    const names = img.names.length ? img.names : [undefined];
    for (const n of names) {
      const annotations: Record<string, string> = {};
      if (n) {
        const p = parseReference(n);
        annotations['io.containerd.image.name'] = fullName(p);
        annotations['org.opencontainers.image.ref.name'] = p.tag ?? 'latest';
      }
      index.manifests.push({ ...desc, ...(n ? { annotations } : {}) });
    }
  }
  return { index, blobs: [...blobs] };
}

export function saveOciArchive(engine: Store, refs: string[]): Readable {
  const { index, blobs } = ociLayoutEntries(engine, refs);
  async function* entries(): AsyncGenerator<TarSourceEntry> {
    yield fileEntry('oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
    yield fileEntry('index.json', Buffer.from(JSON.stringify(index)));
    yield dirEntry('blobs');
    yield dirEntry('blobs/sha256');
    for (const b of blobs) {
      const info = engine.content.info(b);
      if (!info) throw notFound(`blob ${b} is missing from the store`, 'run `shale system check`');
      yield { header: { name: `blobs/sha256/${hex(b)}`, type: 'file', mode: 0o644, uid: 0, gid: 0, size: info.size, mtime: MTIME }, file: engine.content.path(b) };
    }
  }
  return writeTar(entries());
}

export async function saveOciDir(engine: Store, refs: string[], dir: string): Promise<void> {
  const { index, blobs } = ociLayoutEntries(engine, refs);
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  for (const b of blobs) {
    const dest = join(dir, 'blobs', 'sha256', hex(b));
    try { await access(dest); continue; } catch { /* copy it */ }
    await copyFile(engine.content.path(b), dest);
  }
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(join(dir, 'index.json'), JSON.stringify(index));
}

// ---------------------------------------------------------------- load

const SMALL = 4 << 20; // entries up to this size are kept in memory until the manifest is known

export interface LoadResult {
  images: { id: Digest; tags: string[] }[];
}

function clean(name: string): string {
  return name.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
}

/** Load a docker-archive or OCI-layout tar (as `docker load` does). */
export async function loadArchive(engine: Store, source: AsyncIterable<Buffer>, opts: { onProgress?: (msg: string) => void } = {}): Promise<LoadResult> {
  const release = engine.images.lease(['*']);
  let released = false;
  const small = new Map<string, Buffer>();
  const big = new Map<string, LayerRecord>();
  const ingested: Digest[] = [];
  try {
    for await (const { header, body } of readTar(source)) {
      if (header.type !== 'file') continue;
      const name = clean(header.name);
      if (header.size <= SMALL) {
        const chunks: Buffer[] = [];
        for await (const c of body) chunks.push(Buffer.from(c));
        small.set(name, Buffer.concat(chunks));
      } else {
        const m = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(name);
        const rec = await ingestBlob(engine.content, Readable.from(body), { digest: m ? `sha256:${m[1]}` : undefined, size: header.size });
        ingested.push(rec.blob);
        big.set(name, rec);
      }
    }
    const layerAt = async (path: string, expected: { digest?: string; diffId?: string; size?: number }): Promise<LayerRecord> => {
      const p = clean(path);
      let rec = big.get(p);
      if (!rec) {
        const data = small.get(p);
        if (!data) throw invalidArgument(`the archive does not contain ${path}`, 'the archive is incomplete');
        rec = await ingestBlob(engine.content, Readable.from([data]), { digest: expected.digest, size: expected.size });
        ingested.push(rec.blob);
        big.set(p, rec);
      }
      if (expected.digest && rec.blob !== expected.digest) throw dataLoss(`layer ${path}: digest mismatch: expected ${expected.digest}, got ${rec.blob}`);
      if (expected.diffId && rec.diffId !== expected.diffId) throw dataLoss(`layer ${path}: its content has digest ${rec.diffId} but the image config says ${expected.diffId}`, 'the archive is corrupt');
      return rec;
    };
    const result: LoadResult = { images: [] };
    const manifestJson = small.get('manifest.json');
    if (manifestJson) {
      const entries = JSON.parse(manifestJson.toString('utf8')) as { Config: string; RepoTags?: string[] | null; Layers: string[] }[];
      if (!Array.isArray(entries)) throw invalidArgument('manifest.json is not a list', 'the archive is malformed');
      for (const e of entries) {
        const cfgBytes = small.get(clean(e.Config));
        if (!cfgBytes) throw invalidArgument(`the archive does not contain the config ${e.Config}`);
        const config = JSON.parse(cfgBytes.toString('utf8')) as ImageConfig;
        const diffIds = config.rootfs?.diff_ids ?? [];
        if (diffIds.length !== e.Layers.length) throw invalidArgument(`config ${e.Config} lists ${diffIds.length} layers, manifest.json ${e.Layers.length}`);
        const layers: LayerRecord[] = [];
        for (let i = 0; i < e.Layers.length; i++) {
          const m = /blobs\/sha256\/([a-f0-9]{64})$/.exec(e.Layers[i]);
          layers.push(await layerAt(e.Layers[i], { diffId: diffIds[i], digest: m ? `sha256:${m[1]}` : undefined }));
        }
        const img = engine.images.createImageFromConfigBytes(cfgBytes, layers, e.RepoTags ?? []);
        result.images.push({ id: img.id, tags: e.RepoTags ?? [] });
        opts.onProgress?.(e.RepoTags?.length ? e.RepoTags.map((t) => `Loaded image: ${familiarName(parseReference(t))}`).join('\n') : `Loaded image ID: ${img.id}`);
      }
      return result;
    }
    const indexJson = small.get('index.json');
    if (!indexJson) throw invalidArgument('not an image archive: neither manifest.json nor index.json found', 'use a file written by `docker save`, `podman save` or `shale save`');
    const blob = async (d: string): Promise<Buffer> => {
      const data = small.get(`blobs/sha256/${hex(d)}`);
      if (!data) throw invalidArgument(`the archive does not contain blob ${d}`);
      if (sha256(data) !== d) throw dataLoss(`blob ${d} in the archive does not match its digest`);
      return data;
    };
    const visit = async (idx: Index, inherited?: Record<string, string>): Promise<void> => {
      const manifests = idx.manifests ?? [];
      const plat = hostPlatform();
      for (const d of manifests) {
        const ann = { ...inherited, ...d.annotations };
        if (isIndexMediaType(d.mediaType)) {
          await visit(JSON.parse((await blob(d.digest)).toString('utf8')) as Index, ann);
          continue;
        }
        if (d.platform && (d.platform.os !== plat.os || d.platform.architecture !== plat.architecture) && manifests.some((x) => x.platform?.architecture === plat.architecture)) continue;
        const mBytes = await blob(d.digest);
        const m = JSON.parse(mBytes.toString('utf8')) as Manifest;
        if (!m.config || !Array.isArray(m.layers)) continue; // not an image manifest (attestation etc.)
        const cfgBytes = await blob(m.config.digest);
        const config = JSON.parse(cfgBytes.toString('utf8')) as ImageConfig;
        const layers: LayerRecord[] = [];
        for (let i = 0; i < m.layers.length; i++) {
          const l = m.layers[i];
          layers.push(await layerAt(`blobs/sha256/${hex(l.digest)}`, { digest: l.digest, size: l.size, diffId: config.rootfs?.diff_ids?.[i] }));
        }
        engine.content.writeBytes(cfgBytes);
        engine.content.writeBytes(mBytes);
        const name = ann['io.containerd.image.name'] ?? ann['org.opencontainers.image.ref.name'];
        const tags = name ? [name.includes('/') || name.includes(':') ? name : `${name}`] : [];
        const validTags = tags.filter((t) => { try { parseReference(t); return true; } catch { return false; } });
        const rec: ImageRecord = engine.images.recordImage(m.config.digest as Digest, d.digest as Digest, config, layers, validTags);
        result.images.push({ id: rec.id, tags: validTags });
        opts.onProgress?.(validTags.length ? validTags.map((t) => `Loaded image: ${familiarName(parseReference(t))}`).join('\n') : `Loaded image ID: ${rec.id}`);
      }
    };
    await visit(JSON.parse(indexJson.toString('utf8')) as Index);
    return result;
  } catch (e) {
    // leave the store as it was: drop blobs this load wrote that nothing references, except
    // those another live writer may be about to record (its lease began before the blob landed)
    release();
    released = true;
    await engine.images.discard(ingested);
    throw e;
  } finally {
    if (!released) release();
  }
}

export function openFile(path: string): Readable {
  return createReadStream(path, { highWaterMark: 1 << 20 });
}
