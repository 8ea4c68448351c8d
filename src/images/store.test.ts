import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Engine } from '../engine/index.js';
import { importTarball } from './import.js';
import { ingestTar } from './layers.js';
import { chainIds } from './store.js';
import { sha256 } from '../digest/index.js';
import { isShaleError } from '../errors.js';
import type { ImageConfig } from '../oci/index.js';
import { blobFiles, busyboxTar, DetRandom, duBytes, gnuTar, tempDir, tempRoot, type AfterHook } from '../testutil/index.js';

function openEngine(t: AfterHook): Engine {
  const engine = Engine.open({ root: tempRoot(t) });
  t.after(() => engine.close());
  return engine;
}

/** Build an image on `baseId` that adds one layer made from `dir` (what a RUN/COPY step does). */
async function buildOn(engine: Engine, baseId: string, layerTar: string, tag: string) {
  const base = engine.images.config(baseId);
  const baseLayers = engine.images.layers(baseId);
  const layer = await ingestTar(engine.content, createReadStream(layerTar), 'gzip');
  const created = new Date().toISOString();
  const config: ImageConfig = {
    ...base,
    created,
    rootfs: { type: 'layers', diff_ids: [...base.rootfs.diff_ids, layer.diffId] },
    history: [...(base.history ?? []), { created, created_by: 'COPY data /data # buildkit' }],
  };
  const img = engine.images.createImage(config, [...baseLayers, layer], [tag]);
  return { img, layer };
}

test('two images sharing a base store the shared layers once (bytes on disk), and rmi frees only what is unshared', async (t) => {
  const engine = openEngine(t);
  const work = tempDir(t);
  const bbTar = busyboxTar(join(work, 'busybox.tar'));

  const one = await importTarball(engine, createReadStream(bbTar), { tag: 'bb:one' });
  const baseLayer = engine.images.layers(one.id)[0];
  assert.equal(baseLayer.diffId, sha256(readFileSync(bbTar)), 'the diff_id is the sha256 of the imported tar');
  assert.ok(baseLayer.blobSize > 500_000, `the busybox layer is a real layer (${baseLayer.blobSize} bytes)`);
  const afterOne = duBytes(engine.root);

  // the same rootfs again, as a second image (its own config: another created time)
  const two = await importTarball(engine, createReadStream(bbTar), { tag: 'bb:two' });
  assert.notEqual(two.id, one.id);
  assert.equal(engine.images.layers(two.id)[0].blob, baseLayer.blob, 'both images use the same layer blob');
  const afterTwo = duBytes(engine.root);
  const grewTwo = afterTwo - afterOne;
  assert.ok(grewTwo < baseLayer.blobSize / 4, `a second image over the same layer grew the store by ${grewTwo} bytes; the layer is ${baseLayer.blobSize}`);

  // a derived image: the base layers plus one new layer of 256 kB of incompressible data
  const layerDir = join(work, 'layer');
  mkdirSync(join(layerDir, 'data'), { recursive: true });
  writeFileSync(join(layerDir, 'data', 'random.bin'), new DetRandom('derived-layer').bytes(256 * 1024));
  const layerTar = join(work, 'layer.tar');
  gnuTar(layerDir, layerTar);
  const { img: derived, layer } = await buildOn(engine, one.id, layerTar, 'derived:1');
  const afterDerived = duBytes(engine.root);
  const grewDerived = afterDerived - afterTwo;
  assert.ok(grewDerived >= layer.blobSize, `the store grew by at least the new layer (${grewDerived} >= ${layer.blobSize})`);
  assert.ok(grewDerived < layer.blobSize + 100_000, `the store grew by about the new layer only: ${grewDerived} bytes for a ${layer.blobSize}-byte layer`);
  assert.ok(grewDerived < layer.blobSize + baseLayer.blobSize / 2, 'the base layer was not stored again');

  t.diagnostic(`busybox layer blob ${baseLayer.blobSize} B; second image +${grewTwo} B; derived image with a ${layer.blobSize} B layer +${grewDerived} B`);
  const derivedLayers = engine.images.layers(derived.id);
  assert.deepEqual(derivedLayers.map((l) => l.blob), [baseLayer.blob, layer.blob]);
  assert.deepEqual(derivedLayers.map((l) => l.chainId), chainIds([baseLayer.diffId, layer.diffId]));
  assert.equal(engine.images.layerUseCounts().get(baseLayer.blob), 3);
  assert.equal(derived.size, baseLayer.size + layer.size);
  assert.equal(layer.size, 256 * 1024, "docker's layer size counts the file bytes");

  // blobs: 1 shared layer + 1 new layer + (config + manifest) per image
  const blobs = () => blobFiles(engine.root);
  assert.equal(blobs().length, 2 + 3 * 2);

  const rmi = async (ref: string) => {
    engine.images.remove(ref);
    return engine.images.gc();
  };
  let gone = await rmi('derived:1');
  assert.deepEqual(new Set(gone), new Set([derived.id, derived.manifest, layer.blob]), 'removing the derived image deletes only its own blobs');
  assert.equal(blobs().length, 1 + 2 * 2);
  assert.equal(engine.images.getLayer(layer.blob), undefined, 'the unshared layer row went too');

  gone = await rmi('bb:one');
  assert.deepEqual(new Set(gone), new Set([one.id, one.manifest]), 'the shared layer stays while bb:two uses it');
  assert.ok(engine.content.has(baseLayer.blob));
  assert.ok(engine.images.getLayer(baseLayer.blob));
  assert.equal(blobs().length, 3);
  assert.equal(engine.images.tryResolve('bb:two')?.id, two.id, 'the other image still resolves');

  gone = await rmi('bb:two');
  assert.ok(gone.includes(baseLayer.blob), 'the last user going deletes the shared layer');
  assert.deepEqual(blobs(), [], 'nothing is left in content/blobs');
  assert.equal(engine.images.getLayer(baseLayer.blob), undefined);
  assert.deepEqual(engine.images.list(), []);
});

