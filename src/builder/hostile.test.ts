// Hostile builds, through the CLI as a user runs it: contexts and images that try to make the
// builder read or write host files through symlinks. A canary directory outside the context is
// fingerprinted before and after each case and must not change; each refusal is one line
// ("Error: ..."), no stack trace, and never carries the bytes it refused to read.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { writeTar, type TarSourceEntry } from '../archive/index.js';
import { fingerprint } from '../testutil/canary.js';
import { makeDockerArchive, removeTree, shale, shaleOk, shaleWith, tempDir, type RunResult } from '../testutil/index.js';

const MTIME = Date.UTC(2024, 0, 1) / 1000;

/** a refusal: non-zero exit, exactly one line on stderr (with -q), no stack trace, no canary bytes */
function assertRefused(r: RunResult, re: RegExp, secret: string): void {
  assert.notEqual(r.code, 0, `expected a refusal, got exit 0: ${r.stdout}`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line of error, got:\n${r.stderr}`);
  assert.match(lines[0], /^Error: /);
  assert.ok(!/\n\s+at /.test(r.stderr), `no stack trace:\n${r.stderr}`);
  assert.match(lines[0], re);
  assert.ok(!r.stderr.includes(secret) && !r.stdout.includes(secret), `the canary's content never appears: ${r.stderr}`);
}

/** every byte of an image as `shale save` writes it (layers decompressed) */
async function imageBytes(root: string, work: string, image: string): Promise<Buffer> {
  const dir = join(work, `save-${randomBytes(4).toString('hex')}`);
  mkdirSync(dir);
  try {
    await shaleOk(root, 'save', '-o', join(dir, 'img.tar'), image);
    mkdirSync(join(dir, 'x'));
    execFileSync('tar', ['-xf', join(dir, 'img.tar'), '-C', join(dir, 'x')]);
    const all: Buffer[] = [];
    const visit = (p: string) => {
      const st = lstatSync(p);
      if (st.isDirectory()) for (const n of readdirSync(p)) visit(join(p, n));
      else if (st.isFile()) {
        const b = readFileSync(p);
        all.push(b[0] === 0x1f && b[1] === 0x8b ? gunzipSync(b) : b);
      }
    };
    visit(join(dir, 'x'));
    return Buffer.concat(all);
  } finally {
    removeTree(dir);
  }
}

describe('build: hostile contexts and images', () => {
  let root: string;
  let work: string;
  let canary: string;
  let secret: string; // the canary file's distinctive content
  let print: string[];

  before(async () => {
    root = tempDir(undefined, 'shale-hostile-root-');
    work = tempDir(undefined, 'shale-hostile-');
    canary = join(work, 'canary');
    mkdirSync(canary);
    secret = `CANARY-${randomBytes(8).toString('hex')}`;
    // the canary file parses as a Dockerfile line, so a parse error would quote it
    writeFileSync(join(canary, 'secret'), `${secret} do not read me\n`);
    writeFileSync(join(canary, 'passwd'), 'root:x:0:0:canary:/root:/bin/sh\n');
    await shaleOk(root, 'bootstrap', 'busybox');
  });
  after(async () => {
    await shale(root, 'container', 'prune', '-f');
    removeTree(root);
    removeTree(work);
  });

  /** a fresh context directory with these files (a string is content; {link} a symlink) */
  const context = (name: string, files: Record<string, string | { link: string }>): string => {
    const dir = join(work, name);
    mkdirSync(dir, { recursive: true });
    for (const [p, v] of Object.entries(files)) {
      mkdirSync(join(dir, p, '..'), { recursive: true });
      if (typeof v === 'string') writeFileSync(join(dir, p), v);
      else symlinkSync(v.link, join(dir, p));
    }
    return dir;
  };

  const unchanged = async (fn: () => Promise<void>) => {
    print = fingerprint(canary);
    await fn();
    assert.deepEqual(fingerprint(canary), print, 'the canary directory is untouched');
  };

  it('(a) COPY through a symlinked parent that points outside (absolute) is refused, naming the link', async () => {
    await unchanged(async () => {
      const ctx = context('ctx-a', { link: { link: canary }, Dockerfile: 'FROM busybox\nCOPY link/secret /x\n' });
      const r = await shale(root, 'build', '-q', ctx);
      assertRefused(r, new RegExp(`Dockerfile:2: COPY: source link/secret leaves the build context through the symlink /link -> ${canary}`), secret);
      // a glob never walks through the link either
      writeFileSync(join(ctx, 'Dockerfile'), 'FROM busybox\nCOPY link/* /x/\n');
      assertRefused(await shale(root, 'build', '-q', ctx), /no source files were specified by link\/\*/, secret);
      // the link itself is copied as a link (its target is not read)
      writeFileSync(join(ctx, 'Dockerfile'), 'FROM busybox\nCOPY link /x\n');
      await shaleOk(root, 'build', '-q', '-t', 'hostile-a', ctx);
      assert.equal((await shaleOk(root, 'run', '--rm', 'hostile-a', 'readlink', '/x')).trim(), canary);
      assert.ok(!(await imageBytes(root, work, 'hostile-a')).includes(secret), 'the image holds the link, not what it points at');
    });
  });

  it('(b) COPY through a relative symlink that climbs out (../../..) is refused', async () => {
    await unchanged(async () => {
      // as many ".." as it takes to reach / from the context (../../.. from /tmp/X/ctx-b)
      const up = Array(join(work, 'ctx-b').split('/').length - 1).fill('..').join('/');
      const ctx = context('ctx-b', { link: { link: up }, Dockerfile: `FROM busybox\nCOPY link${canary}/secret /x\n` });
      const r = await shale(root, 'build', '-q', ctx);
      assertRefused(r, new RegExp(`source link${canary}/secret leaves the build context through the symlink /link -> ${up.replace(/\./g, '\\.')}`), secret);
      // the same link deeper in the context
      writeFileSync(join(ctx, 'Dockerfile'), `FROM busybox\nCOPY sub/deeper/link${canary}/secret /x\n`);
      mkdirSync(join(ctx, 'sub/deeper'), { recursive: true });
      symlinkSync(`../../${up}`, join(ctx, 'sub/deeper/link'));
      assertRefused(await shale(root, 'build', '-q', ctx), /leaves the build context through the symlink \/sub\/deeper\/link -> /, secret);
      // a link that stays inside is still followed
      const ok = context('ctx-b2', { 'real/f': 'inside\n', 'sub/link': { link: '../real' }, Dockerfile: 'FROM busybox\nCOPY sub/link/f /f\n' });
      await shaleOk(root, 'build', '-q', '-t', 'hostile-b', ok);
      assert.equal(await shaleOk(root, 'run', '--rm', 'hostile-b', 'cat', '/f'), 'inside\n');
    });
  });

  it('(a/b) a .dockerignore that is a symlink out of the context is refused, not read', async () => {
    await unchanged(async () => {
      const ctx = context('ctx-ign', { '.dockerignore': { link: join(canary, 'secret') }, f: 'x\n', Dockerfile: 'FROM busybox\nCOPY f /f\n' });
      assertRefused(await shale(root, 'build', '-q', ctx), /failed to read \.dockerignore: \.dockerignore leaves the build context through the symlink/, secret);
    });
  });

  it('a link to a file .dockerignore excludes does not bring it in', async () => {
    const ctx = context('ctx-ign2', { '.dockerignore': 'private\n', 'private/key': 'private-key\n', link: { link: 'private' }, Dockerfile: 'FROM busybox\nCOPY link/key /k\n' });
    const r = await shale(root, 'build', '-q', ctx);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /file not found in build context or excluded by \.dockerignore: stat link\/key/);
  });

  it('(c) a Dockerfile that is a symlink out of the context is refused without its content', async () => {
    await unchanged(async () => {
      const ctx = context('ctx-c', { Dockerfile: { link: join(canary, 'secret') } });
      const want = new RegExp(`^Error: failed to read dockerfile: Dockerfile leaves the build context through the symlink /Dockerfile -> ${join(canary, 'secret')}`);
      assertRefused(await shale(root, 'build', '-q', ctx), want, secret);
      // -f naming that link, relative to the working directory or absolute: still the context's link
      assertRefused(await shaleWith(root, ['build', '-q', '-f', 'ctx-c/Dockerfile', 'ctx-c'], { cwd: work }), want, secret);
      assertRefused(await shale(root, 'build', '-q', '-f', join(ctx, 'Dockerfile'), ctx), want, secret);
      // a Dockerfile under a symlinked directory of the context
      const ctx2 = context('ctx-c2', { d: { link: canary } });
      assertRefused(await shale(root, 'build', '-q', '-f', join(ctx2, 'd', 'secret'), ctx2), /failed to read dockerfile: .*leaves the build context through the symlink \/d ->/, secret);
      // a real Dockerfile outside the context, named by the user, is the user's choice
      const outside = join(work, 'Outside.Dockerfile');
      writeFileSync(outside, 'FROM busybox\nCOPY f /f\n');
      const ctx3 = context('ctx-c3', { f: 'from outside\n' });
      await shaleOk(root, 'build', '-q', '-t', 'hostile-c', '-f', outside, ctx3);
      assert.equal(await shaleOk(root, 'run', '--rm', 'hostile-c', 'cat', '/f'), 'from outside\n');
      // and one in the context named relative to the working directory
      writeFileSync(join(ctx3, 'My.Dockerfile'), 'FROM busybox\nCOPY f /g\n');
      const r = await shaleWith(root, ['build', '-q', '-f', 'ctx-c3/My.Dockerfile', 'ctx-c3'], { cwd: work });
      assert.equal(r.code, 0, r.stderr);
    });
  });

  describe('(d) COPY --from an image whose /data is an absolute symlink to the canary', () => {
    before(async () => {
      // a real image made the way `docker save` archives are: layer dirs tarred with GNU tar
      const layerA = join(work, 'layer-a');
      mkdirSync(layerA);
      symlinkSync(canary, join(layerA, 'data'));
      makeDockerArchive(join(work, 'src-a.tar'), [{ dir: layerA }], { tag: 'hostile-src:a' });
      await shaleOk(root, 'load', '-i', join(work, 'src-a.tar'));
      // the same link, and the image has a file of its own where the link points
      const layerB = join(work, 'layer-b');
      mkdirSync(join(layerB, canary), { recursive: true });
      symlinkSync(canary, join(layerB, 'data'));
      writeFileSync(join(layerB, canary, 'secret'), 'the image own file\n');
      makeDockerArchive(join(work, 'src-b.tar'), [{ dir: layerB }], { tag: 'hostile-src:b' });
      await shaleOk(root, 'load', '-i', join(work, 'src-b.tar'));
    });

    it('resolves the link inside the image: not found there, never the host file', async () => {
      await unchanged(async () => {
        const ctx = context('ctx-d', { Dockerfile: 'FROM busybox\nCOPY --from=hostile-src:a /data/secret /x\n' });
        assertRefused(await shale(root, 'build', '-q', ctx), /COPY failed: file not found in the image: stat \/data\/secret/, secret);
        // the same through a stage
        writeFileSync(join(ctx, 'Dockerfile'), 'FROM hostile-src:a AS src\nFROM busybox\nCOPY --from=src /data/secret /x\n');
        assertRefused(await shale(root, 'build', '-q', ctx), /file not found in the stage: stat \/data\/secret/, secret);
      });
    });

    it('copies what the image has at the re-rooted path, and nothing of the canary', async () => {
      await unchanged(async () => {
        const ctx = context('ctx-d2', { Dockerfile: 'FROM busybox\nCOPY --from=hostile-src:b /data/secret /x\n' });
        await shaleOk(root, 'build', '-q', '-t', 'hostile-d', ctx);
        assert.equal(await shaleOk(root, 'run', '--rm', 'hostile-d', 'cat', '/x'), 'the image own file\n');
        assert.ok(!(await imageBytes(root, work, 'hostile-d')).includes(secret), 'no canary bytes anywhere in the image');
      });
    });

    it('flattens the source in a directory only the engine owner can enter, and removes it', async () => {
      const ctx = context('ctx-d3', { Dockerfile: 'FROM busybox\nCOPY --from=hostile-src:b /data/secret /x\nRUN sleep 3\n' });
      const tmp = join(root, 'tmp');
      const running = shale(root, 'build', '-q', '--no-cache', ctx);
      let seen: string | undefined;
      let done = false;
      void running.then(() => { done = true; });
      while (!done && !seen) {
        try {
          seen = readdirSync(tmp).find((n) => n.startsWith('build-from-'));
        } catch { /* not made yet */ }
        if (!seen) await new Promise((res) => setTimeout(res, 50));
      }
      assert.ok(seen, 'a flattened source appeared under <root>/tmp while the build ran');
      assert.equal(statSync(tmp).mode & 0o777, 0o700, '<root>/tmp is 0700');
      const r = await running;
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(readdirSync(tmp), [], 'removed after the build');
    });
  });

  it('(e) RUN --network=host needs --allow network.host', async () => {
    const hostIfaces = readFileSync('/proc/net/dev', 'utf8').split('\n').slice(2).map((l) => l.split(':')[0].trim()).filter(Boolean).sort();
    const ctx = context('ctx-e', { Dockerfile: 'FROM busybox\nRUN --network=host cat /proc/net/dev > /netdev\n' });
    const r = await shale(root, 'build', '-q', ctx);
    assertRefused(r, /^Error: Dockerfile:2: RUN: entitlement network\.host is not allowed \(pass --allow network\.host to build\)$/, secret);
    // no cached layer is a way around it either
    await shaleOk(root, 'build', '-q', '--allow', 'network.host', '-t', 'hostile-e', ctx);
    assertRefused(await shale(root, 'build', '-q', ctx), /entitlement network\.host is not allowed/, secret);
    const ifaces = (await shaleOk(root, 'run', '--rm', 'hostile-e', 'cat', '/netdev')).split('\n').slice(2).map((l) => l.split(':')[0].trim()).filter(Boolean).sort();
    assert.deepEqual(ifaces, hostIfaces, 'the allowed RUN saw the host network');
    // --network host for the whole build is the user's consent (buildx adds the entitlement)
    assert.equal((await shale(root, 'build', '-q', '--network', 'host', ctx)).code, 0);
    // RUN --network=none stays none, and an unknown entitlement is an error
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM busybox\nRUN --network=none cat /proc/net/dev > /netdev\n');
    await shaleOk(root, 'build', '-q', '--network', 'host', '-t', 'hostile-e2', ctx);
    const none = (await shaleOk(root, 'run', '--rm', 'hostile-e2', 'cat', '/netdev')).split('\n').slice(2).map((l) => l.split(':')[0].trim()).filter(Boolean);
    assert.deepEqual(none, ['lo']);
    assertRefused(await shale(root, 'build', '-q', '--allow', 'security.everything', ctx), /--allow security\.everything: invalid entitlement/, secret);
  });

  it('(f) ADD of a tar that writes through its own symlink is refused, naming the entry', async () => {
    await unchanged(async () => {
      const entries: TarSourceEntry[] = [
        { header: { name: 'l', type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, mtime: MTIME, linkname: canary } },
        { header: { name: 'l/passwd', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 6, mtime: MTIME }, data: Buffer.from('pwned\n') },
      ];
      const ctx = context('ctx-f', { Dockerfile: 'FROM busybox\nADD evil.tar /opt/\n' });
      const chunks: Buffer[] = [];
      for await (const c of writeTar(entries)) chunks.push(c as Buffer);
      writeFileSync(join(ctx, 'evil.tar'), Buffer.concat(chunks));
      assertRefused(await shale(root, 'build', '-q', ctx), /ADD evil\.tar: archive entry l\/passwd is written through the symlink l the archive made/, secret);
      // the same symlink without anything under it is a fine archive
      const fine: Buffer[] = [];
      for await (const c of writeTar([entries[0], { header: { name: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 3, mtime: MTIME }, data: Buffer.from('ok\n') }])) fine.push(c as Buffer);
      writeFileSync(join(ctx, 'fine.tar'), Buffer.concat(fine));
      writeFileSync(join(ctx, 'Dockerfile'), 'FROM busybox\nADD fine.tar /opt/\n');
      await shaleOk(root, 'build', '-q', '-t', 'hostile-f', ctx);
      assert.equal((await shaleOk(root, 'run', '--rm', 'hostile-f', 'readlink', '/opt/l')).trim(), canary);
      // a COPY that would put a file under a link it copies in the same step
      const ctx2 = context('ctx-f2', { 'sub/l/x': 'x\n', l: { link: canary }, Dockerfile: 'FROM busybox\nCOPY sub/ l /dest/\n' });
      assertRefused(await shale(root, 'build', '-q', ctx2), /COPY would write \/dest\/l\/x through the symlink \/dest\/l it also makes/, secret);
    });
  });
});
