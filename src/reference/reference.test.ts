// Docker's reference normalisation as a pure table: no name here is ever resolved or contacted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { familiarName, familiarRepository, fullName, normalizeTag, parseReference, repository } from './index.js';
import { isShaleError } from '../errors.js';

const D = 'sha256:' + 'a'.repeat(64);

const valid: { name: string; in: string; domain: string; path: string; tag?: string; digest?: string; full: string; familiar: string }[] = [
  { name: 'official image gets docker.io, library/ and :latest', in: 'busybox', domain: 'docker.io', path: 'library/busybox', tag: 'latest', full: 'docker.io/library/busybox:latest', familiar: 'busybox:latest' },
  { name: 'official image with a tag', in: 'busybox:1.36', domain: 'docker.io', path: 'library/busybox', tag: '1.36', full: 'docker.io/library/busybox:1.36', familiar: 'busybox:1.36' },
  { name: 'user repository on the hub keeps its path', in: 'bars/bb:1.2', domain: 'docker.io', path: 'bars/bb', tag: '1.2', full: 'docker.io/bars/bb:1.2', familiar: 'bars/bb:1.2' },
  { name: 'explicit docker.io', in: 'docker.io/busybox', domain: 'docker.io', path: 'library/busybox', tag: 'latest', full: 'docker.io/library/busybox:latest', familiar: 'busybox:latest' },
  { name: 'legacy index.docker.io becomes docker.io', in: 'index.docker.io/library/busybox:1', domain: 'docker.io', path: 'library/busybox', tag: '1', full: 'docker.io/library/busybox:1', familiar: 'busybox:1' },
  { name: 'explicit library/', in: 'library/busybox', domain: 'docker.io', path: 'library/busybox', tag: 'latest', full: 'docker.io/library/busybox:latest', familiar: 'busybox:latest' },
  { name: 'localhost with a port is a registry', in: 'localhost:5000/app:1', domain: 'localhost:5000', path: 'app', tag: '1', full: 'localhost:5000/app:1', familiar: 'localhost:5000/app:1' },
  { name: 'bare localhost is a registry', in: 'localhost/app', domain: 'localhost', path: 'app', tag: 'latest', full: 'localhost/app:latest', familiar: 'localhost/app:latest' },
  { name: 'loopback IP with a port and a nested path', in: '127.0.0.1:5000/bars/bb:1.2', domain: '127.0.0.1:5000', path: 'bars/bb', tag: '1.2', full: '127.0.0.1:5000/bars/bb:1.2', familiar: '127.0.0.1:5000/bars/bb:1.2' },
  { name: 'a dotted first component is a registry (no library/)', in: 'example.com/app', domain: 'example.com', path: 'app', tag: 'latest', full: 'example.com/app:latest', familiar: 'example.com/app:latest' },
  { name: 'an undotted first component is a hub user', in: 'example/app', domain: 'docker.io', path: 'example/app', tag: 'latest', full: 'docker.io/example/app:latest', familiar: 'example/app:latest' },
  { name: 'a digest and no tag: no :latest added', in: `busybox@${D}`, domain: 'docker.io', path: 'library/busybox', digest: D, full: `docker.io/library/busybox@${D}`, familiar: `busybox@${D}` },
  { name: 'tag and digest both kept', in: `127.0.0.1:5000/bars/bb:1@${D}`, domain: '127.0.0.1:5000', path: 'bars/bb', tag: '1', digest: D, full: `127.0.0.1:5000/bars/bb:1@${D}`, familiar: `127.0.0.1:5000/bars/bb:1@${D}` },
  { name: 'separators inside components', in: 'my-reg.example.com:443/a_b/c.d/e--f:v1.0-rc_1', domain: 'my-reg.example.com:443', path: 'a_b/c.d/e--f', tag: 'v1.0-rc_1', full: 'my-reg.example.com:443/a_b/c.d/e--f:v1.0-rc_1', familiar: 'my-reg.example.com:443/a_b/c.d/e--f:v1.0-rc_1' },
  { name: 'IPv6 registry', in: '[::1]:5000/app:1', domain: '[::1]:5000', path: 'app', tag: '1', full: '[::1]:5000/app:1', familiar: '[::1]:5000/app:1' },
];

for (const tc of valid) {
  test(`reference: ${tc.name}`, () => {
    const r = parseReference(tc.in);
    assert.equal(r.domain, tc.domain);
    assert.equal(r.path, tc.path);
    assert.equal(r.tag, tc.tag);
    assert.equal(r.digest, tc.digest);
    assert.equal(fullName(r), tc.full);
    assert.equal(familiarName(r), tc.familiar);
    assert.equal(repository(r), `${tc.domain}/${tc.path}`);
  });
}

const invalid: { name: string; in: string }[] = [
  { name: 'empty', in: '' },
  { name: 'uppercase repository', in: 'BusyBox' },
  { name: 'uppercase in a path component', in: 'bars/BB' },
  { name: 'leading separator in a component', in: 'bars/-bb' },
  { name: 'trailing separator', in: 'bars/bb-' },
  { name: 'double slash', in: 'bars//bb' },
  { name: 'empty tag', in: 'busybox:' },
  { name: 'tag with a bad character', in: 'busybox:a+b' },
  { name: 'tag starting with a dot', in: 'busybox:.x' },
  { name: 'tag longer than 128 characters', in: `busybox:${'a'.repeat(129)}` },
  { name: 'digest too short', in: 'busybox@sha256:abc' },
  { name: 'digest without algorithm', in: `busybox@${'a'.repeat(64)}` },
  { name: 'space', in: 'busy box' },
  { name: 'bad registry host', in: 'exa_mple.com:5000/app' },
];

for (const tc of invalid) {
  test(`reference: invalid: ${tc.name}`, () => {
    assert.throws(() => parseReference(tc.in), (e) => isShaleError(e, 'InvalidArgument') && /invalid reference format/.test(e.message));
  });
}

test('reference: familiar repository and normalizeTag', () => {
  assert.equal(familiarRepository(parseReference('docker.io/library/busybox:1')), 'busybox');
  assert.equal(familiarRepository(parseReference('bars/bb')), 'bars/bb');
  assert.equal(normalizeTag('busybox'), 'docker.io/library/busybox:latest');
  assert.equal(normalizeTag('localhost:5000/x:2'), 'localhost:5000/x:2');
  assert.throws(() => normalizeTag(`busybox@${D}`), (e) => isShaleError(e, 'InvalidArgument'));
  assert.equal(parseReference('busybox', { noDefaultTag: true }).tag, undefined);
});
