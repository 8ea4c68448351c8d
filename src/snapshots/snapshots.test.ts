// Driver selection, mount plumbing and error wording (the drivers themselves: testsuite.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isShaleError, permissionDenied } from '../errors.js';
import { detectDriver, fuseWorks, openSnapshotter, overlayWorks, VfsSnapshotter } from './index.js';
import { isMountPoint, MOUNT_DATA_MAX, mountAll, overlayMountData, overlayMountError, OVERLAY_EPERM_HINT, unmountAll } from './mount.js';

async function withTmp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'shale-snapsel-'));
  try {
    await fn(dir);
  } finally {
    for (const m of ['a', 'b'].map((x) => join(dir, x))) if (isMountPoint(m)) await unmountAll(m, { lazy: true });
    await rm(dir, { recursive: true, force: true });
  }
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

test('an unknown driver name says which ones exist', async () => {
  await withTmp(async (dir) => {
    const e = thrown(() => openSnapshotter(dir, 'aufs'));
    assert.ok(isShaleError(e, 'InvalidArgument'));
    assert.equal(e.message, 'unknown storage driver aufs; use overlay2, vfs or fuse-overlayfs');
  });
});

test('detection: overlay2 where overlay mounts work, else the driver that already has data', async () => {
  await withTmp(async (dir) => {
    const ov = overlayWorks(join(dir, 'probe'));
    assert.deepEqual(await readdir(join(dir, 'probe')), [], 'the probe leaves nothing behind');
    const fuse = fuseWorks();
    const expected = ov.ok ? 'overlay2' : fuse.ok ? 'fuse-overlayfs' : 'vfs';
    assert.equal(detectDriver(join(dir, 'fresh')), expected, `overlay: ${ov.why ?? 'ok'}; fuse: ${fuse.why ?? 'ok'}`);
    const sn = openSnapshotter(join(dir, 'fresh2'));
    try {
      assert.equal(sn.name, expected);
      assert.equal(sn.root, join(dir, 'fresh2', expected));
      assert.ok(existsSync(join(dir, 'fresh2', expected, 'metadata.db')));
    } finally {
      sn.close();
    }
    // a root that already holds vfs data keeps using vfs
    openSnapshotter(join(dir, 'old'), 'vfs').close();
    assert.equal(detectDriver(join(dir, 'old')), 'vfs');
    const again = openSnapshotter(join(dir, 'old'));
    try {
      assert.equal(again.name, 'vfs');
    } finally {
      again.close();
    }
  });
});

test('long overlay option strings become relative to their common directory', () => {
  const short = ['lowerdir=/a/l/X:/a/l/Y', 'upperdir=/a/s/1/fs', 'workdir=/a/s/1/work'];
  assert.deepEqual(overlayMountData(short), { options: short, length: short.join(',').length });
  const root = '/var/lib/shale/overlay2';
  const lowers = Array.from({ length: 150 }, (_, i) => `${root}/l/${String(i).padStart(12, 'A')}`);
  const long = ['index=off', `lowerdir=${lowers.join(':')}`, `upperdir=${root}/snapshots/151/fs`, `workdir=${root}/snapshots/151/work`];
  assert.ok(long.join(',').length > MOUNT_DATA_MAX);
  const r = overlayMountData(long);
  assert.equal(r.cwd, root);
  assert.equal(r.options[0], 'index=off');
  assert.ok(r.options[1].startsWith('lowerdir=l/AAAAAAAAAAA0:l/'));
  assert.deepEqual(r.options.slice(2), ['upperdir=snapshots/151/fs', 'workdir=snapshots/151/work']);
  assert.ok(r.length <= MOUNT_DATA_MAX);
  // far too many layers: a clear error instead of a kernel EINVAL
  const huge = [`lowerdir=${Array.from({ length: 400 }, (_, i) => `${root}/l/${String(i).padStart(12, 'A')}`).join(':')}`];
  const e = thrown(() => overlayMountData(huge));
  assert.ok(isShaleError(e, 'InvalidArgument'));
  assert.match(e.hint ?? '', /too many layers/);
});

