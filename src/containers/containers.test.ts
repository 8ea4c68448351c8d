// Container lifecycle, volumes and hostile input, through runc on overlay2: volumes outlive
// containers, one volume shared by two containers, named volumes filled from the image,
// rm -v; a detached container under its shim (logs, stop with the image's signal handling,
// exit code); log rotation; and refusals with clear errors: mount targets and cp paths that
// climb out through a symlink, name clashes, missing images, rmi of an image in use.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isShaleError } from '../errors.js';
import type { Engine } from '../engine/index.js';
import { containerUsingImage, gcSnapshots } from '../engine/hooks.js';
import { getSnapshotter, initKey } from '../store/rootfs.js';
import { ContainerStore, VolumeStore, createContainer, removeContainer, startDetached, stopContainer, waitStopped } from './index.js';
import { readLogs } from './logs.js';
import { logPath } from './supervise.js';
import { mountedAt } from './mounts.js';
import { busybox, destroyEngine, dirEntry, fileEntry, layeredImage, run, tempEngine } from './testutil.js';

const CLI = fileURLToPath(new URL('../../bin/shale.js', import.meta.url));

describe('containers on overlay2', () => {
  let engine: Engine;
  let hostDir: string;
  before(async () => {
    engine = tempEngine('overlay2');
    hostDir = mkdtempSync('/tmp/shale-ctest-host-');
    const base = await busybox(engine);
    await layeredImage(engine, base, [[
      dirEntry('app'), fileEntry('app/conf', 'from-image\n'),
      { header: { name: 'esc', type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, mtime: 0, linkname: '../../../../../../tmp' } },
      { header: { name: 'abs', type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, mtime: 0, linkname: '/app' } },
    ]], 'app:latest', { Volumes: { '/anon': {} } });
  });
  after(async () => {
    await destroyEngine(engine);
    rmSync(hostDir, { recursive: true, force: true });
  });

  test('volumes outlive containers, are shared, are filled from the image, rm -v removes anonymous ones', async () => {
    const vols = new VolumeStore(engine);
    const w = await run(engine, 'app', ['sh', '-c', 'cat /app/conf; echo kept > /app/new'], { volumes: ['filled:/app', 'shared:/shared'], rm: true });
    assert.equal(w.stdout, 'from-image\n');
    assert.equal(readFileSync(join(vols.dataPath('filled'), 'conf'), 'utf8'), 'from-image\n', 'an empty named volume is filled from the image');
    assert.equal(readFileSync(join(vols.dataPath('filled'), 'new'), 'utf8'), 'kept\n');
    // the --rm container is gone, its named volumes are not, and the data is still there
    assert.equal(new ContainerStore(engine).list().length, 0);
    const again = await run(engine, 'busybox', ['cat', '/x/new'], { volumes: ['filled:/x'], rm: true });
    assert.equal(again.stdout, 'kept\n');

    // one volume, two containers at once
    const a = await createContainer(engine, { image: 'busybox', cmd: ['sh', '-c', 'echo from-a > /s/a; while [ ! -f /s/b ]; do sleep 0.05; done; cat /s/b'], volumes: ['shared:/s'], name: 'vol-a' });
    await startDetached(engine, a);
    const b = await run(engine, 'busybox', ['sh', '-c', 'while [ ! -f /s/a ]; do sleep 0.05; done; cat /s/a; echo from-b > /s/b'], { mounts: ['type=volume,src=shared,dst=/s'], rm: true });
    assert.equal(b.stdout, 'from-a\n');
    const done = await waitStopped(engine, a.id, 20_000);
    assert.equal(done?.state.ExitCode, 0);
    assert.deepEqual(readLogs(logPath(new ContainerStore(engine).dir(a.id), a.id)).entries.map((e) => e.log), ['from-b\n']);
    await assert.rejects(async () => vols.remove('shared', new ContainerStore(engine).list()), /in use/);
    await removeContainer(engine, a.id);
    vols.remove('shared', new ContainerStore(engine).list());

    // bind mounts, read-only
    writeFileSync(join(hostDir, 'h'), 'host\n');
    const bind = await run(engine, 'busybox', ['sh', '-c', 'cat /h/h; echo no > /h/x || echo refused'], { volumes: [`${hostDir}:/h:ro`], rm: true });
    assert.equal(bind.stdout, 'host\nrefused\n');
    assert.ok(!existsSync(join(hostDir, 'x')));

    // the image's VOLUME /anon and -v /other are anonymous: rm -v removes them, not named ones
    const c = await run(engine, 'app', ['sh', '-c', 'echo a > /anon/f; echo o > /other/f; echo n > /named/f'], { volumes: ['/other', 'named1:/named'] });
    const anon = c.c.hostConfig.Mounts.filter((m) => m.Anonymous).map((m) => m.Source);
    assert.equal(anon.length, 2);
    for (const v of anon) assert.ok(vols.get(v));
    await removeContainer(engine, c.c.id, { volumes: true });
    for (const v of anon) assert.equal(vols.get(v), undefined);
    assert.equal(readFileSync(join(vols.dataPath('named1'), 'f'), 'utf8'), 'n\n');
  });

  test('a detached container runs under its shim, logs, stops with its own handler, rotates logs', async () => {
    const store = new ContainerStore(engine);
    const c = await createContainer(engine, { image: 'busybox', cmd: ['sh', '-c', 'echo started; trap "echo term; exit 7" TERM; while :; do sleep 0.05; done'], name: 'det', detach: true });
    await startDetached(engine, c);
    const running = store.get(c.id)!;
    assert.equal(running.state.Status, 'running');
    assert.ok(running.state.Pid > 0 && running.state.ShimPid !== process.pid, 'a separate shim supervises it');
    await stopContainer(engine, 'det', 10);
    const stopped = store.get(c.id)!;
    assert.equal(stopped.state.Status, 'exited');
    assert.equal(stopped.state.ExitCode, 7);
    assert.deepEqual(readLogs(logPath(store.dir(c.id), c.id)).entries.map((e) => `${e.stream}:${e.log}`), ['stdout:started\n', 'stdout:term\n']);
    assert.ok(!mountedAt(join(store.dir(c.id), 'rootfs')), 'the rootfs is unmounted when the container exits');

    const r = await run(engine, 'busybox', ['sh', '-c', 'i=0; while [ $i -lt 200 ]; do echo "line $i 0123456789012345678901234567890123456789"; i=$((i+1)); done'], { logOpts: ['max-size=2k', 'max-file=3'] });
    const lp = logPath(store.dir(r.c.id), r.c.id);
    assert.ok(existsSync(`${lp}.1`) && existsSync(`${lp}.2`) && !existsSync(`${lp}.3`));
    for (const f of [lp, `${lp}.1`, `${lp}.2`]) assert.ok(readFileSync(f).length <= 2048);
    const logs = readLogs(lp).entries;
    assert.equal(logs.at(-1)?.log, 'line 199 0123456789012345678901234567890123456789\n');
    assert.equal(r.stdout.split('\n').length, 201, 'the attached output is complete');
  });

  test('run -d from the CLI keeps running after the CLI exits; crun runs containers too', async () => {
    const r = spawnSync(process.execPath, [CLI, '--root', engine.root, 'run', '-d', '--name', 'bg', 'busybox', 'sh', '-c', 'echo up; sleep 30'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const id = r.stdout.trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    const c = new ContainerStore(engine).get(id)!;
    assert.equal(c.state.Status, 'running');
    process.kill(c.state.Pid, 0); // alive, with its CLI gone
    const ps = spawnSync(process.execPath, [CLI, '--root', engine.root, 'ps', '--format', '{{.Names}} {{.State}} {{.Command}}'], { encoding: 'utf8' });
    assert.equal(ps.stdout, 'bg running "sh -c echo up; slee…"\n', 'docker truncates .Command to 20 characters');
    await stopContainer(engine, 'bg', 0);
    assert.equal(new ContainerStore(engine).get(id)!.state.ExitCode, 137);
    await removeContainer(engine, 'bg');

    // --network none: a network namespace with only lo, and lo is up (docker's none)
    const net = await run(engine, 'busybox', ['sh', '-c', 'ip -o link | wc -l; ip -o link show lo | grep -c "UP"; hostname'], { rm: true });
    const [links, up, hostname] = net.stdout.trim().split('\n').map((x) => x.trim());
    assert.equal(links, '1');
    assert.equal(up, '1');
    assert.match(hostname, /^[0-9a-f]{12}$/);

    if (existsSync('/usr/bin/crun')) {
      const cr = await run(engine, 'busybox', ['sh', '-c', 'echo $HOSTNAME; cat /proc/1/cmdline | tr "\\0" " "'], { runtime: '/usr/bin/crun', rm: true });
      assert.equal(cr.stderr, '');
      assert.equal(cr.stdout.split('\n')[1], 'sh -c echo $HOSTNAME; cat /proc/1/cmdline | tr "\\0" " " ');
    }
  });

  test('hostile and wrong input is refused with clear errors', async () => {
    // a volume or bind target that climbs out through a symlink lands inside the container (docker's FollowSymlinkInScope)
    const hostName = hostDir.split('/').pop()!;
    const inVol = await run(engine, 'app', ['sh', '-c', 'echo in > /tmp/y/made && ls /tmp'], { volumes: [`${hostDir}:/esc/y`], rm: true });
    assert.equal(readFileSync(join(hostDir, 'made'), 'utf8'), 'in\n');
    assert.match(inVol.stdout, /^y$/m);
    assert.ok(!existsSync('/tmp/y'));
    // an absolute symlink resolves inside the container (as docker does)
    writeFileSync(join(hostDir, 'f'), 'x');
    const abs = await run(engine, 'app', ['cat', '/app/v/f'], { volumes: [`${hostDir}:/abs/v`], rm: true });
    assert.equal(abs.stdout, 'x');

    // cp through a symlink that points out of the container, in both directions: it stays inside
    const c = await createContainer(engine, { image: 'app', cmd: ['true'], name: 'cp-target' });
    const cpOut = spawnSync(process.execPath, [CLI, '--root', engine.root, 'cp', `cp-target:/esc/${hostName}/f`, join(hostDir, 'out')], { encoding: 'utf8' });
    assert.equal(cpOut.status, 1);
    assert.equal(cpOut.stderr.trim().split('\n').length, 1, cpOut.stderr);
    assert.match(cpOut.stderr, /Could not find the file \/esc\/.*\/f in container cp-target/);
    assert.ok(!existsSync(join(hostDir, 'out')));
    const cpIn = spawnSync(process.execPath, [CLI, '--root', engine.root, 'cp', join(hostDir, 'h'), 'cp-target:/esc/'], { encoding: 'utf8' });
    assert.equal(cpIn.status, 0, cpIn.stderr);
    assert.ok(!existsSync('/tmp/h'));
    const back = spawnSync(process.execPath, [CLI, '--root', engine.root, 'cp', 'cp-target:/tmp/h', join(hostDir, 'h-back')], { encoding: 'utf8' });
    assert.equal(back.status, 0, back.stderr);
    assert.equal(readFileSync(join(hostDir, 'h-back'), 'utf8'), readFileSync(join(hostDir, 'h'), 'utf8'));
    const ok = spawnSync(process.execPath, [CLI, '--root', engine.root, 'cp', 'cp-target:/app/conf', join(hostDir, 'conf')], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(readFileSync(join(hostDir, 'conf'), 'utf8'), 'from-image\n');

    // name clash, missing image
    await assert.rejects(createContainer(engine, { image: 'busybox', cmd: ['true'], name: 'cp-target' }), /The container name "\/cp-target" is already in use/);
    await assert.rejects(createContainer(engine, { image: 'nosuch:image', cmd: ['true'] }), (e: Error) => isShaleError(e, 'NotFound') && /Unable to find image 'nosuch:image'/.test(e.message));
    // a command that is not in the image: docker's 127
    const missing = await run(engine, 'busybox', ['/no/such/cmd'], { rm: true }).catch((e: Error & { exitCode?: number }) => e);
    assert.equal((missing as { exitCode?: number }).exitCode, 127);

    // rmi of an image a container uses, then removal of that container: only its writable layer goes
    const img = engine.images.resolve('app');
    assert.throws(() => engine.images.remove('app', { inUse: (id) => containerUsingImage(engine, id) }), /container [0-9a-f]{12} is using its referenced image/);
    const sn = getSnapshotter(engine);
    const before1 = (await sn.list()).map((s) => s.key).sort();
    await removeContainer(engine, c.id);
    const after1 = (await sn.list()).map((s) => s.key).sort();
    assert.deepEqual(after1, before1.filter((k) => k !== c.id));
    // with no container left on it, the image goes, and gc takes the snapshots only it used
    for (const x of new ContainerStore(engine).list()) await removeContainer(engine, x.id, { force: true, volumes: true });
    engine.images.remove(img.id, { inUse: (id) => containerUsingImage(engine, id) });
    await gcSnapshots(engine);
    const left = (await sn.list()).map((s) => s.key).sort();
    const bb = engine.images.resolve('busybox');
    const bbChain = engine.images.layers(bb.id).map((l) => l.chainId);
    assert.deepEqual(left, [...bbChain, initKey(bbChain.at(-1))].sort(), 'only busybox\'s layers and init layer are left');
  });
});
