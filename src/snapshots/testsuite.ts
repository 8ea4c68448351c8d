// One conformance suite for every storage driver, with real mounts and real files.
// overlay.test.ts, vfs.test.ts and fuse.test.ts each run it. Every test unmounts what it
// mounted and removes its temp dir, also when it fails (and never deletes through a mount).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { appendFile, chmod, chown, cp, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { applyLayer, readTar, writeTar, type TarHeader, type TarSourceEntry } from '../archive/index.js';
import { isShaleError } from '../errors.js';
import { xattrsOfTree } from '../sys/index.js';
import { isMountPoint, mountAll, overlayMountData, unmountAll, MOUNT_DATA_MAX } from './mount.js';
import type { Mount, Snapshotter } from './types.js';

export type Factory = (root: string) => Snapshotter;

// ---- layer tars from a compact spec ----------------------------------------------------------

type Node =
  | string
  | Buffer
  | { dir: true; mode?: number }
  | { file: string | Buffer; mode?: number; uid?: number; gid?: number }
  | { symlink: string }
  | { whiteout: true }
  | { opaque: true };

const T0 = 1_700_000_000;

function entriesOf(spec: Record<string, Node>): TarSourceEntry[] {
  const out: TarSourceEntry[] = [];
  for (const [name, n] of Object.entries(spec)) {
    const base = { name, uid: 0, gid: 0, size: 0, mtime: T0 };
    if (typeof n === 'string' || Buffer.isBuffer(n)) {
      const data = Buffer.from(n);
      out.push({ header: { ...base, type: 'file', mode: 0o644, size: data.length }, data });
    } else if ('dir' in n) out.push({ header: { ...base, type: 'dir', mode: n.mode ?? 0o755 } });
    else if ('file' in n) {
      const data = Buffer.from(n.file);
      out.push({ header: { ...base, type: 'file', mode: n.mode ?? 0o644, uid: n.uid ?? 0, gid: n.gid ?? 0, size: data.length }, data });
    } else if ('symlink' in n) out.push({ header: { ...base, type: 'symlink', mode: 0o777, linkname: n.symlink } });
    else {
      const slash = name.lastIndexOf('/');
      const dir = slash < 0 ? '' : name.slice(0, slash + 1);
      const wh = 'whiteout' in n ? `${dir}.wh.${name.slice(slash + 1)}` : `${name}/.wh..wh..opq`;
      out.push({ header: { ...base, name: wh, type: 'file', mode: 0o644 } });
    }
  }
  return out;
}

function tarOf(spec: Record<string, Node>): Readable {
  return writeTar(entriesOf(spec));
}

const BIG = Buffer.alloc(256 * 1024);
for (let i = 0; i < BIG.length; i++) BIG[i] = (i * 7919) & 0xff;

const L1: Record<string, Node> = {
  etc: { dir: true },
  'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\n',
  'etc/hosts': '127.0.0.1 localhost\n',
  bin: { dir: true },
  'bin/sh': { file: '#!shell', mode: 0o755 },
  'bin/vi': { file: '#!vi', mode: 0o755 },
  'bin/ls': { symlink: 'sh' },
  data: { dir: true },
  'data/big': BIG,
  d: { dir: true },
  'd/f1': 'one',
  'd/sub': { dir: true },
  'd/sub/f2': 'two',
  usr: { dir: true },
  'usr/share': { dir: true },
  'usr/share/doc': { dir: true },
  'usr/share/doc/readme': 'doc',
};
const L1_SIZE = 30 + 20 + 7 + 4 + 2 + BIG.length + 3 + 3 + 3;
const L2: Record<string, Node> = {
  'etc/hosts': '127.0.0.1 localhost l2\n',
  'etc/motd': 'hello\n',
  'usr/share/doc/readme': { whiteout: true },
  opt: { dir: true },
  'opt/x': 'x',
};
const L3: Record<string, Node> = {
  opt: { opaque: true },
  'opt/y': 'y',
  'bin/l3': 'l3',
};

