// Containers at scale: one from a 120-layer image (overlay2, whose mount options must fit in
// a page), and 50 containers from one image that each write 10 kB: on overlay2 the image is
// on disk once plus their writes, on vfs it is copied 50 times, and `system df` says so.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Engine } from '../engine/index.js';
import { diskUsage } from './inspect.js';
import { ContainerStore } from './store.js';
import { getSnapshotter } from '../store/rootfs.js';
import { createContainer, mountRootfs } from './index.js';
import { busybox, destroyEngine, dirEntry, fileBytes, fileEntry, layeredImage, run, tempEngine } from './testutil.js';

const CLI = fileURLToPath(new URL('../../bin/shale.js', import.meta.url));

async function pool<T>(n: number, width: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < n) {
      const i = next++;
      out[i] = await fn(i);
    }
  }));
  return out;
}

describe('a 120-layer image on overlay2', () => {
  let engine: Engine;
  after(() => destroyEngine(engine));
  test('runs, with every layer visible and the top one winning', async () => {
    engine = tempEngine('overlay2');
    const base = await busybox(engine);
    const layers = Array.from({ length: 119 }, (_, i) => [dirEntry('layers'), fileEntry(`layers/f${i}`, `${i}\n`), fileEntry('layers/top', `${i}\n`)]);
    const img = await layeredImage(engine, base, layers, 'tall:latest');
    assert.equal(engine.images.layers(img.id).length, 120);
    const r = await run(engine, 'tall', ['sh', '-c', 'ls /layers | wc -l; cat /layers/top /layers/f0 /layers/f118'], { rm: true });
    assert.equal(r.stderr, '');
    assert.equal(r.stdout.replace(/ +/g, ''), '120\n118\n0\n118\n');
    assert.equal(r.code, 0);
  });
});

for (const driver of ['overlay2', 'vfs']) {
  describe(`50 containers from one image on ${driver}`, () => {
    let engine: Engine;
    after(() => destroyEngine(engine));
    test('bytes on disk: the image once (overlay2) or 50 times (vfs), plus their writes', async () => {
      engine = tempEngine(driver);
      const img = await busybox(engine);
      const snaps = join(engine.root, driver, 'snapshots');
      await run(engine, 'busybox', ['true'], { rm: true }); // unpack
      const imageBytes = fileBytes(snaps);
      assert.ok(imageBytes >= engine.images.get(img.id)!.size);
      const WRITE = 10_000;
      // the first 8 write through runc; the others are created and written through their
      // mounted rootfs (the same overlay/vfs writable layer, without a runtime's start cost)
      const results = await pool(8, 2, (i) => run(engine, 'busybox', ['sh', '-c', `head -c ${WRITE} /dev/zero > /w${i}`], { name: `c${i}` }));
      for (const r of results) assert.equal(r.code, 0, r.stderr);
      await pool(42, 2, async (j) => {
        const c = await createContainer(engine, { image: 'busybox', cmd: ['true'], name: `c${j + 8}` });
        // creating copies nothing on overlay2: an empty upper dir, whatever the image's size
        if (driver === 'overlay2') assert.deepEqual(await getSnapshotter(engine).usage(c.id), { size: 0, inodes: 1 });
        const m = await mountRootfs(engine, c);
        try {
          writeFileSync(join(m.path, `w${j + 8}`), Buffer.alloc(WRITE));
        } finally {
          await m.release();
        }
      });
      const total = fileBytes(snaps);
      const containers = new ContainerStore(engine).list();
      assert.equal(containers.length, 50);
      const perContainer = await Promise.all(containers.map((c) => diskUsage(engine, c)));
      if (driver === 'overlay2') {
        assert.ok(total >= imageBytes + 50 * WRITE, `${total} >= ${imageBytes} + writes`);
        assert.ok(total <= imageBytes + 50 * WRITE + 50 * 512, `overlay2 holds the image once: ${total} bytes for a ${imageBytes}-byte image`);
        for (const s of perContainer) assert.equal(s, WRITE);
      } else {
        const imgSize = engine.images.get(img.id)!.size;
        assert.ok(total >= 50 * imgSize + imageBytes, `vfs copies the image per container: ${total} bytes for a ${imgSize}-byte image`);
        for (const s of perContainer) assert.ok(s >= imgSize + WRITE);
      }
      // system df's Containers line reports the same
      const df = spawnSync(process.execPath, [CLI, '--root', engine.root, '--storage-driver', driver, 'system', 'df', '--format', '{{.Type}}|{{.TotalCount}}|{{.Size}}'], { encoding: 'utf8' });
      assert.equal(df.status, 0, df.stderr);
      const line = df.stdout.split('\n').find((l) => l.startsWith('Containers|'))!;
      const [, count, size] = line.split('|');
      assert.equal(count, '50');
      const m = /^([\d.]+)(B|kB|MB|GB)$/.exec(size)!;
      const bytes = Number(m[1]) * { B: 1, kB: 1e3, MB: 1e6, GB: 1e9 }[m[2] as 'B']!;
      const sum = perContainer.reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(bytes - sum) / sum < 0.01, `system df says ${size}, containers hold ${sum}`);
      if (driver === 'vfs') assert.ok(bytes >= 50 * engine.images.get(img.id)!.size);
      else assert.ok(bytes < 2 * 50 * WRITE);
    });
  });
}
