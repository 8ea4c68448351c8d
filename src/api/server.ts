// The Engine API server (`shale system service`): docker's HTTP API over a unix socket (mode
// 0660, never world-writable) or a loopback TCP port, on one Engine. Requests are bounded (64 KiB
// of headers, 4 MiB JSON bodies, build contexts by SHALE_MAX_CONTEXT); unknown docker routes
// answer 501 naming the endpoint, anything else 404; a handler's error becomes docker's status
// and {"message"} body, never a stack. With --time N it exits after N idle seconds (podman's rule).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import type { Engine } from '../engine/index.js';
import { API_VERSION, MIN_API_VERSION, VERSION } from '../engine/system.js';
import { invalidArgument } from '../errors.js';
import { errorResponse, sendError, sendJSON } from './http.js';
import { Router, type Ctx } from './router.js';
import { register as systemRoutes } from './routes/system.js';
import { register as imageRoutes } from './routes/images.js';
import { register as containerRoutes, stopSupervised } from './routes/containers.js';
import { register as execRoutes } from './routes/exec.js';
import { register as volumeRoutes } from './routes/volumes.js';
import { register as buildRoutes } from './routes/build.js';

export const MAX_HEADER_SIZE = 64 * 1024;

/** Docker routes shale does not serve (yet): 501 with the endpoint named, not a 404 that looks like a typo. */
const UNIMPLEMENTED = /^\/(networks|swarm|services|nodes|tasks|secrets|configs|plugins|distribution|grpc|auth)(\/|$)|^\/containers\/[^/]+\/(update|attach\/ws)$/;

export interface ServeOptions {
  /** exit when no request has been active for this many seconds; 0 = never */
  idleSeconds?: number;
  log?: (line: string) => void;
}

export interface Listening {
  server: Server;
  address: string;
  close(): Promise<void>;
  /** resolves when the server stops (closed, or idle past --time) */
  closed: Promise<void>;
}

export function parseURI(uri: string): { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number } {
  if (uri.startsWith('unix://')) return { kind: 'unix', path: uri.slice(7) };
  if (uri.startsWith('tcp://')) {
    const u = new URL(uri.replace(/^tcp:/, 'http:'));
    const host = u.hostname.replace(/^\[|\]$/g, '');
    if (!['127.0.0.1', 'localhost', '::1'].includes(host)) throw invalidArgument(`refusing to serve the API on ${host}: anyone who reaches it owns the host`, 'use unix://PATH, or tcp://127.0.0.1:PORT');
    return { kind: 'tcp', host, port: Number(u.port || 2375) };
  }
  throw invalidArgument(`unsupported API address ${uri}`, 'use unix:///path/to/shale.sock or tcp://127.0.0.1:PORT');
}

function buildRouter(): Router {
  const r = new Router();
  systemRoutes(r);
  imageRoutes(r);
  containerRoutes(r);
  execRoutes(r);
  volumeRoutes(r);
  buildRoutes(r);
  return r;
}

function versionOf(path: string): { version: string; path: string } {
  const m = /^\/v(\d+\.\d+)(\/.*)$/.exec(path);
  return m ? { version: m[1], path: m[2] } : { version: API_VERSION, path };
}

const cmpVersion = (a: string, b: string) => {
  const [a1, a2] = a.split('.').map(Number);
  const [b1, b2] = b.split('.').map(Number);
  return a1 - b1 || a2 - b2;
};

/** A stale socket file (nobody answers on it) is replaced; a live one means another server runs. */
async function clearStaleSocket(path: string): Promise<void> {
  let st;
  try { st = lstatSync(path); } catch { return; }
  if (!st.isSocket()) throw invalidArgument(`${path} exists and is not a socket`, 'pick another path');
  const live = await new Promise<boolean>((res) => {
    const s = connect(path);
    s.once('connect', () => { s.destroy(); res(true); });
    s.once('error', () => res(false));
  });
  if (live) throw invalidArgument(`another server is listening on ${path}`, 'stop it, or pick another path');
  unlinkSync(path);
}

