// save/load against real third-party tools (skopeo, umoci) and refusal of corrupt archives.
// Everything runs through bin/shale.js, as a user would.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { createReadStream } from 'node:fs';
import { spawn } from 'node:child_process';
import { Engine } from '../engine/index.js';
import { importTarball } from './import.js';
import { loadArchive, openFile } from './transport.js';
import { blobFiles, busyboxTar, BUSYBOX, REPO, DetRandom, filesIn, gnuTar, makeDockerArchive, runOk, sha256File, shale, shaleOk, shaleWith, tempDir, tempRoot, type AfterHook } from '../testutil/index.js';

let work: string;
let bbTar: string;
before(() => {
  work = tempDir({ after: (fn) => process.on('exit', fn) }, 'shale-transport-');
  bbTar = busyboxTar(join(work, 'busybox.tar'));
});

const sameBytes = (a: string, b: string) => readFileSync(a).equals(readFileSync(b));

/** Checks a umoci bundle's rootfs is the busybox tree. */
function assertBusyboxRootfs(rootfs: string): void {
  assert.ok(sameBytes(join(rootfs, 'bin/busybox'), BUSYBOX), 'bin/busybox is byte-identical to /bin/busybox');
  assert.equal(statSync(join(rootfs, 'bin/busybox')).mode & 0o7777, 0o755);
  assert.equal(readlinkSync(join(rootfs, 'bin/sh')), '/bin/busybox');
  assert.equal(statSync(join(rootfs, 'tmp')).mode & 0o7777, 0o1777);
  assert.match(readFileSync(join(rootfs, 'etc/passwd'), 'utf8'), /^root:x:0:0:root:\/root:\/bin\/sh$/m);
}

test('shale save -> skopeo copy docker-archive: to oci: -> umoci unpack gives busybox byte-identical', async (t) => {
  const root = tempRoot(t);
  const dir = tempDir(t);
  const id = (await shaleOk(root, 'import', bbTar, 'bb:one')).trim();
  await shaleOk(root, 'save', '-o', join(dir, 'bb.tar'), 'bb:one');
  const raw = JSON.parse(await runOk('skopeo', ['inspect', '--config', `docker-archive:${join(dir, 'bb.tar')}`]));
  assert.deepEqual(raw.rootfs.diff_ids, [sha256File(bbTar)], 'the saved config keeps the diff_id of the imported tar');
  await runOk('skopeo', ['copy', '-q', `docker-archive:${join(dir, 'bb.tar')}`, `oci:${join(dir, 'oci')}:bb`]);
  await runOk('umoci', ['unpack', '--image', `${join(dir, 'oci')}:bb`, join(dir, 'bundle')]);
  assertBusyboxRootfs(join(dir, 'bundle', 'rootfs'));
  // skopeo rewrites the config as OCI; what matters is that it kept the layer and its diff_id
  const config = JSON.parse(await runOk('skopeo', ['inspect', '--config', `oci:${join(dir, 'oci')}:bb`]));
  assert.deepEqual(config.rootfs.diff_ids, [sha256File(bbTar)]);
  assert.notEqual(id, '');
});

test('skopeo copy oci: -> docker-archive: -> shale load -> shale save --format oci-dir -> umoci unpack', async (t) => {
  const root = tempRoot(t);
  const dir = tempDir(t);
  // an OCI layout made by the peers alone: umoci builds it from the busybox rootfs
  const oci = join(dir, 'oci');
  await runOk('umoci', ['init', '--layout', oci]);
  await runOk('umoci', ['new', '--image', `${oci}:bb`]);
  await runOk('umoci', ['unpack', '--image', `${oci}:bb`, join(dir, 'b0')]);
  await runOk('tar', ['-xf', bbTar, '-C', join(dir, 'b0', 'rootfs')]);
  await runOk('umoci', ['repack', '--image', `${oci}:bb`, join(dir, 'b0')]);
  await runOk('umoci', ['config', '--image', `${oci}:bb`, '--config.cmd', '/bin/sh']);
  await runOk('skopeo', ['copy', '-q', `oci:${oci}:bb`, `docker-archive:${join(dir, 'from-skopeo.tar')}:bb:skopeo`]);

  const loaded = await shaleOk(root, 'load', '-i', join(dir, 'from-skopeo.tar'));
  assert.equal(loaded.trim(), 'Loaded image: bb:skopeo');
  assert.equal((await shaleOk(root, 'inspect', '--format', '{{json .Config.Cmd}}', 'bb:skopeo')).trim(), '["/bin/sh"]');
  await shaleOk(root, 'save', '--format', 'oci-dir', '-o', join(dir, 'out'), 'bb:skopeo');
  await runOk('umoci', ['unpack', '--image', `${join(dir, 'out')}:skopeo`, join(dir, 'bundle')]);
  assertBusyboxRootfs(join(dir, 'bundle', 'rootfs'));
  const check = await shale(root, 'system', 'check');
  assert.equal(check.code, 0, check.stderr);
});

