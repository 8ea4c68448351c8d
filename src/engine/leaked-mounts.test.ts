// Mounts a killed command leaves under the data root (an init-layer mount, an overlay probe,
// a container's rootfs mounted for cp): system check reports each, --repair unmounts them, and
// a running container's rootfs and foreign mounts are left alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { shale, shaleOk, tempRoot } from '../testutil/index.js';

const mounted = (p: string) => readFileSync('/proc/self/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === p);
function tmpfsAt(p: string): void {
  mkdirSync(p, { recursive: true });
  const r = spawnSync('mount', ['-t', 'tmpfs', 'tmpfs', p], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

test('system check finds mounts left by killed commands; --repair takes them off', async (t) => {
  const root = tempRoot(t);
  await shaleOk(root, 'bootstrap', 'busybox');
  const created = (await shaleOk(root, 'create', 'busybox', 'true')).trim();
  const running = (await shaleOk(root, 'run', '-d', 'busybox', 'sleep', '60')).trim();
  try {
    const dead = spawnSync('true').pid!; // a pid whose process is gone
    const init = join(root, `tmp-init-${dead}-abcdef`);
    const probe = join(root, `.overlay-probe-${dead}-abcdef`, 'm');
    const rootfs = join(root, 'containers', created, 'rootfs');
    const foreign = join(root, 'somebody-elses');
    for (const p of [init, probe, rootfs, foreign]) tmpfsAt(p);

    const check = await shale(root, 'system', 'check');
    const said = check.stdout + check.stderr;
    assert.equal(check.code, 0, said);
    for (const p of [init, probe, rootfs]) assert.ok(said.includes(`mount ${p} was left by an interrupted command`), said);
    assert.match(said, /somebody-elses is mounted under the data root by something shale does not know; left alone/);
    assert.ok(!said.includes(`containers/${running}/rootfs was left`), said);

    const repair = await shale(root, 'system', 'check', '--repair');
    assert.equal(repair.code, 0, repair.stderr);
    for (const p of [init, probe, rootfs]) assert.ok(!mounted(p), `${p} still mounted`);
    assert.ok(mounted(foreign));
    assert.ok(!existsSync(join(root, `tmp-init-${dead}-abcdef`)) && !existsSync(join(root, `.overlay-probe-${dead}-abcdef`)), 'their directories stayed');
    assert.ok(mounted(join(root, 'containers', running, 'rootfs')), 'the running container lost its rootfs');
    const ps = await shaleOk(root, 'ps', '-q', '--no-trunc');
    assert.match(ps, new RegExp(running));
  } finally {
    await shale(root, 'rm', '-f', running);
    // whatever is still mounted under the root (the foreign mount, anything a failure left) comes off before the root goes
    spawnSync('sh', ['-c', `grep -o " ${root}/[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l`]);
  }
});
