// The builder end to end through the CLI: the documented sample's layer rules, and a build
// cache that is right (what invalidates a step, what does not).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, chmodSync, writeFileSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, shale, shaleOk, shaleWith, tempDir, removeTree } from '../testutil/index.js';

const layersOf = async (root: string, img: string): Promise<string[]> => JSON.parse(await shaleOk(root, 'inspect', '--format', '{{json .RootFS.Layers}}', img));
const idOf = async (root: string, img: string) => (await shaleOk(root, 'inspect', '--format', '{{.Id}}', img)).trim();

describe('build: the documented sample (examples/sample)', () => {
  let root: string;
  let ctx: string;
  before(async () => {
    root = tempDir(undefined, 'shale-build-');
    ctx = tempDir(undefined, 'shale-ctx-');
    cpSync(join(REPO, 'examples/sample'), ctx, { recursive: true });
    await shaleOk(root, 'bootstrap', 'busybox');
  });
  after(async () => {
    await shale(root, 'container', 'prune', '-f');
    removeTree(root);
    removeTree(ctx);
  });

  it('makes exactly 4 layers and 2 empty history rows, and keeps the deleted cache in the size', async () => {
    await shaleOk(root, 'build', '-q', '-t', 'sample', ctx);
    const layers = await layersOf(root, 'sample');
    assert.equal(layers.length, 4, 'FROM base + COPY + RUN + RUN');
    const rows = (await shaleOk(root, 'history', '--no-trunc', '-H=false', '--format', '{{.CreatedBy}}|{{.Size}}', 'sample')).trim().split('\n');
    assert.equal(rows.length - layers.length, 2, 'LABEL and CMD rows carry no layer');
    const empty = rows.filter((r) => /^(LABEL|CMD)/.test(r));
    assert.equal(empty.length, 2);
    for (const r of empty) assert.equal(r.split('|')[1], '0');
    const make = rows.find((r) => r.includes('/app/make'))!;
    assert.ok(Number(make.split('|')[1]) >= 200000, `the RUN that wrote the cache shows its bytes: ${make}`);
    const rmRow = rows.find((r) => r.includes('rm -r'))!;
    assert.ok(Number(rmRow.split('|')[1]) < 1000, 'the RUN that deleted it is only whiteouts');
    const base = Number(await shaleOk(root, 'inspect', '--format', '{{.Size}}', 'busybox'));
    const total = Number(await shaleOk(root, 'inspect', '--format', '{{.Size}}', 'sample'));
    assert.ok(total - base >= 200000, `image size ${total} still counts the deleted cache over base ${base}`);
    const out = await shaleOk(root, 'run', '--rm', 'sample');
    assert.equal(out.trim(), 'hello from a layered image');
  });

  it('rebuilds unchanged as all CACHED with the same image id', async () => {
    const id1 = (await shaleOk(root, 'build', '-q', '-t', 'sample', ctx)).trim();
    const r = await shale(root, 'build', '-t', 'sample', ctx);
    assert.equal(r.code, 0, r.stderr);
    const steps = r.stderr.split('\n').filter((l) => /^#\d+ (CACHED|DONE)/.test(l) && !/\[1\//.test(l));
    assert.ok(r.stderr.includes('CACHED'));
    assert.ok(!/#\d+ DONE/.test(r.stderr.split('\n').filter((l) => !l.startsWith('#1 ')).join('\n')), `nothing ran again: ${steps.join(', ')}`);
    assert.equal(await idOf(root, 'sample'), id1);
  });
});

describe('build cache', () => {
  let root: string;
  let ctx: string;
  before(async () => {
    root = tempDir(undefined, 'shale-cache-');
    ctx = tempDir(undefined, 'shale-ctx-');
    await shaleOk(root, 'bootstrap', 'busybox');
    writeFileSync(join(ctx, 'a.txt'), 'first\n');
    writeFileSync(join(ctx, 'b.txt'), 'second\n');
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM busybox\nCOPY a.txt /a.txt\nRUN echo one > /one\nCOPY b.txt /b.txt\nRUN cat /a.txt /b.txt > /both\n');
  });
  after(() => {
    removeTree(root);
    removeTree(ctx);
  });

  it('editing one COPY source rebuilds from that step only', async () => {
    await shaleOk(root, 'build', '-q', '-t', 'c', ctx);
    const l1 = await layersOf(root, 'c');
    writeFileSync(join(ctx, 'b.txt'), 'changed\n');
    await shaleOk(root, 'build', '-q', '-t', 'c', ctx);
    const l2 = await layersOf(root, 'c');
    assert.deepEqual(l2.slice(0, 3), l1.slice(0, 3), 'base, COPY a and RUN one are reused');
    assert.notEqual(l2[3], l1[3], 'COPY b is rebuilt');
    assert.notEqual(l2[4], l1[4], 'and the RUN after it');
    const both = await shaleOk(root, 'run', '--rm', 'c', 'cat', '/both');
    assert.equal(both, 'first\nchanged\n');
  });

  it('a mode change invalidates; an mtime-only change does not', async () => {
    const id1 = (await shaleOk(root, 'build', '-q', '-t', 'c', ctx)).trim();
    utimesSync(join(ctx, 'a.txt'), new Date(2001, 1, 1), new Date(2001, 1, 1));
    const id2 = (await shaleOk(root, 'build', '-q', '-t', 'c', ctx)).trim();
    assert.equal(id2, id1, 'touching a file keeps the cache');
    const l1 = await layersOf(root, 'c');
    chmodSync(join(ctx, 'a.txt'), 0o600);
    await shaleOk(root, 'build', '-q', '-t', 'c', ctx);
    const l2 = await layersOf(root, 'c');
    assert.equal(l2[0], l1[0]);
    assert.notEqual(l2[1], l1[1], 'COPY a is rebuilt after chmod');
    const mode = await shaleOk(root, 'run', '--rm', 'c', 'stat', '-c', '%a', '/a.txt');
    assert.equal(mode.trim(), '600');
  });

  it('--no-cache runs every step and still gives the same layers for the same inputs', async () => {
    const before = await layersOf(root, 'c');
    const r = await shale(root, 'build', '--no-cache', '-t', 'c2', ctx);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stderr.includes('CACHED'));
    const after = await layersOf(root, 'c2');
    assert.equal(after[1], before[1], 'COPY layers are reproducible (sorted entries, same metadata)');
  });

  it('with SOURCE_DATE_EPOCH, a RUN that writes the same files gives the same layer', async () => {
    writeFileSync(join(ctx, 'Run.Dockerfile'), 'FROM busybox\nRUN echo same > /x && mkdir /d && echo y > /d/y\n');
    const env = { ...process.env, SOURCE_DATE_EPOCH: '1700000000' };
    const layers: string[] = [];
    for (const tag of ['r1', 'r2']) {
      const r = await shaleWith(root, ['build', '-q', '--no-cache', '-f', join(ctx, 'Run.Dockerfile'), '-t', tag, ctx], { env });
      assert.equal(r.code, 0, r.stderr);
      layers.push((await layersOf(root, tag))[1]);
      await new Promise((res) => setTimeout(res, 1100)); // the next run's files get another mtime
    }
    assert.equal(layers[0], layers[1]);
    assert.equal((await shaleOk(root, 'run', '--rm', 'r1', 'stat', '-c', '%Y', '/x')).trim(), '1700000000');
  });

  it('names the Dockerfile line of an error', async () => {
    writeFileSync(join(ctx, 'Bad.Dockerfile'), 'FROM busybox\nRUN true\nNOTANINSTRUCTION foo\n');
    const r = await shale(root, 'build', '-f', join(ctx, 'Bad.Dockerfile'), ctx);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Bad\.Dockerfile:3/);
    assert.match(r.stderr, /unknown instruction/i);
    const r2 = await shale(root, 'build', '-f', '-', ctx);
    assert.notEqual(r2.code, 0);
  });

  it('fails clearly on a missing base and never reaches for a registry', async () => {
    writeFileSync(join(ctx, 'Missing.Dockerfile'), 'FROM nosuchimage:1\n');
    const r = await shale(root, 'build', '-f', join(ctx, 'Missing.Dockerfile'), ctx);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /no such image in the local store/);
  });

  it('multi-stage: COPY --from a stage, --target, build args', async () => {
    const d = tempDir(undefined, 'shale-ms-');
    try {
      writeFileSync(join(d, 'Dockerfile'), 'ARG GREETING=hi\nFROM busybox AS gen\nARG GREETING\nRUN echo "$GREETING" > /msg\nFROM busybox\nCOPY --from=gen /msg /msg\nCMD ["cat", "/msg"]\n');
      await shaleOk(root, 'build', '-q', '--build-arg', 'GREETING=hello', '-t', 'ms', d);
      assert.equal((await shaleOk(root, 'run', '--rm', 'ms')).trim(), 'hello');
      assert.equal((await layersOf(root, 'ms')).length, 2);
      await shaleOk(root, 'build', '-q', '--target', 'gen', '-t', 'gen', d);
      assert.equal((await shaleOk(root, 'run', '--rm', 'gen', 'cat', '/msg')).trim(), 'hi');
    } finally {
      removeTree(d);
    }
  });
});
