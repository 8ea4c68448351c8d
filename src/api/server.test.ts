// The API server's own rules, table-driven over raw HTTP on a real unix socket: docker's
// statuses and {"message"} bodies, version prefixes, limits on headers and bodies, 501 for
// docker routes shale does not serve, the socket's mode, a stale socket replaced and a live
// one refused, loopback-only TCP, the idle exit, and attach/wait/logs framing on a real
// container. The docker CLI, dockerode and compose drive it in clients.test.ts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { serve, type Listening } from './server.js';
import { busybox, destroyEngine, tempEngine } from '../containers/testutil.js';
import type { Engine } from '../engine/index.js';

let engine: Engine;
let srv: Listening;
let sock: string;

before(async () => {
  engine = tempEngine('overlay2');
  await busybox(engine);
  sock = join(engine.root, 'api.sock');
  srv = await serve(engine, `unix://${sock}`);
});

after(async () => {
  await srv?.close();
  await destroyEngine(engine);
});

interface Res { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }

function call(method: string, path: string, o: { body?: string | Buffer; headers?: Record<string, string>; socketPath?: string } = {}): Promise<Res> {
  return new Promise((res, rej) => {
    const req = request({ socketPath: o.socketPath ?? sock, method, path, headers: { Host: 'docker', ...(o.body !== undefined ? { 'Content-Type': 'application/json' } : {}), ...o.headers } }, (r) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => res({ status: r.statusCode ?? 0, headers: r.headers, body: Buffer.concat(chunks) }));
      r.on('error', rej);
    });
    req.on('error', rej);
    req.end(o.body);
  });
}

const json = (r: Res) => JSON.parse(r.body.toString()) as Record<string, unknown>;

/** docker's multiplexed frames -> { stdout, stderr } */
function demux(b: Buffer): { stdout: string; stderr: string } {
  let stdout = '';
  let stderr = '';
  for (let i = 0; i + 8 <= b.length;) {
    const n = b.readUInt32BE(i + 4);
    const p = b.subarray(i + 8, i + 8 + n).toString();
    if (b[i] === 1) stdout += p;
    else if (b[i] === 2) stderr += p;
    i += 8 + n;
  }
  return { stdout, stderr };
}

test('the socket is 0660, never world-writable', () => {
  assert.equal(statSync(sock).mode & 0o777, 0o660);
});

test('routes answer with docker statuses and {"message"} bodies', async () => {
  const cases: [string, string, number, RegExp | undefined, string?][] = [
    ['GET', '/_ping', 200, /^OK$/],
    ['GET', '/v1.41/_ping', 200, /^OK$/],
    ['GET', '/v1.99/version', 400, /too new. Maximum supported API version is 1\.41/],
    ['GET', '/v1.12/version', 400, /too old/],
    ['GET', '/images/no-such-image:1/json', 404, /No such image: no-such-image:1/],
    ['GET', '/containers/nope/json', 404, /No such container: nope/],
    ['DELETE', '/volumes/nope', 404, /no such volume/],
    ['GET', '/no/such/route', 404, /page not found/],
    ['POST', '/swarm/init', 501, /shale does not implement POST \/swarm\/init/],
    ['POST', '/containers/x/update', 501, /does not implement/],
    ['POST', '/containers/create', 400, /invalid JSON body/, '{"Image": "busybox",'],
    ['POST', '/containers/create', 400, /invalid JSON body/, '[1,2]'],
    ['POST', '/containers/create', 404, /Unable to find image 'nope:1'/, '{"Image":"nope:1"}'],
    ['GET', '/containers/json?filters=%7Bbad', 400, /invalid filter/],
    ['GET', '/containers/json?filters=%7B%22color%22%3A%5B%22red%22%5D%7D', 400, /invalid filter 'color'/],
    ['POST', '/build?dockerfile=Dockerfile', 200, /errorDetail/, ''],
  ];
  for (const [method, path, status, re, body] of cases) {
    const r = await call(method, path, { body });
    assert.equal(r.status, status, `${method} ${path}: ${r.body}`);
    if (status >= 400) assert.equal(typeof json(r).message, 'string', `${method} ${path} has a message`);
    if (re) assert.match(r.body.toString(), re, `${method} ${path}`);
  }
  const ping = await call('GET', '/_ping');
  assert.equal(ping.headers['api-version'], '1.41');
  assert.equal(ping.headers['builder-version'], '1');
});

