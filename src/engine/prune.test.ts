// system prune as docker's: a prompt that "n" (or end of input) answers with nothing removed;
// with -f stopped containers, dangling images and the build cache go, running containers and
// tagged images stay, and anonymous volumes go only with --volumes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { shale, shaleOk, shaleWith, tempDir, tempRoot } from '../testutil/index.js';

test('system prune removes what docker removes and keeps what is in use', async (t) => {
  const root = tempRoot(t);
  await shaleOk(root, 'bootstrap', 'busybox');
  const ctx = tempDir(t);
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM busybox\nRUN echo x > /x\n');
  const dangling = (await shaleOk(root, 'build', '-q', ctx)).trim();
  await shaleOk(root, 'run', '--name', 'stopped', '-v', '/anon', 'busybox', 'true');
  await shaleOk(root, 'rm', 'stopped'); // its anonymous volume stays behind, unused
  await shaleOk(root, 'create', '--name', 'stopped2', 'busybox', 'true');
  const up = (await shaleOk(root, 'run', '-d', '--name', 'up', 'busybox', 'sleep', '60')).trim();
  try {
    const no = await shaleWith(root, ['system', 'prune'], { input: 'n\n' });
    assert.equal(no.code, 0, no.stderr);
    assert.match(no.stdout, /WARNING! This will remove:\n {2}- all stopped containers\n {2}- all dangling images\n {2}- unused build cache\n\nAre you sure you want to continue\? \[y\/N\] $/);
    assert.match(await shaleOk(root, 'ps', '-a', '--format', '{{.Names}}'), /stopped2/);

    const yes = await shaleOk(root, 'system', 'prune', '-f');
    assert.match(yes, /^Deleted Containers:\n[0-9a-f]{64}\n\n/);
    assert.match(yes, new RegExp(`Deleted Images:\\n(.*\\n)*deleted: ${dangling}`));
    assert.match(yes, /Deleted build cache objects:\n/);
    assert.match(yes, /Total reclaimed space: \S+\n$/);
    assert.equal((await shaleOk(root, 'ps', '-a', '--format', '{{.Names}}')).trim(), 'up');
    assert.match(await shaleOk(root, 'images', '--format', '{{.Repository}}'), /^busybox$/m);
    assert.equal((await shaleOk(root, 'volume', 'ls', '-q')).trim().split('\n').filter(Boolean).length, 1, 'the anonymous volume went without --volumes');
    const rebuilt = await shale(root, 'build', ctx);
    assert.doesNotMatch(rebuilt.stderr + rebuilt.stdout, /CACHED/, 'the build cache survived the prune');

    const vols = await shaleOk(root, 'system', 'prune', '-f', '--volumes');
    assert.match(vols, /Deleted Volumes:\n[0-9a-f]{64}\n/);
    assert.equal((await shaleOk(root, 'volume', 'ls', '-q')).trim(), '');
  } finally {
    await shale(root, 'rm', '-f', up);
  }
  const check = await shaleOk(root, 'system', 'check');
  assert.match(check, /no problems/);
});
