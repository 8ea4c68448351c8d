// A malicious registry: loopback HTTP servers that answer with endless, huge or slowly dripping
// bodies, redirect loops and absurd tokens. Every call must fail with a clear one-line ShaleError,
// in bounded time and memory, and SIGTERM must end a CLI pull at once.
// Nothing here listens on or connects to anything but 127.0.0.1.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { isShaleError } from '../errors.js';
import { listTags, pull, Transport } from './index.js';
import type { TransportOptions } from './transport.js';
import { BIN, openEngine, tempDir } from './testkit.js';
import type { Engine } from '../engine/index.js';

const MB = 1 << 20;
/** most a hostile body may grow the process by */
const MEMORY_BOUND = 150 * MB;

interface Hostile {
  host: string;
  requests: { method: string; url: string }[];
  /** resolves at the first request (seen or to come) whose URL starts with `prefix` */
  seen(prefix: string): Promise<void>;
  stop(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, host: string) => void;

const servers: Hostile[] = [];
const cleanups: (() => void)[] = [];
let engine: Engine;

before(() => {
  process.env.DOCKER_CONFIG = '/nonexistent/shale-test'; // no credentials: never the machine's ~/.docker
  const e = openEngine();
  engine = e.engine;
  cleanups.push(() => e.close());
});

after(async () => {
  for (const s of servers) await s.stop();
  for (const c of cleanups.reverse()) c();
});

async function hostile(handler: Handler): Promise<Hostile> {
  const sockets = new Set<Socket>();
  const waiters: { prefix: string; resolve: () => void }[] = [];
  const h: Hostile = {
    host: '',
    requests: [],
    seen(prefix) {
      if (h.requests.some((r) => r.url.startsWith(prefix))) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ prefix, resolve }));
    },
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server = createServer((req, res) => {
    h.requests.push({ method: req.method!, url: req.url! });
    for (const w of waiters.filter((x) => req.url!.startsWith(x.prefix))) w.resolve();
    req.resume();
    handler(req, res, h.host);
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  h.host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  servers.push(h);
  return h;
}

/** Write `first`, then `chunk` for ever (as fast as the client reads: the server itself stays small). */
function endless(res: ServerResponse, chunk: Buffer, first?: string): void {
  let closed = false;
  res.on('close', () => (closed = true));
  if (first) res.write(first);
  const pump = () => {
    while (!closed && res.write(chunk));
    if (!closed) res.once('drain', pump);
  };
  pump();
}

/** Write `first`, then one byte every `ms` for ever. */
function drip(res: ServerResponse, first = '', ms = 50): void {
  if (first) res.write(first);
  const iv = setInterval(() => res.write('a'), ms);
  res.on('close', () => clearInterval(iv));
}

const JUNK = Buffer.alloc(64 << 10, 'A');

/** /v2/... answers 401 with a bearer challenge whose realm is /token on the same server. */
function challenge(req: IncomingMessage, res: ServerResponse, host: string): boolean {
  if (req.url!.startsWith('/token')) return false;
  if (/^Bearer /.test(req.headers.authorization ?? '')) return false;
  res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': `Bearer realm="http://${host}/token",service="hostile"` });
  res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
  return true;
}

/** A clear error: a ShaleError whose message is one short line matching `want`. */
function clear(want: RegExp): (e: unknown) => boolean {
  return (e) => {
    assert.ok(isShaleError(e), `not a ShaleError: ${(e as Error)?.stack ?? e}`);
    assert.doesNotMatch(e.message, /[\r\n]/, 'one line');
    assert.ok(e.message.length < 600, `short: ${e.message.length} characters`);
    assert.match(e.message, want);
    return true;
  };
}

/** Run `fn` while sampling this process's RSS; returns its growth over the start (bytes) and the time taken. */
async function bounded(fn: () => Promise<unknown>): Promise<{ growth: number; ms: number }> {
  const base = process.memoryUsage.rss();
  let peak = base;
  const iv = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 5);
  const t0 = performance.now();
  try {
    await fn();
  } finally {
    clearInterval(iv);
    peak = Math.max(peak, process.memoryUsage.rss());
  }
  const growth = peak - base;
  assert.ok(growth < MEMORY_BOUND, `RSS grew by ${(growth / MB).toFixed(1)} MB`);
  return { growth, ms: performance.now() - t0 };
}

