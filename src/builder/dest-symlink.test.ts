// COPY/ADD destinations through symlinks of the image, through the CLI: followed inside the
// image's rootfs as docker's FollowSymlinkInScope does (absolute links re-rooted, relative ones
// from where they sit, ".." clamped at the root), the link kept, the layer applicable, nothing
// written on the host, and none of it done again when the step is cached.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeTar, type TarSourceEntry } from '../archive/index.js';
import { fingerprint } from '../testutil/canary.js';
import { makeBusyboxRootfs, makeDockerArchive, removeTree, shale, shaleOk, shaleWith, tempDir } from '../testutil/index.js';

const DRIVERS = ['overlay2', 'fuse-overlayfs', 'vfs'];

describe('build: COPY/ADD destinations through symlinks of the image', () => {
  let root: string;
  let work: string;
  let canary: string;
  let print: string[];

  /** a fresh context directory with these files */
  const context = (name: string, files: Record<string, string>): string => {
    const dir = join(work, name);
    for (const [p, v] of Object.entries(files)) {
      mkdirSync(join(dir, p, '..'), { recursive: true });
      writeFileSync(join(dir, p), v);
    }
    return dir;
  };
  const sh = async (img: string, script: string) => shaleOk(root, 'run', '--rm', img, 'sh', '-c', script);

  before(async () => {
    root = tempDir(undefined, 'shale-dest-root-');
    work = tempDir(undefined, 'shale-dest-');
    canary = join(work, 'canary');
    mkdirSync(canary);
    writeFileSync(join(canary, 'keep'), 'host file\n');
    print = fingerprint(canary);
    // busybox, then a layer of links: absolute, relative, climbing, and two at the canary's host path
    const bb = join(work, 'bb');
    makeBusyboxRootfs(bb);
    const links = join(work, 'links');
    mkdirSync(join(links, 'usr/share'), { recursive: true });
    mkdirSync(join(links, 'srv'), { recursive: true });
    symlinkSync('/etc', join(links, 'x'));
    symlinkSync('usr/share', join(links, 'rel'));
    symlinkSync('../../etc', join(links, 'up'));
    symlinkSync('/srv/app', join(links, 'app')); // dangling: /srv/app is made by the copy
    symlinkSync(canary, join(links, 'c'));
    symlinkSync(`../../../../../../../../..${canary}`, join(links, 'cup'));
    makeDockerArchive(join(work, 'base.tar'), [{ dir: bb }, { dir: links }], { tag: 'links:1' });
    await shaleOk(root, 'load', '-i', join(work, 'base.tar'));
    // links:2 = links:1 + a layer that whites out /x and makes it a directory, and /up an opaque directory
    const over = join(work, 'over');
    mkdirSync(join(over, 'x'), { recursive: true });
    mkdirSync(join(over, 'up'), { recursive: true });
    writeFileSync(join(over, '.wh.x'), '');
    writeFileSync(join(over, 'up/.wh..wh..opq'), '');
    makeDockerArchive(join(work, 'base2.tar'), [{ dir: bb }, { dir: links }, { dir: over }], { tag: 'links:2' });
    await shaleOk(root, 'load', '-i', join(work, 'base2.tar'));
  });
  after(async () => {
    await shale(root, 'container', 'prune', '-f');
    removeTree(root);
    removeTree(work);
  });

  it('follows absolute, relative and climbing links in the image and keeps them', async () => {
    const ctx = context('ctx-1', {
      f: 'the f\n',
      'dir/a': 'dir a\n',
      'dir/sub/b': 'dir sub b\n',
      'app/main': 'main\n',
      Dockerfile: [
        'FROM links:1',
        'COPY f /x/f', // absolute link: /etc/f
        'COPY dir/ /rel/', // relative link: the directory's contents under /usr/share
        'COPY f /up/g', // ../../etc from / is clamped: /etc/g
        'COPY app/ /app/', // a dangling link: its target is made
        'COPY f /c/f', // the canary's host path, inside the image
        'COPY f /cup/f', // the same through a relative link climbing far above /
        'WORKDIR /x',
        'COPY f h', // WORKDIR-relative: /etc/h
        'COPY f /rel', // one file to a link to a directory: into it, /usr/share/f
        '',
      ].join('\n'),
    });
    await shaleOk(root, 'build', '-q', '-t', 'dest-1', ctx);
    for (const [l, want] of [['x', '/etc'], ['rel', 'usr/share'], ['up', '../../etc'], ['app', '/srv/app'], ['c', canary]] as const) {
      assert.equal((await shaleOk(root, 'run', '--rm', 'dest-1', 'readlink', `/${l}`)).trim(), want, `/${l} is still a link`);
    }
    assert.equal(await sh('dest-1', 'cat /etc/f /etc/g /etc/h'), 'the f\nthe f\nthe f\n');
    assert.equal(await sh('dest-1', 'cat /usr/share/a /usr/share/sub/b /usr/share/f'), 'dir a\ndir sub b\nthe f\n');
    assert.equal(await sh('dest-1', 'cat /srv/app/main'), 'main\n');
    assert.equal(await sh('dest-1', `cat ${canary}/f; ls ${canary}`), 'the f\nf\n', 'the canary path inside the image got the file');
    assert.equal(await sh('dest-1', 'test -d /etc && test ! -L /etc && cat /etc/passwd | head -1'), 'root:x:0:0:root:/root:/bin/sh\n', '/etc is the image directory');
    // create + start: every layer applies (the extractor refuses a layer under a lower symlink)
    const id = (await shaleOk(root, 'create', 'dest-1', 'cat', '/x/f')).trim();
    assert.equal((await shaleOk(root, 'start', '-a', id)), 'the f\n');
    await shaleOk(root, 'rm', id);
    assert.deepEqual(fingerprint(canary), print, 'nothing written on the host');
  });

  for (const how of ['a view of the unpacked chain', 'the layers\' tar headers first']) {
    it(`whiteouts and a real directory at a name: no link followed (${how})`, async () => {
      const env = { ...process.env, SHALE_BUILD_VIEW_BYTES: how.startsWith('a view') ? String(1 << 30) : '-1' };
      const ctx = context(`ctx-wh-${how.length}`, { f: 'the f\n', e: 'the e\n', Dockerfile: 'FROM links:2\nCOPY f /x/f\nCOPY f /up/g\nCOPY e /etc\nCOPY f /new/a/b\nCOPY f /rel/h\n' });
      const r = await shaleWith(root, ['build', '-q', '--no-cache', '-t', 'dest-wh', ctx], { env });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await sh('dest-wh', 'test -d /x && test ! -L /x && cat /x/f && test ! -e /etc/f && test -d /up && cat /up/g'), 'the f\nthe f\n');
      assert.equal(await sh('dest-wh', 'cat /etc/e; ls -ld /new /new/a | cut -c1-10; cat /new/a/b /usr/share/h; readlink /rel'), 'the e\ndrwxr-xr-x\ndrwxr-xr-x\nthe f\nthe f\nusr/share\n');
      assert.deepEqual(fingerprint(canary), print, 'nothing written on the host');
    });
  }

  it('no layer has an entry under a link of the image', async () => {
    const dir = join(work, 'save-1');
    mkdirSync(dir);
    await shaleOk(root, 'save', '-o', join(dir, 'img.tar'), 'dest-1');
    execFileSync('tar', ['-xf', join(dir, 'img.tar'), '-C', dir]);
    const manifest = JSON.parse(execFileSync('cat', [join(dir, 'manifest.json')], { encoding: 'utf8' }))[0] as { Layers: string[] };
    const linked = ['x', 'rel', 'up', 'app', 'c', 'cup'];
    const names = manifest.Layers.slice(2).flatMap((l) => execFileSync('tar', ['-tf', join(dir, l)], { encoding: 'utf8' }).split('\n').filter(Boolean));
    assert.ok(names.length > 0);
    for (const n of names) {
      const first = n.replace(/^\.\//, '').split('/')[0];
      assert.ok(!linked.includes(first), `layer entry ${n} is not at or under a link of the image`);
    }
  });

  it('ADD of an archive and heredocs go through the link too', async () => {
    const entries: TarSourceEntry[] = [
      { header: { name: 'd/', type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0 } },
      { header: { name: 'd/in-tar', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 3, mtime: 0 }, data: Buffer.from('tar') },
      { header: { name: 'd/hard', type: 'link', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0, linkname: 'd/in-tar' } },
    ];
    const chunks: Buffer[] = [];
    for await (const c of writeTar(entries)) chunks.push(c as Buffer);
    const ctx = context('ctx-2', { Dockerfile: 'FROM links:1\nADD a.tar /x/\nCOPY <<EOF /rel/here\nheredoc\nEOF\n' });
    writeFileSync(join(ctx, 'a.tar'), Buffer.concat(chunks));
    await shaleOk(root, 'build', '-q', '-t', 'dest-2', ctx);
    assert.equal(await sh('dest-2', 'readlink /x; cat /etc/d/in-tar /etc/d/hard; echo; stat -c %h /etc/d/hard; cat /usr/share/here'), '/etc\ntartar\n2\nheredoc\n');
    assert.deepEqual(fingerprint(canary), print, 'nothing written on the host');
  });

  it('a link to a file as the parent of a destination is an error, not a replacement', async () => {
    // a stage whose /pw is a link to a file
    const ctx = context('ctx-3', { f: 'f\n', Dockerfile: 'FROM links:1\nRUN ln -s /etc/passwd /pw\nCOPY f /pw/f\n' });
    const r = await shale(root, 'build', '-q', ctx);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Dockerfile:3: COPY: destination path \/pw is a symlink to \/etc\/passwd, which is not a directory/);
  });

  it('a cached rebuild hits every step and never looks at the stage filesystem', async () => {
    const ctx = join(work, 'ctx-1');
    // no containers, no snapshots: a cached step that needed the stage's filesystem would unpack it again
    await shale(root, 'container', 'prune', '-f');
    for (const d of DRIVERS) rmSync(join(root, d), { recursive: true, force: true });
    const r = await shale(root, 'build', '-t', 'dest-1b', ctx);
    assert.equal(r.code, 0, r.stderr);
    const steps = r.stderr.split('\n').filter((l) => /^#\d+ \[\d+\/\d+\] (COPY|ADD)/.test(l)).length;
    const cached = r.stderr.split('\n').filter((l) => /^#\d+ CACHED$/.test(l)).length;
    assert.equal(steps, 8);
    assert.equal(cached, steps, `every COPY is cached:\n${r.stderr}`);
    for (const d of DRIVERS) assert.ok(!existsSync(join(root, d)), `no storage driver was opened (${d})`);
    assert.deepEqual(readdirSync(join(root, 'tmp')), [], 'nothing left in <root>/tmp');
    assert.equal(await shaleOk(root, 'inspect', '--format', '{{.Id}}', 'dest-1b'), await shaleOk(root, 'inspect', '--format', '{{.Id}}', 'dest-1'));
  });
});
