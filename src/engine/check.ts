// `shale system check`: every blob's digest, every reference from metadata to content, and
// every image's layers. Orphans (blobs nothing references, left by a crash) are reported as
// information, and removed with --repair; they never make the store unusable.
import { checkContainers, checkMounts, checkRuntimeState, checkSnapshots } from './hooks.js';
import type { Engine } from './index.js';
import { chainIds } from '../images/store.js';

export interface CheckResult {
  problems: string[];
  info: string[];
  blobs: number;
  images: number;
  layers: number;
}

export async function checkStore(engine: Engine, opts: { repair?: boolean } = {}): Promise<CheckResult> {
  const problems: string[] = [];
  const info: string[] = [];
  const blobs = engine.content.list();
  for (const d of blobs) {
    if (!(await engine.content.check(d))) problems.push(`blob ${d} does not match its digest (corrupt)`);
  }
  const have = new Set<string>(blobs);
  const images = engine.images.list();
  let layers = 0;
  for (const img of images) {
    if (!have.has(img.id)) { problems.push(`image ${img.id}: config blob missing`); continue; }
    if (!have.has(img.manifest)) problems.push(`image ${img.id}: manifest blob ${img.manifest} missing`);
    let cfg;
    try { cfg = engine.images.config(img.id); } catch { problems.push(`image ${img.id}: config is not valid JSON`); continue; }
    const ls = engine.images.layers(img.id);
    layers += ls.length;
    const diffIds = cfg.rootfs?.diff_ids ?? [];
    if (diffIds.length !== ls.length) problems.push(`image ${img.id}: config has ${diffIds.length} diff_ids, store has ${ls.length} layers`);
    const chains = chainIds(diffIds);
    ls.forEach((l, i) => {
      if (!have.has(l.blob)) problems.push(`image ${img.id}: layer blob ${l.blob} missing`);
      if (l.diffId !== diffIds[i]) problems.push(`image ${img.id}: layer ${i} diff_id ${l.diffId} != config ${diffIds[i]}`);
      if (l.chainId !== chains[i]) problems.push(`image ${img.id}: layer ${i} chain id is wrong`);
    });
    try {
      const m = engine.images.manifest(img.id);
      if (m.config.digest !== img.id) problems.push(`image ${img.id}: manifest names config ${m.config.digest}`);
      m.layers.forEach((l, i) => { if (ls[i] && l.digest !== ls[i].blob) problems.push(`image ${img.id}: manifest layer ${i} is ${l.digest}, store has ${ls[i].blob}`); });
    } catch { /* reported above */ }
  }
  for (const t of engine.images.allTags()) if (!engine.images.get(t.image_id)) problems.push(`tag ${t.name} points at missing image ${t.image_id}`);
  const referenced = engine.images.referencedBlobs();
  const orphans = blobs.filter((d) => !referenced.has(d));
  const leases = engine.images.liveLeases();
  if (orphans.length) {
    if (opts.repair) {
      const gone = await engine.images.gc();
      info.push(`removed ${gone.length} unreferenced blob(s)`);
    } else info.push(`${orphans.length} unreferenced blob(s) (left by an interrupted write${leases.digests.size ? ' or a write under way' : ''}); \`shale system check --repair\` or \`shale image prune\` removes them`);
  }
  const stale = await engine.content.cleanIngest(leases.digests.size ? 3600_000 : 0);
  if (stale) info.push(`removed ${stale} stale temporary file(s) from interrupted writes`);
  const c = await checkContainers(engine, opts.repair);
  problems.push(...c.problems);
  info.push(...c.info);
  const mounts = await checkMounts(engine, opts.repair);
  info.push(...mounts.info);
  info.push(...(await checkRuntimeState(engine, opts.repair)).info);
  info.push(...(await checkSnapshots(engine, opts.repair)).info);
  return { problems, info, blobs: blobs.length, images: images.length, layers };
}
