// Races between CLI processes on one store, and what exec puts on the runtime's command line,
// each through real `shale` child processes (runc, overlay2):
// - create racing rmi -f: the create fails cleanly or the container's image is still there;
// - exec -e NAME=value: the value is in no process's cmdline (it reaches the runtime in a 0600
//   process.json), and still reaches the command; -e NAME takes the CLI's environment;
// - rm -f during a cp into the container: rm waits for the copy, so a cp that exits 0 landed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, ftruncateSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Engine } from '../engine/index.js';
import { ContainerStore, createContainer, removeContainer, startDetached } from './index.js';
import { busybox, destroyEngine, fileEntry, layeredImage, tempEngine } from './testutil.js';

const CLI = fileURLToPath(new URL('../../bin/shale.js', import.meta.url));

interface Done { code: number; stdout: string; stderr: string; at: number }

function cli(engine: Engine, args: string[], env: NodeJS.ProcessEnv = process.env): { child: ChildProcess; done: Promise<Done>; stdout: () => string } {
  const child = spawn(process.execPath, [CLI, '--root', engine.root, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<Done>((res) => child.on('close', (code) => res({ code: code ?? -1, stdout, stderr, at: Date.now() })));
  return { child, done, stdout: () => stdout };
}

const run = (engine: Engine, args: string[], env?: NodeJS.ProcessEnv) => cli(engine, args, env).done;

async function until(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('CLI races and exec secrets (runc, overlay2)', () => {
  let engine: Engine;
  let hostDir: string;
  before(async () => {
    engine = tempEngine('overlay2');
    hostDir = mkdtempSync('/tmp/shale-ctest-host-');
    await busybox(engine);
  });
  after(async () => {
    await destroyEngine(engine);
    rmSync(hostDir, { recursive: true, force: true });
  });

  test('create racing rmi -f: the create fails cleanly, or the container exists and so does its image', async (t) => {
    const base = engine.images.resolve('busybox');
    const store = new ContainerStore(engine);
    const outcomes = { created: 0, refused: 0 };
    for (let i = 0; i < 20; i++) {
      // a fresh image each round (so create has a layer to unpack: a wide window), tagged only once
      await layeredImage(engine, base, [[fileEntry(`round-${i}`, `${i}\n`)]], 'race:latest');
      // sweep the start of one across the other's: rmi from 150 ms ahead to 150 ms behind
      const lead = ((i % 10) - 5) * 30;
      const first = lead < 0 ? cli(engine, ['rmi', '-f', 'race']) : cli(engine, ['create', 'race', 'true']);
      await new Promise((r) => setTimeout(r, Math.abs(lead)));
      const second = lead < 0 ? cli(engine, ['create', 'race', 'true']) : cli(engine, ['rmi', '-f', 'race']);
      const [cr, rm] = lead < 0 ? await Promise.all([second.done, first.done]) : await Promise.all([first.done, second.done]);
      assert.ok(rm.code === 0 || /No such image/.test(rm.stderr), `rmi -f: ${rm.stderr}`);
      if (cr.code === 0) {
        outcomes.created++;
        const id = cr.stdout.trim();
        const img = await run(engine, ['inspect', '--format', '{{.Image}}', id]);
        assert.equal(img.code, 0, img.stderr);
        const imageId = img.stdout.trim();
        const have = await run(engine, ['inspect', '--type', 'image', '--format', '{{.Id}}', imageId]);
        assert.equal(have.code, 0, `round ${i}: container ${id} was created but its image ${imageId} is gone: ${have.stderr}`);
        await removeContainer(engine, id, { force: true });
      } else {
        outcomes.refused++;
        assert.match(cr.stderr, /Unable to find image|No such image/, `round ${i}: create failed, but not cleanly: ${cr.stderr}`);
      }
      assert.equal(store.list().length, 0, `round ${i}: a failed create left a container behind`);
    }
    const check = await run(engine, ['system', 'check']);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.doesNotMatch(check.stderr, /is missing/);
    assert.equal(outcomes.created + outcomes.refused, 20);
    t.diagnostic(`created ${outcomes.created}, refused ${outcomes.refused}`);
  });

  test('rmi of an image a container uses: docker\'s conflict without -f; -f only untags it', async () => {
    const base = engine.images.resolve('busybox');
    await layeredImage(engine, base, [[fileEntry('used', 'u\n')]], 'used:latest');
    const cr = await run(engine, ['create', '--name', 'user-of-used', 'used', 'true']);
    assert.equal(cr.code, 0, cr.stderr);
    const id = cr.stdout.trim();
    const rmi = await run(engine, ['rmi', 'used']);
    assert.equal(rmi.code, 1);
    assert.match(rmi.stderr, new RegExp(`conflict: unable to remove repository reference "used" \\(must force\\) - container ${id.slice(0, 12)} is using its referenced image [0-9a-f]{12}`));
    const forced = await run(engine, ['rmi', '-f', 'used']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stdout, /Untagged: used:latest/);
    assert.doesNotMatch(forced.stdout, /Deleted/);
    assert.ok(engine.images.get(new ContainerStore(engine).get(id)!.imageId), 'the image stays while the container uses it');
    await removeContainer(engine, id, { force: true });
  });

  test('exec -e: values never on a command line, reach the command, -e NAME takes the CLI environment', async () => {
    const c = await createContainer(engine, { image: 'busybox', cmd: ['sleep', '60'], name: 'exec-env', env: ['FROMIMAGE=kept', 'GONE=x'] });
    await startDetached(engine, c);
    try {
      const secret = `s3cr3t-${randomBytes(8).toString('hex')}`;
      const e = cli(engine, ['exec', '-e', `SECRET=${secret}`, 'exec-env', 'sh', '-c', 'echo "started $SECRET"; sleep 2; echo done']);
      await until('the exec to start', () => e.stdout().includes('started') || e.child.exitCode !== null);
      assert.equal(e.stdout(), `started ${secret}\n`, 'the value reaches the command');
      // every process but the CLI itself (whose own argv the user typed): runc, runc init, the command
      const seen: string[] = [];
      for (const p of readdirSync('/proc')) {
        if (!/^\d+$/.test(p) || Number(p) === e.child.pid) continue;
        let cmd = '';
        try { cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8'); } catch { continue; }
        if (cmd.includes(secret)) seen.push(`${p}: ${cmd.replace(/\0/g, ' ')}`);
      }
      assert.deepEqual(seen, [], 'the secret is on a command line');
      // the process file is private to root, and goes when the exec ends
      const dir = new ContainerStore(engine).dir(c.id);
      const files = readdirSync(dir).filter((f) => /^exec-.*\.json$/.test(f));
      assert.equal(files.length, 1);
      assert.equal(statSync(join(dir, files[0])).mode & 0o777, 0o600);
      const r = await e.done;
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `started ${secret}\ndone\n`);
      assert.deepEqual(readdirSync(dir).filter((f) => /^exec-.*\.json$/.test(f)), []);

      const a = await run(engine, ['exec', '-e', 'A=1', 'exec-env', 'sh', '-c', 'echo $A']);
      assert.equal(a.stdout, '1\n', a.stderr);
      // docker: -e NAME takes NAME from the CLI's environment; unset there, it is unset in the process
      const b = await run(engine, ['exec', '-e', 'FROMCLI', '-e', 'GONE', '-w', '/tmp', 'exec-env', 'sh', '-c', 'echo "$FROMCLI ${GONE-unset} $FROMIMAGE $(pwd) $(id -u)"'], { ...process.env, FROMCLI: 'cli-value', GONE: undefined });
      assert.equal(b.stdout, 'cli-value unset kept /tmp 0\n', b.stderr);
      const u = await run(engine, ['exec', '-u', 'nobody', 'exec-env', 'id', '-u']);
      assert.equal(u.stdout, '65534\n', u.stderr);
      const missing = await run(engine, ['exec', 'exec-env', 'no-such-command']);
      assert.equal(missing.code, 127, missing.stderr);
    } finally {
      await removeContainer(engine, c.id, { force: true });
    }
  });

  test('rm -f during cp into the container: rm waits for the copy; a cp that exits 0 has landed', async () => {
    const c = await createContainer(engine, { image: 'busybox', cmd: ['true'], name: 'cp-rm' });
    const store = new ContainerStore(engine);
    const big = join(hostDir, 'big');
    const fd = openSync(big, 'w');
    ftruncateSync(fd, 256 * 1024 * 1024); // sparse: read back as 256 MiB of zeros
    closeSync(fd);
    const target = join(store.dir(c.id), 'rootfs', 'big');
    const cp = cli(engine, ['cp', big, 'cp-rm:/big']);
    // the copy is under way once data lands in the container
    await until('the copy to start writing', () => {
      try { return statSync(target).size > 0; } catch { return cp.child.exitCode !== null; }
    });
    const lockedDuringCopy = store.lockHolder(c.id);
    const cpRunning = cp.child.exitCode === null;
    const rm = cli(engine, ['rm', '-f', 'cp-rm']);
    const [cpr, rmr] = await Promise.all([cp.done, rm.done]);
    assert.ok(cpRunning, 'the copy had not finished when rm started (make the file bigger)');
    if (cpr.code === 0) {
      const there = store.get(c.id);
      if (there) {
        // rm refused: the container and the whole file are there
        assert.notEqual(rmr.code, 0);
        const m = await run(engine, ['cp', 'cp-rm:/big', join(hostDir, 'back')]);
        assert.equal(m.code, 0, m.stderr);
        assert.equal(statSync(join(hostDir, 'back')).size, 256 * 1024 * 1024);
      } else {
        // rm removed it: only after the copy was complete
        assert.equal(rmr.code, 0, rmr.stderr);
        assert.ok(rmr.at >= cpr.at, `rm -f finished ${cpr.at - rmr.at} ms before the cp that "succeeded" (the data was discarded)`);
      }
    } else {
      assert.match(cpr.stderr, /\S/, 'a failed cp says why');
    }
    assert.deepEqual(lockedDuringCopy, { op: 'copy', pid: cp.child.pid }, 'the copy holds the container lock');
    assert.equal(store.lockHolder(c.id), undefined, 'no lock left');
    assert.ok(!existsSync(join(store.dir(c.id), 'rootfs')) || !readFileSync('/proc/self/mounts', 'utf8').includes(store.dir(c.id)), 'no mount left');

    // a cp after (or waiting behind) the removal fails clearly
    const late = await run(engine, ['cp', big, 'cp-rm:/again']);
    assert.equal(late.code, 1);
    assert.match(late.stderr, /No such container: cp-rm/);
  });
});