const fast: TransportOptions = { retryDelayMs: 1 };

test('an endless token response fails at 1 MiB with a clear error', async (t) => {
  const s = await hostile((req, res, host) => {
    if (challenge(req, res, host)) return;
    res.writeHead(200, { 'content-type': 'application/json' });
    endless(res, JUNK, '{"token":"');
  });
  const m = await bounded(() => assert.rejects(pull(engine, `${s.host}/x:y`, { transport: fast }), clear(new RegExp(`^token response from ${s.host} is larger than 1 MiB$`))));
  t.diagnostic(`RSS growth ${(m.growth / MB).toFixed(1)} MB in ${m.ms.toFixed(0)} ms`);
  // the same with a Content-Length that says so: refused before reading
  const s2 = await hostile((req, res, host) => {
    if (challenge(req, res, host)) return;
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(10 * 1024 * MB) });
    endless(res, JUNK);
  });
  await bounded(() => assert.rejects(pull(engine, `${s2.host}/x:y`, { transport: fast }), clear(/is larger than 1 MiB$/)));
});

test('absurd tokens are refused: too long, not a header value, not a string, not an object', async () => {
  let answer = '';
  const s = await hostile((req, res, host) => {
    if (challenge(req, res, host)) return;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(answer);
  });
  const cases: [string, RegExp][] = [
    [JSON.stringify({ token: 'x'.repeat(900 << 10) }), /returned a token of 921600 bytes \(the limit is 64 KiB\)/],
    [JSON.stringify({ token: 'abc\r\nx-evil: 1' }), /returned a token with characters not allowed in an HTTP header/],
    [JSON.stringify({ token: { a: 1 } }), /returned a token that is not a string/],
    [JSON.stringify({ access_token: '' }), /returned no token/],
    ['null', /not a JSON object/],
    ['{"token": "abc', /not JSON/],
  ];
  for (const [body, want] of cases) {
    answer = body;
    await bounded(() => assert.rejects(pull(engine, `${s.host}/x:y`, { transport: fast }), clear(want)));
  }
});

test('endless bodies: 404 and 503 bodies are cut at 64 KiB and still give the status; manifests and tag lists are refused at their limit', async () => {
  const s = await hostile((req, res) => {
    if (req.url!.startsWith('/v2/nf/')) {
      res.writeHead(404, { 'content-type': 'application/json' });
      endless(res, JUNK, '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"');
    } else if (req.url!.startsWith('/v2/ise/')) {
      res.writeHead(503, { 'content-type': 'text/plain' });
      endless(res, JUNK);
    } else if (req.url!.startsWith('/v2/tags/')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      endless(res, JUNK, '{"tags":["');
    } else if (req.url!.startsWith('/v2/big/')) {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
      endless(res, JUNK, '{"schemaVersion":2,"x":"');
    } else if (req.url!.startsWith('/v2/drip/')) {
      res.writeHead(403, { 'content-type': 'application/json' });
      drip(res, '{"errors":[');
    } else {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end();
    }
  });
  await bounded(() => assert.rejects(pull(engine, `${s.host}/nf/x:y`, { transport: fast }), clear(new RegExp(`^manifest for ${s.host}/nf/x:y not found: manifest unknown$`))));
  await bounded(() => assert.rejects(pull(engine, `${s.host}/ise/x:y`, { transport: fast }), clear(new RegExp(`^pulling ${s.host}/ise/x:y: 503 Service Unavailable$`))));
  assert.equal(s.requests.filter((r) => r.url.startsWith('/v2/ise/')).length, 4, 'a 503 is tried 4 times, each body cut short');
  // an endless manifest (no Content-Length) is refused at 4 MiB while it streams
  await bounded(() => assert.rejects(pull(engine, `${s.host}/big/x:y`, { transport: fast }), (e) => isShaleError(e, 'InvalidArgument') && clear(/^manifest for .*big\/x:y is too large \(more than 4194304 bytes; the limit is 4194304 bytes\)$/)(e)));
  await bounded(() => assert.rejects(listTags(`${s.host}/tags/x`, { transport: fast }), clear(/listing tags of .*: the tag list is larger than 16 MiB/)));
  // an error body that drips for ever ends at the time bound with the status
  const m = await bounded(() => assert.rejects(pull(engine, `${s.host}/drip/x:y`, { transport: { ...fast, smallBodyTimeoutMs: 300 } }), clear(/pull access denied for .*drip\/x.*: 403 Forbidden$/)));
  assert.ok(m.ms < 3000, `the dripping error body took ${m.ms} ms`);
});

