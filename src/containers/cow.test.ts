// Copy-on-write through real containers (runc) on overlay2 and vfs: a first write copies the
// whole file up, chmod and chown copy up, a delete leaves a whiteout, rm -r + mkdir makes an
// opaque directory, the lower layers never change (checksums), a second container does not
// see the first one's changes, ps -s equals the bytes in the writable layer, and commit
// turns the writable layer into a layer that reproduces the same tree.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { lstatSync } from 'node:fs';
import { join } from 'node:path';
import { readTar } from '../archive/index.js';
import type { Engine } from '../engine/index.js';
import { getSnapshotter } from '../store/rootfs.js';
import { xattrsOf } from '../sys/index.js';
import { sizeRw } from './inspect.js';
import { busybox, destroyEngine, dirEntry, fileBytes, fileEntry, layeredImage, run, tempEngine, treeSums } from './testutil.js';

const BIG = 1 << 20;
const CHMOD = 50 * 1024;
const CHOWN = 60 * 1024;

for (const driver of ['overlay2', 'vfs']) {
  describe(`copy-on-write on ${driver}`, () => {
    let engine: Engine;
    let lowerDirs: string[] = [];
    let before1: Map<string, string>[] = [];
    before(async () => {
      engine = tempEngine(driver);
      const base = await busybox(engine);
      await layeredImage(engine, base, [[
        dirEntry('data'),
        fileEntry('data/big', randomBytes(BIG)),
        fileEntry('data/chmodme', randomBytes(CHMOD)),
        fileEntry('data/chownme', randomBytes(CHOWN)),
        fileEntry('data/delme', 'x'),
        fileEntry('data/untouched', 'u'),
        dirEntry('data/rmdir'),
        fileEntry('data/rmdir/a', 'a'),
        fileEntry('data/rmdir/b', 'b'),
      ]], 'cow:latest');
    });
    after(() => destroyEngine(engine));

    test('every copy-up case, lower layers unchanged', async () => {
      const sn = getSnapshotter(engine);
      assert.equal(sn.name, driver);
      const img = engine.images.resolve('cow');
      const top = engine.images.layers(img.id).at(-1)!.chainId;
      // the image is unpacked on first create: make a container first, then checksum the lowers
      const r0 = await run(engine, 'cow', ['true'], { rm: true });
      assert.equal(r0.code, 0);
      lowerDirs = sn.lowerDirs!(top);
      assert.ok(lowerDirs.length >= 1);
      before1 = lowerDirs.map(treeSums);

      const script = 'echo x >> /data/big && chmod 600 /data/chmodme && chown 1:1 /data/chownme && rm /data/delme && rm -r /data/rmdir && mkdir /data/rmdir && echo n > /data/rmdir/new && ls /data/rmdir';
      const r = await run(engine, 'cow', ['sh', '-c', script], { name: `cow-${driver}` });
      assert.equal(r.stderr, '');
      assert.equal(r.code, 0);
      assert.equal(r.stdout, 'new\n');

      const changes = (await sn.changes(r.c.id)).map((c) => `${c.kind} ${c.path}`);
      for (const want of ['C /data', 'C /data/big', 'C /data/chmodme', 'C /data/chownme', 'D /data/delme', 'A /data/rmdir/new']) assert.ok(changes.includes(want), `${want} in ${changes.join(', ')}`);
      assert.ok(!changes.some((c) => c.endsWith('/data/untouched')), 'an untouched file is not copied up');
      assert.ok(!changes.includes('A /data/rmdir/a') && !changes.includes('C /data/rmdir/a'));

      // sizes: the whole files were copied up, not just the changed bytes
      const expected = BIG + 2 + CHMOD + CHOWN + 2;
      assert.equal(await sizeRw(engine, r.c), expected);

      if (driver === 'overlay2') {
        const upper = (await sn.mounts(r.c.id))[0].options.find((o) => o.startsWith('upperdir='))!.slice(9);
        assert.equal(lstatSync(join(upper, 'data/big')).size, BIG + 2, 'first write copies the whole file up');
        const cm = lstatSync(join(upper, 'data/chmodme'));
        assert.equal(cm.size, CHMOD, 'chmod copies the whole file up');
        assert.equal(cm.mode & 0o777, 0o600);
        const co = lstatSync(join(upper, 'data/chownme'));
        assert.equal(co.size, CHOWN, 'chown copies the whole file up');
        assert.equal(co.uid, 1);
        const wh = lstatSync(join(upper, 'data/delme'));
        assert.ok(wh.isCharacterDevice() && wh.rdev === 0, 'a delete leaves a 0/0 whiteout');
        assert.equal((await xattrsOf(join(upper, 'data/rmdir'))).get('trusted.overlay.opaque')?.toString(), 'y', 'rm -r + mkdir makes the dir opaque');
        assert.throws(() => lstatSync(join(upper, 'data/untouched')));
        // ps -s is du of the upper dir
        assert.equal(await sizeRw(engine, r.c), fileBytes(upper));
      }

      // the layer tar of the changes carries OCI whiteouts
      const names: string[] = [];
      for await (const e of readTar(sn.diffTar(r.c.id))) names.push(e.header.name.replace(/^\.?\//, ''));
      assert.ok(names.includes('data/.wh.delme'), names.join(' '));
      if (driver === 'overlay2') assert.ok(names.includes('data/rmdir/.wh..wh..opq'), names.join(' '));
      else assert.ok(names.includes('data/rmdir/.wh.a') || names.includes('data/rmdir/.wh..wh..opq'), names.join(' '));

      // lower layers are byte-for-byte what they were
      assert.deepEqual(lowerDirs.map(treeSums), before1);

      // another container sees the image, not the first one's changes
      const r2 = await run(engine, 'cow', ['sh', '-c', 'cat /data/delme; ls /data/rmdir; stat -c %a /data/chmodme'], { rm: true });
      assert.equal(r2.stdout, 'xa\nb\n644\n');
    });

    test('commit turns the writable layer into a layer with the same tree', async () => {
      const { ContainerStore } = await import('./store.js');
      const c = new ContainerStore(engine).resolve(`cow-${driver}`);
      const { ingestTar } = await import('../images/layers.js');
      const sn = getSnapshotter(engine);
      const layer = await ingestTar(engine.content, sn.diffTar(c.id), 'gzip');
      const base = engine.images.get(c.imageId)!;
      const cfg = engine.images.config(base.id);
      engine.images.createImage({ ...cfg, rootfs: { type: 'layers', diff_ids: [...cfg.rootfs.diff_ids, layer.diffId] }, history: [...(cfg.history ?? []), { created_by: 'commit' }] },
        [...engine.images.layers(base.id).map(({ chainId: _x, ...l }) => l), layer], ['cow:committed']);
      const r = await run(engine, 'cow:committed', ['sh', '-c', 'ls /data; ls /data/rmdir; stat -c "%a %u %s" /data/chmodme /data/chownme /data/big'], { rm: true });
      assert.equal(r.stdout, 'big\nchmodme\nchownme\nrmdir\nuntouched\nnew\n600 0 51200\n644 1 61440\n644 0 1048578\n');
      assert.deepEqual(lowerDirs.map(treeSums), before1);
    });
  });
}
