#!/usr/bin/env node
// Concurrency torture: N workers on one root loop random commands for a while — builds sharing a
// base (each with a unique file), run --rm, run -d + exec + rm -f, create/start/rm, rmi of random
// images, image prune -f, volume create/use/rm, load of a saved archive, push/pull through a
// loopback registry. Every command has a time bound (exceeding it is a deadlock finding). Errors are
// classified as expected conflicts (docker's wording, caused by another worker) or unexpected.
// At the end: no protected or live image lost, `system check` clean, and after a sweep no leaked
// mount, process or temp file.
//
//   node test/torture/concurrency.mjs --procs 16 --seconds 300 --seed 42
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  parseArgs, prng, seedFrom, tempRoot, shale, sh, sleep, firstLine, mountsUnder, processesMentioning, leftoverFiles,
  listImages, listContainers, listVolumes, systemCheck, destroyRoot, startRegistry, makeBuildContext, table, log, BIN,
} from './lib.mjs';

const GONE = /No such image|Unable to find image|No such container|No such volume|No such object/i;
const INUSE = /is using its referenced image|image is being used|must be forced|must force|image has dependent child images|is in use|already in use|conflict|a build or load in progress \(pid \d+\) is using it/i;

/** What another worker may legitimately cause, per command kind. */
const EXPECTED = {
  'run-any': GONE,
  'create-any': GONE,
  rmi: new RegExp(`${GONE.source}|${INUSE.source}`, 'i'),
  push: /No such image|does not exist locally with the tag/i,
  'tag-push': /No such image/i,
};

