#!/usr/bin/env node
// kill -9 trials: for each operation, prepare a fresh root, run the operation once to measure how
// long it takes, then per trial start it on a fresh root, SIGKILL it after a seeded random delay in
// [0, duration], and check what the store promises: `system check` clean (or made clean by
// --repair, recorded), no image that was complete before the kill lost, every listed image runs,
// and after a sweep (rm -f every container, check --repair, image prune -f) no mount, process,
// temp file or orphan left. Prints a table per op and a JSON summary; exit 1 on any failure.
//
//   node test/torture/kill.mjs --trials 10 --seed 42 --ops load,import,pull
//   node test/torture/kill.mjs --trials 1 --ops all --json out.json
import { existsSync, writeFileSync, mkdirSync, readdirSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import {
  parseArgs, prng, seedFrom, tempRoot, shale, startShale, sh, sleep, firstLine, mountsUnder, processesMentioning,
  leftoverFiles, listImages, listContainers, listVolumes, systemCheck, destroyRoot, startRegistry, makeBuildContext,
  writeRandomFile, table, log, BIN,
} from './lib.mjs';

export const ALL_OPS = ['load', 'import', 'pull', 'push', 'build', 'commit', 'run', 'rm', 'rmi', 'image-prune', 'volume-rm', 'system-prune', 'create', 'start', 'service'];

/** The docker CLI, for driving the API server (`service`): /usr/bin/docker (Debian's) or the first on PATH. */
const DOCKER = ['/usr/bin/docker', '/usr/local/bin/docker'].find((p) => existsSync(p));

/** Client work through a server's socket while it runs: attached and detached runs, a build. Errors are the kill's doing. */
async function apiClients(root, fx) {
  const sock = join(root, 'api.sock');
  if (!(await waitFor(async () => existsSync(sock), 10_000))) return;
  const env = { ...process.env, DOCKER_HOST: `unix://${sock}`, DOCKER_BUILDKIT: '0' };
  const d = (args) => new Promise((res) => {
    const p = spawn(DOCKER, args, { env, stdio: 'ignore' });
    const t = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('close', (code) => { clearTimeout(t); res(code); });
    p.on('error', () => { clearTimeout(t); res(-1); });
  });
  await d(['run', '--rm', '--pull', 'never', 'busybox', 'sh', '-c', 'head -c 3000000 /dev/urandom > /x.bin; echo ok']);
  await d(['run', '-d', '--pull', 'never', '--name', 'svc1', 'busybox', 'sleep', '1000']);
  await d(['build', '-q', '-t', 'svc-built', fx.ctx]);
  await d(['rm', '-f', 'svc1']);
}

/** Fixtures shared by every trial: an archive, a rootfs tar, a build context, a registry holding an image. */
export async function makeFixtures(ops) {
  const dir = tempRoot('shale-torture-fix-');
  const fx = { dir };
  fx.ctx = makeBuildContext(join(dir, 'ctx'), { mb: 4, unique: 'kill', seed: 7 });
  const needArchive = ops.some((o) => ['load', 'push', 'rmi', 'image-prune', 'pull'].includes(o));
  if (needArchive) {
    const t = join(dir, 'template');
    await must(shale(t, ['bootstrap', 'busybox']));
    await must(shale(t, ['build', '-q', '-t', 'archived:latest', fx.ctx]));
    fx.archive = join(dir, 'archived.tar');
    await must(shale(t, ['save', '-o', fx.archive, 'archived:latest']));
    if (ops.includes('pull') || ops.includes('push')) {
      fx.registry = await startRegistry();
      fx.pullRef = `${fx.registry.host}/torture/big:latest`;
      await must(shale(t, ['tag', 'archived:latest', fx.pullRef]));
      await must(shale(t, ['push', fx.pullRef]));
    }
    await destroyRoot(t);
  }
  if (ops.includes('import') || ops.includes('image-prune')) {
    const rf = join(dir, 'rootfs');
    mkdirSync(join(rf, 'bin'), { recursive: true });
    sh(`cp /bin/busybox '${rf}/bin/busybox' && ln -s busybox '${rf}/bin/sh' && ln -s busybox '${rf}/bin/true'`);
    writeRandomFile(join(rf, 'data', 'a.bin'), 3, 11);
    writeRandomFile(join(rf, 'data', 'b.bin'), 3, 12);
    fx.rootfsTar = join(dir, 'rootfs.tar');
    sh(`tar -C '${rf}' -cf '${fx.rootfsTar}' .`);
  }
  return fx;
}

async function must(p) {
  const r = await p;
  if (r.code !== 0) throw new Error(`setup failed (${r.code}${r.timedOut ? ', timed out' : ''}): ${r.stderr || r.stdout}`);
  return r;
}

async function waitFor(fn, ms = 20_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) { if (await fn()) return true; await sleep(100); }
  return false;
}

