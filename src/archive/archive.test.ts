// Round trips through the archive code that fail if a feature breaks: metadata preserved by
// tarDirectory -> applyLayer, whiteouts and opaque dirs in both modes, overlay uppers back to
// OCI whiteouts, docker-compatible change lists, reproducible bytes, and GNU tar interop.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmod, chown, lchown, link, lstat, lutimes, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import {
  applyLayer, changesDirs, tarChanges, tarDirectory, tarOverlayUpper, readTar, writeTar, compressor, openUncompressed,
  type Change, type TarHeader, type TarSourceEntry,
} from './index.js';
import { encodeHeader, END_OF_ARCHIVE } from './tar/header.js';
import { mknod, setXattr, xattrsOf, xattrsOfTree } from '../sys/index.js';
import { walk } from './walk.js';

const T0 = 1600000000; // fixed mtimes (whole seconds: tar keeps seconds)
// a v2 file capability (cap_setuid,cap_setgid,... + bit 31), bytes >= 0x80 included
const CAP = Buffer.from('01000002ff000080000000000000000000000000', 'hex');
const USER_FOO = Buffer.from([0x62, 0x61, 0x72, 0x00, 0xff, 0x0a, 0x3d, 0x80]); // "bar\0\xff\n=\x80"

let work: string;
let seq = 0;
before(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'shale-archive-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});
async function tmp(name: string): Promise<string> {
  const d = path.join(work, `${seq++}-${name}`);
  await mkdir(d, { recursive: true });
  return d;
}

async function collect(r: AsyncIterable<Buffer | Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const stream = (b: Buffer) => Readable.from([b]);

async function headers(tar: Buffer): Promise<TarHeader[]> {
  const out: TarHeader[] = [];
  for await (const e of readTar(stream(tar))) out.push(e.header);
  return out;
}

/** A layer from literal entries. */
function layer(entries: { name: string; type?: TarHeader['type']; data?: string; mode?: number; linkname?: string; uid?: number; xattrs?: Map<string, Buffer> }[]): Readable {
  return writeTar(entries.map((e): TarSourceEntry => {
    const type = e.type ?? 'file';
    const data = e.data !== undefined ? Buffer.from(e.data) : undefined;
    return {
      header: { name: e.name, type, mode: e.mode ?? (type === 'dir' ? 0o755 : 0o644), uid: e.uid ?? 0, gid: e.uid ?? 0, size: data?.length ?? 0, mtime: T0, linkname: e.linkname, xattrs: e.xattrs },
      data,
    };
  }));
}

async function ls(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

interface Desc { type: string; mode: string; uid: number; gid: number; mtime: number; size?: number; sha?: string; target?: string; rdev?: number; xattrs?: Record<string, string> }
/** Everything tar is meant to carry about a tree (not inode numbers), by relative path. */
async function describeTree(root: string, opts: { xattrs?: boolean; dirMtimes?: boolean } = {}): Promise<Record<string, Desc>> {
  const out: Record<string, Desc> = {};
  const xattrs = opts.xattrs === false ? new Map() : await xattrsOfTree(root);
  for await (const e of walk(root)) {
    const st = e.st;
    const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : st.isFIFO() ? 'fifo' : 'other';
    const d: Desc = { type, mode: (st.mode & 0o7777).toString(8), uid: st.uid, gid: st.gid, mtime: type === 'dir' && opts.dirMtimes === false ? 0 : Math.floor(st.mtimeMs / 1000) };
    if (type === 'file') { d.size = st.size; d.sha = sha(await readFile(e.path)); }
    if (type === 'symlink') { d.target = await readlink(e.path); d.mode = ''; }
    if (type === 'char' || type === 'block') d.rdev = st.rdev;
    if (opts.xattrs !== false && type !== 'symlink') {
      const x = [...(xattrs.get(e.path) ?? new Map<string, Buffer>())].filter(([k]) => k === 'security.capability' || k.startsWith('user.'));
      if (x.length) d.xattrs = Object.fromEntries(x.map(([k, v]) => [k, v.toString('hex')]));
    }
    out[e.rel] = d;
  }
  return out;
}

/** Set mtimes of a whole tree to T0 + i, children before parents so dir times stick. */
async function fixTimes(root: string): Promise<void> {
  const all: { path: string; link: boolean }[] = [];
  for await (const e of walk(root)) all.push({ path: e.path, link: e.st.isSymbolicLink() });
  let i = all.length;
  for (const e of all.reverse()) {
    const t = T0 + i--;
    if (e.link) await lutimes(e.path, t, t);
    else await utimes(e.path, t, t);
  }
}

/** Truncate every mtime in a tree to whole seconds (what a tar keeps). */
async function wholeSeconds(root: string): Promise<void> {
  const all: { path: string; link: boolean; t: number }[] = [];
  for await (const e of walk(root)) all.push({ path: e.path, link: e.st.isSymbolicLink(), t: Math.floor(e.st.mtimeMs / 1000) });
  for (const e of all.reverse()) {
    if (e.link) await lutimes(e.path, e.t, e.t);
    else await utimes(e.path, e.t, e.t);
  }
}

/** Files of every kind tar carries, with owners, special mode bits and binary xattrs. */
async function richTree(root: string): Promise<void> {
  const p = (r: string) => path.join(root, r);
  await mkdir(p('dir'));
  await writeFile(p('dir/file'), 'hello\n');
  await chown(p('dir/file'), 1234, 1234);
  await chmod(p('dir/file'), 0o640);
  await chown(p('dir'), 1234, 1234);
  await chmod(p('dir'), 0o750);
  await writeFile(p('setuid'), '#!/bin/sh\n');
  await chown(p('setuid'), 1234, 1234);
  await chmod(p('setuid'), 0o4755); // after chown: chown clears setuid
  await mkdir(p('setgid-dir'));
  await chmod(p('setgid-dir'), 0o2775);
  await mkdir(p('sticky'));
  await chmod(p('sticky'), 0o1777);
  await symlink('dir/file', p('link'));
  await lchown(p('link'), 1234, 1234);
  await symlink('/nonexistent/absolute', p('dangling'));
  await writeFile(p('hard1'), 'linked\n');
  await link(p('hard1'), p('dir/hard2'));
  await mknod(p('fifo'), 'p');
  await chmod(p('fifo'), 0o620);
  await mknod(p('null'), 'c', 1, 3);
  await chmod(p('null'), 0o666);
  await writeFile(p('caps'), 'ping\n');
  await chmod(p('caps'), 0o755);
  await setXattr(p('caps'), 'security.capability', CAP);
  await setXattr(p('caps'), 'user.foo', USER_FOO);
  await setXattr(p('dir'), 'user.dirattr', Buffer.from('on a dir'));
  await writeFile(p('empty'), '');
  await fixTimes(root);
}

// one rich tree for the whole file: every mknod/setfattr is a process, and they are slow here
let rich: Promise<string> | undefined;
function richSrc(): Promise<string> {
  return (rich ??= tmp('rich').then(async (d) => {
    await richTree(d);
    return d;
  }));
}

describe('tarDirectory -> applyLayer round trip', () => {
  let src: string;
  let dst: string;
  let tar: Buffer;
  let result: Awaited<ReturnType<typeof applyLayer>>;
  before(async () => {
    src = await richSrc();
    tar = await collect(tarDirectory(src));
    dst = await tmp('dst');
    result = await applyLayer(dst, stream(tar));
  });

  test('the whole tree is identical (types, modes, owners, mtimes, contents, targets, devices, xattrs)', async () => {
    assert.deepEqual(await describeTree(dst), await describeTree(src));
  });
  test('setuid, setgid and sticky bits and uid/gid 1234 survive', async () => {
    assert.equal((await lstat(path.join(dst, 'setuid'))).mode & 0o7777, 0o4755);
    assert.equal((await lstat(path.join(dst, 'setgid-dir'))).mode & 0o7777, 0o2775);
    assert.equal((await lstat(path.join(dst, 'sticky'))).mode & 0o7777, 0o1777);
    const f = await lstat(path.join(dst, 'dir/file'));
    assert.deepEqual([f.uid, f.gid, f.mode & 0o777], [1234, 1234, 0o640]);
    const l = await lstat(path.join(dst, 'link'));
    assert.deepEqual([l.uid, l.gid], [1234, 1234], 'symlink owner (lchown)');
    assert.equal(await readlink(path.join(dst, 'link')), 'dir/file');
  });
  test('mtimes of files, symlinks and directories', async () => {
    for (const r of ['dir/file', 'link', 'dir', 'fifo']) {
      assert.equal((await lstat(path.join(dst, r))).mtimeMs, (await lstat(path.join(src, r))).mtimeMs, r);
    }
  });
  test('hardlinks share one inode after apply', async () => {
    const a = await lstat(path.join(dst, 'hard1'));
    const b = await lstat(path.join(dst, 'dir/hard2'));
    assert.equal(a.ino, b.ino);
    assert.equal(a.nlink, 2);
    const h = (await headers(tar)).find((x) => x.name === 'hard1' || x.name === 'dir/hard2' && x.type === 'link');
    assert.ok(h, 'the second name is written as a hardlink entry');
  });
  test('fifo and char device 1:3', async () => {
    assert.ok((await lstat(path.join(dst, 'fifo'))).isFIFO());
    const n = await lstat(path.join(dst, 'null'));
    assert.ok(n.isCharacterDevice());
    assert.equal(n.rdev, (1 << 8) | 3);
    const h = (await headers(tar)).find((x) => x.name === 'null')!;
    assert.deepEqual([h.type, h.devmajor, h.devminor], ['char', 1, 3]);
  });
  test('binary xattrs: security.capability (bytes >= 0x80) and user.foo', async () => {
    const x = await xattrsOf(path.join(dst, 'caps'));
    assert.deepEqual(x.get('security.capability'), CAP);
    assert.deepEqual(x.get('user.foo'), USER_FOO);
    const h = (await headers(tar)).find((e) => e.name === 'caps')!;
    assert.deepEqual(h.xattrs?.get('security.capability'), CAP, 'carried in the tar as raw pax bytes');
  });
  test('xattrs: false leaves them out', async () => {
    const h = (await headers(await collect(tarDirectory(src, { xattrs: false })))).find((e) => e.name === 'caps')!;
    assert.equal(h.xattrs, undefined);
  });
  test('ApplyResult counts entries and docker\'s size', async () => {
    const r = result;
    const hs = await headers(tar);
    assert.equal(r.entries, hs.length);
    const size = hs.filter((h) => h.type === 'file').reduce((s, h) => s + h.size, 0) + hs.filter((h) => h.type === 'symlink').reduce((s, h) => s + Buffer.byteLength(h.linkname!), 0);
    assert.equal(r.size, size);
  });
});

describe('whiteouts', () => {
  async function lower(): Promise<string> {
    const d = await tmp('lower');
    await mkdir(path.join(d, 'a'));
    await writeFile(path.join(d, 'a/x'), 'x');
    await writeFile(path.join(d, 'a/y'), 'y');
    await mkdir(path.join(d, 'b/deep'), { recursive: true });
    await writeFile(path.join(d, 'b/deep/z'), 'z');
    await mkdir(path.join(d, 'o/sub'), { recursive: true });
    await writeFile(path.join(d, 'o/old1'), '1');
    await writeFile(path.join(d, 'o/sub/old2'), '2');
    await writeFile(path.join(d, 'o/sub/keep-name'), 'lower');
    return d;
  }
  const opaqueLayer = (markerLast: boolean) => layer([
    { name: 'o', type: 'dir' },
    ...(markerLast ? [] : [{ name: 'o/.wh..wh..opq' }]),
    { name: 'o/new', data: 'new' },
    { name: 'o/sub', type: 'dir' },
    { name: 'o/sub/keep-name', data: 'upper' },
    ...(markerLast ? [{ name: 'o/.wh..wh..opq' }] : []),
  ]);

  test('apply: .wh.NAME deletes files and whole directories, nothing else', async () => {
    const d = await lower();
    const r = await applyLayer(d, layer([{ name: '.wh.b' }, { name: 'a/.wh.x' }]), { whiteouts: 'apply' });
    assert.equal(r.entries, 2);
    assert.deepEqual(await ls(d), ['a', 'o']);
    assert.deepEqual(await ls(path.join(d, 'a')), ['y']);
  });
  test('overlay: .wh.NAME becomes a 0/0 char device, no .wh. file is written', async () => {
    const d = await tmp('diff');
    await applyLayer(d, layer([{ name: '.wh.b' }, { name: 'a/.wh.x' }]), { whiteouts: 'overlay' });
    for (const r of ['b', 'a/x']) {
      const st = await lstat(path.join(d, r));
      assert.ok(st.isCharacterDevice(), r);
      assert.equal(st.rdev, 0, r);
    }
    assert.deepEqual(await ls(d), ['a', 'b']);
    assert.deepEqual(await ls(path.join(d, 'a')), ['x']);
  });
  for (const markerLast of [false, true]) {
    test(`apply: opaque dir empties lower content, keeps this layer's entries (marker ${markerLast ? 'after' : 'before'} them)`, async () => {
      const d = await lower();
      await applyLayer(d, opaqueLayer(markerLast), { whiteouts: 'apply' });
      assert.deepEqual(await ls(path.join(d, 'o')), ['new', 'sub']);
      assert.deepEqual(await ls(path.join(d, 'o/sub')), ['keep-name'], 'lower content below a dir the layer rewrote goes too (docker)');
      assert.equal(await readFile(path.join(d, 'o/sub/keep-name'), 'utf8'), 'upper');
      assert.deepEqual(await ls(path.join(d, 'a')), ['x', 'y'], 'other dirs untouched');
    });
  }
  test('apply: opaque keeps files the layer put in implicit parent dirs', async () => {
    const d = await lower();
    await applyLayer(d, layer([{ name: 'o/sub/deeper/f', data: 'f' }, { name: 'o/.wh..wh..opq' }]), { whiteouts: 'apply' });
    assert.deepEqual(await ls(path.join(d, 'o')), ['sub']);
    assert.deepEqual(await ls(path.join(d, 'o/sub')), ['deeper']);
    assert.deepEqual(await ls(path.join(d, 'o/sub/deeper')), ['f']);
  });
  test('overlay: opaque dir gets trusted.overlay.opaque=y and keeps its entries', async () => {
    const d = await tmp('diff');
    await applyLayer(d, opaqueLayer(false), { whiteouts: 'overlay' });
    assert.deepEqual((await xattrsOf(path.join(d, 'o'))).get('trusted.overlay.opaque'), Buffer.from('y'));
    assert.deepEqual(await ls(path.join(d, 'o')), ['new', 'sub']);
    assert.equal((await xattrsOf(path.join(d, 'o/sub'))).get('trusted.overlay.opaque'), undefined);
  });
  test('apply: a whiteout hides lower layers only, never what the same layer wrote (OCI)', async () => {
    const d = await lower();
    await applyLayer(d, layer([{ name: 'a', type: 'dir' }, { name: 'a/new', data: 'n' }, { name: '.wh.a' }]), { whiteouts: 'apply' });
    assert.deepEqual(await ls(path.join(d, 'a')), ['new']);
  });
  test('whiteout and opaque metadata entries (.wh..wh.plnk) are skipped', async () => {
    const d = await lower();
    await applyLayer(d, layer([{ name: '.wh..wh.plnk', type: 'dir' }, { name: '.wh..wh.aufs' }]), { whiteouts: 'apply' });
    assert.deepEqual(await ls(d), ['a', 'b', 'o']);
  });
  test('an xattr-only change keeps trusted.overlay.* out (a layer cannot forge an opaque dir)', async () => {
    const d = await tmp('diff');
    const warnings: string[] = [];
    await applyLayer(d, layer([{ name: 'x', type: 'dir', xattrs: new Map([['trusted.overlay.opaque', Buffer.from('y')], ['user.ok', Buffer.from('1')]]) }]), { whiteouts: 'overlay', onWarning: (w) => warnings.push(w) });
    const x = await xattrsOf(path.join(d, 'x'));
    assert.equal(x.get('trusted.overlay.opaque'), undefined);
    assert.deepEqual(x.get('user.ok'), Buffer.from('1'));
    assert.equal(warnings.length, 1);
  });
});

describe('tarOverlayUpper', () => {
  test('0/0 char devices and opaque dirs become .wh. entries', async () => {
    const up = await tmp('upper');
    await mkdir(path.join(up, 'dir'));
    await mknod(path.join(up, 'dir/x'), 'c', 0, 0);
    await mknod(path.join(up, 'gone'), 'c', 0, 0);
    await mkdir(path.join(up, 'op'));
    await setXattr(path.join(up, 'op'), 'trusted.overlay.opaque', Buffer.from('y'));
    await writeFile(path.join(up, 'op/f'), 'f');
    await mknod(path.join(up, 'null'), 'c', 1, 3); // a real device stays a device
    const hs = await headers(await collect(tarOverlayUpper(up)));
    assert.deepEqual(hs.map((h) => h.name), ['dir/', 'dir/.wh.x', '.wh.gone', 'null', 'op/', 'op/.wh..wh..opq', 'op/f']);
    assert.deepEqual(hs.filter((h) => h.type === 'char').map((h) => h.name), ['null']);
    for (const h of hs) assert.ok(![...(h.xattrs?.keys() ?? [])].some((k) => k.startsWith('trusted.')), `${h.name} carries no trusted.* xattr`);
  });
  test('overlay apply then tarOverlayUpper gives back the same entry names', async () => {
    const entries = [
      { name: '.wh.gone' }, { name: 'etc', type: 'dir' as const }, { name: 'etc/.wh.hosts' }, { name: 'etc/motd', data: 'hi' },
      { name: 'var', type: 'dir' as const }, { name: 'var/.wh..wh..opq' }, { name: 'var/log', type: 'dir' as const },
    ];
    const original = (await headers(await collect(layer(entries)))).map((h) => h.name).sort();
    const d = await tmp('diff');
    await applyLayer(d, layer(entries), { whiteouts: 'overlay' });
    const back = (await headers(await collect(tarOverlayUpper(d)))).map((h) => h.name).sort();
    assert.deepEqual(back, original);
  });
});

describe('changesDirs (docker semantics)', () => {
  let lowerDir: string;
  let upperDir: string;
  let changes: Change[];
  before(async () => {
    lowerDir = await tmp('lower');
    const l = (r: string) => path.join(lowerDir, r);
    await writeFile(l('keep'), 'same');
    await writeFile(l('mod'), 'old content');
    await writeFile(l('chmod'), 'x');
    await writeFile(l('del'), 'x');
    await mkdir(l('deldir/sub'), { recursive: true });
    await writeFile(l('deldir/sub/f'), 'x');
    await mkdir(l('dirmtime'));
    await writeFile(l('dirmtime/c'), 'x');
    await mkdir(l('parent/child'), { recursive: true });
    await writeFile(l('parent/child/f'), 'v1');
    await writeFile(l('parent/untouched'), 'x');
    await mkdir(l('d2f'));
    await writeFile(l('d2f/inner'), 'x');
    await writeFile(l('f2d'), 'x');
    await symlink('/etc', l('lnk')); // replaced by a dir: must not be read through
    await writeFile(l('capfile'), 'x');
    await writeFile(l('owner'), 'x');
    await symlink('aaaa', l('retarget'));
    await fixTimes(lowerDir);
    upperDir = await tmp('upper');
    execFileSync('cp', ['-a', lowerDir + '/.', upperDir]);
    const u = (r: string) => path.join(upperDir, r);
    await writeFile(u('mod'), 'new content!');
    await utimes(u('mod'), T0 + 1000, T0 + 1000);
    await chmod(u('chmod'), 0o600);
    await rm(u('del'));
    await rm(u('deldir'), { recursive: true });
    await utimes(u('dirmtime'), T0 + 5000, T0 + 5000); // only the dir's mtime: not a change
    await writeFile(u('parent/child/f'), 'v2');
    await utimes(u('parent/child/f'), T0 + 1000, T0 + 1000);
    await mkdir(u('newdir'));
    await writeFile(u('newdir/f'), 'x');
    await rm(u('d2f'), { recursive: true });
    await writeFile(u('d2f'), 'now a file');
    await rm(u('f2d'));
    await mkdir(u('f2d'));
    await writeFile(u('f2d/x'), 'x');
    await rm(u('lnk'));
    await mkdir(u('lnk'));
    await writeFile(u('lnk/passwd'), 'x');
    await setXattr(u('capfile'), 'security.capability', CAP); // no stat change but the capability
    await chown(u('owner'), 1234, 1234);
    await rm(u('retarget'));
    await symlink('bbbb', u('retarget'));
    await lutimes(u('retarget'), T0 + 1, T0 + 1);
    // keep everything that should not count as a change at lower's times
    for (const r of ['parent', 'parent/child', '']) {
      const st = await lstat(path.join(lowerDir, r));
      await utimes(path.join(upperDir, r), st.atime, st.mtime);
    }
    await wholeSeconds(upperDir);
    changes = await changesDirs(lowerDir, upperDir);
  });

  test('exactly the A/C/D list docker reports', () => {
    assert.deepEqual(changes.map((c) => `${c.kind} ${c.path}`), [
      'C /capfile',
      'C /chmod',
      'C /d2f',
      'D /del',
      'D /deldir',
      'C /f2d',
      'A /f2d/x',
      'C /lnk',
      'A /lnk/passwd',
      'C /mod',
      'A /newdir',
      'A /newdir/f',
      'C /owner',
      'C /parent',
      'C /parent/child',
      'C /parent/child/f',
      'C /retarget',
    ]);
  });
  test('identical trees have no changes, mtime-only dir changes included', async () => {
    assert.deepEqual(await changesDirs(lowerDir, lowerDir), []);
  });
  test('tarChanges of the list, applied onto lower, rebuilds upper', async () => {
    const tree = await tmp('rebuilt');
    execFileSync('cp', ['-a', lowerDir + '/.', tree]);
    await applyLayer(tree, tarChanges(changes, upperDir));
    assert.deepEqual(await changesDirs(upperDir, tree), []);
    assert.deepEqual(await describeTree(tree, { dirMtimes: false }), await describeTree(upperDir, { dirMtimes: false }));
  });
});

describe('determinism', () => {
  test('tarDirectory with {mtime} gives the same sha256 twice, and for a copy touched later', async () => {
    const a = await richSrc();
    const one = sha(await collect(tarDirectory(a, { mtime: T0 })));
    const two = sha(await collect(tarDirectory(a, { mtime: T0 })));
    assert.equal(one, two);
    const b = await tmp('b');
    execFileSync('cp', ['-a', a + '/.', b]);
    const now = Date.now() / 1000;
    await utimes(path.join(b, 'dir/file'), now, now);
    await utimes(path.join(b, 'dir'), now, now);
    assert.equal(sha(await collect(tarDirectory(b + '/', { mtime: T0 }))), one, 'clamped mtimes, trailing slash and other inode numbers change nothing');
    const hs = await headers(await collect(tarDirectory(b, { mtime: T0 })));
    assert.ok(hs.every((h) => h.mtime === T0));
  });
  test('gzip and zstd round trips are detected and lossless', async () => {
    const a = await tmp('c');
    await writeFile(path.join(a, 'f'), 'x'.repeat(100000));
    const raw = await collect(tarDirectory(a));
    for (const c of ['gzip', 'zstd'] as const) {
      const packed = await collect(tarDirectory(a).pipe(compressor(c)));
      assert.ok(packed.length < raw.length / 10, c);
      const { compression, tar } = await openUncompressed(stream(packed));
      assert.equal(compression, c);
      assert.equal(sha(await collect(tar)), sha(raw));
    }
  });
});

describe('tar codec', () => {
  test('pax round trip of binary xattrs, huge ids, long link names, far mtimes', async () => {
    const h: TarHeader = {
      name: 'f', type: 'file', mode: 0o4711, uid: 70000000, gid: 3000000, size: 3, mtime: 10 ** 11, uname: 'u'.repeat(40), gname: 'g',
      xattrs: new Map([['security.capability', CAP], ['user.nl', Buffer.from('a\nb=c\0d')], ['user.big', Buffer.alloc(5000, 0xfe)]]),
    };
    const s: TarHeader = { name: 'l'.repeat(150), type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, mtime: T0, linkname: 't/'.repeat(120) };
    const back = await headers(await collect(writeTar([{ header: h, data: Buffer.from('abc') }, { header: s }])));
    assert.equal(back.length, 2);
    for (const k of ['name', 'type', 'mode', 'uid', 'gid', 'size', 'mtime', 'uname', 'gname'] as const) assert.deepEqual(back[0][k], h[k], k);
    assert.deepEqual(back[0].xattrs, h.xattrs);
    assert.equal(back[1].name, s.name);
    assert.equal(back[1].linkname, s.linkname);
  });
  test('a fifo\'s size field carries no data (as Go\'s archive/tar reads it)', async () => {
    const fifo = Buffer.from(encodeHeader({ name: 'p', type: 'fifo', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: T0 }));
    fifo.write('00000001000\0', 124, 'ascii'); // size 512
    fifo.write('        ', 148, 'ascii');
    let sum = 0;
    for (const b of fifo) sum += b;
    fifo.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
    const next = encodeHeader({ name: 'after', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: T0 });
    const hs = await headers(Buffer.concat([fifo, next, END_OF_ARCHIVE]));
    assert.deepEqual(hs.map((h) => h.name), ['p', 'after']);
  });
  test('readTar releases its source when the consumer stops early', async () => {
    let released = false;
    const tar = await collect(layer([{ name: 'a', data: 'a' }, { name: 'b', data: 'b' }]));
    async function* src() {
      try { yield tar.subarray(0, 1024); yield tar.subarray(1024); } finally { released = true; }
    }
    for await (const e of readTar(src())) { assert.equal(e.header.name, 'a'); break; }
    assert.equal(released, true);
  });
});

// ---------------------------------------------------------------------------------------------
// GNU tar interop
const GNU_ENV = { ...process.env, LC_ALL: 'C.UTF-8', TZ: 'UTC' };
const LONG_DIR = 'd'.repeat(120); // > 100 bytes
const LONGEST = `${LONG_DIR}/${'b'.repeat(150)}`; // > 255 bytes
const SPLIT = `${'x'.repeat(80)}/${'y'.repeat(90)}`; // fits ustar prefix + name
const UNICODE = 'héllo-wörld-日本語';
const UNICODE_LONG = '日本語'.repeat(12); // 108 bytes in UTF-8

async function longTree(root: string): Promise<void> {
  const p = (r: string) => path.join(root, r);
  await mkdir(p(LONG_DIR));
  await writeFile(p(LONGEST), 'deep\n');
  await mkdir(p('x'.repeat(80)));
  await writeFile(p(SPLIT), 'split\n');
  await writeFile(p(UNICODE), 'unicode\n');
  await writeFile(p(UNICODE_LONG), 'unicode long\n');
  await symlink(LONGEST, p('longlink'));
  await link(p(LONGEST), p('hard-to-long'));
  await setXattr(p(UNICODE), 'user.foo', USER_FOO);
  await setXattr(p(UNICODE), 'security.capability', CAP);
  await chown(p(SPLIT), 1234, 1234);
  await fixTimes(root);
}

function perms(type: string, mode: number): string {
  const t = ({ file: '-', dir: 'd', symlink: 'l', link: 'h', char: 'c', block: 'b', fifo: 'p' } as Record<string, string>)[type];
  const s = 'rwxrwxrwx'.split('').map((c, i) => (mode & (1 << (8 - i)) ? c : '-'));
  if (mode & 0o4000) s[2] = s[2] === 'x' ? 's' : 'S';
  if (mode & 0o2000) s[5] = s[5] === 'x' ? 's' : 'S';
  if (mode & 0o1000) s[8] = s[8] === 'x' ? 't' : 'T';
  return t + s.join('');
}

describe('GNU tar interop', () => {
  let src: string;
  before(async () => {
    src = await tmp('long');
    await longTree(src);
  });

  test('tar -tvf lists exactly the entries our writer produced (long and non-ASCII names)', async () => {
    const file = path.join(await tmp('ours'), 'ours.tar');
    const ours = await collect(tarDirectory(src));
    await writeFile(file, ours);
    const hs = await headers(ours);
    const names = hs.map((h) => h.name);
    for (const n of [LONG_DIR + '/', LONGEST, SPLIT, UNICODE, UNICODE_LONG]) assert.ok(names.includes(n), n);
    const out = execFileSync('tar', ['-tvf', file, '--numeric-owner', '--full-time', '--quoting-style=literal'], { env: GNU_ENV, encoding: 'buffer', stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = out.toString('utf8').trimEnd().split('\n');
    const expected = hs.map((h) => {
      const date = new Date(h.mtime * 1000).toISOString().slice(0, 19).replace('T', ' ');
      const tail = h.type === 'symlink' ? ` -> ${h.linkname}` : h.type === 'link' ? ` link to ${h.linkname}` : '';
      return `${perms(h.type, h.mode)} ${h.uid}/${h.gid} ${h.size} ${date} ${h.name}${tail}`;
    });
    assert.deepEqual(lines.map((l) => l.replace(/ +/g, ' ')), expected.map((l) => l.replace(/ +/g, ' ')));
  });

  test('GNU tar extracts our tar to the same tree, xattrs included', async () => {
    const file = path.join(await tmp('ours'), 'ours.tar');
    await writeFile(file, await collect(tarDirectory(src)));
    const out = await tmp('gnu-extract');
    execFileSync('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-xpf', file, '-C', out], { env: GNU_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    assert.deepEqual(await describeTree(out), await describeTree(src));
  });

  for (const format of ['posix', 'gnu'] as const) {
    test(`GNU tar's own output (${format === 'posix' ? 'tar --xattrs -cf: pax' : 'tar --format=gnu: ././@LongLink'}) reads back through readTar and applies`, async () => {
      const file = path.join(await tmp('gnu'), `${format}.tar`);
      const args = format === 'posix' ? ['--xattrs', '-cf', file, '-C', src, '.'] : ['--format=gnu', '-cf', file, '-C', src, '.'];
      execFileSync('tar', args, { env: GNU_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
      const gnu = readFileSync(file);
      if (format === 'gnu') assert.ok(gnu.includes('././@LongLink'), 'GNU long names in use');
      const hs = await headers(gnu);
      const norm = (n: string) => n.replace(/^\.\//, '').replace(/\/$/, '');
      const want: string[] = [];
      for await (const e of walk(src)) want.push(e.rel);
      assert.deepEqual(hs.map((h) => norm(h.name)).filter((n) => n !== '.' && n !== '').sort(), want.sort());
      const byName = new Map(hs.map((h) => [norm(h.name), h]));
      assert.equal(byName.get('longlink')!.linkname, LONGEST);
      const hard = [byName.get(LONGEST)!, byName.get('hard-to-long')!];
      assert.deepEqual(hard.map((h) => h.type).sort(), ['file', 'link']);
      assert.equal(norm(hard.find((h) => h.type === 'link')!.linkname!), hard.find((h) => h.type === 'file')!.name.replace(/^\.\//, ''));
      assert.equal(byName.get(SPLIT)!.uid, 1234);
      if (format === 'posix') {
        assert.deepEqual(byName.get(UNICODE)!.xattrs?.get('security.capability'), CAP);
        assert.deepEqual(byName.get(UNICODE)!.xattrs?.get('user.foo'), USER_FOO);
      }
      const dst = await tmp('applied');
      await applyLayer(dst, stream(gnu));
      assert.deepEqual(await describeTree(dst, { xattrs: format === 'posix' }), await describeTree(src, { xattrs: format === 'posix' }));
    });
  }
});
