// Faults: a connection cut mid-layer (by a loopback proxy), a layer whose bytes do not match
// its digest, manifests that are too large or malformed, and platform choice in an index.
// After each failure the store holds nothing the pull wrote and `system check` is clean.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { isShaleError } from '../errors.js';
import { sha256 } from '../digest/index.js';
import { MediaType, hostArch, type Index, type Manifest } from '../oci/index.js';
import { pull, push } from './index.js';
import { cli, makeImage, makeLayer, openEngine, startFakeRegistry, startProxy, startRegistry, type FakeRegistry, type Proxy, type RunningRegistry } from './testkit.js';
import type { Engine } from '../engine/index.js';

let reg: RunningRegistry;
let proxy: Proxy;
let fake: FakeRegistry;
const cleanups: (() => unknown)[] = [];

function open() {
  const e = openEngine();
  cleanups.push(() => e.close());
  return e;
}

before(async () => {
  process.env.DOCKER_CONFIG = '/nonexistent/shale-test'; // no credentials: never the machine's ~/.docker
  reg = await startRegistry();
  proxy = await startProxy(reg.port);
  fake = await startFakeRegistry();
});

after(async () => {
  for (const c of cleanups.reverse()) await c();
  await fake?.stop();
  await proxy?.stop();
  await reg?.stop();
});

async function assertEmpty(engine: Engine): Promise<void> {
  assert.equal(engine.images.list().length, 0, 'no image recorded');
  assert.deepEqual(engine.content.list(), [], 'no blob left behind');
  // the content store unlinks a failed write's temporary file as its own stream closes, which can be
  // a moment after the first error reaches the caller (ingestBlob rejects on the first failing branch)
  for (let i = 0; i < 50 && readdirSync(engine.content.ingestDir).length; i++) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(readdirSync(engine.content.ingestDir), [], 'no temporary file left behind');
}

async function assertCheckClean(root: string): Promise<void> {
  const c = await cli(root, ['system', 'check']);
  assert.equal(c.code, 0, c.stdout + c.stderr);
  assert.match(c.stdout, /no problems/);
  assert.doesNotMatch(c.stdout, /unreferenced|stale/);
}

test('a connection cut mid-layer fails clearly, leaves nothing, and a retry completes', async () => {
  const a = open().engine;
  const big = await makeLayer(a, 'big', 4, 256 * 1024); // ~1 MiB of random data: gzip cannot shrink it
  const small = await makeLayer(a, 'small');
  const name = `${reg.host}/fault/app:1`;
  const img = makeImage(a, name, [small, big]);
  await push(a, name);

  const { engine: b, root } = open();
  // the first GET of the big layer is cut after 200 KiB; every later attempt is refused outright
  let cuts = 0;
  proxy.reset();
  proxy.cut = (q) => (q.method === 'GET' && q.url.includes(big.blob) ? (cuts++ === 0 ? 200 * 1024 : 'reset') : undefined);
  await assert.rejects(pull(b, `${proxy.host}/fault/app:1`, { downloadAttempts: 3 }), (e) =>
    isShaleError(e, 'Unavailable') && e.message.includes(`pulling layer ${big.blob.slice(7, 19)}`) && /connection was lost after \d+ of \d+ bytes/.test(e.message) && /nothing partial was kept/.test(e.hint ?? ''));
  assert.ok(proxy.requests.some((q) => q.range && /^bytes=\d+-$/.test(q.range)), 'a resume with Range was tried');
  await assertEmpty(b);
  await assertCheckClean(root);

  // the connection works again: the same pull, through the CLI, completes
  proxy.reset();
  const again = await cli(root, ['pull', `${proxy.host}/fault/app:1`]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /Status: Downloaded newer image/);
  await assertCheckClean(root);
  const c = await cli(root, ['images', '--format', '{{.ID}}']);
  assert.equal(c.stdout.trim(), img.id.slice(7, 19));
});