export async function serve(engine: Engine, uri: string, o: ServeOptions = {}): Promise<Listening> {
  const where = parseURI(uri);
  const router = buildRouter();
  const log = o.log ?? (() => undefined);
  let active = 0;
  let idleTimer: NodeJS.Timeout | undefined;
  let closedResolve!: () => void;
  const closed = new Promise<void>((res) => (closedResolve = res));
  const server = createServer({ maxHeaderSize: MAX_HEADER_SIZE, requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 5_000 });
  const idle = () => {
    if (!o.idleSeconds || active > 0) return;
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => { log(`idle for ${o.idleSeconds} s: stopping`); void close(); }, o.idleSeconds * 1000);
  };
  const busy = () => { active++; clearTimeout(idleTimer); };
  const done = () => { active--; idle(); };

  async function dispatch(req: IncomingMessage, res: ServerResponse | undefined, socket: Duplex, head: Buffer, upgraded: boolean): Promise<void> {
    busy();
    const ac = new AbortController();
    const onGone = () => ac.abort();
    socket.once('close', onGone);
    res?.once('close', onGone);
    const common = { 'Api-Version': API_VERSION, 'Docker-Experimental': 'false', Ostype: 'linux', Server: `shale/${VERSION}` };
    if (res) for (const [k, v] of Object.entries(common)) res.setHeader(k, v);
    try {
      const url = new URL(req.url ?? '/', 'http://shale');
      const { version, path } = versionOf(url.pathname);
      if (cmpVersion(version, API_VERSION) > 0) throw invalidArgument(`client version ${version} is too new. Maximum supported API version is ${API_VERSION}`);
      if (cmpVersion(version, MIN_API_VERSION) < 0) throw invalidArgument(`client version ${version} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`);
      const m = router.match(req.method ?? 'GET', path);
      if (!m || 'allowed' in m) {
        if (!res) { socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n'); return; }
        // an object of a kind shale has none of (`docker inspect NAME` asks every kind): not found
        const obj = /^\/(plugins|nodes|services|tasks|secrets|configs)\/([^/]+)(\/json)?$/.exec(path);
        if (obj && req.method === 'GET') return sendJSON(res, 404, { message: `No such ${obj[1].replace(/s$/, '')}: ${decodeURIComponent(obj[2])}` });
        if (UNIMPLEMENTED.test(path)) return sendJSON(res, 501, { message: `shale does not implement ${req.method} ${path}` });
        return sendJSON(res, m ? 405 : 404, { message: m ? `${req.method} is not allowed on ${path}` : 'page not found' });
      }
      const ctx: Ctx = { engine, req, res, socket, head, upgraded, params: m.params, query: url.searchParams, version, signal: ac.signal };
      await m.handler(ctx);
    } catch (e) {
      if (res) sendError(res, e);
      else if (!socket.destroyed) {
        const { status, message } = errorResponse(e);
        const body = JSON.stringify({ message });
        socket.end(`HTTP/1.1 ${status} Error\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      }
      if (errorResponse(e).status >= 500) log(`${req.method} ${req.url}: ${(e as Error).message}`);
    } finally {
      socket.off('close', onGone);
      done();
    }
  }

  server.on('request', (req, res) => void dispatch(req, res, req.socket, Buffer.alloc(0), false));
  const hijacked = new Set<Duplex>(); // node:http stops tracking a connection once it is upgraded
  server.on('upgrade', (req, socket: Duplex, head: Buffer) => {
    socket.on('error', () => undefined);
    hijacked.add(socket);
    socket.once('close', () => hijacked.delete(socket));
    void dispatch(req, undefined, socket, head, true);
  });
  server.on('clientError', (err, socket) => {
    if (!socket.writable) return socket.destroy();
    const code = (err as { code?: string }).code;
    const status = code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
    const body = JSON.stringify({ message: status === 431 ? `request headers are over the limit of ${MAX_HEADER_SIZE} bytes` : 'bad request' });
    socket.end(`HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
  });

  let address: string;
  if (where.kind === 'unix') {
    await clearStaleSocket(where.path);
    // made 0660 from the start (no window where it is wider), then chmod to be sure
    const old = process.umask(0o117);
    try {
      await new Promise<void>((res, rej) => { server.once('error', rej); server.listen(where.path, () => { server.off('error', rej); res(); }); });
    } finally {
      process.umask(old);
    }
    chmodSync(where.path, 0o660);
    address = `unix://${where.path}`;
  } else {
    await new Promise<void>((res, rej) => { server.once('error', rej); server.listen(where.port, where.host, () => { server.off('error', rej); res(); }); });
    const a = server.address();
    address = `tcp://${where.host}:${typeof a === 'object' && a ? a.port : where.port}`;
  }
  let closing: Promise<void> | undefined;
  const close = () => (closing ??= new Promise<void>((res) => {
    clearTimeout(idleTimer);
    const stopped = stopSupervised(engine);
    server.close(() => void stopped.then(() => res()));
    server.closeIdleConnections();
    void stopped.then(() => { for (const h of hijacked) h.destroy(); });
    setTimeout(() => { server.closeAllConnections(); for (const h of hijacked) h.destroy(); }, 2000).unref();
    if (where.kind === 'unix') { try { unlinkSync(where.path); } catch { /* gone */ } }
  }).then(closedResolve));
  idle();
  return { server, address, close, closed };
}
