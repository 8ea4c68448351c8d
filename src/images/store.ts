// The image store: images (config + manifest blobs), their layers, and tags, in the metadata
// DB over the content store. A layer used by several images is stored once; removing an
// image deletes only the blobs no other image (or live writer) still uses.
import type { ContentStore } from '../content/index.js';
import { tx, type DB } from '../db.js';
import { sha256, type Digest } from '../digest/index.js';
import { conflict, invalidArgument, notFound } from '../errors.js';
import { MediaType, type Descriptor, type ImageConfig, type Manifest } from '../oci/index.js';
import { familiarName, normalizeTag, parseReference, repository } from '../reference/index.js';
import type { LayerRecord } from './layers.js';
import { pidAlive } from '../sys/index.js';

export interface ImageRecord {
  id: Digest;
  manifest: Digest;
  created?: string;
  added: string;
  size: number;
}

export interface ImageLayer extends LayerRecord {
  chainId: Digest;
}

export interface RemoveResult {
  untagged: string[];
  deleted: string[];
}

/** ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)) */
export function chainIds(diffIds: string[]): Digest[] {
  const out: Digest[] = [];
  for (const d of diffIds) out.push(out.length === 0 ? (d as Digest) : sha256(`${out[out.length - 1]} ${d}`));
  return out;
}

export function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

export class ImageStore {
  constructor(readonly db: DB, readonly content: ContentStore) {}

  // ---- leases: blobs a live process is writing, which GC must not take ----
  lease(digests: string[]): () => void {
    const ins = this.db.prepare('INSERT INTO leases (digest, pid, created) VALUES (?, ?, ?)');
    const now = new Date().toISOString();
    const rows: (number | bigint)[] = [];
    tx(this.db, () => { for (const d of digests) rows.push(ins.run(d, process.pid, now).lastInsertRowid); });
    // release only this lease's rows: another lease on the same digest in this process keeps its own
    return () => {
      const del = this.db.prepare('DELETE FROM leases WHERE rowid = ?');
      tx(this.db, () => { for (const r of rows) del.run(r); });
    };
  }

  /**
   * Lease an image itself for a container being created (`holder` is its ID): while a live
   * process holds it, rmi treats the image as in use. Take it, then check the image is still
   * there (resolve -> lease -> get): rmi's check and delete are one transaction.
   */
  leaseImage(id: string, holder: string): () => void {
    return this.lease([`${id}#${holder}`]);
  }

  /** The holder of a live image lease on `id`, if any. */
  imageLeaseHolder(id: string): string | undefined {
    const rows = this.db.prepare("SELECT digest, pid FROM leases WHERE substr(digest, 1, length(?) + 1) = ? || '#'").all(id, id) as { digest: string; pid: number }[];
    const live = rows.find((r) => pidAlive(r.pid));
    return live?.digest.slice(id.length + 1);
  }

  /**
   * The pid of a live process whose '*' lease (a build, a load) began before this image was
   * added: the image is that process's work in progress (a build's intermediate image, its
   * result before the tag), which prune must not take.
   */
  private wildcardHolder(id: string): number | undefined {
    const img = this.db.prepare('SELECT added FROM images WHERE id = ?').get(id) as { added: string } | undefined;
    const { since, sinceHolder } = this.liveLeases();
    return img && since !== undefined && Date.parse(img.added) >= since ? sinceHolder : undefined;
  }