test('a connection cut once resumes with Range and the pull completes in one go', async () => {
  const a = open().engine;
  const big = await makeLayer(a, 'resume', 4, 256 * 1024);
  const name = `${reg.host}/fault/resume:1`;
  const img = makeImage(a, name, [big]);
  await push(a, name);
  const { engine: b } = open();
  let cuts = 0;
  proxy.reset();
  proxy.cut = (q) => (q.method === 'GET' && q.url.includes(big.blob) && cuts++ === 0 ? 300 * 1024 : undefined);
  const res = await pull(b, `${proxy.host}/fault/resume:1`);
  assert.equal(res.image.id, img.id);
  const gets = proxy.requests.filter((q) => q.method === 'GET' && q.url.includes(big.blob));
  assert.equal(gets.length, 2);
  assert.match(gets[1].range ?? '', /^bytes=\d+-$/);
  assert.ok(b.content.readBytes(big.blob).equals(a.content.readBytes(big.blob)));
});

/** Serve an engine's image from the fake registry under repo:tag; returns the manifest digest. */
function serve(engine: Engine, id: string, repo: string, tag: string, tweak?: (m: Manifest) => void): string {
  const rec = engine.images.get(id)!;
  let bytes = engine.content.readBytes(rec.manifest);
  if (tweak) {
    const m = JSON.parse(bytes.toString()) as Manifest;
    tweak(m);
    bytes = Buffer.from(JSON.stringify(m));
  }
  const m = JSON.parse(bytes.toString()) as Manifest;
  const digest = sha256(bytes);
  for (const ref of [tag, digest]) fake.routes.set(`/v2/${repo}/manifests/${ref}`, { body: bytes, type: m.mediaType ?? MediaType.ociManifest, headers: { 'docker-content-digest': digest } });
  for (const d of [m.config, ...m.layers]) if (engine.content.has(d.digest)) fake.routes.set(`/v2/${repo}/blobs/${d.digest}`, { body: engine.content.readBytes(d.digest) });
  return digest;
}

test('a layer whose bytes do not match its digest is refused and not stored', async () => {
  const a = open().engine;
  const good = await makeLayer(a, 'good');
  const bad = await makeLayer(a, 'bad', 2, 8192, 'none');
  // another valid (uncompressed) layer blob of exactly the same size, served under the first one's digest
  const evil = await makeLayer(a, 'eve', 2, 8192, 'none');
  assert.equal(evil.blobSize, bad.blobSize);
  const img = makeImage(a, 'x/bad:1', [good, bad]);
  serve(a, img.id, 'x/bad', '1');
  fake.routes.set(`/v2/x/bad/blobs/${bad.blob}`, { body: a.content.readBytes(evil.blob) });
  const { engine: b, root } = open();
  await assert.rejects(pull(b, `${fake.host}/x/bad:1`), (e) => isShaleError(e, 'DataLoss') && /digest mismatch/.test(e.message) && e.message.includes(bad.blob));
  await assertEmpty(b);
  await assertCheckClean(root);
  // bytes that do not even decompress are a clear DataLoss too
  const body = Buffer.from(a.content.readBytes(good.blob));
  body.fill(0x41, 10, body.length - 10);
  fake.routes.set(`/v2/x/bad/blobs/${good.blob}`, { body });
  fake.routes.set(`/v2/x/bad/blobs/${bad.blob}`, { body: a.content.readBytes(bad.blob) });
  await assert.rejects(pull(b, `${fake.host}/x/bad:1`), (e) => isShaleError(e, 'DataLoss') && e.message.includes(good.blob));
  await assertEmpty(b);
});