test('the token server answering 401 with an endless body is a clear error', async () => {
  const s = await hostile((req, res, host) => {
    if (challenge(req, res, host)) return;
    res.writeHead(401, { 'content-type': 'application/json' });
    endless(res, JUNK, '{"errors":[{"code":"UNAUTHORIZED","message":"');
  });
  await bounded(() => assert.rejects(pull(engine, `${s.host}/x:y`, { transport: fast }), clear(/^pull access denied for .*: getting a token from .*: unauthorized: authentication required$/)));
});

test('a registry error message with newlines, escapes and 60 KB of text is printed as one short line', async () => {
  const s = await hostile((_req, res) => {
    res.writeHead(403, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ errors: [{ code: 'DENIED', message: `first line\nsecond line\r\n\x1b[31mred\x1b[0m ${'z'.repeat(60_000)}` }] }));
  });
  await assert.rejects(pull(engine, `${s.host}/x:y`, { transport: fast }), clear(/: denied: first line second line \[31mred \[0m z+…$/));
});

test('bodies that drip for ever end with a clear error at the time bound', async () => {
  const s = await hostile((req, res, host) => {
    if (req.url!.startsWith('/v2/tok/') && challenge(req, res, host)) return;
    if (req.url!.startsWith('/token')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      drip(res, '{"token":"');
      return;
    }
    if (req.url!.startsWith('/v2/silent/')) {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
      res.flushHeaders(); // headers, then nothing at all
      return;
    }
    if (req.url!.startsWith('/v2/hang/')) return; // not even headers
    res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
    drip(res, '{"schemaVersion":2,');
  });
  const opts = { transport: { ...fast, smallBodyTimeoutMs: 400 } };
  let m = await bounded(() => assert.rejects(pull(engine, `${s.host}/man/x:y`, opts), clear(new RegExp(`^manifest for ${s.host}/man/x:y from ${s.host} did not arrive within 400 ms$`))));
  assert.ok(m.ms < 3000, `manifest drip took ${m.ms} ms`);
  m = await bounded(() => assert.rejects(pull(engine, `${s.host}/tok/x:y`, opts), clear(new RegExp(`^token response from ${s.host} did not arrive within 400 ms$`))));
  assert.ok(m.ms < 3000, `token drip took ${m.ms} ms`);
  // silence inside a body, and no headers at all: undici's timeouts, set by the transport
  const quick = { transport: { ...fast, retries: 0, idleTimeoutMs: 200, headersTimeoutMs: 200 } };
  m = await bounded(() => assert.rejects(pull(engine, `${s.host}/silent/x:y`, quick), clear(/^cannot reach registry .*: Body Timeout Error$/)));
  assert.ok(m.ms < 5000, `a silent body took ${m.ms} ms`);
  m = await bounded(() => assert.rejects(pull(engine, `${s.host}/hang/x:y`, quick), clear(/^cannot reach registry .*: Headers Timeout Error$/)));
  assert.ok(m.ms < 5000, `no headers took ${m.ms} ms`);
});

test('a huge ping body is not read whole; a failed ping with one is a clear error', async () => {
  const ok = await hostile((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    endless(res, JUNK, '{');
  });
  await bounded(() => new Transport(ok.host, { credentials: null }).ping());
  const refused = await hostile((_req, res) => {
    res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Basic realm="hostile"' });
    endless(res, JUNK, '{"errors":[{"code":"UNAUTHORIZED","message":"');
  });
  await bounded(() => assert.rejects(new Transport(refused.host, { credentials: { username: 'u', password: 'p' } }).ping(), clear(/^logging in to .*: unauthorized: incorrect username or password$/)));
  assert.equal(refused.requests.length, 2, 'asked once without and once with the credentials');
});