  /** A container that uses the image, straight from the containers table (in the DB when containers exist). */
  private containerRowUsing(id: string): string | undefined {
    if (!this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'containers'").get()) return undefined;
    const r = this.db.prepare('SELECT id FROM containers WHERE image_id = ? LIMIT 1').get(id) as { id: string } | undefined;
    return r?.id.slice(0, 12);
  }

  // ---- layers ----
  getLayer(blob: string): LayerRecord | undefined {
    const r = this.db.prepare('SELECT blob, diff_id, media_type, blob_size, size, tar_size FROM layers WHERE blob = ?').get(blob) as { blob: Digest; diff_id: Digest; media_type: string; blob_size: number; size: number; tar_size: number } | undefined;
    return r && { blob: r.blob, diffId: r.diff_id, mediaType: r.media_type, blobSize: r.blob_size, size: r.size, tarSize: r.tar_size };
  }

  layerByDiffId(diffId: string): LayerRecord | undefined {
    const r = this.db.prepare('SELECT blob FROM layers WHERE diff_id = ? LIMIT 1').get(diffId) as { blob: string } | undefined;
    return r && this.getLayer(r.blob);
  }

  putLayer(l: LayerRecord): void {
    this.db.prepare('INSERT OR IGNORE INTO layers (blob, diff_id, media_type, blob_size, size, tar_size) VALUES (?, ?, ?, ?, ?, ?)').run(l.blob, l.diffId, l.mediaType, l.blobSize, l.size, l.tarSize);
  }

  // ---- images ----
  /** Write config + manifest for a new image and record it (with tags) in one transaction. */
  createImage(config: ImageConfig, layers: LayerRecord[], tags: string[] = []): ImageRecord {
    return this.createImageFromConfigBytes(Buffer.from(JSON.stringify(config)), layers, tags);
  }

  /** Same, keeping the config's exact bytes (its digest is the image ID). */
  createImageFromConfigBytes(configBytes: Buffer, layers: LayerRecord[], tags: string[] = []): ImageRecord {
    const config = JSON.parse(configBytes.toString('utf8')) as ImageConfig;
    const cfg = this.content.writeBytes(configBytes);
    const manifest: Manifest = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: cfg.digest, size: cfg.size },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.blob, size: l.blobSize })),
    };
    const m = this.content.writeBytes(Buffer.from(JSON.stringify(manifest)));
    return this.recordImage(cfg.digest, m.digest, config, layers, tags);
  }

  /** Record an image whose config and manifest blobs are already in the content store. */
  recordImage(id: Digest, manifest: Digest, config: ImageConfig, layers: LayerRecord[], tags: string[] = []): ImageRecord {
    const diffIds = config.rootfs?.diff_ids ?? [];
    if (diffIds.length !== layers.length) throw invalidArgument(`image config lists ${diffIds.length} diff_ids but the manifest has ${layers.length} layers`, 'the image is malformed');
    layers.forEach((l, i) => {
      if (l.diffId !== diffIds[i]) throw invalidArgument(`layer ${i} has diff_id ${l.diffId} but the config says ${diffIds[i]}`, 'the image is corrupt');
    });
    const chains = chainIds(diffIds);
    const rec: ImageRecord = { id, manifest, created: config.created, added: new Date().toISOString(), size: layers.reduce((a, l) => a + l.size, 0) };
    const names = tags.map(normalizeTag);
    tx(this.db, () => {
      for (const l of layers) this.putLayer(l);
      const exists = this.db.prepare('SELECT 1 FROM images WHERE id = ?').get(id);
      if (!exists) {
        this.db.prepare('INSERT INTO images (id, manifest, created, added, size) VALUES (?, ?, ?, ?, ?)').run(id, manifest, rec.created ?? null, rec.added, rec.size);
        const ins = this.db.prepare('INSERT INTO image_layers (image_id, idx, blob, chain_id) VALUES (?, ?, ?, ?)');
        layers.forEach((l, i) => ins.run(id, i, l.blob, chains[i]));
      } else {
        this.db.prepare('UPDATE images SET manifest = ? WHERE id = ?').run(manifest, id);
      }
      for (const n of names) this.setTag(n, id);
    });
    return this.get(id)!;
  }

  private setTag(name: string, id: string): void {
    this.db.prepare('INSERT INTO tags (name, image_id, created) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id, created = excluded.created').run(name, id, new Date().toISOString());
  }

  addRepoDigest(name: string, id: string): void {
    this.db.prepare('INSERT OR REPLACE INTO repo_digests (name, image_id) VALUES (?, ?)').run(name, id);
  }

  get(id: string): ImageRecord | undefined {
    return this.db.prepare('SELECT id, manifest, created, added, size FROM images WHERE id = ?').get(id) as ImageRecord | undefined;
  }

  list(): ImageRecord[] {
    return this.db.prepare('SELECT id, manifest, created, added, size FROM images ORDER BY added DESC').all() as ImageRecord[];
  }

  tagsOf(id: string): string[] {
    return (this.db.prepare('SELECT name FROM tags WHERE image_id = ? ORDER BY name').all(id) as { name: string }[]).map((r) => r.name);
  }

  repoDigestsOf(id: string): string[] {
    return (this.db.prepare('SELECT name FROM repo_digests WHERE image_id = ? ORDER BY name').all(id) as { name: string }[]).map((r) => r.name);
  }

  allTags(): { name: string; image_id: Digest; created: string }[] {
    return this.db.prepare('SELECT name, image_id, created FROM tags ORDER BY name').all() as { name: string; image_id: Digest; created: string }[];
  }

  /** Find an image by name[:tag], name@digest, full ID, or an unambiguous ID prefix. */
  resolve(ref: string): ImageRecord {
    const found = this.tryResolve(ref);
    if (!found) throw notFound(`No such image: ${ref}`, 'see `shale images`; pull, load, import or build it first');
    return found;
  }

  tryResolve(ref: string): ImageRecord | undefined {
    const idish = ref.replace(/^sha256:/, '');
    if (/^[a-f0-9]{4,64}$/.test(idish)) {
      const rows = this.db.prepare('SELECT id FROM images WHERE id LIKE ?').all(`sha256:${idish}%`) as { id: string }[];
      if (rows.length === 1) return this.get(rows[0].id);
      if (rows.length > 1 && idish.length < 64) throw invalidArgument(`ambiguous image ID prefix ${ref}`, 'use more characters of the ID');
    }
    let r;
    try {
      r = parseReference(ref);
    } catch (e) {
      if (/^[a-f0-9]{4,64}$/.test(idish)) return undefined;
      throw e;
    }
    if (r.digest) {
      const row = this.db.prepare('SELECT image_id FROM repo_digests WHERE name = ?').get(`${repository(r)}@${r.digest}`) as { image_id: string } | undefined;
      if (row) return this.get(row.image_id);
      const byManifest = this.db.prepare('SELECT id FROM images WHERE manifest = ?').get(r.digest) as { id: string } | undefined;
      return byManifest && this.get(byManifest.id);
    }
    const row = this.db.prepare('SELECT image_id FROM tags WHERE name = ?').get(`${repository(r)}:${r.tag}`) as { image_id: string } | undefined;
    return row && this.get(row.image_id);
  }

  tag(source: string, target: string): void {
    const img = this.resolve(source);
    tx(this.db, () => this.setTag(normalizeTag(target), img.id));
  }

  manifest(id: string): Manifest {
    const rec = this.get(id);
    if (!rec) throw notFound(`No such image: ${id}`);
    return this.content.readJSON<Manifest>(rec.manifest);
  }

  config(id: string): ImageConfig {
    return this.content.readJSON<ImageConfig>(id);
  }

  layers(id: string): ImageLayer[] {
    const rows = this.db.prepare('SELECT l.blob, l.diff_id, l.media_type, l.blob_size, l.size, l.tar_size, il.chain_id FROM image_layers il JOIN layers l ON l.blob = il.blob WHERE il.image_id = ? ORDER BY il.idx').all(id) as { blob: Digest; diff_id: Digest; media_type: string; blob_size: number; size: number; tar_size: number; chain_id: Digest }[];
    return rows.map((r) => ({ blob: r.blob, diffId: r.diff_id, mediaType: r.media_type, blobSize: r.blob_size, size: r.size, tarSize: r.tar_size, chainId: r.chain_id }));
  }

  /** How many images use each layer blob. */
  layerUseCounts(): Map<string, number> {
    const rows = this.db.prepare('SELECT blob, COUNT(DISTINCT image_id) AS n FROM image_layers GROUP BY blob').all() as { blob: string; n: number }[];
    return new Map(rows.map((r) => [r.blob, r.n]));
  }

  /**
   * Remove a name or an image (docker rmi). A name with other names on the same image only
   * untags; the last name, or an ID, deletes the image. `inUse` says whether a container uses it.
   */
  remove(ref: string, opts: { force?: boolean; inUse?: (id: string) => string | undefined } = {}): RemoveResult {
    const img = this.resolve(ref);
    const tags = this.tagsOf(img.id);
    const res: RemoveResult = { untagged: [], deleted: [] };
    let byName: string | undefined;
    try {
      const r = parseReference(ref);
      const n = `${repository(r)}:${r.tag}`;
      if (!r.digest && tags.includes(n)) byName = n;
    } catch { /* an ID */ }
    if (byName && tags.length > 1) {
      tx(this.db, () => this.db.prepare('DELETE FROM tags WHERE name = ?').run(byName));
      res.untagged.push(familiarName(parseReference(byName)));
      return res;
    }
    if (!byName && tags.length > 1 && !opts.force) {
      throw conflict(`unable to delete ${shortId(img.id)} (must be forced) - image is referenced in multiple repositories`, 'remove it by name, or use -f');
    }
    // a container that uses the image, or one being created from it (an image lease): checked
    // in the same transaction as the delete, so a create cannot slip in between
    const user = (): string | undefined => opts.inUse?.(img.id) ?? this.containerRowUsing(img.id) ?? this.imageLeaseHolder(img.id)?.slice(0, 12);
    const inUse = (u: string) => conflict(`conflict: unable to remove repository reference "${ref}" (must force) - container ${u} is using its referenced image ${shortId(img.id)}`, 'remove the container first (shale rm), or use -f');
    const digests = this.repoDigestsOf(img.id);
    const kept = tx(this.db, () => {
      const u = user();
      if (u && !opts.force) throw inUse(u);
      const building = u ? undefined : this.wildcardHolder(img.id);
      if (building !== undefined && !opts.force) throw conflict(`unable to delete ${shortId(img.id)}: a build or load in progress (pid ${building}) is using it`, 'wait for it to finish');
      if (u || building !== undefined) {
        // docker: with -f the names go, the image stays while a container uses it
        this.db.prepare('DELETE FROM tags WHERE image_id = ?').run(img.id);
        return true;
      }
      this.db.prepare('DELETE FROM tags WHERE image_id = ?').run(img.id);
      this.db.prepare('DELETE FROM repo_digests WHERE image_id = ?').run(img.id);
      this.db.prepare('DELETE FROM image_layers WHERE image_id = ?').run(img.id);
      this.db.prepare('DELETE FROM images WHERE id = ?').run(img.id);
      return false;
    });
    if (kept) {
      res.untagged.push(...tags.map((t) => familiarName(parseReference(t))));
      return res;
    }
    res.untagged.push(...tags.map((t) => familiarName(parseReference(t))), ...digests.map((d) => familiarName(parseReference(d))));
    res.deleted.push(img.id);
    return res;
  }

  /** Blobs that metadata references: image configs, manifests, layers. */
  referencedBlobs(): Set<string> {
    const s = new Set<string>();
    for (const r of this.db.prepare('SELECT id, manifest FROM images').all() as { id: string; manifest: string }[]) {
      s.add(r.id);
      s.add(r.manifest);
    }
    for (const r of this.db.prepare('SELECT DISTINCT blob FROM image_layers').all() as { blob: string }[]) s.add(r.blob);
    for (const r of this.db.prepare('SELECT DISTINCT blob FROM build_cache').all() as { blob: string }[]) s.add(r.blob);
    return s;
  }

  /** Digests leased by live processes; '*' leases protect every blob written since they began. */
  liveLeases(): { digests: Set<string>; since?: number; sinceHolder?: number } {
    const rows = this.db.prepare('SELECT digest, pid, created FROM leases').all() as { digest: string; pid: number; created: string }[];
    const live = new Set<string>();
    const dead: number[] = [];
    let since: number | undefined;
    let sinceHolder: number | undefined;
    for (const r of rows) {
      if (!pidAlive(r.pid)) { dead.push(r.pid); continue; }
      live.add(r.digest);
      const t = Date.parse(r.created) - 1000;
      if (r.digest === '*' && t < (since ?? Infinity)) { since = t; sinceHolder = r.pid; }
    }
    if (dead.length) tx(this.db, () => { for (const p of new Set(dead)) this.db.prepare('DELETE FROM leases WHERE pid = ?').run(p); });
    return { digests: live, since, sinceHolder };
  }


  /**
   * Undo a failed write (load, pull): delete the given blobs unless metadata references them
   * or another live writer may be about to (its lease covers them). Call after releasing
   * your own lease.
   */
  async discard(digests: Iterable<string>): Promise<void> {
    const keep = this.referencedBlobs();
    const leases = this.liveLeases();
    for (const d of digests) {
      if (keep.has(d) || leases.digests.has(d)) continue;
      if (leases.since !== undefined && (this.content.mtime(d) ?? 0) >= leases.since) continue;
      await this.content.delete(d);
    }
  }

  /** Delete layer rows and blobs nothing references. Returns the deleted blob digests. */
  async gc(extraRoots: Set<string> = new Set()): Promise<string[]> {
    const keep = this.referencedBlobs();
    const leases = this.liveLeases();
    for (const d of leases.digests) keep.add(d);
    for (const d of extraRoots) keep.add(d);
    const gone: string[] = [];
    tx(this.db, () => {
      for (const r of this.db.prepare('SELECT blob FROM layers').all() as { blob: string }[]) {
        if (!keep.has(r.blob)) {
          this.db.prepare('DELETE FROM layers WHERE blob = ?').run(r.blob);
        }
      }
    });
    for (const d of this.content.list()) {
      if (!keep.has(d)) {
        if (leases.since !== undefined && (this.content.mtime(d) ?? 0) >= leases.since) continue;
        await this.content.delete(d);
        gone.push(d);
      }
    }
    return gone;
  }

  /** Descriptor of an image's manifest, for save and push. */
  manifestDescriptor(id: string): Descriptor {
    const rec = this.get(id)!;
    const info = this.content.info(rec.manifest)!;
    const m = this.content.readJSON<Manifest>(rec.manifest);
    return { mediaType: m.mediaType ?? MediaType.ociManifest, digest: rec.manifest, size: info.size };
  }
}