/**
 * Each op: setup(root, fx, trial) prepares a root; args(fx, trial) is the command to kill;
 * mayRemove: refs the op is allowed to remove; keep: container names that must survive;
 * verify(root): extra findings after the kill ([] = fine).
 */
export const OPS = {
  load: { setup: bootstrap, args: (fx) => ['load', '-i', fx.archive] },
  import: { setup: bootstrap, args: (fx) => ['import', fx.rootfsTar, 'imported:latest'] },
  pull: { setup: bootstrap, args: (fx) => ['pull', fx.pullRef] },
  push: {
    async setup(root, fx, trial) {
      await bootstrap(root);
      await must(shale(root, ['load', '-i', fx.archive]));
      await must(shale(root, ['tag', 'archived:latest', `${fx.registry.host}/torture/push${process.pid}-${trial}:latest`]));
    },
    args: (fx, trial) => ['push', `${fx.registry.host}/torture/push${process.pid}-${trial}:latest`],
  },
  build: { setup: bootstrap, args: (fx) => ['build', '-t', 'built:latest', fx.ctx] },
  commit: {
    async setup(root) {
      await bootstrap(root);
      await must(shale(root, ['run', '-d', '--name', 'src', 'busybox', 'sh', '-c', 'head -c 6000000 /dev/urandom > /tmp.bin && mv /tmp.bin /data.bin && sleep 1000']));
      if (!(await waitFor(async () => (await shale(root, ['exec', 'src', 'test', '-f', '/data.bin'])).code === 0))) throw new Error('commit setup: container did not write its file');
    },
    args: () => ['commit', 'src', 'committed:latest'],
    keep: ['src'],
  },
  run: { setup: bootstrap, args: () => ['run', '--rm', 'busybox', 'sh', '-c', 'head -c 3000000 /dev/urandom > /x.bin; true'] },
  rm: {
    async setup(root) { await bootstrap(root); await must(shale(root, ['run', '-d', '--name', 'victim', 'busybox', 'sleep', '1000'])); },
    args: () => ['rm', '-f', 'victim'],
  },
  rmi: {
    async setup(root, fx) { await bootstrap(root); await must(shale(root, ['load', '-i', fx.archive])); },
    args: () => ['rmi', 'archived:latest'],
    mayRemove: ['archived:latest'],
  },
  'image-prune': {
    async setup(root, fx) {
      await bootstrap(root);
      await must(shale(root, ['load', '-i', fx.archive]));
      await must(shale(root, ['import', fx.rootfsTar, 'dangle:latest']));
      await sleep(1100); // a different created time gives a different image
      await must(shale(root, ['import', fx.rootfsTar, 'dangle:latest']));
    },
    args: () => ['image', 'prune', '-f'],
    mayRemove: ['<none>:<none>'],
  },
  'volume-rm': {
    async setup(root) {
      await bootstrap(root);
      await must(shale(root, ['volume', 'create', 'v1']));
      await must(shale(root, ['run', '--rm', '-v', 'v1:/data', 'busybox', 'sh', '-c', 'for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do head -c 200000 /dev/urandom > /data/f$i; done']));
    },
    args: () => ['volume', 'rm', 'v1'],
    async verify(root) {
      const vols = await listVolumes(root);
      const ls = async () => (await shale(root, ['run', '--rm', '-v', 'v1:/data', 'busybox', 'sh', '-c', 'ls /data | wc -l'])).stdout.trim();
      if (vols.includes('v1')) {
        const n = await ls();
        return n === '20' ? [] : [`volume v1 still listed but holds ${n} of 20 files (half-removed)`];
      }
      const c = await shale(root, ['volume', 'create', 'v1']);
      if (c.code !== 0) return [`volume create v1 after the kill failed: ${firstLine(c.stderr)}`];
      const n = await ls();
      return n === '0' ? [] : [`volume v1 was removed, but a new volume v1 shows ${n} old file(s) (data came back)`];
    },
  },
  service: {
    // the Engine API server, killed while docker CLI clients use it; it exits on its own 1 s after they finish
    setup: bootstrap,
    probe: DOCKER ? ['system', 'service', '--help'] : ['no-docker-cli-for-the-service-op'],
    args: (fx, trial, root) => ['system', 'service', '--time', '1', `unix://${join(root, 'api.sock')}`],
    during: apiClients,
    async verify(root) {
      // a socket a killed server left is replaced by the next server, which answers
      const { child, done } = startShale(root, ['system', 'service', '--time', '0', `unix://${join(root, 'api.sock')}`]);
      try {
        const env = { ...process.env, DOCKER_HOST: `unix://${join(root, 'api.sock')}` };
        const ok = await waitFor(async () => spawnSync(DOCKER, ['version', '--format', '{{.Server.APIVersion}}'], { env, encoding: 'utf8', timeout: 10_000 }).status === 0, 15_000);
        return ok ? [] : ['a new API server on the same socket does not answer after the kill'];
      } finally {
        child.kill('SIGTERM');
        await done;
      }
    },
  },
  'system-prune': { setup: bootstrap, args: () => ['system', 'prune', '-f'], probe: ['system', 'prune', '--help'] },
  create: {
    setup: bootstrap,
    args: () => ['create', '--name', 'c1', 'busybox', 'sh', '-c', 'echo hi'],
    async verify(root) {
      const ins = await shale(root, ['inspect', '--format', '{{.Id}}', 'c1']);
      if (ins.code !== 0) return [];
      const st = await shale(root, ['start', 'c1']);
      if (st.code !== 0) return [`container c1 is listed after the kill but does not start: ${firstLine(st.stderr)}`];
      const w = await shale(root, ['wait', 'c1']);
      const lg = await shale(root, ['logs', 'c1']);
      return w.stdout.trim() === '0' && lg.stdout.trim() === 'hi' ? [] : [`container c1 started but exit=${w.stdout.trim()} logs=${JSON.stringify(lg.stdout.trim())}`];
    },
  },
  start: {
    async setup(root) { await bootstrap(root); await must(shale(root, ['create', '--name', 'c1', 'busybox', 'sleep', '1000'])); },
    args: () => ['start', 'c1'],
    keep: ['c1'],
    async verify(root) {
      const running = (await shale(root, ['inspect', '--format', '{{.State.Running}}', 'c1'])).stdout.trim();
      if (running === 'true') {
        const e = await shale(root, ['exec', 'c1', 'true']);
        return e.code === 0 ? [] : [`c1 is reported running but exec fails: ${firstLine(e.stderr)}`];
      }
      const st = await shale(root, ['start', 'c1']);
      if (st.code !== 0) return [`c1 (not running after the kill) does not start again: ${firstLine(st.stderr)}`];
      const e = await shale(root, ['exec', 'c1', 'true']);
      return e.code === 0 ? [] : [`c1 restarted but exec fails: ${firstLine(e.stderr)}`];
    },
  },
};

