// Image verbs over the engine: summaries (docker images / GET /images/json), inspect, history,
// remove (with the blob and snapshot cleanup docker's rmi does), tag, and the transports
// (import, load, save, bootstrap) re-exported so adapters need only the engine.
import { shortId, type ImageRecord, type RemoveResult } from '../images/store.js';
import { familiarName, parseReference } from '../reference/index.js';
import type { History } from '../oci/index.js';
import { emit } from '../store/events.js';
import { containerUsingImage, gcSnapshots } from './hooks.js';
import type { Engine } from './index.js';
import type { Filters } from './containers.js';
import { invalidArgument } from '../errors.js';

import { importTarball as importLayer, type ImportOptions } from '../images/import.js';
import { applyChanges } from '../builder/config.js';
import type { Readable } from 'node:stream';
export { loadArchive, openFile, saveDockerArchive, saveOciArchive, saveOciDir } from '../images/transport.js';
export { bootstrapBusybox } from '../images/bootstrap.js';
export { shortId, type ImageRecord } from '../images/store.js';

export interface ImageSummary {
  id: string;
  created?: string;
  /** familiar names (busybox:latest) */
  tags: string[];
  /** familiar name@digest */
  digests: string[];
  size: number;
  shared: number;
  unique: number;
  containers: number;
  labels: Record<string, string>;
}

/** Every image with docker's sizes: its size, and the parts shared with other images and its own. */
export function imageSummaries(engine: Engine, o: { filters?: Filters } = {}): ImageSummary[] {
  const uses = engine.images.layerUseCounts();
  const counts = new Map<string, number>();
  for (const c of engine.containers.list()) counts.set(c.imageId, (counts.get(c.imageId) ?? 0) + 1);
  let res: ImageSummary[] = engine.images.list().map((img) => {
    let shared = 0;
    let unique = 0;
    for (const l of engine.images.layers(img.id)) ((uses.get(l.blob) ?? 0) > 1 ? (shared += l.size) : (unique += l.size));
    let labels: Record<string, string> = {};
    try { labels = engine.images.config(img.id).config?.Labels ?? {}; } catch { /* config unreadable: shown without labels */ }
    return {
      id: img.id, created: img.created, size: img.size, shared, unique, containers: counts.get(img.id) ?? 0, labels,
      tags: engine.images.tagsOf(img.id).map((t) => familiarName(parseReference(t))),
      digests: engine.images.repoDigestsOf(img.id).map((t) => familiarName(parseReference(t))),
    };
  });
  for (const [k, values] of Object.entries(o.filters ?? {})) {
    if (!values.length) continue;
    switch (k) {
      case 'dangling': res = res.filter((s) => values.some((v) => (s.tags.length === 0) === (v === 'true' || v === '1'))); break;
      case 'reference': res = res.filter((s) => values.some((v) => s.tags.some((t) => refMatch(t, v)))); break;
      case 'label': res = res.filter((s) => values.every((v) => { const j = v.indexOf('='); return j < 0 ? v in s.labels : s.labels[v.slice(0, j)] === v.slice(j + 1); })); break;
      case 'before': case 'since': {
        const ref = engine.images.tryResolve(values[0]);
        if (!ref) throw invalidArgument(`No such image: ${values[0]}`);
        const t = ref.created ?? '';
        res = res.filter((s) => (k === 'before' ? (s.created ?? '') < t : (s.created ?? '') > t));
        break;
      }
      default: throw invalidArgument(`invalid filter '${k}'`);
    }
  }
  return res;
}

/** docker's reference filter: a glob over the familiar name (with or without the tag). */
function refMatch(tag: string, pattern: string): boolean {
  const re = (p: string) => new RegExp('^' + p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]') + '$');
  const name = tag.slice(0, tag.lastIndexOf(':') > tag.lastIndexOf('/') ? tag.lastIndexOf(':') : tag.length);
  return re(pattern).test(tag) || re(pattern).test(name);
}