test('redirect loops stop after 10 hops; redirects to other schemes are refused', async () => {
  const s = await hostile((req, res) => {
    if (req.url!.startsWith('/v2/file/')) {
      res.writeHead(302, { location: 'file:///etc/passwd' });
      res.end();
      return;
    }
    const n = Number(/[?&]n=(\d+)/.exec(req.url!)?.[1] ?? 0);
    res.writeHead(307, { location: `/v2/loop/manifests/y?n=${n + 1}` });
    endless(res, JUNK); // and an endless body on every hop
  });
  await bounded(() => assert.rejects(pull(engine, `${s.host}/loop:y`, { transport: fast }), clear(/^registry 127\.0\.0\.1:\d+: too many redirects for \/v2\/loop\/manifests\/y \(more than 10\)$/)));
  assert.ok(s.requests.length <= 12, `${s.requests.length} requests`);
  await assert.rejects(pull(engine, `${s.host}/file:y`, { transport: fast }), clear(/redirected \/v2\/file\/manifests\/y to a file: URL/));
});

interface Child {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  /** the child's peak RSS (VmHWM) as last sampled, in bytes */
  peak: number;
}

/** The CLI pulling `ref`, its peak RSS sampled until it exits; kill() sends SIGTERM and returns when. */
function cliPull(ref: string): { exited: Promise<Child & { exitedAt: number }>; kill(): number } {
  const root = tempDir('shale-hostile-root-');
  const ch = spawn(process.execPath, [BIN, '--root', root, 'pull', ref], { env: { ...process.env, DOCKER_CONFIG: '/nonexistent/shale-test' }, stdio: ['ignore', 'pipe', 'pipe'] });
  cleanups.push(() => {
    if (ch.exitCode === null && ch.signalCode === null) ch.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  });
  let stderr = '';
  let peak = 0;
  ch.stderr.on('data', (d) => (stderr += d));
  ch.stdout.resume();
  const sample = () => {
    try {
      const kb = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${ch.pid}/status`, 'utf8'))?.[1] ?? 0);
      peak = Math.max(peak, kb * 1024);
    } catch { /* exited */ }
  };
  const iv = setInterval(sample, 10);
  const exited = new Promise<Child & { exitedAt: number }>((resolve) => ch.on('exit', (code, signal) => {
    const exitedAt = performance.now();
    clearInterval(iv);
    if (ch.stderr.readableEnded) resolve({ code, signal, stderr, peak, exitedAt });
    else ch.stderr.on('end', () => resolve({ code, signal, stderr, peak, exitedAt }));
  }));
  return {
    exited,
    kill() {
      sample();
      ch.kill('SIGTERM');
      return performance.now();
    },
  };
}

test('CLI: an endless token response ends the pull with one error line, in bounded memory', async (t) => {
  const s = await hostile((req, res, host) => {
    if (challenge(req, res, host)) return;
    res.writeHead(200, { 'content-type': 'application/json' });
    endless(res, JUNK, '{"token":"');
  });
  const r = await cliPull(`${s.host}/x:y`).exited;
  t.diagnostic(`CLI peak RSS ${(r.peak / MB).toFixed(1)} MB against an endless token body`);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^Error: token response from ${s.host} is larger than 1 MiB \\([^\\n]*\\)\\n$`));
  assert.ok(r.peak > 0 && r.peak < MEMORY_BOUND, `peak RSS ${r.peak}`);
});

test('CLI: SIGTERM during a token fetch that never ends stops the pull within a second', async (t) => {
  for (const mode of ['drip', 'hang'] as const) {
    const s = await hostile((req, res, host) => {
      if (challenge(req, res, host)) return;
      if (mode === 'hang') return; // the token server never answers
      res.writeHead(200, { 'content-type': 'application/json' });
      drip(res, '{"token":"', 20);
    });
    const c = cliPull(`${s.host}/x:y`);
    await s.seen('/token'); // the CLI is connected to the token server and waiting on it
    const killedAt = c.kill();
    const r = await c.exited;
    const ms = r.exitedAt - killedAt;
    t.diagnostic(`${mode}: SIGTERM to exit ${ms.toFixed(0)} ms; peak RSS ${(r.peak / MB).toFixed(1)} MB`);
    assert.ok(ms < 1000, `${mode}: exited ${ms.toFixed(0)} ms after SIGTERM`);
    assert.equal(r.code, 130, `${mode}: ${r.stderr}`);
    assert.match(r.stderr, /^Error: interrupted \(nothing partial was kept\)\n$/);
    assert.ok(r.peak > 0 && r.peak < MEMORY_BOUND, `peak RSS ${r.peak}`);
  }
});