// ---- file tree fingerprints ----------------------------------------------------------------

async function treeHash(root: string, opts: { times?: boolean } = {}): Promise<string> {
  const times = opts.times ?? true;
  const h = createHash('sha256');
  const xattrs = await xattrsOfTree(root);
  async function visit(rel: string): Promise<void> {
    const p = rel ? join(root, rel) : root;
    const st = await lstat(p);
    const xa = [...(xattrs.get(p) ?? new Map())].filter(([k]) => !k.startsWith('security.selinux')).map(([k, v]) => `${k}=${v.toString('hex')}`).sort();
    h.update(`${rel}\0${st.mode}\0${st.uid}\0${st.gid}\0${st.rdev}\0${times ? st.mtimeMs : ''}\0${xa.join(',')}\n`);
    if (st.isFile()) h.update(await readFile(p));
    else if (st.isSymbolicLink()) h.update(await readlink(p));
    else if (st.isDirectory()) for (const n of (await readdir(p)).sort()) await visit(rel ? `${rel}/${n}` : n);
  }
  await visit('');
  return h.digest('hex');
}

async function tarHeaders(s: Readable): Promise<TarHeader[]> {
  const out: TarHeader[] = [];
  for await (const e of readTar(s)) {
    out.push({ ...e.header, name: e.header.name.replace(/\/$/, '') });
    for await (const _ of e.body) void _;
  }
  return out;
}

async function collect(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function* once(b: Buffer): AsyncGenerator<Buffer> {
  yield b;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return isShaleError(e) ? e.code : `not a ShaleError: ${(e as Error).message}`;
  }
  return 'no error';
}

async function errnoOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code;
  }
  return undefined;
}

/** The snapshot's own directory, read from its mounts (upperdir, or the bind source). */
function ownDir(mounts: Mount[]): string {
  const m = mounts[mounts.length - 1];
  const up = m.options.find((o) => o.startsWith('upperdir='));
  if (up) return up.slice('upperdir='.length);
  assert.equal(m.type, 'bind', `expected a bind mount or an upperdir in ${JSON.stringify(m)}`);
  return m.source;
}

const changeList = (cs: { kind: string; path: string }[]) => cs.map((c) => `${c.kind} ${c.path}`);

// ---- per-test environment --------------------------------------------------------------------

class Env {
  readonly dir: string;
  readonly factory: Factory;
  sn: Snapshotter;
  private opened: Snapshotter[] = [];
  private targets: string[] = [];
  private n = 0;
  constructor(dir: string, factory: Factory) {
    this.dir = dir;
    this.factory = factory;
    this.sn = this.open();
  }
  open(): Snapshotter {
    const sn = this.factory(join(this.dir, 'root'));
    this.opened.push(sn);
    return sn;
  }
  reopen(): Snapshotter {
    this.sn.close();
    this.sn = this.open();
    return this.sn;
  }
  async mount(mounts: Mount[]): Promise<string> {
    const t = join(this.dir, 'mnt', String(this.n++));
    await mkdir(t, { recursive: true });
    this.targets.push(t);
    await mountAll(mounts, t);
    return t;
  }
  async umount(t: string): Promise<void> {
    await unmountAll(t);
  }
  /** a committed layer from a spec; returns the applyTar size */
  async layer(key: string, parent: string | undefined, spec: Record<string, Node>): Promise<number> {
    await this.sn.prepare(`${key}~extract`, parent);
    const { size } = await this.sn.applyTar(`${key}~extract`, tarOf(spec));
    await this.sn.commit(key, `${key}~extract`);
    return size;
  }
  async base(): Promise<void> {
    await this.layer('L1', undefined, L1);
    await this.layer('L2', 'L1', L2);
    await this.layer('L3', 'L2', L3);
  }
  /** read-only fingerprints of every committed layer: per directory (lowerDirs) and as mounted */
  async lowerPrints(key: string): Promise<string[]> {
    const prints: string[] = [];
    for (const d of this.sn.lowerDirs?.(key) ?? []) prints.push(await treeHash(d));
    const t = await this.mount(await this.sn.mounts(key));
    try {
      prints.push(await treeHash(t));
    } finally {
      await this.umount(t);
    }
    return prints;
  }
  async dispose(): Promise<void> {
    const errors: unknown[] = [];
    for (const t of this.targets.reverse()) {
      try {
        await unmountAll(t);
      } catch (e) {
        errors.push(e);
        await unmountAll(t, { lazy: true }).catch((e2) => errors.push(e2));
      }
    }
    for (const sn of this.opened) sn.close();
    const still = this.targets.filter((t) => isMountPoint(t));
    if (still.length) {
      // never rm -r through a mount: that would delete the layers underneath
      console.error(`leaving ${this.dir} in place: still mounted: ${still.join(', ')}`);
    } else {
      await rm(this.dir, { recursive: true, force: true });
    }
    if (errors.length) throw errors[0];
  }
}