async function bootstrap(root) { await must(shale(root, ['bootstrap', 'busybox'])); }

/** One kill trial. Returns a record with every finding. */
async function trial(opName, op, fx, delayMs, trialNo) {
  const root = tempRoot(`shale-torture-${opName}-`);
  const rec = { op: opName, trial: trialNo, delayMs, root, check: 'clean', lost: [], unrunnable: [], leaks: [], findings: [], checkOutput: '' };
  try {
    await op.setup(root, fx, trialNo);
    const before = await listImages(root);
    const containersBefore = await shale(root, ['ps', '-a', '--format', '{{.Names}}']);
    const { child, done } = startShale(root, op.args(fx, trialNo, root));
    const during = op.during ? op.during(root, fx).catch(() => undefined) : undefined;
    await sleep(delayMs);
    const killedAt = Date.now();
    let exitedFirst = child.exitCode !== null || child.signalCode !== null;
    if (!exitedFirst) child.kill('SIGKILL');
    const res = await done;
    await during;
    rec.outcome = exitedFirst || res.signal !== 'SIGKILL' ? `finished (${res.code})` : 'killed';
    void killedAt;

    // 1. system check, and --repair if needed
    const c1 = await systemCheck(root);
    if (!c1.clean) {
      rec.checkOutput = c1.out;
      const rep = await systemCheck(root, true);
      const c2 = await systemCheck(root);
      rec.check = c2.clean ? 'repaired' : 'broken';
      if (!c2.clean) rec.checkOutput += `\n--- after --repair:\n${rep.out}\n--- check:\n${c2.out}`;
    }
    // 2. images complete before the kill
    const after = await listImages(root);
    if (!after.ok) rec.findings.push(`images fails after the kill: ${after.error}`);
    const may = new Set(op.mayRemove ?? []);
    const afterIds = new Set(after.images.map((i) => i.id));
    for (const img of before.images) {
      if (may.has(img.ref)) continue;
      if (!afterIds.has(img.id)) rec.lost.push(`${img.ref} ${img.id.slice(7, 19)}`);
    }
    for (const img of after.images) {
      if (!before.images.some((b) => b.id === img.id)) continue;
      const r = await shale(root, ['run', '--rm', img.id, 'true'], { timeoutMs: 60_000 });
      if (r.code !== 0) rec.unrunnable.push(`${img.ref}: ${firstLine(r.stderr)}`);
    }
    // containers that must survive
    for (const name of op.keep ?? []) {
      if (!containersBefore.stdout.split('\n').includes(name)) continue;
      const r = await shale(root, ['inspect', '--format', '{{.Id}}', name]);
      if (r.code !== 0) rec.findings.push(`container ${name} lost: ${firstLine(r.stderr)}`);
    }
    if (op.verify) rec.findings.push(...(await op.verify(root)));

    // 3. sweep, then leaks
    for (const id of await listContainers(root)) {
      const r = await shale(root, ['rm', '-f', id], { timeoutMs: 60_000 });
      if (r.code !== 0 && !/No such container/.test(r.stderr)) rec.findings.push(`rm -f ${id.slice(0, 12)} in the sweep failed: ${firstLine(r.stderr)}`);
    }
    const sweep = await systemCheck(root, true);
    if (!sweep.clean) rec.findings.push(`check --repair in the sweep: ${firstLine(sweep.problems.join('\n') || sweep.out)}`);
    const pr = await shale(root, ['image', 'prune', '-f']);
    if (pr.code !== 0) rec.findings.push(`image prune -f in the sweep failed: ${firstLine(pr.stderr)}`);
    const fin = await systemCheck(root);
    if (!fin.clean) rec.findings.push(`check after the sweep not clean: ${firstLine(fin.problems.join('\n') || fin.out)}`);
    for (const i of fin.info) rec.leaks.push({ kind: /unreferenced blob/.test(i) ? 'orphan-blob' : 'check-info', what: i });
    for (const m of mountsUnder(root)) rec.leaks.push({ kind: 'mount', what: `${m.type} ${m.target}` });
    for (const p of processesMentioning(root)) rec.leaks.push({ kind: 'process', what: `${p.pid} ${p.cmd.slice(0, 160)}` });
    const conts = await listContainers(root);
    for (const f of leftoverFiles(root, { containers: conts, volumes: await listVolumes(root) })) rec.leaks.push({ kind: f.kind, what: f.path });
  } catch (e) {
    rec.findings.push(`harness: ${e.message.split('\n')[0]}`);
  } finally {
    await destroyRoot(root);
  }
  rec.broken = rec.check === 'broken';
  rec.failed = rec.broken || rec.lost.length > 0 || rec.unrunnable.length > 0 || rec.leaks.length > 0 || rec.findings.length > 0;
  return rec;
}