test('oversized headers get 431 and oversized JSON bodies 413; the server keeps serving', async () => {
  const big = await call('GET', '/_ping', { headers: { 'X-Big': 'a'.repeat(100 * 1024) } });
  assert.equal(big.status, 431);
  const body = JSON.stringify({ Image: 'busybox', Env: ['A=' + 'x'.repeat(5 * 1024 * 1024)] });
  const r = await call('POST', '/containers/create', { body });
  assert.equal(r.status, 413, r.body.toString());
  assert.equal((await call('GET', '/_ping')).status, 200);
});

test('run as the docker CLI does: create, attach (hijacked), wait next-exit, start; output framed, exit code from wait', async () => {
  const created = await call('POST', '/containers/create?name=api-t1', { body: JSON.stringify({ Image: 'busybox', Cmd: ['sh', '-c', 'read x; echo "got $x"; echo oops >&2; exit 5'], OpenStdin: true, StdinOnce: true, AttachStdin: true }) });
  assert.equal(created.status, 201, created.body.toString());
  const id = json(created).Id as string;
  // attach with Upgrade: tcp, as the docker CLI does
  const s = connect(sock);
  await new Promise((r) => s.once('connect', r));
  s.write(`POST /v1.41/containers/${id}/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n`);
  const chunks: Buffer[] = [];
  const upgraded = new Promise<void>((res) => s.on('data', (d: Buffer) => { chunks.push(d); if (Buffer.concat(chunks).includes('\r\n\r\n')) res(); }));
  const ended = new Promise<void>((res) => s.on('end', res));
  await upgraded;
  assert.match(Buffer.concat(chunks).toString('latin1'), /^HTTP\/1.1 101 UPGRADED/);
  const waited = call('POST', `/containers/${id}/wait?condition=next-exit`);
  const started = await call('POST', `/containers/${id}/start`);
  assert.equal(started.status, 204, started.body.toString());
  s.write('hello\n');
  s.end(); // half-close: stdin's EOF
  await ended;
  const raw = Buffer.concat(chunks);
  const out = demux(raw.subarray(raw.indexOf('\r\n\r\n') + 4));
  assert.equal(out.stdout, 'got hello\n');
  assert.equal(out.stderr, 'oops\n');
  const w = await waited;
  assert.deepEqual(json(w), { Error: null, StatusCode: 5 });
  // and the log has it, framed by stream
  const logs = await call('GET', `/containers/${id}/logs?stdout=1&stderr=1`);
  assert.deepEqual(demux(logs.body), { stdout: 'got hello\n', stderr: 'oops\n' });
  assert.equal((await call('DELETE', `/containers/${id}`)).status, 204);
  assert.equal((await call('GET', `/containers/${id}/json`)).status, 404);
});

test('a client that goes away mid-stream (logs -f, events, a build upload) leaves the server serving', async () => {
  const created = await call('POST', '/containers/create', { body: JSON.stringify({ Image: 'busybox', Cmd: ['sh', '-c', 'while true; do echo tick; sleep 0.05; done'] }) });
  const id = json(created).Id as string;
  assert.equal((await call('POST', `/containers/${id}/start`)).status, 204);
  for (const path of [`/containers/${id}/logs?follow=1&stdout=1`, '/events', `/containers/${id}/stats`]) {
    await new Promise<void>((res, rej) => {
      const req = request({ socketPath: sock, method: 'GET', path, headers: { Host: 'docker' } }, (r) => {
        r.once('data', () => { req.destroy(); res(); }); // the first bytes, then gone
        if (path === '/events') { req.destroy(); res(); }
      });
      req.on('error', () => undefined);
      req.on('close', () => res());
      req.end();
      void rej;
    });
  }
  // a build whose upload stops halfway: the connection is cut after part of a tar
  await new Promise<void>((res) => {
    const req = request({ socketPath: sock, method: 'POST', path: '/build?t=cut', headers: { Host: 'docker', 'Content-Type': 'application/x-tar', 'Content-Length': '100000' } });
    req.on('error', () => res());
    req.on('close', () => res());
    req.write(makeTar([{ name: 'Dockerfile', body: 'FROM busybox\n' }]).subarray(0, 700), () => req.destroy());
  });
  for (let i = 0; i < 3; i++) assert.equal((await call('GET', '/_ping')).status, 200);
  assert.equal((await call('DELETE', `/containers/${id}?force=1`)).status, 204);
  assert.equal((await call('GET', '/images/cut/json')).status, 404, 'no image from a cut upload');
});

