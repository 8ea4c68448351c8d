// The pure parts of containers, without a runtime: -v/--mount parsing, users from passwd/group, the OCI spec,
// and json-file logs with rotation.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseMountFlag, parseVolumeFlag } from './index.js';
import { resolveUser } from './user.js';
import { ALL_CAPS, buildSpec, capabilities, containerEnv } from './spec.js';
import { JsonLogWriter, parseSize, readLogs } from './logs.js';
import { newState, type Container } from './store.js';

const root = mkdtempSync('/tmp/shale-cunit-');
after(() => rmSync(root, { recursive: true, force: true }));
mkdirSync(join(root, 'etc'));
mkdirSync(join(root, 'run'));
mkdirSync(join(root, 'var'));
writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n');
writeFileSync(join(root, 'etc/group'), 'root:x:0:\nstaff:x:50:app\nappgrp:x:1001:\n');

test('-v and --mount parse like docker', () => {
  assert.deepEqual(parseVolumeFlag('data:/d:ro'), { Type: 'volume', Source: 'data', Target: '/d', ReadOnly: true });
  assert.deepEqual(parseVolumeFlag('/h:/d'), { Type: 'bind', Source: '/h', Target: '/d', ReadOnly: false });
  assert.deepEqual(parseVolumeFlag('/anon/'), { Type: 'volume', Source: '', Target: '/anon', Anonymous: true });
  assert.throws(() => parseVolumeFlag('a b:/d'), /invalid characters/);
  assert.throws(() => parseVolumeFlag('vv:rel'), /must be absolute/);
  assert.throws(() => parseVolumeFlag('vv:/'), /can't be '\/'/);
  assert.deepEqual(parseMountFlag('type=volume,src=vv,dst=/x,readonly'), { Type: 'volume', Source: 'vv', Target: '/x', ReadOnly: true, Anonymous: false });
  assert.deepEqual(parseMountFlag(`type=bind,source=${root},target=/y`), { Type: 'bind', Source: root, Target: '/y', ReadOnly: false });
  assert.throws(() => parseMountFlag('type=bind,src=/no/such/dir,dst=/y'), /bind source path does not exist/);
  assert.throws(() => parseMountFlag('type=tmpfs,dst=/y'), /not supported/);
});

test('users come from the container\'s passwd and group', () => {
  assert.deepEqual(resolveUser(root, ''), { uid: 0, gid: 0, additionalGids: [], home: '/root' });
  assert.deepEqual(resolveUser(root, 'app'), { uid: 1000, gid: 1001, additionalGids: [50], home: '/home/app' });
  assert.equal(resolveUser(root, 'app:staff').gid, 50);
  assert.deepEqual(resolveUser(root, '4242:7'), { uid: 4242, gid: 7, additionalGids: [], home: undefined });
  assert.throws(() => resolveUser(root, 'nobody'), /unable to find user nobody/);
  assert.throws(() => resolveUser(root, 'app:nogroup'), /unable to find group nogroup/);
});

test('the OCI spec has docker\'s namespaces, mounts, env and args', () => {
  const c: Container = {
    id: 'a'.repeat(64), name: 'x', imageId: 'sha256:0', created: '',
    config: { Hostname: 'aaaaaaaaaaaa', Image: 'i', Env: ['PATH=/bin', 'A=1'], Entrypoint: ['/e'], Cmd: ['c'], WorkingDir: '/w', AttachStdin: false, AttachStdout: true, AttachStderr: true, OpenStdin: false, Tty: false },
    hostConfig: { AutoRemove: false, NetworkMode: 'none', Mounts: [], Binds: [], LogConfig: { Type: 'json-file', Config: {} } },
    state: newState(),
  };
  assert.deepEqual(containerEnv(c), ['PATH=/bin', 'HOSTNAME=aaaaaaaaaaaa', 'A=1']);
  const spec = buildSpec(c, { rootfs: '/r', user: { uid: 1, gid: 2, additionalGids: [] }, mounts: [{ destination: '/etc/hosts', type: 'bind', source: '/mine', options: ['rbind'] }], dir: '/d', network: 'none' }) as {
    process: { args: string[]; cwd: string; user: unknown }; hostname: string; mounts: { destination: string; source: string }[]; linux: { namespaces: { type: string }[] };
  };
  assert.deepEqual(spec.process.args, ['/e', 'c']);
  assert.equal(spec.process.cwd, '/w');
  assert.deepEqual(spec.process.user, { uid: 1, gid: 2 });
  assert.equal(spec.hostname, 'aaaaaaaaaaaa');
  assert.deepEqual(spec.linux.namespaces.map((n) => n.type).sort(), ['ipc', 'mount', 'network', 'pid', 'uts']);
  assert.deepEqual(spec.mounts.filter((m) => m.destination === '/etc/hosts').map((m) => m.source), ['/mine'], 'a user mount replaces the default one');
  for (const d of ['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/etc/resolv.conf', '/etc/hostname']) assert.ok(spec.mounts.some((m) => m.destination === d), d);
  // docker's default set is CapEff 00000000a80425fb
  const mask = (caps: string[]) => caps.reduce((m, x) => m | (1n << BigInt(ALL_CAPS.indexOf(x))), 0n);
  assert.equal(mask(capabilities(c)).toString(16), 'a80425fb');
  assert.deepEqual(capabilities({ ...c, hostConfig: { ...c.hostConfig, CapDrop: ['ALL'], CapAdd: ['chown'] } }), ['CAP_CHOWN']);
  assert.ok(capabilities({ ...c, hostConfig: { ...c.hostConfig, CapAdd: ['NET_ADMIN'], CapDrop: ['CAP_KILL'] } }).includes('CAP_NET_ADMIN'));
  assert.ok(!capabilities({ ...c, hostConfig: { ...c.hostConfig, CapDrop: ['KILL'] } }).includes('CAP_KILL'));
  assert.throws(() => capabilities({ ...c, hostConfig: { ...c.hostConfig, CapAdd: ['BOGUS'] } }), /unknown capability/);
  const ro = buildSpec({ ...c, hostConfig: { ...c.hostConfig, ReadonlyRootfs: true, Tmpfs: { '/t': 'size=1m' } } }, { rootfs: '/r', user: { uid: 0, gid: 0, additionalGids: [] }, mounts: [], dir: '/d', network: 'none' }) as { root: { readonly: boolean }; mounts: { destination: string; type: string; options: string[] }[] };
  assert.equal(ro.root.readonly, true);
  assert.ok(ro.mounts.some((m) => m.destination === '/t' && m.type === 'tmpfs' && m.options.includes('size=1m')));
  const host = buildSpec(c, { rootfs: '/r', user: { uid: 0, gid: 0, additionalGids: [] }, mounts: [], dir: '/d', network: 'host' }) as { linux: { namespaces: { type: string }[] } };
  assert.ok(!host.linux.namespaces.some((n) => n.type === 'network'));
});

test('json-file logs: lines, partial lines, rotation by max-size/max-file', () => {
  assert.equal(parseSize('10k'), 10240);
  assert.equal(parseSize('1m'), 1 << 20);
  assert.throws(() => parseSize('ten'), /invalid size/);
  const p = join(root, 'c-json.log');
  const w = new JsonLogWriter(p, { maxSize: 300, maxFile: 2 });
  w.write('stdout', 'a\nb');
  w.write('stdout', 'c\n');
  w.write('stderr', 'e\n');
  for (let i = 0; i < 20; i++) w.write('stdout', `line ${i}\n`);
  w.write('stdout', 'tail without newline');
  w.close();
  const { entries } = readLogs(p);
  assert.equal(entries.at(-1)?.log, 'tail without newline');
  assert.ok(entries.some((e) => e.stream === 'stdout' && e.log === 'line 19\n'));
  assert.ok(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/.test(entries[0].time));
  assert.ok(entries.length < 24, 'the oldest lines were rotated away');
});
