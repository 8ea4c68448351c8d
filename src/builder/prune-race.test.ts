// `image prune` running in a loop beside a build must never take the build's work in progress
// (its intermediate images, its result before the tag): the build succeeds, the image is there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { shale, shaleOk, SHALE_BIN, tempDir, tempRoot } from '../testutil/index.js';

test('image prune in a loop beside a build --no-cache takes nothing the build needs', async (t) => {
  const root = tempRoot(t);
  await shaleOk(root, 'bootstrap', 'busybox');
  const ctx = tempDir(t);
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM busybox\nRUN echo one > /1\nRUN echo two > /2\nRUN echo three > /3\nRUN echo four > /4\nRUN echo five > /5\nRUN cat /1 /2 /3 /4 /5\n');
  for (let round = 0; round < 2; round++) {
    const b = spawn(process.execPath, [SHALE_BIN, '--root', root, 'build', '--no-cache', '-t', `pruned:${round}`, ctx], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    b.stderr.on('data', (d) => (stderr += d));
    const done = new Promise<number | null>((r) => b.on('close', r));
    let building = true;
    void done.then(() => (building = false));
    let prunes = 0;
    while (building) {
      const p = await shale(root, 'image', 'prune', '-f');
      assert.equal(p.code, 0, p.stderr);
      prunes++;
    }
    assert.equal(await done, 0, `round ${round}, after ${prunes} prunes: ${stderr}`);
    assert.ok(prunes > 0);
    const out = await shaleOk(root, 'run', '--rm', `pruned:${round}`, 'cat', '/1', '/5');
    assert.equal(out, 'one\nfive\n');
  }
});