// ---- the suite -------------------------------------------------------------------------------

export interface SuiteOptions {
  /** skip the whole suite, with the reason printed */
  skip?: string;
  /** layers in the long-chain test (default 120, what overlay2 must mount in one page) */
  chainDepth?: number;
}

export function snapshotterSuite(name: string, factory: Factory, opts: SuiteOptions = {}): void {
  if (opts.skip) console.log(`# snapshotter suite ${name} skipped: ${opts.skip}`);
  const overlayLike = name !== 'vfs';

  const it = (title: string, fn: (env: Env) => Promise<void>) =>
    test(title, async () => {
      const dir = await mkdtemp(join(tmpdir(), `shale-snap-${name}-`));
      let env: Env | undefined;
      try {
        env = new Env(dir, factory);
        await fn(env);
      } finally {
        if (env) await env.dispose();
        else await rm(dir, { recursive: true, force: true });
      }
    });

  describe(`snapshotter ${name}`, { skip: opts.skip }, () => {
    it('prepare on a committed chain shows the merged content; views are read-only', async (env) => {
      const sn = env.sn;
      assert.equal(await env.layer('L1', undefined, L1), L1_SIZE, 'applyTar reports the layer size');
      await env.layer('L2', 'L1', L2);
      await env.layer('L3', 'L2', L3);
      const t = await env.mount(await sn.prepare('c', 'L3', { role: 'container' }));
      assert.equal(await readFile(join(t, 'etc/passwd'), 'utf8'), 'root:x:0:0:root:/root:/bin/sh\n');
      assert.equal(await readFile(join(t, 'etc/hosts'), 'utf8'), '127.0.0.1 localhost l2\n');
      assert.equal(await readFile(join(t, 'etc/motd'), 'utf8'), 'hello\n');
      assert.equal(await errnoOf(lstat(join(t, 'usr/share/doc/readme'))), 'ENOENT', 'whiteout in L2 hides the L1 file');
      assert.deepEqual(await readdir(join(t, 'usr/share/doc')), []);
      assert.deepEqual(await readdir(join(t, 'opt')), ['y'], 'opaque opt in L3 hides L2 opt/x');
      assert.equal(await readlink(join(t, 'bin/ls')), 'sh');
      assert.equal((await lstat(join(t, 'bin/sh'))).mode & 0o7777, 0o755);
      assert.ok((await readFile(join(t, 'data/big'))).equals(BIG));
      await writeFile(join(t, 'hello'), 'rw');
      const info = await sn.stat('c');
      assert.deepEqual({ ...info, created: '' }, { key: 'c', parent: 'L3', kind: 'active', created: '', labels: { role: 'container' } });

      const v = await env.mount(await sn.view('v', 'L3'));
      assert.equal(await readFile(join(v, 'etc/hosts'), 'utf8'), '127.0.0.1 localhost l2\n');
      assert.deepEqual(await readdir(join(v, 'opt')), ['y']);
      assert.equal(await errnoOf(lstat(join(v, 'hello'))), 'ENOENT', 'the view does not see the active snapshot');
      assert.equal(await errnoOf(writeFile(join(v, 'new'), 'x')), 'EROFS');
      assert.equal((await sn.stat('v')).kind, 'view');
      // a one-layer view (bind) is read-only too
      const v1 = await env.mount(await sn.view('v1', 'L1'));
      assert.equal(await readFile(join(v1, 'etc/hosts'), 'utf8'), '127.0.0.1 localhost\n');
      assert.equal(await errnoOf(writeFile(join(v1, 'new'), 'x')), 'EROFS');
      // an active snapshot without parent is an empty writable dir
      const e = await env.mount(await sn.prepare('scratch'));
      assert.deepEqual(await readdir(e), []);
      await writeFile(join(e, 'f'), 'x');
      await env.umount(e);
      assert.deepEqual(changeList(await sn.changes('scratch')), ['A /f']);
    });

    it('the first write to a lower file copies the whole file up', async (env) => {
      const sn = env.sn;
      await env.base();
      const mounts = await sn.prepare('c', 'L3');
      const t = await env.mount(mounts);
      await appendFile(join(t, 'data/big'), 'X');
      await env.umount(t);
      const up = await readFile(join(ownDir(mounts), 'data/big'));
      assert.equal(up.length, BIG.length + 1, 'the upper copy holds the whole file');
      assert.ok(up.subarray(0, BIG.length).equals(BIG));
      assert.deepEqual(changeList(await sn.changes('c')), ['C /data', 'C /data/big']);
      const hs = await tarHeaders(sn.diffTar('c'));
      assert.deepEqual(hs.map((h) => `${h.name}:${h.size}`), ['data:0', `data/big:${BIG.length + 1}`]);
      assert.ok((await sn.usage('c')).size >= BIG.length + 1);
    });

    it('chmod and chown copy a lower file up', async (env) => {
      const sn = env.sn;
      await env.base();
      const mounts = await sn.prepare('c', 'L3');
      const t = await env.mount(mounts);
      await chmod(join(t, 'etc/passwd'), 0o600);
      await chown(join(t, 'etc/hosts'), 1000, 1001);
      await env.umount(t);
      const own = ownDir(mounts);
      const p = await lstat(join(own, 'etc/passwd'));
      assert.equal(p.mode & 0o7777, 0o600);
      assert.equal(await readFile(join(own, 'etc/passwd'), 'utf8'), 'root:x:0:0:root:/root:/bin/sh\n');
      const h = await lstat(join(own, 'etc/hosts'));
      assert.deepEqual([h.uid, h.gid], [1000, 1001]);
      assert.equal(await readFile(join(own, 'etc/hosts'), 'utf8'), '127.0.0.1 localhost l2\n');
      assert.deepEqual(changeList(await sn.changes('c')), ['C /etc', 'C /etc/hosts', 'C /etc/passwd']);
      const hs = await tarHeaders(sn.diffTar('c'));
      const byName = new Map(hs.map((x) => [x.name, x]));
      assert.equal(byName.get('etc/passwd')?.mode, 0o600);
      assert.equal(byName.get('etc/passwd')?.size, 30);
      assert.deepEqual([byName.get('etc/hosts')?.uid, byName.get('etc/hosts')?.gid], [1000, 1001]);
    });

    it('deleting a lower file leaves a whiteout', async (env) => {
      const sn = env.sn;
      await env.base();
      const mounts = await sn.prepare('c', 'L3');
      const t = await env.mount(mounts);
      await unlink(join(t, 'bin/vi'));
      assert.equal(await errnoOf(lstat(join(t, 'bin/vi'))), 'ENOENT');
      await env.umount(t);
      assert.deepEqual(changeList(await sn.changes('c')), ['C /bin', 'D /bin/vi']);
      const names = (await tarHeaders(sn.diffTar('c'))).map((h) => h.name);
      assert.deepEqual(names, ['bin', 'bin/.wh.vi']);
      if (overlayLike) {
        const own = ownDir(mounts);
        const st = await lstat(join(own, 'bin/vi')).catch(() => undefined);
        const whFile = existsSync(join(own, 'bin/.wh.vi'));
        assert.ok((st?.isCharacterDevice() && st.rdev === 0) || whFile, 'upper holds a whiteout for bin/vi');
      }
      // the committed layers still have it
      const v = await env.mount(await sn.view('v', 'L3'));
      assert.equal(await readFile(join(v, 'bin/vi'), 'utf8'), '#!vi');
    });

    it('rm -r of a lower dir and recreating it makes it opaque', async (env) => {
      const sn = env.sn;
      await env.base();
      const t = await env.mount(await sn.prepare('c', 'L3'));
      await rm(join(t, 'd'), { recursive: true });
      await mkdir(join(t, 'd'));
      await writeFile(join(t, 'd/new'), 'new');
      assert.deepEqual(await readdir(join(t, 'd')), ['new']);
      const merged = await treeHash(t, { times: false });
      await env.umount(t);
      const hs = await tarHeaders(sn.diffTar('c'));
      const names = hs.map((h) => h.name);
      if (overlayLike) {
        assert.equal(names.filter((n) => n === 'd/.wh..wh..opq').length, 1, `one opaque marker in ${names.join(' ')}`);
        assert.deepEqual(names.filter((n) => n.startsWith('d/')).sort(), ['d/.wh..wh..opq', 'd/new']);
      } else {
        assert.deepEqual(names.filter((n) => n.startsWith('d/')).sort(), ['d/.wh.f1', 'd/.wh.sub', 'd/new']);
      }
      for (const h of hs) for (const k of h.xattrs?.keys() ?? []) assert.ok(!/overlay/.test(k), `no overlay bookkeeping xattr ${k} on ${h.name}`);
      // the diff applied to a flat copy of the parent gives the merged tree
      const flat = join(env.dir, 'flat');
      const v = await env.mount(await sn.view('v', 'L3'));
      await cp(v, flat, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
      await applyLayer(flat, sn.diffTar('c'), { whiteouts: 'apply' });
      assert.equal(await treeHash(flat, { times: false }), merged);
    });

    it('the committed layers never change, whatever the container does', async (env) => {
      const sn = env.sn;
      await env.base();
      const before = await env.lowerPrints('L3');
      const t = await env.mount(await sn.prepare('c', 'L3'));
      await appendFile(join(t, 'data/big'), 'more');
      await writeFile(join(t, 'etc/passwd'), 'truncated');
      await chmod(join(t, 'bin/sh'), 0o700);
      await chown(join(t, 'etc/motd'), 5, 5);
      await unlink(join(t, 'bin/vi'));
      await rm(join(t, 'd'), { recursive: true });
      await mkdir(join(t, 'd'));
      await rm(join(t, 'opt'), { recursive: true });
      await symlink('/etc/passwd', join(t, 'etc/link'));
      await mkdir(join(t, 'usr/share/doc/readme'), { recursive: true });
      await env.umount(t);
      assert.deepEqual(await env.lowerPrints('L3'), before);
    });

    it('changes() lists A/C/D like docker diff', async (env) => {
      const sn = env.sn;
      await env.base();
      const t = await env.mount(await sn.prepare('c', 'L3'));
      await writeFile(join(t, 'etc/passwd'), 'root:x:0:0::/root:/bin/bash\n');
      await mkdir(join(t, 'newdir'));
      await writeFile(join(t, 'newdir/file'), 'f');
      await unlink(join(t, 'bin/vi'));
      await symlink('etc/passwd', join(t, 'newlink'));
      await rm(join(t, 'usr/share'), { recursive: true });
      await env.umount(t);
      const expected = ['C /bin', 'D /bin/vi', 'C /etc', 'C /etc/passwd', 'A /newdir', 'A /newdir/file', 'A /newlink', 'C /usr', 'D /usr/share'];
      const changes = await sn.changes('c');
      assert.deepEqual(changeList(changes), expected);
      for (const c of changes) assert.equal(c.st === undefined, c.kind === 'D', `st only for A/C: ${c.kind} ${c.path}`);
      const names = (await tarHeaders(sn.diffTar('c'))).map((h) => h.name);
      assert.deepEqual(names, ['bin', 'bin/.wh.vi', 'etc', 'etc/passwd', 'newdir', 'newdir/file', 'newlink', 'usr', 'usr/.wh.share']);
      await sn.commit('C1', 'c');
      assert.deepEqual(changeList(await sn.changes('C1')), expected, 'a committed layer diffs against its parent the same way');
    });

    it('a held snapshot cannot be removed until released, or until its holder dies', async (env) => {
      const sn = env.sn;
      await env.base();
      const release = sn.hold(['L3', 'not-made-yet']);
      assert.equal(await codeOf(sn.remove('L3')), 'Conflict', 'a live hold keeps it');
      assert.ok(sn.exists('L3'));
      release();
      release(); // twice is harmless
      await sn.remove('L3');
      assert.equal(sn.exists('L3'), false);
      // another process holds L2: refused while it lives; once it is killed (-9, no release), its hold is void
      const mod = new URL('./index.js', import.meta.url).href;
      const child = spawn(process.execPath, ['--input-type=module', '-e', `const { openSnapshotter } = await import(${JSON.stringify(mod)}); const s = openSnapshotter(${JSON.stringify(join(env.dir, 'root'))}, ${JSON.stringify(sn.name)}); s.hold(['L2']); console.log('held'); setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
      try {
        await new Promise<void>((res, rej) => { child.stdout!.once('data', () => res()); child.once('exit', (c) => rej(new Error(`holder exited ${c}`))); });
        assert.equal(await codeOf(sn.remove('L2')), 'Conflict', "another live process's hold keeps it");
      } finally {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await gone;
      }
      await sn.remove('L2');
      assert.equal(sn.exists('L2'), false);
    });

    it('commit, then prepare on top; kinds and errors', async (env) => {
      const sn = env.sn;
      await env.base();
      const t = await env.mount(await sn.prepare('c', 'L3'));
      await writeFile(join(t, 'etc/new'), 'n');
      await unlink(join(t, 'etc/motd'));
      await env.umount(t);
      assert.equal(await codeOf(sn.commit('L1', 'c')), 'AlreadyExists');
      await sn.commit('C1', 'c', { layer: 'app' });
      assert.equal(sn.exists('c'), false);
      const ci = await sn.stat('C1');
      assert.deepEqual([ci.kind, ci.parent, ci.labels], ['committed', 'L3', { layer: 'app' }]);
      const t2 = await env.mount(await sn.prepare('c2', 'C1'));
      assert.equal(await readFile(join(t2, 'etc/new'), 'utf8'), 'n');
      assert.equal(await errnoOf(lstat(join(t2, 'etc/motd'))), 'ENOENT');
      assert.equal(await readFile(join(t2, 'etc/passwd'), 'utf8'), 'root:x:0:0:root:/root:/bin/sh\n');
      assert.deepEqual(await sn.changes('c2'), []);
      // a committed snapshot mounts read-only
      const tc = await env.mount(await sn.mounts('C1'));
      assert.equal(await readFile(join(tc, 'etc/new'), 'utf8'), 'n');
      assert.equal(await errnoOf(writeFile(join(tc, 'x'), 'x')), 'EROFS');

      assert.equal(await codeOf(sn.prepare('c2', 'C1')), 'AlreadyExists');
      assert.equal(await codeOf(sn.prepare('x', 'nope')), 'NotFound');
      assert.equal(await codeOf(sn.prepare('x', 'c2')), 'FailedPrecondition', 'an active snapshot cannot be a parent');
      assert.equal(await codeOf(sn.prepare('')), 'InvalidArgument');
      await sn.view('v', 'C1');
      assert.equal(await codeOf(sn.commit('V', 'v')), 'FailedPrecondition', 'a view cannot be committed');
      assert.equal(await codeOf(sn.commit('X', 'C1')), 'FailedPrecondition', 'a committed snapshot cannot be committed again');
      assert.equal(await codeOf(sn.applyTar('C1', once(Buffer.alloc(1024)))), 'FailedPrecondition');
      assert.equal(await codeOf(sn.stat('nope')), 'NotFound');
      assert.equal(await codeOf(sn.mounts('nope')), 'NotFound');
      const keys = (await sn.list()).map((i) => `${i.key}:${i.kind}`).sort();
      assert.deepEqual(keys, ['C1:committed', 'L1:committed', 'L2:committed', 'L3:committed', 'c2:active', 'v:view']);
    });

    it('remove refuses while children exist, then works bottom-up', async (env) => {
      const sn = env.sn;
      await env.base();
      await sn.prepare('c', 'L3');
      await sn.view('v', 'L2');
      for (const k of ['L1', 'L2', 'L3']) {
        const code = await codeOf(sn.remove(k));
        assert.equal(code, 'Conflict', `remove ${k} with children`);
      }
      assert.equal(await codeOf(sn.remove('nope')), 'NotFound');
      await sn.remove('c');
      assert.equal(await codeOf(sn.remove('L2')), 'Conflict', 'L3 and the view v are still on L2');
      await sn.remove('L3');
      await sn.remove('v');
      await sn.remove('L2');
      await sn.remove('L1');
      assert.deepEqual(await sn.list(), []);
      assert.deepEqual(await readdir(join(sn.root, 'snapshots')), [], 'no snapshot directory is left');
      assert.deepEqual(await readdir(join(sn.root, 'l')), [], 'no link is left');
      assert.deepEqual(await readdir(join(sn.root, 'tmp')), []);
    });

    it('usage() of an active snapshot is the bytes written to it', async (env) => {
      const sn = env.sn;
      await env.base();
      const mounts = await sn.prepare('c', 'L3');
      assert.deepEqual(await sn.usage('c'), { size: 0, inodes: 1 });
      const t = await env.mount(mounts);
      await writeFile(join(t, 'a'), Buffer.alloc(1000, 1));
      await mkdir(join(t, 'x'));
      await writeFile(join(t, 'x/b'), Buffer.alloc(2345, 2));
      await env.umount(t);
      assert.deepEqual(await sn.usage('c'), { size: 3345, inodes: 4 });
      await sn.commit('C', 'c');
      assert.deepEqual(await sn.usage('C'), { size: 3345, inodes: 4 });
      assert.equal((await sn.usage('L1')).size, L1_SIZE);
    });

    const depth = opts.chainDepth ?? 120;
    it(`a ${depth}-layer chain mounts, and the top sees the bottom layer`, async (env) => {
      const sn = env.sn;
      let parent: string | undefined;
      for (let i = 0; i < depth; i++) {
        await env.layer(`layer-${i}`, parent, { [`f${i}`]: String(i), top: String(i) });
        parent = `layer-${i}`;
      }
      const mounts = await sn.prepare('c', parent);
      for (const m of mounts) {
        if (m.type !== 'overlay') continue;
        assert.equal(m.options.find((o) => o.startsWith('lowerdir='))?.split(':').length, depth);
        const { length } = overlayMountData(m.options);
        assert.ok(length <= MOUNT_DATA_MAX && length < 4096, `mount data is ${length} bytes`);
      }
      const t = await env.mount(mounts);
      assert.equal(await readFile(join(t, 'f0'), 'utf8'), '0');
      assert.equal(await readFile(join(t, `f${depth - 1}`), 'utf8'), String(depth - 1));
      assert.equal(await readFile(join(t, 'top'), 'utf8'), String(depth - 1));
      assert.equal((await readdir(t)).length, depth + 1);
      await writeFile(join(t, 'f0'), 'changed');
      await env.umount(t);
      assert.deepEqual(changeList(await sn.changes('c')), ['C /f0']);
    });

    it('crash safety: a row without dir and a dir without row are cleaned on reopen', async (env) => {
      let sn = env.sn;
      await env.layer('base', undefined, { a: 'a' });
      await env.layer('mid', 'base', { b: 'b' });
      await sn.prepare('kid', 'mid');
      await sn.prepare('c1', 'base');
      const root = sn.root;
      // mid's directory disappears (row without dir): mid and kid, built on it, are dropped
      const midDir = join(sn.lowerDirs!('mid')[0], '..');
      assert.ok(midDir.startsWith(join(root, 'snapshots')));
      sn.close();
      await rm(midDir, { recursive: true });
      // directories, staging and links that no row owns
      await mkdir(join(root, 'snapshots/987654/fs/x'), { recursive: true });
      await mkdir(join(root, 'tmp/new-999999999-dead/fs'), { recursive: true });
      await symlink('../snapshots/987654/fs', join(root, 'l/ZZZZZZZZZZZZ'));
      // a process killed in the middle of a transaction that had made a directory
      const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
      const code = `
        const D = require(${JSON.stringify(sqlite)}); const fs = require('fs');
        const db = new D(${JSON.stringify(join(root, 'metadata.db'))});
        db.pragma('journal_mode = WAL'); db.exec('BEGIN IMMEDIATE');
        db.prepare("INSERT INTO snapshots (key, id, parent, kind, created) VALUES ('half', 55555, NULL, 'active', 'now')").run();
        fs.mkdirSync(${JSON.stringify(join(root, 'snapshots/55555/fs'))}, { recursive: true });
        process.kill(process.pid, 'SIGKILL');`;
      const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8' });
      assert.equal(r.signal, 'SIGKILL', r.stderr);

      sn = env.reopen();
      assert.deepEqual((await sn.list()).map((i) => i.key).sort(), ['base', 'c1']);
      assert.deepEqual((await readdir(join(root, 'snapshots'))).length, 2);
      assert.equal(existsSync(join(root, 'l/ZZZZZZZZZZZZ')), false);
      assert.deepEqual(await readdir(join(root, 'tmp')), []);
      assert.deepEqual(await sn.cleanup(), { removedKeys: [], removedPaths: [] });
      const t = await env.mount(await sn.mounts('c1'));
      assert.equal(await readFile(join(t, 'a'), 'utf8'), 'a');
      await env.umount(t);
      // and the freed keys can be used again
      await env.layer('mid', 'base', { b: 'b2' });
      const t2 = await env.mount(await sn.prepare('kid', 'mid'));
      assert.equal(await readFile(join(t2, 'b'), 'utf8'), 'b2');
    });

    it('applyTar writes whiteouts and opaque dirs that mounts honour', async (env) => {
      const sn = env.sn;
      await env.base();
      await sn.prepare('c', 'L3');
      const { size } = await sn.applyTar('c', tarOf({ 'etc/passwd': { whiteout: true }, d: { opaque: true }, 'd/z': 'zz' }));
      assert.equal(size, 2);
      const t = await env.mount(await sn.mounts('c'));
      assert.equal(await errnoOf(lstat(join(t, 'etc/passwd'))), 'ENOENT');
      assert.deepEqual(await readdir(join(t, 'd')), ['z']);
      await env.umount(t);
      const names = (await tarHeaders(sn.diffTar('c'))).map((h) => h.name);
      assert.ok(names.includes('etc/.wh.passwd'), names.join(' '));
      const raw = await collect(sn.diffTar('c'));
      assert.equal(raw.length % 512, 0);
    });
  });
}
