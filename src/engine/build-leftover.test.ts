// A build killed with SIGKILL during a RUN leaves its RUN container (still running) and its
// intermediate image: `system check` must say so, and `--repair` must remove both, leaving no
// container process behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { shale, shaleOk, SHALE_BIN, tempDir, tempRoot } from '../testutil/index.js';

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function processesWith(marker: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(marker)) out.push(Number(p));
    } catch { /* gone */ }
  }
  return out;
}

test('a build killed during RUN: system check reports the leftovers and --repair removes them', async (t) => {
  const root = tempRoot(t);
  await shaleOk(root, 'bootstrap', 'busybox');
  const ctx = tempDir(t);
  const marker = `leftover-${process.pid}-${Date.now()}`;
  writeFileSync(join(ctx, 'Dockerfile'), `FROM busybox\nRUN sleep 300; echo ${marker}\n`);
  const b = spawn(process.execPath, [SHALE_BIN, '--root', root, 'build', '-q', ctx], { stdio: 'ignore' });
  // the RUN step is running when its container's process exists
  await until('the RUN process', async () => (processesWith(marker).some((p) => p !== b.pid) ? true : undefined));
  b.kill('SIGKILL');
  await new Promise((r) => b.on('close', r));

  const check = await shale(root, 'system', 'check');
  assert.equal(check.code, 0, check.stderr);
  assert.match(check.stdout + check.stderr, /was left by a killed build; `system check --repair` removes it/);
  const repair = await shale(root, 'system', 'check', '--repair');
  assert.equal(repair.code, 0, repair.stderr);
  assert.match(repair.stdout + repair.stderr, /left by a killed build: removed, with its intermediate image/);
  assert.equal((await shaleOk(root, 'ps', '-aq')).trim(), '');
  assert.equal((await shaleOk(root, 'images', '-q', '--filter', 'dangling=true')).trim(), '');
  assert.deepEqual(processesWith(marker), []);
  const again = await shale(root, 'system', 'check');
  assert.doesNotMatch(again.stdout + again.stderr, /killed build/);
});
