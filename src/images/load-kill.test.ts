// A `shale load` killed with SIGKILL at several points leaves a store that `system check`
// passes and that still works: the same load succeeds afterwards, and the image is usable.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Engine } from '../engine/index.js';
import { checkStore } from '../engine/check.js';
import { blobFiles, filesIn, makeDockerArchive, shale, SHALE_BIN, tempDir, tempRoot, writeTree, type MadeArchive } from '../testutil/index.js';

let archive: MadeArchive;

before(() => {
  const work = tempDir({ after: (fn) => process.on('exit', fn) }, 'shale-kill-');
  // ~60 MB over four layers of incompressible files (each layer above the 4 MiB the loader buffers)
  const layers = [10, 15, 15, 20].map((mb, i) => {
    const dir = join(work, `l${i}`);
    mkdirSync(dir);
    writeTree(dir, { files: 30, avgSize: Math.round((mb << 20) / 30), perDir: 10 }, `kill-layer-${i}`);
    return { dir };
  });
  archive = makeDockerArchive(join(work, 'big.tar'), layers, { tag: 'big:1' });
});

type KillPoint = { ms: number } | { blobs: number } | { ingest: true };

const describePoint = (p: KillPoint) => ('ms' in p ? `${p.ms} ms in` : 'blobs' in p ? `once ${p.blobs} blob(s) are stored` : 'while a blob is being written');

/** Start `shale load`, SIGKILL it at the point, and report whether the kill landed before it finished. */
async function killLoad(root: string, point: KillPoint): Promise<{ killed: boolean; blobsAtKill: number }> {
  const child = spawn(process.execPath, [SHALE_BIN, '--root', root, 'load', '-i', archive.path], { stdio: 'ignore' });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.on('exit', (code, signal) => res({ code, signal })));
  let blobsAtKill = 0;
  const kill = () => {
    blobsAtKill = blobFiles(root).length;
    child.kill('SIGKILL');
  };
  let timer: NodeJS.Timeout;
  if ('ms' in point) timer = setTimeout(kill, point.ms);
  else {
    timer = setInterval(() => {
      const ready = 'blobs' in point ? blobFiles(root).length >= point.blobs : filesIn(join(root, 'content', 'ingest')).length > 0;
      if (ready) {
        clearInterval(timer);
        kill();
      }
    }, 1);
  }
  const r = await exited;
  clearTimeout(timer);
  clearInterval(timer);
  return { killed: r.signal === 'SIGKILL', blobsAtKill };
}

const points: KillPoint[] = [{ ms: 50 }, { ms: 150 }, { ms: 300 }, { ingest: true }, { blobs: 1 }];

for (const point of points) {
  test(`a load killed ${describePoint(point)} leaves a store that checks clean and still works`, async (t) => {
    const root = tempRoot(t);
    const { killed, blobsAtKill } = await killLoad(root, point);
    t.diagnostic(killed ? `killed with ${blobsAtKill} blob(s) stored` : 'the load finished before the kill');
    if ('blobs' in point || 'ingest' in point) assert.ok(killed, 'the kill landed mid-load');

    const check = await shale(root, 'system', 'check');
    assert.equal(check.code, 0, `system check after the kill: ${check.stdout}${check.stderr}`);
    assert.doesNotMatch(check.stderr, /problem/);
    assert.deepEqual(filesIn(join(root, 'content', 'ingest')), [], 'system check removed the temporary files of the killed writer');

    const load = await shale(root, 'load', '-i', archive.path);
    assert.equal(load.code, 0, `load after the kill: ${load.stderr}`);
    assert.equal(load.stdout.trim(), 'Loaded image: big:1');

    const images = await shale(root, 'images', '--format', '{{.Repository}}:{{.Tag}} {{.Size}}');
    assert.equal(images.code, 0, images.stderr);
    assert.match(images.stdout, /^big:1 6\d(\.\d)?MB$/m);

    const history = await shale(root, 'history', '--format', '{{.CreatedBy}}|{{.Size}}', 'big:1');
    assert.equal(history.code, 0, history.stderr);
    const rows = history.stdout.trim().split('\n');
    assert.equal(rows.length, 4);
    assert.match(rows[0], /ADD layer 3\|2\d(\.\d)?MB$/);

    // and the store is whole: checked in-process (the CLI's check ran above)
    const engine = Engine.open({ root });
    try {
      const again = await checkStore(engine);
      assert.deepEqual(again.problems, []);
      assert.deepEqual(again.info, [], 'no orphans: the reload used the blobs the killed load left behind');
      assert.deepEqual({ blobs: again.blobs, images: again.images, layers: again.layers }, { blobs: 6, images: 1, layers: 4 });
    } finally {
      engine.close();
    }
  });
}

test('two loads of the same archive at once both succeed and store each layer once', async (t) => {
  const root = tempRoot(t);
  const [a, b] = await Promise.all([shale(root, 'load', '-i', archive.path), shale(root, 'load', '-i', archive.path)]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  assert.equal(blobFiles(root).length, 6);
  const check = await shale(root, 'system', 'check');
  assert.equal(check.code, 0, check.stderr);
  assert.match(check.stdout, /checked 6 blobs, 1 images, 4 layers: no problems/);
});