export async function concurrency({ procs, seconds, seed, timeoutMs = 120_000, root: givenRoot }) {
  const root = givenRoot ?? tempRoot('shale-torture-conc-');
  const work = tempRoot('shale-torture-conc-work-');
  const registry = await startRegistry();
  const rnd = prng(seed);
  const stats = {}; // kind -> { ok, expected, unexpected, timeout, ms }
  const unexpected = [];
  const deadlocks = [];
  const untagged = []; // { ref, at }
  const built = new Map(); // tag -> { id, start, end }
  const pulledRef = `${registry.host}/torture/base:latest`;
  const archive = join(work, 'archive.tar');
  const findings = [];

  const rec = (kind, r, expected) => {
    const s = (stats[kind] ??= { kind, ok: 0, expected: 0, unexpected: 0, timeout: 0, ms: 0, max: 0 });
    s.ms += r.ms; s.max = Math.max(s.max, r.ms);
    if (r.timedOut) { s.timeout++; deadlocks.push({ kind, args: r.args, ms: r.ms }); return 'timeout'; }
    if (r.code === 0) { s.ok++; return 'ok'; }
    if (expected && expected.test(r.stderr)) { s.expected++; return 'expected'; }
    s.unexpected++;
    unexpected.push({ kind, args: r.args.join(' '), error: firstLine(r.stderr) || `exit ${r.code}${r.signal ? ` ${r.signal}` : ''}`, at: new Date().toISOString() });
    return 'unexpected';
  };
  const cli = async (args, opts) => { const r = await shale(root, args, { timeoutMs, ...opts }); r.args = args; return r; };

  try {
    // setup: base image, a sentinel no one removes, an archive, the registry holding the base
    for (const a of [['bootstrap', 'busybox'], ['tag', 'busybox:latest', 'sentinel:latest'], ['tag', 'busybox:latest', pulledRef], ['push', pulledRef]]) {
      const r = await cli(a);
      if (r.code !== 0) throw new Error(`setup ${a.join(' ')}: ${r.stderr}`);
    }
    const tmpl = join(work, 'tmpl');
    const ctx0 = makeBuildContext(join(work, 'ctx0'), { mb: 2, unique: 'archive', seed: 3, runSleep: 0 });
    for (const a of [['bootstrap', 'busybox'], ['build', '-q', '-t', 'archived:latest', ctx0], ['save', '-o', archive, 'archived:latest']]) {
      const r = await shale(tmpl, a, { timeoutMs });
      if (r.code !== 0) throw new Error(`setup ${a.join(' ')}: ${r.stderr}`);
    }
    await destroyRoot(tmpl);
    const protectedIds = new Map((await listImages(root)).images.map((i) => [i.ref, i.id]));

    const end = Date.now() + seconds * 1000;
    const worker = async (w) => {
      const r = prng(seed ^ (w * 0x9e3779b1));
      const ctx = makeBuildContext(join(work, `ctx${w}`), { mb: 1, unique: `w${w}-0`, seed: 100 + w, runSleep: 0 });
      let k = 0;
      const randomImage = async () => {
        const l = await listImages(root);
        const refs = l.images.map((i) => (i.ref === '<none>:<none>' ? i.id : i.ref));
        return refs.length ? r.pick(refs) : 'busybox:latest';
      };
      while (Date.now() < end) {
        k++;
        const name = `w${w}-${k}`;
        const choice = r.pick(['build', 'build', 'run-rm', 'run-d', 'run-d', 'create', 'rmi', 'rmi', 'prune', 'volume', 'load', 'push', 'pull', 'run-any']);
        if (choice === 'build') {
          const tag = `w${w}:${k % 3}`;
          writeFileSync(join(ctx, 'unique.txt'), `worker ${w} iteration ${k} ${r.hex(8)}\n`);
          const start = Date.now();
          const b = await cli(['build', '-q', '-t', tag, ctx]);
          if (rec('build', b) === 'ok') built.set(tag, { id: b.stdout.trim().split('\n').pop(), start, end: Date.now() });
        } else if (choice === 'run-rm') {
          rec('run-rm', await cli(['run', '--rm', 'busybox', 'sh', '-c', 'echo hi > /f && cat /f']));
        } else if (choice === 'run-any') {
          rec('run-any', await cli(['run', '--rm', await randomImage(), 'true']), EXPECTED['run-any']);
        } else if (choice === 'run-d') {
          const d = await cli(['run', '-d', '--name', name, 'busybox', 'sleep', '30']);
          if (rec('run-d', d) === 'ok') {
            rec('exec', await cli(['exec', name, 'sh', '-c', 'echo x > /tmp/x && cat /tmp/x']));
            rec('rm-f', await cli(['rm', '-f', name]));
          }
        } else if (choice === 'create') {
          const c = await cli(['create', '--name', name, 'busybox', 'sh', '-c', 'echo created']);
          if (rec('create', c) === 'ok') {
            if (r.next() < 0.5) {
              rec('start', await cli(['start', name]));
              const wt = await cli(['wait', name]);
              rec('wait', wt);
              if (wt.code === 0 && wt.stdout.trim() !== '0') { unexpected.push({ kind: 'wait', args: `wait ${name}`, error: `created container exited ${wt.stdout.trim()}` }); stats.wait.unexpected++; }
            }
            rec('rm', await cli(['rm', name]));
          }
        } else if (choice === 'rmi') {
          const img = await randomImage();
          if (['busybox:latest', 'sentinel:latest', pulledRef].includes(img) || protectedIds.has(img)) continue;
          const t0 = Date.now();
          const x = await cli(['rmi', img]);
          if (rec('rmi', x, EXPECTED.rmi) === 'ok') for (const l of x.stdout.split('\n')) { const m = /^Untagged: (.*)$/.exec(l); if (m) untagged.push({ ref: m[1], at: t0 }); }
        } else if (choice === 'prune') {
          rec('image-prune', await cli(['image', 'prune', '-f']));
        } else if (choice === 'volume') {
          const v = `v${w}-${k}`;
          if (rec('volume-create', await cli(['volume', 'create', v])) === 'ok') {
            const u = await cli(['run', '--rm', '-v', `${v}:/d`, 'busybox', 'sh', '-c', 'echo data > /d/f && cat /d/f']);
            rec('volume-use', u);
            rec('volume-rm', await cli(['volume', 'rm', v]));
          }
        } else if (choice === 'load') {
          rec('load', await cli(['load', '-i', archive]));
        } else if (choice === 'push') {
          const img = await randomImage();
          const ref = `${registry.host}/conc/w${w}:latest`;
          if (rec('tag-push', await cli(['tag', img, ref]), EXPECTED['tag-push']) === 'ok') rec('push', await cli(['push', ref]), EXPECTED.push);
        } else if (choice === 'pull') {
          rec('pull', await cli(['pull', pulledRef]));
        }
      }
    };
    log(`concurrency: ${procs} workers for ${seconds}s on ${root}`);
    const ticker = setInterval(() => {
      const tot = Object.values(stats).reduce((a, s) => a + s.ok + s.expected + s.unexpected + s.timeout, 0);
      log(`  ${tot} commands, ${unexpected.length} unexpected, ${deadlocks.length} timeouts`);
    }, 30_000);
    await Promise.all(Array.from({ length: procs }, (_, i) => worker(i + 1)));
    clearInterval(ticker);

    // end state
    const check = await systemCheck(root);
    if (!check.clean) findings.push(`system check after the run: ${check.out}`);
    const after = await listImages(root);
    const ids = new Set(after.images.map((i) => i.id));
    for (const [ref, id] of protectedIds) if (!ids.has(id)) findings.push(`lost image: protected ${ref} (${id.slice(7, 19)})`);
    const refs = new Map(after.images.map((i) => [i.ref, i.id]));
    for (const [tag, b] of built) {
      if (untagged.some((u) => u.ref === tag && u.at >= b.start - 5000)) continue; // someone rmi'd it
      if (refs.get(tag) !== b.id) findings.push(`lost image: ${tag} built as ${b.id.slice(7, 19)} is now ${refs.get(tag)?.slice(7, 19) ?? 'missing'}`);
    }
    for (const [ref] of protectedIds) {
      const x = await cli(['run', '--rm', ref, 'true']);
      if (x.code !== 0) findings.push(`protected image ${ref} does not run: ${firstLine(x.stderr)}`);
    }
    // sweep
    for (const id of await listContainers(root)) {
      const x = await cli(['rm', '-f', id]);
      if (x.code !== 0) findings.push(`sweep rm -f ${id.slice(0, 12)}: ${firstLine(x.stderr)}`);
    }
    const rep = await systemCheck(root, true);
    if (!rep.clean) findings.push(`check --repair in the sweep: ${rep.out}`);
    const pr = await cli(['image', 'prune', '-f']);
    if (pr.code !== 0) findings.push(`image prune -f in the sweep: ${firstLine(pr.stderr)}`);
    const fin = await systemCheck(root);
    if (!fin.clean) findings.push(`check after the sweep: ${fin.out}`);
    const leaks = [];
    for (const i of fin.info) leaks.push({ kind: /unreferenced blob/.test(i) ? 'orphan-blob' : 'check-info', what: i });
    for (const m of mountsUnder(root)) leaks.push({ kind: 'mount', what: `${m.type} ${m.target}` });
    for (const p of processesMentioning(root)) leaks.push({ kind: 'process', what: `${p.pid} ${p.cmd.slice(0, 160)}` });
    for (const f of leftoverFiles(root, { containers: await listContainers(root), volumes: await listVolumes(root) })) leaks.push({ kind: f.kind, what: f.path });
    return { seed, procs, seconds, stats: Object.values(stats), unexpected, deadlocks, findings, leaks, initialCheck: check };
  } finally {
    await destroyRoot(root);
    await registry.stop();
    sh(`rm -rf '${work}'`);
  }
}

