import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Engine, defaultRoot } from './index.js';
import { checkStore } from './check.js';
import { importTarball } from '../images/import.js';
import { busyboxTar, filesIn, shale, tempDir, tempRoot, type AfterHook } from '../testutil/index.js';

async function storeWithBusybox(t: AfterHook) {
  const root = tempRoot(t);
  const engine = Engine.open({ root });
  t.after(() => engine.close());
  const img = await importTarball(engine, createReadStream(busyboxTar(join(tempDir(t), 'bb.tar'))), { tag: 'busybox' });
  const layer = engine.images.layers(img.id)[0];
  return { root, engine, img, layer };
}

test('a healthy store checks clean', async (t) => {
  const { engine } = await storeWithBusybox(t);
  const r = await checkStore(engine);
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.info, []);
  assert.deepEqual({ blobs: r.blobs, images: r.images, layers: r.layers }, { blobs: 3, images: 1, layers: 1 });
});

test('a corrupt blob is a problem that names it, and the CLI exits 1', async (t) => {
  const { root, engine, layer } = await storeWithBusybox(t);
  const p = engine.content.path(layer.blob);
  const bytes = readFileSync(p);
  bytes[bytes.length >> 1] ^= 0xff;
  writeFileSync(p, bytes);
  const r = await checkStore(engine);
  assert.deepEqual(r.problems, [`blob ${layer.blob} does not match its digest (corrupt)`]);
  const cli = await shale(root, 'system', 'check');
  assert.equal(cli.code, 1);
  assert.match(cli.stderr, new RegExp(`problem: blob ${layer.blob} does not match its digest`));
  assert.match(cli.stdout, /checked 3 blobs, 1 images, 1 layers: 1 problem\(s\)/);
});

test('a missing layer, config or manifest blob is a problem', async (t) => {
  const { engine, img, layer } = await storeWithBusybox(t);
  rmSync(engine.content.path(layer.blob));
  let r = await checkStore(engine);
  assert.deepEqual(r.problems, [`image ${img.id}: layer blob ${layer.blob} missing`]);
  rmSync(engine.content.path(img.manifest));
  r = await checkStore(engine);
  assert.ok(r.problems.includes(`image ${img.id}: manifest blob ${img.manifest} missing`), r.problems.join('\n'));
  rmSync(engine.content.path(img.id));
  r = await checkStore(engine);
  assert.ok(r.problems.includes(`image ${img.id}: config blob missing`), r.problems.join('\n'));
});

test('orphan blobs and stale temporary files are information, not problems; --repair removes the orphans', async (t) => {
  const { root, engine } = await storeWithBusybox(t);
  const orphan = engine.content.writeBytes(Buffer.from('left by a killed load'));
  writeFileSync(join(engine.content.ingestDir, '123-deadbeef'), 'half a blob');
  // a lease left by a process that no longer exists
  engine.db.prepare('INSERT INTO leases (digest, pid, created) VALUES (?, ?, ?)').run('*', 2 ** 22 + 12345, new Date().toISOString());
  let r = await checkStore(engine);
  assert.deepEqual(r.problems, []);
  assert.ok(r.info.some((i) => /^1 unreferenced blob\(s\)/.test(i)), r.info.join('\n'));
  assert.ok(r.info.some((i) => /removed 1 stale temporary file/.test(i)), r.info.join('\n'));
  assert.deepEqual(filesIn(engine.content.ingestDir), []);
  assert.equal((engine.db.prepare('SELECT COUNT(*) AS n FROM leases').get() as { n: number }).n, 0, 'the dead lease was dropped');
  assert.ok(engine.content.has(orphan.digest), 'without --repair the orphan stays');

  const cli = await shale(root, 'system', 'check', '--repair');
  assert.equal(cli.code, 0, cli.stderr);
  assert.match(cli.stdout, /removed 1 unreferenced blob\(s\)/);
  assert.equal(engine.content.has(orphan.digest), false);
  r = await checkStore(engine);
  assert.deepEqual(r.info, []);
  assert.equal(r.blobs, 3);
});

test('a layer record with a wrong chain ID is a problem', async (t) => {
  const { engine, img } = await storeWithBusybox(t);
  engine.db.prepare('UPDATE image_layers SET chain_id = ? WHERE image_id = ?').run('sha256:' + '0'.repeat(64), img.id);
  const r = await checkStore(engine);
  assert.deepEqual(r.problems, [`image ${img.id}: layer 0 chain id is wrong`]);
});

test('the data root: --root, then SHALE_ROOT, then /var/lib/shale for root', (t) => {
  const saved = process.env.SHALE_ROOT;
  t.after(() => {
    if (saved === undefined) delete process.env.SHALE_ROOT;
    else process.env.SHALE_ROOT = saved;
  });
  process.env.SHALE_ROOT = '/tmp/somewhere';
  assert.equal(defaultRoot(), '/tmp/somewhere');
  delete process.env.SHALE_ROOT;
  if (process.getuid?.() === 0) assert.equal(defaultRoot(), '/var/lib/shale');
  const root = tempRoot(t);
  const engine = Engine.open({ root: join(root, 'nested', 'root') });
  t.after(() => engine.close());
  assert.equal(engine.root, join(root, 'nested', 'root'));
  assert.deepEqual(filesIn(engine.content.blobsDir), []);
});

test('what an interrupted create leaves is reported as information and removed by --repair', async (t) => {
  const { engine, img } = await storeWithBusybox(t);
  const { ContainerStore, newId, newState } = await import('../containers/store.js');
  const { getSnapshotter } = await import('../store/rootfs.js');
  const store = new ContainerStore(engine);
  // a record whose writable layer was never prepared (killed between the two steps)
  const id = newId();
  store.insert({ id, name: 'half', imageId: img.id, config: {} as never, hostConfig: { Mounts: [] } as never, state: newState(), created: new Date().toISOString() });
  // and a writable layer whose record never landed
  const sn = getSnapshotter(engine);
  await sn.prepare('f'.repeat(64), undefined, { 'shale.container': 'f'.repeat(64) });
  const r = await checkStore(engine);
  assert.deepEqual(r.problems, []);
  assert.equal(r.info.filter((l) => /interrupted while being created|belongs to no container/.test(l)).length, 2);
  const fixed = await checkStore(engine, { repair: true });
  assert.deepEqual(fixed.problems, []);
  assert.equal(store.tryResolve('half'), undefined);
  assert.equal(sn.exists('f'.repeat(64)), false);
  const again = await checkStore(engine);
  assert.deepEqual(again.info, []);
});
