// Integration tests against Debian's docker-registry on 127.0.0.1 (started here), with skopeo
// as a second, independent client. A counting proxy on loopback sees every request, so the
// tests can say which blobs moved.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isShaleError } from '../errors.js';
import { pull, pullIfMissing, push } from './index.js';
import type { Progress } from './progress.js';
import { blobGets, blobUploads, cli, makeImage, makeLayer, openEngine, startProxy, startRegistry, tempDir, freePort, type Proxy, type RunningRegistry } from './testkit.js';

let reg: RunningRegistry;
let proxy: Proxy;
const cleanups: (() => unknown)[] = [];

function recorder(): Progress & { lines: string[] } {
  const lines: string[] = [];
  return { lines, line: (s) => lines.push(s), update: (id, s, b) => { if (!b) lines.push(`${id}: ${s}`); } };
}

function engine() {
  const e = openEngine();
  cleanups.push(() => e.close());
  return e.engine;
}

let cfgDir: string;

before(async () => {
  // credentials come only from a config.json of this test's own (never the machine's ~/.docker)
  cfgDir = tempDir('shale-dockercfg-');
  process.env.DOCKER_CONFIG = cfgDir;
  reg = await startRegistry();
  proxy = await startProxy(reg.port);
});

after(async () => {
  for (const c of cleanups.reverse()) await c();
  await proxy?.stop();
  await reg?.stop();
  rmSync(cfgDir, { recursive: true, force: true });
});

test('push then pull round-trips byte-identical layers, config and manifest', async () => {
  const a = engine();
  const layers = [await makeLayer(a, 'base', 3, 50_000), await makeLayer(a, 'mid'), await makeLayer(a, 'top')];
  const name = `${reg.host}/rt/app:1`;
  const img = makeImage(a, name, layers);
  const pushed = recorder();
  const pr = await push(a, name, { progress: pushed });
  assert.equal(pr.digest, img.manifest);
  assert.equal(pushed.lines[0], `The push refers to repository [${reg.host}/rt/app]`);
  assert.equal(pushed.lines.filter((l) => l.endsWith(': Pushed')).length, 3);
  assert.equal(pushed.lines.at(-1), `1: digest: ${img.manifest} size: ${a.content.info(img.manifest)!.size}`);

  const b = engine();
  const pulled = recorder();
  const res = await pull(b, name, { progress: pulled });
  assert.equal(res.image.id, img.id);
  assert.equal(res.image.manifest, img.manifest);
  assert.equal(res.digest, img.manifest);
  assert.equal(res.name, name);
  assert.deepEqual(b.content.readBytes(img.manifest), a.content.readBytes(img.manifest));
  assert.deepEqual(b.content.readBytes(img.id), a.content.readBytes(img.id));
  for (const l of layers) {
    assert.ok(b.content.has(l.blob), `layer ${l.blob} pulled`);
    assert.ok(b.content.readBytes(l.blob).equals(a.content.readBytes(l.blob)), `layer ${l.blob} byte-identical`);
  }
  assert.deepEqual(b.images.layers(res.image.id).map((l) => [l.blob, l.diffId, l.size]), a.images.layers(img.id).map((l) => [l.blob, l.diffId, l.size]));
  assert.equal(pulled.lines[0], '1: Pulling from rt/app');
  for (const l of layers) {
    const id = l.blob.slice(7, 19);
    const mine = pulled.lines.filter((x) => x.startsWith(`${id}: `)).map((x) => x.slice(14));
    assert.deepEqual(mine.filter((s) => s !== 'Waiting'), ['Pulling fs layer', 'Verifying Checksum', 'Download complete', 'Pull complete']);
  }
  assert.deepEqual(pulled.lines.slice(-2), [`Digest: ${img.manifest}`, `Status: Downloaded newer image for ${name}`]);
  assert.deepEqual(b.images.repoDigestsOf(img.id), [`${reg.host}/rt/app@${img.manifest}`]);
  assert.equal(b.images.resolve(`${reg.host}/rt/app@${img.manifest}`).id, img.id);

  // again: up to date, nothing fetched
  const again = recorder();
  const r2 = await pull(b, name, { progress: again });
  assert.ok(r2.upToDate);
  assert.deepEqual(again.lines, ['1: Pulling from rt/app', `Digest: ${img.manifest}`, `Status: Image is up to date for ${name}`]);
  // by digest
  const byDigest = await pull(engine(), `${reg.host}/rt/app@${img.manifest}`);
  assert.equal(byDigest.image.id, img.id);
  assert.equal(byDigest.name, `${reg.host}/rt/app@${img.manifest}`);
});