test('shale save --format oci-dir is read by skopeo inspect oci:DIR', async (t) => {
  const root = tempRoot(t);
  const dir = tempDir(t);
  const id = (await shaleOk(root, 'import', '-c', 'ENV A=b', bbTar, 'bb:oci')).trim();
  const layer = JSON.parse(await shaleOk(root, 'inspect', '--format', '{{json .RootFS.Layers}}', 'bb:oci'));
  await shaleOk(root, 'save', '--format', 'oci-dir', '-o', join(dir, 'layout'), 'bb:oci');
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'layout', 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
  const info = JSON.parse(await runOk('skopeo', ['inspect', `oci:${join(dir, 'layout')}`]));
  assert.equal(info.Architecture, process.arch === 'x64' ? 'amd64' : info.Architecture);
  assert.equal(info.Os, 'linux');
  assert.ok(info.Env.includes('A=b'));
  assert.equal(info.Layers.length, 1);
  const config = JSON.parse(await runOk('skopeo', ['inspect', '--config', `oci:${join(dir, 'layout')}:oci`]));
  assert.deepEqual(config.rootfs.diff_ids, layer);
  const rawManifest = await runOk('skopeo', ['inspect', '--raw', `oci:${join(dir, 'layout')}:oci`]);
  assert.equal(JSON.parse(rawManifest).config.digest, id);
  // skopeo verifies every blob against its digest when it copies
  await runOk('skopeo', ['copy', '-q', `oci:${join(dir, 'layout')}:oci`, `dir:${join(dir, 'copied')}`]);
});

test('an archive saved by shale loads into a second root with the same image ID and tags', async (t) => {
  const one = tempRoot(t);
  const two = tempRoot(t);
  const dir = tempDir(t);
  const id = (await shaleOk(one, 'import', '-c', 'CMD ["/bin/sh"]', bbTar, 'bb:first')).trim();
  await shaleOk(one, 'tag', 'bb:first', 'localhost:5000/bb:second');
  await shaleOk(one, 'save', '-o', join(dir, 'both.tar'), 'bb:first', 'localhost:5000/bb:second');
  const out = await shaleOk(two, 'load', '-i', join(dir, 'both.tar'));
  assert.deepEqual(out.trim().split('\n'), ['Loaded image: bb:first', 'Loaded image: localhost:5000/bb:second']);
  const ids = (await shaleOk(two, 'images', '--no-trunc', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}')).trim().split('\n').sort();
  assert.deepEqual(ids, [`bb:first ${id}`, `localhost:5000/bb:second ${id}`]);
  const layersOne = await shaleOk(one, 'inspect', '--format', '{{json .RootFS.Layers}}', 'bb:first');
  assert.equal(await shaleOk(two, 'inspect', '--format', '{{json .RootFS.Layers}}', 'bb:first'), layersOne);
  // saving it again from the second root gives the same bytes
  await shaleOk(two, 'save', '-o', join(dir, 'again.tar'), 'bb:first', 'localhost:5000/bb:second');
  assert.ok(sameBytes(join(dir, 'both.tar'), join(dir, 'again.tar')), 'save is deterministic');
});

test('the oci-archive form, streamed through stdin, loads with the same image ID', async (t) => {
  const one = await rootWithBusybox(t, 'bb:first');
  const two = tempRoot(t);
  const dir = tempDir(t);
  await shaleOk(one, 'save', '--format', 'oci-archive', '-o', join(dir, 'oci.tar'), 'bb:first');
  const r = await shaleWith(two, ['load', '-q'], { input: readFileSync(join(dir, 'oci.tar')) });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '', '-q prints nothing');
  assert.deepEqual(storeState(two).images, storeState(one).images, 'same image ID, same tag');
});

/** Snapshot of what a store holds, to show a refused load changed nothing (read in-process: faster than the CLI). */
function storeState(root: string) {
  const engine = Engine.open({ root });
  try {
    return {
      blobs: blobFiles(root),
      images: engine.images.list().map((i) => `${i.id} ${engine.images.tagsOf(i.id).join(',')}`).sort(),
      layers: (engine.db.prepare('SELECT blob FROM layers ORDER BY blob').all() as { blob: string }[]).map((r) => r.blob),
      ingest: filesIn(join(root, 'content', 'ingest')),
    };
  } finally {
    engine.close();
  }
}

/** A root holding busybox, imported in-process. */
async function rootWithBusybox(t: AfterHook, tag: string): Promise<string> {
  const root = tempRoot(t);
  const engine = Engine.open({ root });
  try {
    await importTarball(engine, createReadStream(bbTar), { tag });
  } finally {
    engine.close();
  }
  return root;
}