test('archive GET resolves ../ and symlinks inside the container, never on the host', async () => {
  const created = await call('POST', '/containers/create?name=api-t2', { body: JSON.stringify({ Image: 'busybox', Cmd: ['true'] }) });
  const id = json(created).Id as string;
  const tar = Buffer.from('');
  void tar;
  // a symlink in the container pointing at / and a file named like the host's
  const put = await call('PUT', `/containers/${id}/archive?path=/`, { body: makeTar([{ name: 'etc/host-look', body: 'container file\n' }, { name: 'up', link: '/' }]), headers: { 'Content-Type': 'application/x-tar' } });
  assert.equal(put.status, 200, put.body.toString());
  for (const p of ['../../../../etc/host-look', '/up/up/../etc/host-look']) {
    const r = await call('GET', `/containers/${id}/archive?path=${encodeURIComponent(p)}`);
    assert.equal(r.status, 200, `${p}: ${r.body}`);
    assert.match(r.body.toString('latin1'), /container file/);
  }
  const shadow = await call('GET', `/containers/${id}/archive?path=${encodeURIComponent('../../../../etc/shadow')}`);
  assert.equal(shadow.status, 404, 'the host\'s /etc/shadow is not reachable (busybox has none)');
  const stat = await call('HEAD', `/containers/${id}/archive?path=/etc/host-look`);
  const st = JSON.parse(Buffer.from(String(stat.headers['x-docker-container-path-stat']), 'base64').toString()) as { name: string; size: number };
  assert.deepEqual([st.name, st.size], ['host-look', 15]);
  await call('DELETE', `/containers/${id}?force=1`);
});

test('a unix socket left by a dead server is replaced; a live one is refused; TCP only on loopback', async () => {
  const stale = join(engine.root, 'stale.sock');
  const s1 = await serve(engine, `unix://${stale}`);
  await s1.close();
  // a socket file nobody listens on (what a kill -9 leaves)
  const { createServer } = await import('node:net');
  const dead = createServer();
  await new Promise<void>((r) => dead.listen(stale, r));
  await new Promise<void>((r) => { (dead as unknown as { _handle: { close(): void } | null })._handle?.close(); dead.close(() => r()); });
  writeFileSync(join(engine.root, 'not-a-socket'), 'x');
  await assert.rejects(serve(engine, `unix://${join(engine.root, 'not-a-socket')}`), /is not a socket/);
  await assert.rejects(serve(engine, `unix://${sock}`), /another server is listening/);
  await assert.rejects(serve(engine, 'tcp://0.0.0.0:0'), /refusing to serve the API on 0\.0\.0\.0/);
  const t = await serve(engine, 'tcp://127.0.0.1:0');
  assert.match(t.address, /^tcp:\/\/127\.0\.0\.1:\d+$/);
  await t.close();
});

test('with --time, the server stops after that long without a request', async () => {
  const p = join(engine.root, 'idle.sock');
  const s = await serve(engine, `unix://${p}`, { idleSeconds: 0.3 });
  assert.equal((await call('GET', '/_ping', { socketPath: p })).status, 200);
  await s.closed; // resolves only when the idle timer fired
  await assert.rejects(call('GET', '/_ping', { socketPath: p }));
});

test('stopping the server stops the containers it supervises (attached at start): no process outlives it', async () => {
  const p = join(engine.root, 'stop.sock');
  const s2 = await serve(engine, `unix://${p}`);
  const created = await call('POST', '/containers/create', { socketPath: p, body: JSON.stringify({ Image: 'busybox', Cmd: ['sleep', '300'] }) });
  const id = json(created).Id as string;
  const conn = connect(p);
  await new Promise((r) => conn.once('connect', r));
  conn.on('error', () => undefined);
  const upgraded = new Promise((r) => conn.once('data', r)); // the 101, sent once the attach is registered
  conn.write(`POST /containers/${id}/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n`);
  await upgraded;
  conn.on('data', () => undefined);
  assert.equal((await call('POST', `/containers/${id}/start`, { socketPath: p })).status, 204);
  const running = json(await call('GET', `/containers/${id}/json`)).State as { Running: boolean; Pid: number };
  assert.equal(running.Running, true);
  await s2.close();
  const after = json(await call('GET', `/containers/${id}/json`)).State as { Running: boolean };
  assert.equal(after.Running, false, 'the container stopped with its supervising server');
  assert.throws(() => process.kill(running.Pid, 0), 'its process is gone');
  await call('DELETE', `/containers/${id}?force=1`);
});

/** A minimal ustar archive: regular files and symlinks. */
function makeTar(entries: { name: string; body?: string; link?: string }[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const h = Buffer.alloc(512);
    const body = Buffer.from(e.body ?? '');
    h.write(e.name, 0);
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(body.length.toString(8).padStart(11, '0') + '\0', 124);
    h.write('00000000000\0', 136);
    h.write(e.link ? '2' : '0', 156);
    if (e.link) h.write(e.link, 157);
    h.write('ustar\0' + '00', 257);
    h.fill(' ', 148, 156);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    blocks.push(h, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}
