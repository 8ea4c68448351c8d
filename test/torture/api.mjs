#!/usr/bin/env node
// The concurrency mix through the Engine API: N docker CLI clients for S seconds against one
// `shale system service` on a temporary root — runs (attached and detached), builds sharing a
// base, rmi, image prune, volume create/use/rm, ps -a -s, exec. Every request must answer within
// the bound; errors other than docker's conflicts another client can cause are unexpected. After
// the run: `system check` clean, and after the sweep no mount, process or leftover file.
//
//   node test/torture/api.mjs --procs 16 --seconds 60 --seed 7
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  parseArgs, prng, seedFrom, tempRoot, shale, startShale, run, firstLine, mountsUnder, processesMentioning, leftoverFiles,
  listContainers, listVolumes, listImages, systemCheck, destroyRoot, makeBuildContext, table, log, BIN,
} from './lib.mjs';

const DOCKER = ['/usr/bin/docker', '/usr/local/bin/docker'].find((p) => existsSync(p));
const GONE = /No such image|Unable to find image|No such container|No such volume|No such object|not found/i;
const INUSE = /is using its referenced image|image is being used|must be forced|must force|is in use|already in use|conflict|a build or load in progress/i;
const EXPECTED = { rmi: new RegExp(`${GONE.source}|${INUSE.source}`, 'i'), 'run-any': GONE, 'volume-rm': INUSE };

export async function apiConcurrency({ procs, seconds, seed, timeoutMs = 120_000 }) {
  if (!DOCKER) throw new Error('no docker CLI (apt-get install docker.io) to drive the API with');
  const root = tempRoot('shale-torture-api-');
  const work = tempRoot('shale-torture-api-work-');
  const sock = join(work, 'api.sock');
  const rnd = prng(seed);
  const stats = {};
  const unexpected = [];
  const deadlocks = [];
  const findings = [];
  const env = { DOCKER_HOST: `unix://${sock}`, DOCKER_BUILDKIT: '0', DOCKER_CONFIG: join(work, 'docker-config') };
  const d = async (args, opts = {}) => { const r = await run(DOCKER, args, { timeoutMs, env, ...opts }); r.args = args; return r; };
  const rec = (kind, r, expected) => {
    const s = (stats[kind] ??= { kind, ok: 0, expected: 0, unexpected: 0, timeout: 0, ms: 0, max: 0 });
    s.ms += r.ms; s.max = Math.max(s.max, r.ms);
    if (r.timedOut) { s.timeout++; deadlocks.push({ kind, args: r.args, ms: r.ms }); return 'timeout'; }
    if (r.code === 0) { s.ok++; return 'ok'; }
    if (expected && expected.test(r.stderr)) { s.expected++; return 'expected'; }
    s.unexpected++;
    unexpected.push({ kind, args: r.args.join(' '), error: firstLine(r.stderr) || `exit ${r.code}${r.signal ? ` ${r.signal}` : ''}` });
    return 'unexpected';
  };
  let server;
  try {
    const b = await shale(root, ['bootstrap', 'busybox']);
    if (b.code !== 0) throw new Error(`bootstrap: ${b.stderr}`);
    await shale(root, ['tag', 'busybox', 'sentinel:latest']);
    server = startShale(root, ['system', 'service', '--time', '0', `unix://${sock}`]);
    for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 100));
    if (!existsSync(sock)) throw new Error('the API server made no socket');
    const end = Date.now() + seconds * 1000;
    const worker = async (w) => {
      let n = 0;
      while (Date.now() < end) {
        n++;
        const name = `w${w}-${n}`;
        const pick = rnd.next();
        if (pick < 0.2) rec('run-rm', await d(['run', '--rm', '--pull', 'never', 'busybox', 'sh', '-c', 'echo hi; head -c 100000 /dev/urandom > /x']));
        else if (pick < 0.35) {
          const ctx = makeBuildContext(join(work, `ctx-${name}`), { mb: 1, unique: name, seed: w * 1000 + n, runSleep: 0.1 });
          rec('build', await d(['build', '-q', '-t', `built-${name}`, ctx]));
        } else if (pick < 0.5) {
          if (rec('run-d', await d(['run', '-d', '--pull', 'never', '--name', name, 'busybox', 'sleep', '300'])) === 'ok') {
            rec('exec', await d(['exec', name, 'sh', '-c', 'echo in > /f; cat /f']));
            rec('ps-s', await d(['ps', '-a', '-s', '--format', '{{.Names}} {{.Size}}']));
            rec('rm-f', await d(['rm', '-f', name]));
          }
        } else if (pick < 0.62) {
          const imgs = (await d(['images', '--format', '{{.Repository}}:{{.Tag}}'])).stdout.split('\n').filter((x) => x.startsWith('built-'));
          if (imgs.length) rec('rmi', await d(['rmi', imgs[Math.floor(rnd.next() * imgs.length)]]), EXPECTED.rmi);
        } else if (pick < 0.7) rec('image-prune', await d(['image', 'prune', '-f']));
        else if (pick < 0.85) {
          const v = `vol-${name}`;
          if (rec('volume-create', await d(['volume', 'create', v])) === 'ok') {
            rec('volume-use', await d(['run', '--rm', '--pull', 'never', '-v', `${v}:/v`, 'busybox', 'sh', '-c', 'echo x > /v/f']));
            rec('volume-rm', await d(['volume', 'rm', v]), EXPECTED['volume-rm']);
          }
        } else {
          const imgs = (await d(['images', '--format', '{{.Repository}}:{{.Tag}}'])).stdout.split('\n').filter((x) => x && !x.includes('<none>'));
          rec('run-any', await d(['run', '--rm', '--pull', 'never', imgs[Math.floor(rnd.next() * imgs.length)] ?? 'busybox', 'true']), EXPECTED['run-any']);
        }
      }
    };
    const ticker = setInterval(() => {
      const tot = Object.values(stats).reduce((a, s) => a + s.ok + s.expected + s.unexpected + s.timeout, 0);
      log(`  ${tot} requests' commands, ${unexpected.length} unexpected, ${deadlocks.length} timeouts`);
    }, 15_000);
    await Promise.all(Array.from({ length: procs }, (_, i) => worker(i + 1)));
    clearInterval(ticker);
    const ping = await d(['version', '--format', '{{.Server.APIVersion}}']);
    if (ping.code !== 0) findings.push(`the server does not answer after the run: ${firstLine(ping.stderr)}`);
    server.child.kill('SIGTERM');
    await server.done;
    server = undefined;
    const check = await systemCheck(root);
    if (!check.clean) findings.push(`system check after the run: ${check.out}`);
    const imgs = await listImages(root);
    if (!imgs.images.some((i) => i.ref === 'sentinel:latest')) findings.push('lost image: sentinel:latest');
    for (const id of await listContainers(root)) {
      const x = await shale(root, ['rm', '-f', id]);
      if (x.code !== 0) findings.push(`sweep rm -f ${id.slice(0, 12)}: ${firstLine(x.stderr)}`);
    }
    const rep = await systemCheck(root, true);
    if (!rep.clean) findings.push(`check --repair in the sweep: ${rep.out}`);
    await shale(root, ['image', 'prune', '-f']);
    const fin = await systemCheck(root);
    const leaks = [];
    for (const i of fin.info) leaks.push({ kind: 'check-info', what: i });
    for (const m of mountsUnder(root)) leaks.push({ kind: 'mount', what: `${m.type} ${m.target}` });
    for (const p of processesMentioning(root)) leaks.push({ kind: 'process', what: `${p.pid} ${p.cmd.slice(0, 160)}` });
    for (const f of leftoverFiles(root, { containers: await listContainers(root), volumes: await listVolumes(root) })) leaks.push({ kind: f.kind, what: f.path });
    return { seed, procs, seconds, stats: Object.values(stats), unexpected, deadlocks, findings, leaks };
  } finally {
    if (server) { server.child.kill('SIGKILL'); await server.done; }
    await destroyRoot(root);
    await destroyRoot(work);
  }
}