test('a manifest that is too large or malformed is refused with a clear error', async () => {
  const { engine: b } = open();
  const cases: { name: string; body: Buffer; type: string; want: RegExp }[] = [
    { name: 'huge', body: Buffer.alloc(5 << 20, 0x20), type: MediaType.ociManifest, want: /too large \(5242880 bytes; the limit is 4194304 bytes\)/ },
    { name: 'notjson', body: Buffer.from('{"schemaVersion": 2, '), type: MediaType.ociManifest, want: /malformed manifest: .*JSON/ },
    { name: 'nolayers', body: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: { mediaType: MediaType.ociConfig, digest: sha256('x'), size: 1 } })), type: MediaType.ociManifest, want: /malformed manifest: a manifest without a "layers" list/ },
    { name: 'baddigest', body: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: { mediaType: MediaType.ociConfig, digest: 'md5:abc', size: 1 }, layers: [] })), type: MediaType.ociManifest, want: /malformed manifest: config has an invalid or unsupported digest/ },
    { name: 'schema1', body: Buffer.from(JSON.stringify({ schemaVersion: 1, name: 'x', tag: '1', fsLayers: [] })), type: 'application/vnd.docker.distribution.manifest.v1+prettyjws', want: /schema 1 is not supported/ },
    { name: 'artifact', body: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: { mediaType: 'application/vnd.cncf.helm.config.v1+json', digest: sha256('x'), size: 1 }, layers: [] })), type: MediaType.ociManifest, want: /not a container image/ },
  ];
  for (const c of cases) {
    fake.routes.set(`/v2/m/${c.name}/manifests/1`, { body: c.body, type: c.type });
    await assert.rejects(pull(b, `${fake.host}/m/${c.name}:1`), (e) => isShaleError(e, 'InvalidArgument') && c.want.test(e.message), c.name);
  }
  // a registry that lies about the digest
  fake.routes.set('/v2/m/lie/manifests/1', { body: cases[2].body, type: MediaType.ociManifest, headers: { 'docker-content-digest': sha256('other') } });
  await assert.rejects(pull(b, `${fake.host}/m/lie:1`), (e) => isShaleError(e, 'DataLoss') && /digest mismatch/.test(e.message));
  await assertEmpty(b);
});

test('an index picks the host platform; --platform overrides; no match is an error', async () => {
  const a = open().engine;
  const mine = makeImage(a, 'x/multi:host', [await makeLayer(a, 'host')]);
  const other = makeImage(a, 'x/multi:other', [await makeLayer(a, 'other')], { architecture: 'riscv64' });
  const dMine = serve(a, mine.id, 'x/multi', 'host');
  const dOther = serve(a, other.id, 'x/multi', 'other');
  const index: Index = {
    schemaVersion: 2, mediaType: MediaType.ociIndex,
    manifests: [
      { mediaType: MediaType.ociManifest, digest: dOther, size: a.content.info(other.manifest)!.size, platform: { os: 'linux', architecture: 'riscv64' } },
      { mediaType: MediaType.ociManifest, digest: dMine, size: a.content.info(mine.manifest)!.size, platform: { os: 'linux', architecture: hostArch() } },
    ],
  };
  const ib = Buffer.from(JSON.stringify(index));
  fake.routes.set('/v2/x/multi/manifests/1', { body: ib, type: MediaType.ociIndex });
  const { engine: b } = open();
  const r1 = await pull(b, `${fake.host}/x/multi:1`);
  assert.equal(r1.image.id, mine.id);
  assert.equal(r1.digest, sha256(ib), 'the repo digest is the index digest, as docker records it');
  assert.deepEqual(b.images.repoDigestsOf(mine.id), [`${fake.host}/x/multi@${sha256(ib)}`]);
  const r2 = await pull(b, `${fake.host}/x/multi:1`, { platform: 'linux/riscv64' });
  assert.equal(r2.image.id, other.id);
  await assert.rejects(pull(b, `${fake.host}/x/multi:1`, { platform: 'linux/s390x' }), (e) => isShaleError(e, 'NotFound') && /no matching manifest for linux\/s390x/.test(e.message));
  // docker's manifest list media type works the same
  fake.routes.set('/v2/x/multi/manifests/2', { body: Buffer.from(JSON.stringify({ ...index, mediaType: MediaType.dockerManifestList })), type: MediaType.dockerManifestList });
  assert.equal((await pull(open().engine, `${fake.host}/x/multi:2`)).image.id, mine.id);
});
