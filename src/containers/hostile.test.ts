// The runtime paths against hostile images, on overlay2 and vfs: images whose symlinks (absolute,
// relative, ".." through a missing component, chains, loops, /dev, WorkingDir) point at a canary
// directory outside the store, driven through the real CLI (cp both ways, cp - with whiteouts,
// run -w, volumes, export of a container that swaps a file for a link while it is read). The
// canary is fingerprinted before and after: any byte written or read outside fails the test, and
// every refusal must be one line without a stack trace.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Engine } from '../engine/index.js';
import { fingerprint } from '../testutil/canary.js';
import { SHALE_BIN } from '../testutil/index.js';
import { busybox, destroyEngine, dirEntry, fileEntry, layeredImage, tempEngine } from './testutil.js';
import type { TarSourceEntry } from '../archive/index.js';

const SECRET = 'CANARY-5f1c-HOST-BYTES';
const link = (name: string, linkname: string): TarSourceEntry => ({ header: { name, type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, mtime: 0, linkname } });

function cli(root: string, args: string[], input?: Buffer) {
  const r = spawnSync(process.execPath, [SHALE_BIN, '--root', root, ...args], { input, encoding: 'buffer', maxBuffer: 1 << 28 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}

/** A refusal as docker users see one: exit 1, one line, no stack frame. */
function oneLine(r: { code: number | null; stderr: string }, re?: RegExp): void {
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  if (re) assert.match(r.stderr, re);
}

/** A tar with the given entries, made by the same writer the store uses. */
async function tarOf(entries: TarSourceEntry[]): Promise<Buffer> {
  const { writeTar } = await import('../archive/index.js');
  const chunks: Buffer[] = [];
  for await (const c of writeTar(entries)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

for (const driver of ['overlay2', 'vfs']) {
  describe(`hostile images against the runtime paths on ${driver}`, () => {
    let engine: Engine;
    let root: string;
    let canary: string;
    let host: string;
    let print: string[];
    before(async () => {
      engine = tempEngine(driver);
      root = engine.root;
      canary = mkdtempSync('/tmp/shale-canary-');
      host = mkdtempSync('/tmp/shale-hostile-src-');
      writeFileSync(join(canary, 'secret'), SECRET);
      mkdirSync(join(canary, 'sub'));
      writeFileSync(join(canary, 'sub/keep'), 'keep');
      writeFileSync(join(host, 'payload'), 'payload\n');
      mkdirSync(join(host, 'tree/deep'), { recursive: true });
      writeFileSync(join(host, 'tree/deep/f'), 'tree file\n');
      const up = '../../../../../../../../..' + canary;
      const base = await busybox(engine);
      await layeredImage(engine, base, [[
        link('abs', canary), link('rel', up), link('popper', `nope/${up}`), link('chain', 'abs'), link('loop', 'loop'),
        dirEntry('data'), fileEntry('data/keep', 'image data\n'),
        // the canary's own path exists inside the image too: a write re-rooted there is legal
        ...canary.split('/').filter(Boolean).map((_, i, a) => dirEntry(a.slice(0, i + 1).join('/'))),
      ]], 'evil:latest');
      await layeredImage(engine, base, [[link('wd', canary)]], 'evil-wd:latest', { WorkingDir: '/nope/../wd/made/here' });
      await layeredImage(engine, base, [[link('dev', canary)]], 'evil-dev:latest');
      engine.close();
      print = fingerprint(canary);
    });
    after(async () => {
      await destroyEngine(Engine.open({ root, storageDriver: driver })); // closed so the CLI owned the store
      rmSync(canary, { recursive: true, force: true });
      rmSync(host, { recursive: true, force: true });
    });

    test('cp into a container through every kind of link lands inside it', () => {
      const made = cli(root, ['create', '--name', 'cc', 'evil', 'true']);
      assert.equal(made.code, 0, made.stderr);
      for (const dest of ['/abs/x', '/rel/x', '/popper/x', '/chain/x', '/nope/../abs/x', '/abs/']) {
        const r = cli(root, ['cp', join(host, 'payload'), `cc:${dest}`]);
        assert.equal(r.code, 0, `${dest}: ${r.stderr}`);
      }
      assert.equal(cli(root, ['cp', join(host, 'tree'), 'cc:/abs/']).code, 0);
      oneLine(cli(root, ['cp', join(host, 'payload'), 'cc:/loop/x']), /too many levels of symbolic links/);
      // what went in is in the container's own tree, at the re-rooted path
      const back = cli(root, ['cp', `cc:${canary}/tree/deep/f`, '-']);
      assert.equal(back.code, 0, back.stderr);
      assert.match(back.stdout.toString(), /tree file/);
      assert.deepEqual(fingerprint(canary), print);
    });

    test('cp out of a container through links never reads the host', () => {
      for (const src of ['/abs/secret', '/rel/secret', '/popper/secret', '/chain/secret']) {
        const r = cli(root, ['cp', `cc:${src}`, join(host, 'out')]);
        oneLine(r, /Could not find the file .* in container cc/);
        assert.ok(!existsSync(join(host, 'out')));
        const t = cli(root, ['cp', `cc:${src}`, '-']);
        oneLine(t);
        assert.ok(!t.stdout.includes(SECRET));
      }
      // a name that starts with "-" is a name, not an option of some tool
      assert.equal(cli(root, ['cp', join(host, 'payload'), 'cc:/-rf']).code, 0);
      const dash = cli(root, ['cp', 'cc:/-rf', '-']);
      assert.equal(dash.code, 0, dash.stderr);
      assert.match(dash.stdout.toString(), /payload/);
    });

    test('cp - writes .wh. entries as plain files: an opaque marker empties nothing', async () => {
      const tar = await tarOf([fileEntry('.wh..wh..opq', ''), fileEntry('.wh.keep', ''), link('out', canary), fileEntry('out/secret', 'overwritten')]);
      const r = cli(root, ['cp', '-', 'cc:/data'], tar);
      assert.equal(r.code, 0, r.stderr);
      const keep = cli(root, ['cp', 'cc:/data/keep', '-']);
      assert.match(keep.stdout.toString(), /image data/);
      const opq = cli(root, ['cp', 'cc:/data/.wh..wh..opq', '-']);
      assert.equal(opq.code, 0, opq.stderr);
      assert.deepEqual(fingerprint(canary), print);
    });

    test('WorkingDir, -w, volume targets and a /dev link stay inside the container', () => {
      for (const args of [['run', '--rm', 'evil-wd', 'pwd'], ['run', '--rm', '-w', '/rel/w2', 'evil', 'pwd'], ['run', '--rm', '-w', '/popper/w3/x', 'evil', 'pwd']]) {
        const r = cli(root, args);
        assert.equal(r.code, 0, r.stderr);
      }
      const v = cli(root, ['run', '--rm', '-v', `${host}:/abs/vol`, 'evil', 'sh', '-c', `echo from-container > ${canary}/vol/written`]);
      assert.equal(v.code, 0, v.stderr);
      assert.equal(readFileSync(join(host, 'written'), 'utf8'), 'from-container\n');
      const d = cli(root, ['run', '--rm', 'evil-dev', 'true']);
      assert.equal(d.code, 0, d.stderr);
      assert.deepEqual(fingerprint(canary), print);
    });

    test('export of a container that swaps a file for a link to the host never carries host bytes', async () => {
      const loop = 'while :; do echo inside > /f.tmp; mv -f /f.tmp /swap; ln -sf ' + canary + '/secret /l.tmp; mv -f /l.tmp /swap; done';
      assert.equal(cli(root, ['run', '-d', '--name', 'racer', 'evil', 'sh', '-c', loop]).code, 0);
      try {
        let ok = 0;
        for (let i = 0; i < 10; i++) {
          const chunks: Buffer[] = [];
          const p = spawn(process.execPath, [SHALE_BIN, '--root', root, 'export', 'racer'], { stdio: ['ignore', 'pipe', 'pipe'] });
          let stderr = '';
          p.stdout.on('data', (c: Buffer) => chunks.push(c));
          p.stderr.on('data', (c: Buffer) => (stderr += c));
          const code = await new Promise<number | null>((res) => p.on('close', res));
          assert.ok(!Buffer.concat(chunks).includes(SECRET), 'host bytes in the export');
          if (code === 0) ok++;
          else oneLine({ code, stderr }, /(replaced|removed)( by a symlink)? while it was read/);
        }
        assert.ok(ok > 0, 'no export completed');
      } finally {
        cli(root, ['rm', '-f', 'racer']);
      }
      assert.deepEqual(fingerprint(canary), print);
    });
  });
}
