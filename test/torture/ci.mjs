#!/usr/bin/env node
// CI mode: a small bounded sample of the torture harness — 2 kill -9 trials of 6 operations (the
// API server among them), a 30-second 4-process concurrency run, a 20-second 4-client run through
// the Engine API, and the disk-full run. Exits non-zero on any broken store,
// lost image, leak, unexpected error or deadlock. Budget: under 3 minutes on 2 cores.
//
//   node test/torture/ci.mjs [--seed S]
import { parseArgs, seedFrom, sh, table, log, BIN } from './lib.mjs';
import { makeFixtures, killTrials } from './kill.mjs';
import { concurrency, report } from './concurrency.mjs';
import { diskFull } from './diskfull.mjs';
import { apiConcurrency, report as apiReport } from './api.mjs';

const o = parseArgs(process.argv.slice(2), { seed: '', trials: 2, ops: 'load,build,run,rmi,volume-rm,service', procs: 4, seconds: 30, apiSeconds: 20, diskfull: true });
const seed = seedFrom(o.seed);
const ops = o.ops.split(',');
log(`torture CI: seed=${seed} bin=${BIN}`);
log(`reproduce: node test/torture/ci.mjs --seed ${seed}`);
const t0 = Date.now();
let bad = 0;

const fx = await makeFixtures(ops);
try {
  const k = await killTrials({ ops, trials: o.trials, seed, fx });
  console.log(`\nkill -9 sample (seed ${seed})\n`);
  console.log(table(k.rows, ['op', 'dur ms', 'trials', 'killed', 'repaired', 'broken', 'lost img', 'unrunnable', 'other', 'leaks', 'note']));
  bad += k.records.filter((r) => r.failed).length;
} finally {
  await fx.registry?.stop();
  sh(`rm -rf '${fx.dir}'`);
}

const c = await concurrency({ procs: o.procs, seconds: o.seconds, seed, timeoutMs: 120_000 });
bad += report(c);

if (Number(o.apiSeconds) > 0) bad += apiReport(await apiConcurrency({ procs: o.procs, seconds: Number(o.apiSeconds), seed, timeoutMs: 120_000 }));

if (o.diskfull) {
  process.env.SHALE_MIN_FREE_SPACE ??= '0';
  const d = await diskFull({ sizeMb: 64 });
  console.log('\ndisk full\n');
  console.log(table(d.rows, ['op', 'exit', 'verdict', 'error']));
  for (const f of d.findings) console.log(`  - ${f.split('\n')[0]}`);
  bad += d.findings.length;
}
console.log(`\ntorture CI: ${bad ? `${bad} failure(s)` : 'all passed'} in ${Math.round((Date.now() - t0) / 1000)} s (seed ${seed})`);
process.exitCode = bad ? 1 : 0;