for (const [what, bytes] of [['small (buffered)', 200_000], ['large (streamed)', 6_000_000]] as const) {
  test(`a load whose ${what} layer.tar does not match the config diff_id is refused and changes nothing`, async (t) => {
    const root = await rootWithBusybox(t, 'busybox:latest');
    const dir = tempDir(t);
    const layerDir = join(dir, 'layer');
    mkdirSync(layerDir);
    writeFileSync(join(layerDir, 'payload.bin'), new DetRandom(what).bytes(bytes));
    const lie = 'sha256:' + 'ab'.repeat(32);
    const archive = makeDockerArchive(join(dir, 'bad.tar'), [{ dir: layerDir }], { tag: 'bad:1', editConfig: (c) => { c.rootfs.diff_ids = [lie]; } });
    const beforeState = storeState(root);
    const r = await shale(root, 'load', '-i', archive.path);
    assert.notEqual(r.code, 0, 'the load is refused');
    assert.match(r.stderr, new RegExp(lie.slice(7)), 'the error names the digest the config claims');
    assert.match(r.stderr, new RegExp(archive.diffIds[0].slice(7)), 'and the digest the content has');
    assert.deepEqual(storeState(root), beforeState, 'same blobs, layers and images, no temporary files');
    const check = await shale(root, 'system', 'check');
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /no problems/);
    assert.doesNotMatch(check.stdout, /unreferenced/, 'no orphan blobs were left');
  });
}

test('an OCI archive whose layer blob does not match its digest is refused and changes nothing', async (t) => {
  const dir = tempDir(t);
  const src = await rootWithBusybox(t, 'bb:oci');
  await shaleOk(src, 'save', '--format', 'oci-dir', '-o', join(dir, 'layout'), 'bb:oci');
  const blobs = join(dir, 'layout', 'blobs', 'sha256');
  const index = JSON.parse(readFileSync(join(dir, 'layout', 'index.json'), 'utf8'));
  const manifest = JSON.parse(readFileSync(join(blobs, index.manifests[0].digest.slice(7)), 'utf8'));
  const layerHex = manifest.layers[0].digest.slice(7);
  // a valid gzip tar of the same size class, stored under the real layer's name
  const liar = join(dir, 'liar');
  mkdirSync(liar);
  writeFileSync(join(liar, 'evil'), 'not busybox');
  gnuTar(liar, join(dir, 'liar.tar'));
  writeFileSync(join(blobs, layerHex), gzipSync(readFileSync(join(dir, 'liar.tar'))));
  await runOk('tar', ['-cf', join(dir, 'bad-oci.tar'), '-C', join(dir, 'layout'), '.']);

  const root = await rootWithBusybox(t, 'other:1');
  const beforeState = storeState(root);
  const r = await shale(root, 'load', '-i', join(dir, 'bad-oci.tar'));
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, new RegExp(`layer sha256:${layerHex}: (size|digest) mismatch`));
  assert.deepEqual(storeState(root), beforeState);
});

test('a refused load does not delete a blob that another live writer may be about to record', async (t) => {
  const root = tempRoot(t);
  const dir = tempDir(t);
  mkdirSync(join(dir, 'layer'));
  writeFileSync(join(dir, 'layer', 'f'), new DetRandom('race').bytes(100_000));
  const archive = makeDockerArchive(join(dir, 'bad.tar'), [{ dir: join(dir, 'layer') }], { editConfig: (c) => { c.rootfs.diff_ids = ['sha256:' + 'cd'.repeat(32)]; } });
  // another process (a concurrent load) holds its lease, then writes the same layer blob
  const other = spawn(process.execPath, ['--input-type=module', '-e', `
    const { Engine } = await import(${JSON.stringify(join(REPO, 'dist', 'engine', 'index.js'))});
    const e = Engine.open({ root: ${JSON.stringify(root)} });
    e.images.lease(['*']);
    console.log('leased');
    setInterval(() => {}, 1000);
  `], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => { other.kill('SIGKILL'); });
  await new Promise<void>((res, rej) => { other.stdout!.once('data', () => res()); other.once('exit', () => rej(new Error('the lease holder died'))); });
  const engine = Engine.open({ root });
  t.after(() => engine.close());
  gnuTar(join(dir, 'layer'), join(dir, 'layer.tar'));
  const theirs = engine.content.writeBytes(readFileSync(join(dir, 'layer.tar')));
  assert.equal(theirs.digest, archive.diffIds[0], 'the other writer stored the very layer this archive carries');
  await assert.rejects(loadArchive(engine, openFile(archive.path)), /the image config says/);
  assert.ok(engine.content.has(archive.diffIds[0]), 'the blob the other writer holds is still there');
  other.kill('SIGKILL');
  await new Promise((r) => other.once('exit', r));
  // once the writer is gone, the orphan is garbage
  assert.ok((await engine.images.gc()).includes(archive.diffIds[0]));
});

test('load refuses something that is not an image archive', async (t) => {
  const root = tempRoot(t);
  const r = await shale(root, 'load', '-i', bbTar);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /not an image archive: neither manifest.json nor index.json/);
  assert.deepEqual(blobFiles(root), []);
  assert.ok(existsSync(join(root, 'metadata.db')));
  assert.deepEqual(readdirSync(join(root, 'content', 'ingest')), []);
});
