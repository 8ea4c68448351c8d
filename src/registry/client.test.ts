// Pure parts of the registry client: scheme choice, challenges, credentials files, platforms,
// progress rendering. No network.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isLoopback, parseChallenge, registryBase } from './transport.js';
import { credentialKey, eraseCredentials, INDEX_SERVER, lookupCredentials, storeCredentials } from './credentials.js';
import { parsePlatform } from './util.js';
import { choosePlatform } from './pull.js';
import { bar, progressFor } from './progress.js';
import { MediaType, type Index } from '../oci/index.js';

test('registry base: http only for loopback and named insecure registries; Hub goes to registry-1', () => {
  const cases: [string, string[], string][] = [
    ['localhost:5000', [], 'http://localhost:5000'],
    ['localhost', [], 'http://localhost'],
    ['127.0.0.1:5000', [], 'http://127.0.0.1:5000'],
    ['127.1.2.3', [], 'http://127.1.2.3'],
    ['[::1]:5000', [], 'http://[::1]:5000'],
    ['registry.example.com', [], 'https://registry.example.com'],
    ['10.0.0.5:5000', [], 'https://10.0.0.5:5000'],
    ['10.0.0.5:5000', ['10.0.0.5:5000'], 'http://10.0.0.5:5000'],
    ['reg.lan', ['http://reg.lan/'], 'http://reg.lan'],
    ['docker.io', [], 'https://registry-1.docker.io'],
  ];
  for (const [d, insecure, want] of cases) assert.equal(registryBase(d, insecure), want, d);
  assert.ok(isLoopback('localhost:1'));
  assert.ok(!isLoopback('localhost.example.com'));
  assert.ok(!isLoopback('128.0.0.1'));
});

test('WWW-Authenticate challenges parse', () => {
  assert.deepEqual(parseChallenge('Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull"'), {
    scheme: 'bearer', params: { realm: 'https://auth.example.com/token', service: 'registry.example.com', scope: 'repository:a/b:pull' },
  });
  assert.deepEqual(parseChallenge('Basic realm="Registry Realm"'), { scheme: 'basic', params: { realm: 'Registry Realm' } });
  assert.deepEqual(parseChallenge('Bearer realm=http://x/t, service=s'), { scheme: 'bearer', params: { realm: 'http://x/t', service: 's' } });
  assert.equal(parseChallenge(undefined), undefined);
});

test('credentials: docker config.json keys, mode 0600, other keys kept', () => {
  const dir = mkdtempSync(join(tmpdir(), 'shale-cfg-'));
  try {
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ auths: { 'https://other.example.com/v1/': { auth: Buffer.from('o:pw').toString('base64') } }, credsStore: '' }));
    assert.deepEqual(lookupCredentials('other.example.com', file), { username: 'o', password: 'pw' });
    assert.equal(lookupCredentials('127.0.0.1:5000', file), undefined);
    assert.equal(storeCredentials('127.0.0.1:5000', { username: 'me', password: 'p:w' }, file), '127.0.0.1:5000');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(lookupCredentials('127.0.0.1:5000', file), { username: 'me', password: 'p:w' });
    assert.equal(storeCredentials(undefined, { username: 'hub', password: 'x' }, file), INDEX_SERVER);
    assert.deepEqual(lookupCredentials('docker.io', file), { username: 'hub', password: 'x' });
    const j = JSON.parse(readFileSync(file, 'utf8'));
    assert.equal(j.credsStore, '');
    assert.ok(j.auths['https://other.example.com/v1/']);
    assert.deepEqual(eraseCredentials('127.0.0.1:5000', file), ['127.0.0.1:5000']);
    assert.deepEqual(eraseCredentials('127.0.0.1:5000', file), []);
    assert.deepEqual(eraseCredentials('docker.io', file), [INDEX_SERVER]);
    assert.equal(credentialKey('https://localhost:5000/v2/'), 'localhost:5000');
    assert.equal(credentialKey('index.docker.io'), INDEX_SERVER);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('platforms: parsing and choosing from an index', () => {
  assert.deepEqual(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
  assert.deepEqual(parsePlatform('linux/x86_64'), { os: 'linux', architecture: 'amd64', variant: undefined });
  assert.throws(() => parsePlatform('linux/amd64/v1/x'));
  const m = (arch: string, variant?: string, os = 'linux') => ({ mediaType: MediaType.ociManifest, digest: `sha256:${arch}${variant ?? ''}`.padEnd(71, '0'), size: 1, platform: { os, architecture: arch, variant } });
  const index: Index = { schemaVersion: 2, manifests: [m('amd64'), m('arm', 'v6'), m('arm', 'v7'), m('arm64', 'v8'), m('amd64', undefined, 'windows')] };
  assert.equal(choosePlatform(index, { os: 'linux', architecture: 'amd64' }), index.manifests[0]);
  assert.equal(choosePlatform(index, { os: 'linux', architecture: 'arm' }), index.manifests[2], 'arm means v7');
  assert.equal(choosePlatform(index, { os: 'linux', architecture: 'arm', variant: 'v6' }), index.manifests[1]);
  assert.equal(choosePlatform(index, { os: 'linux', architecture: 'arm64', variant: 'v8' }), index.manifests[3]);
  assert.equal(choosePlatform(index, { os: 'windows', architecture: 'amd64' }), index.manifests[4]);
  assert.equal(choosePlatform(index, { os: 'linux', architecture: 's390x' }), undefined);
});

test('progress: plain lines off a terminal, a redrawn bar on one', () => {
  let text = '';
  const plain = progressFor({ write: (s: string) => (text += s), isTTY: false });
  plain.update('abc', 'Pulling fs layer');
  plain.update('abc', 'Downloading', { current: 5, total: 10 });
  plain.update('abc', 'Download complete');
  plain.update('abc', 'Download complete');
  plain.line('Digest: x');
  assert.equal(text, 'abc: Pulling fs layer\nabc: Download complete\nDigest: x\n');
  text = '';
  const tty = progressFor({ write: (s: string) => (text += s), isTTY: true });
  tty.update('a', 'Waiting');
  tty.update('b', 'Waiting');
  tty.update('a', 'Downloading', { current: 500_000, total: 1_000_000 });
  assert.ok(text.startsWith('a: Waiting\nb: Waiting\n\x1b[2A\r\x1b[2Ka: Downloading [=========================>                         ]    500kB/1MB\x1b[2B\r'), JSON.stringify(text));
  assert.equal(bar(10, 10), `[${'='.repeat(50)}>]      10B/10B`);
  assert.equal(progressFor({ write: () => assert.fail('quiet prints nothing') }, { quiet: true }).update('x', 'y'), undefined);
});
