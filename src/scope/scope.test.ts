// The scoped resolver, table-driven: every way a path can try to leave its scope (absolute and
// relative symlinks, ".." through missing components, loops, chains), with a canary directory
// beside the scope that must be untouched afterwards, and the fd-held operations on top.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync, lstatSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Scope } from './index.js';
import { extractTree, readTree } from './tree.js';
import { fingerprint } from '../testutil/canary.js';

const base = mkdtempSync('/tmp/shale-scope-');
after(() => rmSync(base, { recursive: true, force: true }));
const root = join(base, 'root');
const canary = join(base, 'canary');
mkdirSync(canary);
writeFileSync(join(canary, 'secret'), 'host secret\n');
mkdirSync(join(root, 'etc'), { recursive: true });
mkdirSync(join(root, 'run'));
mkdirSync(join(root, 'var'));
mkdirSync(join(root, 'deep/a/b'), { recursive: true });
writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
symlinkSync('/run', join(root, 'var/run'));
symlinkSync('../run', join(root, 'var/rel'));
symlinkSync('../../../../canary', join(root, 'esc'));
symlinkSync(canary, join(root, 'abs'));
symlinkSync('/', join(root, 'slash'));
symlinkSync('loop', join(root, 'loop'));
symlinkSync('deep/a/b', join(root, 'chain1'));
symlinkSync('.', join(root, 'deep/a/self'));
symlinkSync('chain1/../../..', join(root, 'chain2'));
// the finding: a missing component, then ".." through a symlink target, then the rest
symlinkSync('missing/../../canary', join(root, 'popper'));

const before = fingerprint(canary);

const cases: { path: string; follow?: boolean; inner: string; exists: boolean }[] = [
  { path: '/var/run/x', inner: '/run/x', exists: false },
  { path: '/var/rel', inner: '/run', exists: true },
  { path: '/var/run', follow: false, inner: '/var/run', exists: true },
  { path: '/etc/../etc/passwd', inner: '/etc/passwd', exists: true },
  { path: '/../../etc/passwd', inner: '/etc/passwd', exists: true },
  { path: '/esc/secret', inner: '/canary/secret', exists: false },
  { path: '/abs/secret', inner: base.split('/').filter(Boolean).concat('canary', 'secret').reduce((a, c) => `${a}/${c}`, ''), exists: false },
  { path: '/slash/etc/passwd', inner: '/etc/passwd', exists: true },
  { path: '/slash/../../etc/passwd', inner: '/etc/passwd', exists: true },
  { path: '/nope/../esc/secret', inner: '/canary/secret', exists: false },
  { path: '/nope/x/../../popper/secret', inner: '/canary/secret', exists: false },
  { path: '/popper/secret', inner: '/canary/secret', exists: false },
  { path: '/chain2/etc/passwd', inner: '/etc/passwd', exists: true },
  { path: '/chain1', inner: '/deep/a/b', exists: true },
  { path: '/', inner: '/', exists: true },
  { path: '/deep/a/b/..', inner: '/deep/a', exists: true },
  { path: '/deep/a/self', inner: '/deep/a', exists: true },
  { path: '/deep/a/self/b/../..', inner: '/deep', exists: true },
  { path: '/nope/x/..', inner: '/nope', exists: false },
];

for (const c of cases) {
  test(`resolve ${c.path}${c.follow === false ? ' (not following the last link)' : ''} -> ${c.inner}`, () => {
    const r = new Scope(root).resolve(c.path, { followFinal: c.follow });
    assert.equal(r.inner, c.inner);
    assert.equal(r.exists, c.exists);
  });
}

test('a symlink loop is an error, not a hang', () => {
  assert.throws(() => new Scope(root).resolve('/loop/x'), /too many levels of symbolic links/);
});

test('a build-context scope refuses to leave instead of clamping, naming the link, never reading it', () => {
  const ctx = new Scope(root, { escape: 'error', label: 'build context' });
  assert.throws(() => ctx.resolve('esc/secret', { what: 'COPY source' }), /COPY source esc\/secret leaves the build context through the symlink \/esc -> \.\.\/\.\.\/\.\.\/\.\.\/canary/);
  assert.throws(() => ctx.resolve('abs/secret'), /leaves the build context through the symlink \/abs/);
  assert.throws(() => ctx.resolve('../x'), /leaves the build context with "\.\."/);
  assert.equal(ctx.resolve('var/rel').inner, '/run');
});

