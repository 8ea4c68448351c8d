// What a killed rm or rmi leaves and system check now sees: runtime state of a container the
// store no longer has, and unpacked layers no image uses. --repair removes both.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Engine } from './index.js';
import { checkStore } from './check.js';
import { getSnapshotter } from '../store/rootfs.js';
import { shaleOk, tempRoot } from '../testutil/index.js';

test('runtime state of a removed container and unpacked layers of a removed image: reported, then repaired', async (t) => {
  const root = tempRoot(t);
  await shaleOk(root, 'bootstrap', 'busybox');
  await shaleOk(root, 'run', '--rm', 'busybox', 'true'); // unpacks busybox's layer and init layer
  const ghost = randomBytes(32).toString('hex');
  const state = join(root, 'runtime', 'runc', ghost);
  mkdirSync(state, { recursive: true });
  writeFileSync(join(state, 'state.json'), '{}');

  const engine = Engine.open({ root });
  t.after(() => engine.close());
  // an rmi killed after the image row went and before its unpacked layers did
  const id = engine.images.resolve('busybox').id;
  engine.images.remove(id, { force: true });
  assert.equal(engine.images.tryResolve(id), undefined);
  const before = (await getSnapshotter(engine).list()).length;
  assert.ok(before >= 2);

  const r = await checkStore(engine);
  assert.deepEqual(r.problems, []);
  assert.ok(r.info.includes(`runtime state of container ${ghost.slice(0, 12)} (runc) belongs to no container; \`system check --repair\` deletes it`), r.info.join('\n'));
  assert.ok(r.info.includes(`${before} unpacked layer(s) no image or container uses; \`system check --repair\` or \`image prune\` removes them`), r.info.join('\n'));

  const fixed = await checkStore(engine, { repair: true });
  assert.deepEqual(fixed.problems, []);
  assert.ok(!existsSync(state));
  assert.equal((await getSnapshotter(engine).list()).length, 0);
  const again = await checkStore(engine);
  assert.deepEqual(again.info, []);
});

test('a killed build\'s temporary context and FROM directories under <root>/tmp: reported, then removed; a live owner\'s kept', async (t) => {
  const root = tempRoot(t);
  const engine = Engine.open({ root });
  t.after(() => engine.close());
  // a pid that is surely dead: a child that has exited
  const { spawnSync } = await import('node:child_process');
  const dead = spawnSync('true').pid!;
  const gone = [join(root, 'tmp', `build-ctx-${dead}-aB3dE`), join(root, 'tmp', `build-from-${dead}-x1`)];
  const live = join(root, 'tmp', `build-ctx-${process.pid}-live`);
  for (const d of [...gone, live]) {
    mkdirSync(join(d, 'sub'), { recursive: true });
    writeFileSync(join(d, 'sub', 'f'), 'x');
  }
  const r = await checkStore(engine);
  for (const d of gone) assert.ok(r.info.includes(`temporary directory ${d} was left by an interrupted command; \`system check --repair\` removes it`), r.info.join('\n'));
  assert.ok(!r.info.some((i) => i.includes(live)), 'a live process\'s directory is not reported');
  await checkStore(engine, { repair: true });
  for (const d of gone) assert.ok(!existsSync(d));
  assert.ok(existsSync(join(live, 'sub', 'f')));
});

test('an unpack killed halfway (extract-<pid>-… on a layer no image uses): removed by --repair once its process is dead', async (t) => {
  const root = tempRoot(t);
  await shaleOk(root, 'bootstrap', 'busybox');
  await shaleOk(root, 'run', '--rm', 'busybox', 'true');
  const engine = Engine.open({ root });
  t.after(() => engine.close());
  const sn = getSnapshotter(engine);
  const chain = engine.images.layers(engine.images.resolve('busybox').id)[0].chainId;
  const { spawnSync } = await import('node:child_process');
  const dead = spawnSync('true').pid!;
  await sn.prepare(`extract-${dead}-0123456789abcdef`, chain);
  await sn.prepare(`extract-${process.pid}-fedcba9876543210`, chain); // under way: kept
  engine.images.remove('busybox', { force: true });
  await checkStore(engine, { repair: true });
  const keys = (await sn.list()).map((s) => s.key).sort();
  assert.deepEqual(keys, [chain, `extract-${process.pid}-fedcba9876543210`].sort(), 'the dead unpack went; the live one and the layer under it stay');
  await sn.remove(`extract-${process.pid}-fedcba9876543210`);
  await checkStore(engine, { repair: true });
  assert.deepEqual((await sn.list()).map((s) => s.key), []);
});