test('an overlay mount refused for lack of privilege says to use vfs', async () => {
  const mapped = overlayMountError(permissionDenied('mount: only root can do that'), '/x');
  assert.ok(isShaleError(mapped, 'PermissionDenied'));
  assert.equal(mapped.hint, OVERLAY_EPERM_HINT);
  assert.equal(OVERLAY_EPERM_HINT, 'overlayfs needs CAP_SYS_ADMIN; use --storage-driver vfs');
  // and for real, as an unprivileged user, when we can switch to one
  if (process.getuid?.() !== 0 || spawnSync('setpriv', ['--version']).status !== 0) return;
  await withTmp(async (dir) => {
    await chmod(dir, 0o755); // nobody must reach the target to get as far as the mount
    await mkdir(join(dir, 'a'));
    await mkdir(join(dir, 'l'));
    const mountJs = fileURLToPath(new URL('./mount.js', import.meta.url));
    const code = `import(${JSON.stringify(mountJs)}).then((m) => m.mountAll([{ type: 'overlay', source: 'overlay', options: ['lowerdir=${join(dir, 'l')}'] }], ${JSON.stringify(join(dir, 'a'))}))
      .then(() => console.log('mounted'), (e) => console.log(JSON.stringify({ code: e.code, hint: e.hint })));`;
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', code], { encoding: 'utf8', cwd: '/' });
    if (r.status !== 0 || !r.stdout.trim().startsWith('{')) {
      assert.notEqual(r.stdout.trim(), 'mounted', 'an unprivileged user mounted overlay');
      return; // could not run node as nobody here (unreadable checkout): the mapping above still holds
    }
    assert.deepEqual(JSON.parse(r.stdout), { code: 'PermissionDenied', hint: OVERLAY_EPERM_HINT });
  });
});

test('mountAll stacks mounts and unmountAll takes all of them off', async () => {
  await withTmp(async (dir) => {
    await mkdir(join(dir, 'a'));
    await mkdir(join(dir, 'b'));
    await mkdir(join(dir, 'src1'));
    await mkdir(join(dir, 'src2'));
    await writeFile(join(dir, 'src1/one'), '1');
    await writeFile(join(dir, 'src2/two'), '2');
    await mountAll([{ type: 'bind', source: join(dir, 'src1'), options: ['rbind', 'rw'] }, { type: 'bind', source: join(dir, 'src2'), options: ['rbind', 'ro'] }], join(dir, 'a'));
    assert.deepEqual(await readdir(join(dir, 'a')), ['two']);
    await unmountAll(join(dir, 'a'));
    assert.equal(isMountPoint(join(dir, 'a')), false);
    assert.deepEqual(await readdir(join(dir, 'a')), []);
    await unmountAll(join(dir, 'b')); // nothing mounted: no error
    // a failing mount in the list leaves nothing mounted behind
    const bad = mountAll([{ type: 'bind', source: join(dir, 'src1'), options: [] }, { type: 'overlay', source: 'overlay', options: [`lowerdir=${join(dir, 'missing')}`] }], join(dir, 'a'));
    await assert.rejects(bad);
    assert.equal(isMountPoint(join(dir, 'a')), false);
  });
});

test('two handles on one driver root: keys stay unique, the database is shared', async () => {
  await withTmp(async (dir) => {
    const a = new VfsSnapshotter(join(dir, 'vfs'));
    const b = new VfsSnapshotter(join(dir, 'vfs'));
    try {
      const results = await Promise.allSettled([a.prepare('same'), b.prepare('same'), a.prepare('x'), b.prepare('y')]);
      const codes = results.map((r) => (r.status === 'fulfilled' ? 'ok' : isShaleError(r.reason) ? r.reason.code : String(r.reason)));
      assert.deepEqual(codes.slice(0, 2).sort(), ['AlreadyExists', 'ok']);
      assert.deepEqual(codes.slice(2), ['ok', 'ok']);
      assert.deepEqual((await a.list()).map((i) => i.key).sort(), ['same', 'x', 'y']);
      assert.equal(b.exists('x'), true);
      assert.equal((await readdir(join(dir, 'vfs', 'snapshots'))).length, 3);
      assert.deepEqual(await readdir(join(dir, 'vfs', 'tmp')), []);
      const e = await a.prepare('z', undefined, { n: 1 as unknown as string }).catch((x: unknown) => x);
      assert.ok(isShaleError(e, 'InvalidArgument'));
      assert.match(a.path('x'), new RegExp(`^${join(dir, 'vfs', 'snapshots')}/\\d+/fs$`));
      assert.ok(existsSync(a.path('x')));
    } finally {
      a.close();
      b.close();
    }
    const db = await readFile(join(dir, 'vfs', 'metadata.db'));
    assert.ok(db.length > 0);
  });
});