test('pulling a second image that shares a base fetches only the new layers', async () => {
  const a = engine();
  const base = [await makeLayer(a, 'b1', 2, 30_000), await makeLayer(a, 'b2', 2, 30_000)];
  const extra = await makeLayer(a, 'app', 2, 10_000);
  makeImage(a, `${reg.host}/share/base:1`, base);
  const child = makeImage(a, `${reg.host}/share/app:1`, [...base, extra], { config: { Cmd: ['app'] } });
  await push(a, `${reg.host}/share/base:1`);
  await push(a, `${reg.host}/share/app:1`);

  const b = engine();
  proxy.reset();
  await pull(b, `${proxy.host}/share/base:1`);
  assert.deepEqual(new Set(blobGets(proxy)), new Set([...base.map((l) => l.blob), a.images.get(a.images.resolve(`${reg.host}/share/base:1`).id)!.id]));
  proxy.reset();
  const out = recorder();
  await pull(b, `${proxy.host}/share/app:1`, { progress: out });
  assert.deepEqual(blobGets(proxy).sort(), [child.id, extra.blob].sort(), 'only the config and the new layer are fetched');
  for (const l of base) assert.ok(out.lines.includes(`${l.blob.slice(7, 19)}: Already exists`));
  assert.ok(out.lines.includes(`${extra.blob.slice(7, 19)}: Pull complete`));
});

test('push skips layers the registry has and mounts across repositories', async () => {
  const a = engine();
  // the second layer is over 64 KiB as stored: a HEAD that finds it answers with its length, and
  // the unread body must be dropped quietly (it once crashed the re-push with an abort 'error')
  const layers = [await makeLayer(a, 'm1', 2, 20_000), await makeLayer(a, 'm2', 2, 200_000, 'none')];
  assert.ok(layers[1].size > 64 * 1024);
  const name = `${proxy.host}/mnt/one:1`;
  makeImage(a, name, layers);
  proxy.reset();
  await push(a, name);
  assert.equal(blobUploads(proxy).length, 3, 'two layers and the config uploaded once');

  // the same image again: HEAD finds every blob, no bytes move
  proxy.reset();
  const again = recorder();
  const r = await push(a, name, { progress: again });
  assert.equal(blobUploads(proxy).length, 0);
  assert.equal(r.bytesUploaded, 0);
  assert.equal(again.lines.filter((l) => l.endsWith(': Layer already exists')).length, 2);

  // another store that pulled it pushes it back: nothing uploaded either
  const b = engine();
  await pull(b, name);
  proxy.reset();
  await push(b, name);
  assert.equal(blobUploads(proxy).length, 0);

  // to a second repository on the same registry: mounted, not uploaded
  a.images.tag(name, `${proxy.host}/mnt/two:1`);
  proxy.reset();
  const m = recorder();
  const r2 = await push(a, `${proxy.host}/mnt/two:1`, { progress: m });
  assert.equal(blobUploads(proxy).length, 0, 'no blob bytes uploaded');
  assert.ok(proxy.requests.some((q) => q.method === 'POST' && /mount=sha256/.test(q.url) && /from=mnt%2Fone/.test(q.url)));
  assert.equal(m.lines.filter((l) => l.endsWith(': Mounted from mnt/one')).length, 2, m.lines.join('\n'));
  assert.equal(r2.bytesUploaded, 0);
  // and the mounted repository serves the image
  const c = engine();
  const got = await pull(c, `${reg.host}/mnt/two:1`);
  assert.equal(got.image.id, a.images.resolve(name).id);
});