/** docker image inspect's object. */
export function inspectImage(engine: Engine, img: ImageRecord): Record<string, unknown> {
  const cfg = engine.images.config(img.id);
  return {
    Id: img.id,
    RepoTags: engine.images.tagsOf(img.id).map((t) => familiarName(parseReference(t))),
    RepoDigests: engine.images.repoDigestsOf(img.id).map((t) => familiarName(parseReference(t))),
    Parent: '',
    Comment: cfg.comment ?? cfg.history?.[cfg.history.length - 1]?.comment ?? '',
    Created: cfg.created ?? '0001-01-01T00:00:00Z',
    Container: cfg.container ?? '',
    ContainerConfig: {},
    DockerVersion: '',
    Author: cfg.author ?? '',
    Config: cfg.config ?? {},
    Architecture: cfg.architecture,
    Variant: cfg.variant,
    Os: cfg.os,
    Size: img.size,
    VirtualSize: img.size,
    GraphDriver: { Name: engine.snapshots.name, Data: null },
    RootFS: { Type: 'layers', Layers: cfg.rootfs?.diff_ids ?? [] },
    Metadata: { LastTagTime: '0001-01-01T00:00:00Z' },
    Descriptor: engine.images.manifestDescriptor(img.id),
  };
}

export interface HistoryItem {
  /** the image ID on the newest row, '<missing>' on the rest (as after a pull) */
  id: string;
  created?: string;
  createdBy: string;
  size: number;
  comment: string;
  tags: string[];
}

/** docker history: newest first; each row's layer size, 0 for empty_layer rows. */
export function imageHistory(engine: Engine, ref: string): HistoryItem[] {
  const img = engine.images.resolve(ref);
  const cfg = engine.images.config(img.id);
  const layers = engine.images.layers(img.id);
  const hist: History[] = cfg.history?.length ? cfg.history : layers.map(() => ({ created_by: '', empty_layer: false }));
  let li = 0;
  const rows: HistoryItem[] = hist.map((h) => ({
    id: '<missing>', created: h.created, createdBy: h.created_by ?? '', size: h.empty_layer ? 0 : layers[li++]?.size ?? 0, comment: h.comment ?? '', tags: [],
  }));
  rows.reverse();
  if (rows.length) {
    rows[0].id = img.id;
    rows[0].tags = engine.images.tagsOf(img.id).map((t) => familiarName(parseReference(t)));
  }
  return rows;
}

/** docker rmi of one reference, then the blobs and unpacked layers nothing uses any more. */
export async function removeImage(engine: Engine, ref: string, o: { force?: boolean } = {}): Promise<RemoveResult> {
  const r = engine.images.remove(ref, { force: o.force, inUse: (id) => containerUsingImage(engine, id) });
  for (const u of r.untagged) emit(engine.root, 'image', 'untag', r.deleted[0] ?? u, { name: u });
  for (const d of r.deleted) emit(engine.root, 'image', 'delete', d, { name: shortId(d) });
  await collectGarbage(engine);
  return r;
}

/** Blobs and snapshots that no image, container, cache entry or live writer uses. */
export async function collectGarbage(engine: Engine): Promise<void> {
  await engine.images.gc();
  await gcSnapshots(engine);
}

export function tagImage(engine: Engine, source: string, target: string): void {
  engine.images.tag(source, target);
  const img = engine.images.resolve(target);
  emit(engine.root, 'image', 'tag', img.id, { name: familiarName(parseReference(target)) });
}

/** docker import: a rootfs tar as a one-layer image; `changes` are Dockerfile instructions for its config. */
export async function importTarball(engine: Engine, source: Readable, o: Omit<ImportOptions, 'changes'> & { changes?: string[] } = {}): Promise<ImageRecord> {
  const { changes, ...rest } = o;
  const img = await importLayer(engine, source, { ...rest, changes: (c) => { c.config ??= {}; applyChanges(c.config, changes ?? []); } });
  emit(engine.root, 'image', 'import', img.id, { name: o.tag ?? img.id });
  return img;
}