export function report(r) {
  const rows = r.stats.map((s) => ({ ...s, 'avg ms': Math.round(s.ms / Math.max(1, s.ok + s.expected + s.unexpected + s.timeout)), 'max ms': s.max }));
  console.log(`\nAPI concurrency: ${r.procs} docker CLI clients, ${r.seconds}s, seed ${r.seed}\n`);
  console.log(table(rows, ['kind', 'ok', 'expected', 'unexpected', 'timeout', 'avg ms', 'max ms']));
  const byErr = {};
  for (const u of r.unexpected) { const k = `${u.kind}: ${u.error.replace(/[0-9a-f]{12,64}/g, '<id>').replace(/w\d+-\d+/g, '<name>').slice(0, 200)}`; byErr[k] = (byErr[k] ?? 0) + 1; }
  if (Object.keys(byErr).length) { console.log('\nunexpected errors:'); for (const [k, n] of Object.entries(byErr)) console.log(`  ${n}x ${k}`); }
  if (r.deadlocks.length) { console.log('\ntime bound exceeded:'); for (const x of r.deadlocks) console.log(`  ${x.kind}: ${x.args.join(' ')} (${x.ms} ms)`); }
  if (r.findings.length) { console.log('\nfindings:'); for (const f of r.findings) console.log(`  ${f}`); }
  if (r.leaks.length) { console.log('\nleaks after the sweep:'); for (const l of r.leaks) console.log(`  ${l.kind}: ${l.what}`); }
  const bad = r.unexpected.length + r.deadlocks.length + r.findings.length + r.leaks.length;
  console.log(bad ? `\nFAILED: ${bad} problem(s)` : '\nno unexpected error, no timeout, check clean, nothing leaked');
  return bad;
}

async function main() {
  const o = parseArgs(process.argv.slice(2), { procs: 16, seconds: 60, seed: '', timeout: 120 });
  const seed = seedFrom(o.seed);
  log(`api concurrency: seed=${seed} procs=${o.procs} seconds=${o.seconds} bin=${BIN}`);
  const r = await apiConcurrency({ procs: Number(o.procs), seconds: Number(o.seconds), seed, timeoutMs: o.timeout * 1000 });
  process.exitCode = report(r) ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