test('remove: a name among several only untags; an ID with several names needs force', async (t) => {
  const engine = openEngine(t);
  const work = tempDir(t);
  const img = await importTarball(engine, createReadStream(busyboxTar(join(work, 'bb.tar'))), { tag: 'a:1' });
  engine.images.tag('a:1', 'b:2');
  engine.images.tag(img.id, 'localhost:5000/c');
  assert.deepEqual(engine.images.tagsOf(img.id), ['docker.io/library/a:1', 'docker.io/library/b:2', 'localhost:5000/c:latest']);

  const r = engine.images.remove('b:2');
  assert.deepEqual(r, { untagged: ['b:2'], deleted: [] });
  assert.ok(engine.images.get(img.id));
  assert.equal(engine.images.tryResolve('b:2'), undefined);

  assert.throws(() => engine.images.remove(img.id.slice(7, 19)), (e: unknown) => isShaleError(e, 'Conflict') && /referenced in multiple repositories/.test(e.message));
  const f = engine.images.remove(img.id.slice(7, 19), { force: true });
  assert.deepEqual(f.deleted, [img.id]);
  assert.deepEqual(new Set(f.untagged), new Set(['a:1', 'localhost:5000/c:latest']));
  assert.equal(engine.images.get(img.id), undefined);
  assert.deepEqual(engine.images.allTags(), []);
});

test('an image in use by a container is not removed; -f only untags it', async (t) => {
  const engine = openEngine(t);
  const work = tempDir(t);
  const img = await importTarball(engine, createReadStream(busyboxTar(join(work, 'bb.tar'))), { tag: 'used:1' });
  const inUse = (id: string) => (id === img.id ? 'c0ffee' : undefined);
  assert.throws(() => engine.images.remove('used:1', { inUse }), (e: unknown) => isShaleError(e, 'Conflict') && /container c0ffee/.test(e.message));
  const r = engine.images.remove('used:1', { inUse, force: true });
  assert.deepEqual(r, { untagged: ['used:1'], deleted: [] });
  assert.ok(engine.images.get(img.id), 'the image stays while a container uses it');
  await engine.images.gc();
  assert.ok(engine.content.has(engine.images.layers(img.id)[0].blob));
});

test('resolve: by name, full ID, ID prefix, and manifest digest; unknown names are NotFound', async (t) => {
  const engine = openEngine(t);
  const work = tempDir(t);
  const img = await importTarball(engine, createReadStream(busyboxTar(join(work, 'bb.tar'))), { tag: 'busybox' });
  assert.equal(engine.images.resolve('busybox').id, img.id);
  assert.equal(engine.images.resolve('busybox:latest').id, img.id);
  assert.equal(engine.images.resolve('docker.io/library/busybox:latest').id, img.id);
  assert.equal(engine.images.resolve(img.id).id, img.id);
  assert.equal(engine.images.resolve(img.id.slice(7, 19)).id, img.id);
  assert.equal(engine.images.resolve(`busybox@${img.manifest}`).id, img.id);
  assert.throws(() => engine.images.resolve('busybox:other'), (e: unknown) => isShaleError(e, 'NotFound') && /No such image: busybox:other/.test(e.message));
});

test('recordImage refuses layers that do not match the config diff_ids', async (t) => {
  const engine = openEngine(t);
  const work = tempDir(t);
  const img = await importTarball(engine, createReadStream(busyboxTar(join(work, 'bb.tar'))));
  const layers = engine.images.layers(img.id);
  const cfg = engine.images.config(img.id);
  const bad: ImageConfig = { ...cfg, rootfs: { type: 'layers', diff_ids: [sha256('other')] } };
  assert.throws(() => engine.images.createImage(bad, layers, ['bad:1']), /diff_id/);
  const tooMany: ImageConfig = { ...cfg, rootfs: { type: 'layers', diff_ids: [layers[0].diffId, layers[0].diffId] } };
  assert.throws(() => engine.images.createImage(tooMany, layers, ['bad:2']), /2 diff_ids but the manifest has 1 layers/);
  assert.equal(engine.images.tryResolve('bad:1'), undefined);
  assert.equal(engine.images.list().length, 1);
});

test('gc keeps blobs under a live lease and takes them once it is released', async (t) => {
  const engine = openEngine(t);
  const { digest } = engine.content.writeBytes(Buffer.from('in flight'));
  const release = engine.images.lease([digest]);
  assert.deepEqual(await engine.images.gc(), []);
  assert.ok(engine.content.has(digest));
  release();
  assert.deepEqual(await engine.images.gc(), [digest]);
  assert.equal(engine.content.has(digest), false);
});
