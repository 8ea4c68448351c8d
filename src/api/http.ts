// HTTP plumbing for the Engine API: bounded JSON bodies, docker's error bodies and statuses,
// docker's multiplexed stream frames, and hijacking a connection (Upgrade: tcp) for attach/exec.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex, Writable } from 'node:stream';
import { Writable as WritableStream } from 'node:stream';
import { invalidArgument, isShaleError, ShaleError, type ErrorCode } from '../errors.js';

/** JSON bodies (create, exec, commit configs) are small; anything larger is refused. */
export const MAX_JSON_BODY = 4 * 1024 * 1024;

export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const STATUS: Record<ErrorCode, number> = {
  NotFound: 404, AlreadyExists: 409, InvalidArgument: 400, FailedPrecondition: 409, Conflict: 409, Unavailable: 503,
  PermissionDenied: 403, NotImplemented: 501, DataLoss: 500, Internal: 500,
};

/** The status and the one-line message docker's clients print ("Error response from daemon: …"). */
export function errorResponse(e: unknown): { status: number; message: string } {
  if (e instanceof HttpError) return { status: e.status, message: e.message };
  if (isShaleError(e)) {
    const se = e as ShaleError;
    let status = STATUS[se.code] ?? 500;
    // docker answers 404 for a missing image on create, 409 for conflicts; a full disk is a 500
    if (/ENOSPC|no space left|SQLITE_FULL/i.test(se.message)) status = 500;
    return { status, message: se.message };
  }
  const msg = (e as Error)?.message ?? String(e);
  if (/ENOSPC|SQLITE_FULL/.test(msg)) return { status: 500, message: `no space left on device: ${msg}` };
  return { status: 500, message: msg.split('\n')[0] };
}

export function sendJSON(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

export function sendError(res: ServerResponse, e: unknown): void {
  const { status, message } = errorResponse(e);
  if (res.headersSent) {
    // a stream already under way: docker sends the error as a JSON message in the stream
    if (!res.writableEnded) res.end(JSON.stringify({ errorDetail: { message }, error: message }) + '\n');
    return;
  }
  sendJSON(res, status, { message });
}

export function noContent(res: ServerResponse, status = 204): void {
  res.writeHead(status);
  res.end();
}

/** The request body, bounded. */
export async function readBody(req: IncomingMessage, limit = MAX_JSON_BODY): Promise<Buffer> {
  const len = Number(req.headers['content-length'] ?? NaN);
  if (len > limit) throw new HttpError(413, `request body of ${len} bytes is over the limit of ${limit}`);
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > limit) {
      req.destroy();
      throw new HttpError(413, `request body is over the limit of ${limit} bytes`);
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

/** A JSON object body (an empty body is {}). */
export async function readJSON<T = Record<string, unknown>>(req: IncomingMessage): Promise<T> {
  const body = await readBody(req);
  if (body.length === 0) return {} as T;
  try {
    const v = JSON.parse(body.toString('utf8')) as unknown;
    if (v === null) return {} as T; // the docker CLI sends `null` for an absent config (commit)
    if (typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    return v as T;
  } catch (e) {
    throw invalidArgument(`invalid JSON body: ${(e as Error).message}`);
  }
}

/** docker's query booleans: 1/true/True are true; absent, 0, false are false. */
export function qbool(q: URLSearchParams, name: string, def = false): boolean {
  const v = q.get(name);
  if (v === null || v === '') return def;
  return !['0', 'false', 'False', 'FALSE', 'no'].includes(v);
}

export function qint(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw invalidArgument(`invalid value for ${name}: ${v}`);
  return n;
}

/** One frame of docker's multiplexed stream: [stream, 0, 0, 0, size BE32] + payload. */
export function frame(stream: 0 | 1 | 2, payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h[0] = stream;
  h.writeUInt32BE(payload.length, 4);
  return Buffer.concat([h, payload]);
}

/** A Writable that frames what is written to it as one stream of the multiplexed output. */
export function framer(out: Writable | Duplex, stream: 1 | 2, raw = false): Writable {
  return new WritableStream({
    write(chunk: Buffer, _enc, cb) {
      if (out.destroyed || (out as Writable).writableEnded) return cb();
      out.write(raw ? chunk : frame(stream, Buffer.from(chunk)), () => cb());
    },
  });
}

/** Take over the connection for a raw stream (attach, exec start): docker's 101 UPGRADED, or a 200 without Upgrade. */
export function hijack(req: IncomingMessage, res: ServerResponse | undefined, socket: Duplex, upgraded: boolean, tty = false): Duplex {
  const type = tty ? 'application/vnd.docker.raw-stream' : 'application/vnd.docker.multiplexed-stream';
  if (upgraded) {
    socket.write(`HTTP/1.1 101 UPGRADED\r\nContent-Type: ${type}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n`);
    return socket;
  }
  // a plain POST (dockerode without hijack): the stream is the response body, nothing comes in
  res!.writeHead(200, { 'Content-Type': type });
  res!.flushHeaders();
  const conn = req.socket;
  conn.setTimeout(0);
  return res as unknown as Duplex;
}