export function report(r) {
  const rows = r.stats.map((s) => ({ ...s, 'avg ms': Math.round(s.ms / Math.max(1, s.ok + s.expected + s.unexpected + s.timeout)), 'max ms': s.max }));
  console.log(`\nconcurrency: ${r.procs} workers, ${r.seconds}s, seed ${r.seed}\n`);
  console.log(table(rows, ['kind', 'ok', 'expected', 'unexpected', 'timeout', 'avg ms', 'max ms']));
  const byErr = {};
  for (const u of r.unexpected) { const k = `${u.kind}: ${u.error.replace(/[0-9a-f]{12,64}/g, '<id>').replace(/w\d+-\d+/g, '<name>').slice(0, 200)}`; byErr[k] = (byErr[k] ?? 0) + 1; }
  if (Object.keys(byErr).length) { console.log('\nunexpected errors:'); for (const [k, n] of Object.entries(byErr).sort((a, b) => b[1] - a[1])) console.log(`  ${n}x ${k}`); }
  if (r.deadlocks.length) { console.log('\ntime bound exceeded (deadlock?):'); for (const d of r.deadlocks) console.log(`  ${d.kind}: ${d.args.join(' ')} (${d.ms} ms)`); }
  if (r.findings.length) { console.log('\nfindings:'); for (const f of r.findings) console.log(`  ${f}`); }
  if (r.leaks.length) { console.log('\nleaks after the sweep:'); for (const l of r.leaks) console.log(`  ${l.kind}: ${l.what}`); }
  return r.unexpected.length + r.deadlocks.length + r.findings.length + r.leaks.length;
}

async function main() {
  const o = parseArgs(process.argv.slice(2), { procs: 16, seconds: 300, seed: '', timeout: 120, json: '' });
  const seed = seedFrom(o.seed);
  log(`concurrency: seed=${seed} procs=${o.procs} seconds=${o.seconds} bin=${BIN}`);
  log(`reproduce: node test/torture/concurrency.mjs --seed ${seed} --procs ${o.procs} --seconds ${o.seconds}`);
  const r = await concurrency({ procs: o.procs, seconds: o.seconds, seed, timeoutMs: o.timeout * 1000 });
  const bad = report(r);
  if (o.json) writeFileSync(o.json, JSON.stringify(r, null, 2));
  process.exitCode = bad ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
void mkdirSync;