test('mkdirAll makes each component inside the scope, through symlinks re-rooted there', () => {
  const s = new Scope(root);
  assert.equal(s.mkdirAll('/esc/made/here'), '/canary/made/here');
  assert.equal(s.mkdirAll('/popper/p2'), '/canary/p2');
  assert.equal(s.mkdirAll('/abs/x'), `${base}/canary/x`);
  assert.ok(lstatSync(join(root, 'canary/made/here')).isDirectory());
  assert.ok(lstatSync(join(root, 'canary/p2')).isDirectory());
  assert.throws(() => s.mkdirAll('/etc/passwd/x'), /not a directory/);
});

test('readFile stays inside and is bounded', () => {
  const s = new Scope(root);
  assert.equal(s.readFile('/slash/etc/passwd', 1024)?.toString(), 'root:x:0:0::/root:/bin/sh\n');
  assert.equal(s.readFile('/esc/secret', 1024), undefined);
  assert.throws(() => s.readFile('/etc/passwd', 4), /larger than 4 bytes/);
});

test('extractTree writes literal names (whiteouts are files) and never through a link out', async () => {
  const dest = join(root, 'x-dest');
  mkdirSync(dest);
  writeFileSync(join(dest, 'keep'), 'kept');
  const h = (name: string, type: 'file' | 'dir' | 'symlink', extra: Record<string, unknown> = {}) => ({ header: { name, type, mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0, ...extra } as never });
  const entries = [
    h('.wh..wh..opq', 'file'),
    h('.wh.keep', 'file'),
    h('out', 'symlink', { linkname: canary }),
    { ...h('out/secret', 'file', { size: 3 }), body: Readable.from([Buffer.from('pwn')]) },
    h('up', 'symlink', { linkname: '../../../../../../..' + canary }),
    { ...h('up/owned', 'file', { size: 3 }), body: Readable.from([Buffer.from('pwn')]) },
  ];
  await extractTree(new Scope(root), '/x-dest', (async function* () { yield* entries; })());
  assert.equal(readFileSync(join(dest, 'keep'), 'utf8'), 'kept');
  assert.ok(existsSync(join(dest, '.wh..wh..opq')));
  assert.ok(existsSync(join(dest, '.wh.keep')));
  // the link's target re-rooted inside the scope: <root>/<base>/canary/secret, not the host's
  assert.equal(readFileSync(join(root, base, 'canary/secret'), 'utf8'), 'pwn');
  assert.equal(readFileSync(join(root, base, 'canary/owned'), 'utf8'), 'pwn');
  assert.deepEqual(fingerprint(canary), before);
});

test('readTree sees a directory swapped for a symlink as the symlink, never what it points to', async () => {
  const d = join(base, 'swap');
  mkdirSync(join(d, 'a'), { recursive: true });
  writeFileSync(join(d, '0file'), 'x');
  writeFileSync(join(d, 'a/f'), 'inside');
  const fd = new Scope(base).openDir('/swap').fd;
  const seen: string[] = [];
  for await (const e of readTree(fd, '', '')) {
    seen.push(`${e.header.name} ${e.header.type}`);
    if (e.header.name === '0file') {
      // the container's move between two reads: the dir goes, a link to the host takes its name
      renameSync(join(d, 'a'), join(d, 'a.old'));
      symlinkSync(canary, join(d, 'a'));
    }
  }
  assert.ok(seen.includes('a symlink'), seen.join(', '));
  assert.ok(!seen.some((x) => x.startsWith('a/')), seen.join(', '));
});

test('a file replaced between its lstat and its read fails the read (a symlink or another file)', async () => {
  const d = join(base, 'swap2');
  mkdirSync(d);
  writeFileSync(join(d, 'f'), 'inside');
  writeFileSync(join(d, 'g'), 'other!');
  const fd = new Scope(base).openDir('/swap2').fd;
  let checked = 0;
  // the writer opens a file's stream when it reaches it, while the walk waits at that entry
  for await (const e of readTree(fd, '', '')) {
    if (e.header.name === 'f') {
      rmSync(join(d, 'f'));
      symlinkSync(join(canary, 'secret'), join(d, 'f'));
      await assert.rejects(async () => { for await (const _ of e.stream!()) { /* read */ } }, /f was replaced by a symlink while it was read/);
      checked++;
    }
    if (e.header.name === 'g') {
      renameSync(join(d, 'g'), join(d, 'g.old'));
      writeFileSync(join(d, 'g'), 'new one');
      await assert.rejects(async () => { for await (const _ of e.stream!()) { /* read */ } }, /g was replaced while it was read/);
      checked++;
    }
  }
  assert.equal(checked, 2);
});

test('the canary outside the scope is untouched by everything above', () => {
  assert.deepEqual(fingerprint(canary), before);
});