/** Run `trials` trials of each op; returns { rows, records }. */
export async function killTrials({ ops, trials, seed, fx }) {
  const rnd = prng(seed);
  const rows = [];
  const records = [];
  for (const opName of ops) {
    const op = OPS[opName];
    if (!op) { rows.push({ op: opName, trials: 0, note: 'unknown op' }); continue; }
    // does the command exist?
    const probeRoot = tempRoot('shale-torture-probe-');
    let duration;
    try {
      if (op.probe) {
        const p = await shale(probeRoot, op.probe);
        if (p.code !== 0) { rows.push({ op: opName, trials: 0, note: `MISSING: ${firstLine(p.stderr)}` }); records.push({ op: opName, missing: firstLine(p.stderr), failed: false }); continue; }
      }
      await op.setup(probeRoot, fx, 0);
      const t0 = Date.now();
      const during = op.during ? op.during(probeRoot, fx).catch(() => undefined) : undefined;
      const r = await shale(probeRoot, op.args(fx, 0, probeRoot));
      await during;
      duration = Date.now() - t0;
      if (r.code !== 0) {
        const missing = /unknown command|unknown option/i.test(r.stderr);
        rows.push({ op: opName, trials: 0, note: `${missing ? 'MISSING' : 'FAILS UNKILLED'}: ${firstLine(r.stderr)}` });
        records.push({ op: opName, missing: missing ? firstLine(r.stderr) : undefined, unkilledFailure: missing ? undefined : firstLine(r.stderr), failed: !missing });
        continue;
      }
    } catch (e) {
      rows.push({ op: opName, trials: 0, note: `setup failed: ${e.message.split('\n')[0]}` });
      records.push({ op: opName, setupFailure: e.message, failed: true });
      continue;
    } finally {
      await destroyRoot(probeRoot);
    }
    log(`${opName}: normal duration ${duration} ms; ${trials} trial(s)`);
    const row = { op: opName, 'dur ms': duration, trials: 0, killed: 0, repaired: 0, broken: 0, 'lost img': 0, unrunnable: 0, other: 0, leaks: '' };
    const leakKinds = {};
    for (let t = 1; t <= trials; t++) {
      const delay = Math.floor(rnd.next() * duration);
      const rec = await trial(opName, op, fx, delay, t);
      records.push(rec);
      row.trials++;
      if (rec.outcome === 'killed') row.killed++;
      if (rec.check === 'repaired') row.repaired++;
      if (rec.broken) row.broken++;
      row['lost img'] += rec.lost.length ? 1 : 0;
      row.unrunnable += rec.unrunnable.length ? 1 : 0;
      row.other += rec.findings.length ? 1 : 0;
      const kinds = new Set(rec.leaks.map((l) => l.kind));
      for (const k of kinds) leakKinds[k] = (leakKinds[k] ?? 0) + 1;
      const mark = rec.failed ? 'FAIL' : 'ok';
      log(`  ${opName} #${t} delay=${delay}ms ${rec.outcome} check=${rec.check} ${mark}` +
        (rec.lost.length ? ` lost=[${rec.lost.join('; ')}]` : '') + (rec.unrunnable.length ? ` unrunnable=[${rec.unrunnable.join('; ')}]` : '') +
        (rec.findings.length ? ` findings=[${rec.findings.join('; ')}]` : '') + (rec.leaks.length ? ` leaks=[${rec.leaks.map((l) => `${l.kind}:${l.what}`).join('; ').slice(0, 600)}]` : '') +
        (rec.check !== 'clean' ? `\n    check: ${rec.checkOutput.replace(/\n/g, '\n    ')}` : ''));
    }
    row.leaks = Object.entries(leakKinds).map(([k, n]) => `${k}:${n}`).join(' ');
    rows.push(row);
  }
  return { rows, records };
}

async function main() {
  const o = parseArgs(process.argv.slice(2), { trials: 10, seed: '', ops: 'all', json: '' });
  const seed = seedFrom(o.seed);
  const ops = o.ops === 'all' ? ALL_OPS : o.ops.split(',').map((s) => s.trim()).filter(Boolean);
  log(`kill trials: seed=${seed} trials=${o.trials} ops=${ops.join(',')} bin=${BIN}`);
  log(`reproduce: node test/torture/kill.mjs --seed ${seed} --trials ${o.trials} --ops ${ops.join(',')}`);
  const fx = await makeFixtures(ops);
  let result;
  try {
    result = await killTrials({ ops, trials: o.trials, seed, fx });
  } finally {
    await fx.registry?.stop();
    sh(`rm -rf '${fx.dir}'`);
  }
  console.log(`\nkill -9 trials (seed ${seed})\n`);
  console.log(table(result.rows, ['op', 'dur ms', 'trials', 'killed', 'repaired', 'broken', 'lost img', 'unrunnable', 'other', 'leaks', 'note']));
  if (o.json) writeFileSync(o.json, JSON.stringify({ seed, ...result }, null, 2));
  const failed = result.records.some((r) => r.failed);
  process.exitCode = failed ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