test('skopeo reads what shale pushed, byte for byte', async () => {
  const a = engine();
  const layers = [await makeLayer(a, 's1', 2, 40_000), await makeLayer(a, 's2')];
  const name = `${reg.host}/sko/app:v1`;
  const img = makeImage(a, name, layers);
  await push(a, name);
  const inspect = JSON.parse(execFileSync('skopeo', ['inspect', '--tls-verify=false', `docker://${name}`], { encoding: 'utf8' }));
  assert.equal(inspect.Digest, img.manifest);
  assert.deepEqual(inspect.Layers, layers.map((l) => l.blob));
  const dir = tempDir('shale-oci-');
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  execFileSync('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${name}`, `oci:${dir}:v1`], { encoding: 'utf8' });
  const blobs = join(dir, 'blobs', 'sha256');
  const have = new Set(readdirSync(blobs).map((h) => `sha256:${h}`));
  for (const d of [img.manifest, img.id, ...layers.map((l) => l.blob)]) {
    assert.ok(have.has(d), `skopeo copied ${d}`);
    assert.ok(readFileSync(join(blobs, d.slice(7))).equals(a.content.readBytes(d)), `${d} identical`);
  }
});

test('an unknown tag is a clear NotFound; nothing is written', async () => {
  const b = engine();
  const a = engine();
  makeImage(a, `${reg.host}/tags/app:1`, [await makeLayer(a, 't1')]);
  await push(a, `${reg.host}/tags/app:1`);
  await assert.rejects(pull(b, `${reg.host}/tags/app:nope`), (e) => isShaleError(e, 'NotFound') && e.message === `manifest for ${reg.host}/tags/app:nope not found: manifest unknown`);
  await assert.rejects(pull(b, `${reg.host}/no/such:1`), (e) => isShaleError(e, 'NotFound') && e.message.startsWith(`manifest for ${reg.host}/no/such:1 not found`));
  assert.equal(b.images.list().length, 0);
  assert.equal(b.content.list().length, 0);
  await assert.rejects(push(b, `${reg.host}/tags/app:2`), (e) => isShaleError(e, 'NotFound') && /An image does not exist locally with the tag/.test(e.message));
});

test('a registry that is down is named in the error', async () => {
  const b = engine();
  const port = await freePort();
  await assert.rejects(pull(b, `127.0.0.1:${port}/x/y:1`, { transport: { retries: 1, retryDelayMs: 10 } }), (e) => isShaleError(e, 'Unavailable') && e.message.includes(`cannot reach registry 127.0.0.1:${port}`) && e.message.includes('ECONNREFUSED') && /running/.test(e.hint ?? ''));
  assert.equal(b.content.list().length, 0);
});

test('pullIfMissing pulls only from loopback registries', async () => {
  const a = engine();
  const img = makeImage(a, `${reg.host}/auto/app:1`, [await makeLayer(a, 'auto')]);
  await push(a, `${reg.host}/auto/app:1`);
  const b = engine();
  const quiet = recorder();
  const got = await pullIfMissing(b, `${reg.host}/auto/app:1`, { progress: quiet });
  assert.equal(got?.id, img.id);
  assert.equal(quiet.lines[0], `Unable to find image '${reg.host}/auto/app:1' locally`);
  assert.equal((await pullIfMissing(b, `${reg.host}/auto/app:1`))?.id, img.id);
  // names that resolve elsewhere are never contacted
  assert.equal(await pullIfMissing(b, 'busybox:latest'), undefined);
  assert.equal(await pullIfMissing(b, 'example.com/app:1'), undefined);
});

test('CLI: push and pull print docker\'s lines; -q prints the name; system check stays clean', async () => {
  const { root: ra } = (() => { const e = openEngine(); cleanups.push(() => e.close()); return e; })();
  const tar = tempDir('shale-tar-');
  cleanups.push(() => rmSync(tar, { recursive: true, force: true }));
  execFileSync('sh', ['-c', `mkdir -p ${tar}/root/etc && echo hi > ${tar}/root/etc/hello && tar -C ${tar}/root -cf ${tar}/r.tar .`]);
  const name = `${reg.host}/cli/app:1`;
  assert.equal((await cli(ra, ['import', `${tar}/r.tar`, name])).code, 0);
  const p = await cli(ra, ['push', name]);
  assert.equal(p.code, 0, p.stderr);
  assert.match(p.stdout, new RegExp(`^The push refers to repository \\[${reg.host}/cli/app\\]\n[0-9a-f]{12}: Preparing\n[0-9a-f]{12}: Pushed\n1: digest: sha256:[0-9a-f]{64} size: \\d+\n$`));
  const { root: rb } = (() => { const e = openEngine(); cleanups.push(() => e.close()); return e; })();
  const q = await cli(rb, ['pull', '-q', name]);
  assert.equal(q.code, 0, q.stderr);
  assert.equal(q.stdout, `${name}\n`);
  const again = await cli(rb, ['pull', name]);
  assert.match(again.stdout, /Status: Image is up to date for .*\n127\.0\.0\.1:\d+\/cli\/app:1\n$/);
  const bad = await cli(rb, ['pull', `${reg.host}/cli/app:nope`]);
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr.split('\n')[0].replace(/ \(.*$/, ''), `Error: manifest for ${reg.host}/cli/app:nope not found: manifest unknown`);
  const check = await cli(rb, ['system', 'check']);
  assert.equal(check.code, 0, check.stderr);
  assert.match(check.stdout, /no problems/);
  assert.doesNotMatch(check.stdout, /unreferenced/);
});

test('login, logout and a token-protected registry', async () => {
  // a bearer-token front for the registry: /token hands out a token for u:p (Basic), every /v2 call needs it
  const auth = await startProxy(reg.port);
  cleanups.push(() => auth.stop());
  const scopes: string[] = [];
  auth.intercept = (req, res) => {
    if (req.url!.startsWith('/token')) {
      const ok = req.headers.authorization === `Basic ${Buffer.from('u:p').toString('base64')}`;
      scopes.push(...new URL(req.url!, 'http://x').searchParams.getAll('scope'));
      res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
      res.end(ok ? JSON.stringify({ token: 'T0K', expires_in: 300 }) : '{}');
      return true;
    }
    if (req.headers.authorization !== 'Bearer T0K') {
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': `Bearer realm="http://${auth.host}/token",service="test"` });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
      return true;
    }
    return false;
  };
  const a = engine();
  const name = `${auth.host}/sec/app:1`;
  makeImage(a, name, [await makeLayer(a, 'sec')]);
  await assert.rejects(push(a, name), (e) => isShaleError(e, 'PermissionDenied'));

  const { login, logout } = await import('./login.js');
  await assert.rejects(login(auth.host, { username: 'u', password: 'wrong' }), (e) => isShaleError(e, 'PermissionDenied') && /incorrect username or password/.test(e.message));
  await login(auth.host, { username: 'u', password: 'p' });
  const cfgFile = join(cfgDir, 'config.json');
  assert.equal(statSync(cfgFile).mode & 0o777, 0o600);
  assert.deepEqual(JSON.parse(readFileSync(cfgFile, 'utf8')), { auths: { [auth.host]: { auth: Buffer.from('u:p').toString('base64') } } });

  await push(a, name);
  assert.ok(scopes.includes('repository:sec/app:pull,push'));
  const b = engine();
  const got = await pull(b, name);
  assert.equal(got.image.id, a.images.resolve(name).id);
  assert.ok(scopes.includes('repository:sec/app:pull'));

  assert.deepEqual(logout(auth.host), [auth.host]);
  assert.deepEqual(logout(auth.host), []);
  await assert.rejects(pull(engine(), name), (e) => isShaleError(e, 'PermissionDenied') && /pull access denied/.test(e.message));

  // a registry that asks for Basic auth gets the stored credentials directly
  auth.intercept = (req, res) => {
    if (req.headers.authorization === `Basic ${Buffer.from('u:p').toString('base64')}`) return false;
    res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Basic realm="test"' });
    res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
    return true;
  };
  await assert.rejects(pull(engine(), name), (e) => isShaleError(e, 'PermissionDenied'));
  await assert.rejects(login(auth.host, { username: 'u', password: 'nope' }), (e) => isShaleError(e, 'PermissionDenied') && /incorrect username or password/.test(e.message));
  await login(auth.host, { username: 'u', password: 'p' });
  assert.equal((await pull(engine(), name)).image.id, got.image.id);
  logout(auth.host);

  // the CLI: --password-stdin, then logout
  const { root } = (() => { const e = openEngine(); cleanups.push(() => e.close()); return e; })();
  const li = await cli(root, ['login', '-u', 'u', '--password-stdin', auth.host], { DOCKER_CONFIG: cfgDir }, 'p\n');
  assert.equal(li.code, 0, li.stderr);
  assert.equal(statSync(cfgFile).mode & 0o777, 0o600);
  assert.equal(li.stdout, 'Login Succeeded\n');
  const lo = await cli(root, ['logout', auth.host], { DOCKER_CONFIG: cfgDir });
  assert.equal(lo.stdout, `Removing login credentials for ${auth.host}\n`);
});
