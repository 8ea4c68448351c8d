// Test fixtures for the registry client (not a test file itself): a docker-registry on a free
// loopback port with its own storage, a loopback HTTP proxy that counts requests and can cut
// connections, a scriptable fake registry, generated multi-layer images, and the CLI.
// Nothing here listens on or connects to anything but 127.0.0.1.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { Engine } from '../engine/index.js';
import { writeTar, type TarSourceEntry } from '../archive/index.js';
import { ingestTar, type LayerRecord } from '../images/layers.js';
import type { ImageRecord } from '../images/store.js';
import { hostArch, type ImageConfig } from '../oci/index.js';

export const BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../bin/shale.js');

export function tempDir(prefix = 'shale-reg-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((res) => s.listen(0, '127.0.0.1', res));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((res) => s.close(() => res()));
  return port;
}

export interface RunningRegistry {
  port: number;
  host: string; // 127.0.0.1:PORT
  dir: string;
  stop(): Promise<void>;
}

/** docker-registry (distribution 2.8) on 127.0.0.1:<free port>, storage in a temp dir. */
export async function startRegistry(): Promise<RunningRegistry> {
  const dir = tempDir('shale-regtest-registry-');
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const cfg = join(dir, 'config.yml');
    writeFileSync(cfg, `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n`);
    const child: ChildProcess = spawn('docker-registry', ['serve', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    let up = false;
    for (let i = 0; i < 80 && child.exitCode === null; i++) {
      try {
        const r = await fetch(`http://127.0.0.1:${port}/v2/`);
        if (r.status === 200) { up = true; break; }
      } catch { /* not yet */ }
      await new Promise((r) => setTimeout(r, 100));
    }
    if (up) {
      return {
        port, host: `127.0.0.1:${port}`, dir,
        async stop() {
          if (child.exitCode === null) {
            child.kill('SIGTERM');
            await new Promise((r) => child.once('exit', r));
          }
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    child.kill('SIGKILL');
    if (attempt >= 2) throw new Error(`docker-registry did not start: ${stderr}`);
  }
}

export interface Seen {
  method: string;
  url: string;
  range?: string;
}

export interface Proxy {
  port: number;
  host: string;
  requests: Seen[];
  /** return a byte count to cut the response body after it, 'reset' to drop at once, undefined to pass */
  cut?: (req: Seen) => number | 'reset' | undefined;
  /** answer a request yourself (auth tests); return true when handled */
  intercept?: (req: IncomingMessage, res: ServerResponse) => boolean;
  reset(): void;
  stop(): Promise<void>;
}

/** A loopback HTTP proxy in front of `targetPort` that records requests and can cut them. */
export async function startProxy(targetPort: number): Promise<Proxy> {
  const sockets = new Set<Socket>();
  const p: Proxy = {
    port: 0, host: '', requests: [],
    reset() { this.requests.length = 0; this.cut = undefined; this.intercept = undefined; },
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server: Server = createServer((req, res) => {
    const seen: Seen = { method: req.method!, url: req.url!, range: req.headers.range };
    p.requests.push(seen);
    if (p.intercept?.(req, res)) return;
    const cut = p.cut?.(seen);
    if (cut === 'reset') {
      req.socket.destroy();
      return;
    }
    const up = httpRequest({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode!, ur.statusMessage, ur.headers);
      if (cut === undefined) {
        ur.pipe(res);
        return;
      }
      let sent = 0;
      const socket = req.socket;
      ur.on('data', (c: Buffer) => {
        if (sent >= cut) return;
        const take = c.subarray(0, cut - sent);
        sent += take.length;
        // once `cut` bytes are flushed, drop the connection mid-body
        if (sent >= cut) res.write(take, () => { socket.destroy(); ur.destroy(); });
        else res.write(take);
      });
      ur.on('end', () => { if (sent < cut) res.end(); });
    });
    up.on('error', () => res.socket?.destroy());
    req.pipe(up);
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  p.port = (server.address() as AddressInfo).port;
  p.host = `127.0.0.1:${p.port}`;
  return p;
}

/** Blob requests (GET of /v2/.../blobs/<digest>) seen by a proxy, by digest. */
export function blobGets(p: Proxy): string[] {
  return p.requests.filter((r) => r.method === 'GET' && /\/blobs\/sha256:/.test(r.url)).map((r) => /\/blobs\/(sha256:[a-f0-9]{64})/.exec(r.url)![1]);
}

/** Requests that carry blob bytes to the registry (upload PATCH/PUT, POST of a monolithic upload). */
export function blobUploads(p: Proxy): Seen[] {
  return p.requests.filter((r) => (r.method === 'PUT' || r.method === 'PATCH') && /\/blobs\/uploads\//.test(r.url));
}

/** A layer tar of `files` random files of `size` bytes each (distinct content per call). */
export function layerTar(name: string, files = 2, size = 4096, seed?: Buffer): ReturnType<typeof writeTar> {
  const entries: TarSourceEntry[] = [{ header: { name: `${name}`, type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 1700000000 } }];
  for (let i = 0; i < files; i++) {
    const data = seed ? Buffer.concat([seed, Buffer.from(String(i))]).subarray(0, size) : randomBytes(size);
    entries.push({ header: { name: `${name}/f${i}`, type: 'file', mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: 1700000000 }, data });
  }
  return writeTar(entries);
}

export async function makeLayer(engine: Engine, name: string, files = 2, size = 4096, compression: 'gzip' | 'none' = 'gzip'): Promise<LayerRecord> {
  return ingestTar(engine.content, layerTar(name, files, size), compression);
}

/** An image of these layers, tagged `tag`. */
export function makeImage(engine: Engine, tag: string, layers: LayerRecord[], extra: Partial<ImageConfig> = {}): ImageRecord {
  const created = '2024-01-01T00:00:00Z';
  const config: ImageConfig = {
    architecture: hostArch(), os: 'linux', created, config: { Cmd: ['sh'] },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map((_, i) => ({ created, created_by: `layer ${i}` })),
    ...extra,
  };
  return engine.images.createImage(config, layers, [tag]);
}

export function openEngine(): { engine: Engine; root: string; close(): void } {
  const root = tempDir('shale-regtest-root-');
  const engine = Engine.open({ root });
  return { engine, root, close() { engine.close(); rmSync(root, { recursive: true, force: true }); } };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The CLI (bin/shale.js) with a data root; `input` is written to its stdin. */
export function cli(root: string, args: string[], env: Record<string, string> = {}, input?: string): Promise<CliResult> {
  return new Promise((res) => {
    const ch = spawn(process.execPath, [BIN, '--root', root, ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    ch.stdout.on('data', (d) => (stdout += d));
    ch.stderr.on('data', (d) => (stderr += d));
    ch.stdin.end(input ?? '');
    ch.on('close', (code) => res({ code: code ?? 1, stdout, stderr }));
  });
}

/** A scriptable registry: answers GET/HEAD of /v2/<repo>/manifests|blobs/<ref> from a map. */
export interface FakeRegistry {
  port: number;
  host: string;
  routes: Map<string, { body: Buffer; type?: string; headers?: Record<string, string> }>;
  requests: Seen[];
  stop(): Promise<void>;
}

export async function startFakeRegistry(): Promise<FakeRegistry> {
  const f: FakeRegistry = { port: 0, host: '', routes: new Map(), requests: [], stop: async () => {} };
  const server = createServer((req, res) => {
    f.requests.push({ method: req.method!, url: req.url! });
    if (req.url === '/v2/') { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{}'); return; }
    const r = f.routes.get(req.url!.split('?')[0]);
    if (!r) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: req.url!.includes('/manifests/') ? 'MANIFEST_UNKNOWN' : 'BLOB_UNKNOWN', message: 'unknown' }] }));
      return;
    }
    res.writeHead(200, { 'content-type': r.type ?? 'application/octet-stream', 'content-length': String(r.body.length), ...(r.headers ?? {}) });
    res.end(req.method === 'HEAD' ? undefined : r.body);
  });
  const sockets = new Set<Socket>();
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  f.port = (server.address() as AddressInfo).port;
  f.host = `127.0.0.1:${f.port}`;
  f.stop = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return f;
}
