// Small helpers shared by pull and push.
import { invalidArgument, unavailable } from '../errors.js';
import type { RegistryResponse } from './transport.js';

/**
 * Run tasks with at most `n` at once; resolves with their results in order. When tasks fail,
 * `abort` (if given) is aborted at the first failure so the others stop, and the promise rejects
 * with the failure that caused the rest (not one of the AbortErrors that followed).
 * `onQueued(i)` is called for tasks that have to wait.
 */
export async function runLimited<T>(n: number, tasks: (() => Promise<T>)[], opts: { onQueued?: (i: number) => void; abort?: AbortController } = {}): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  const failures: unknown[] = [];
  let next = 0;
  const limit = Math.max(1, Math.floor(n));
  for (let i = limit; i < tasks.length; i++) opts.onQueued?.(i);
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      try {
        results[i] = await tasks[i]();
      } catch (e) {
        opts.abort?.abort(e);
        failures.push(e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  if (failures.length) throw failures.find((e) => !(e instanceof Error && e.name === 'AbortError')) ?? failures[0];
  return results;
}

/** "1 MiB", "64 KiB", "512 bytes": a byte limit as messages name it. */
export function formatLimit(n: number): string {
  if (n >= 1 << 20 && n % (1 << 20) === 0) return `${n / (1 << 20)} MiB`;
  if (n >= 1 << 10 && n % (1 << 10) === 0) return `${n / (1 << 10)} KiB`;
  return `${n} bytes`;
}

export interface ReadBodyOptions {
  /** most bytes kept */
  limit: number;
  /** what the body is, for messages: "token response from auth.example.com" */
  what: string;
  /**
   * The error for a body larger than `limit` (given the size, or "more than LIMIT" when it has no
   * Content-Length); without it a larger body is cut at `limit` and the rest is not read.
   */
  tooLarge?: (size: number | string) => Error;
  /**
   * Time allowed for the whole body (default: the transport's smallBodyTimeoutMs). A body that
   * is not complete by then fails with a clear error, or with no tooLarge, ends where it got to.
   */
  timeoutMs?: number;
}

/**
 * Read a (non-blob) response body of at most `limit` bytes within a time bound. Stops at the limit
 * without reading the rest (the body is destroyed, which drops the connection), so a registry that
 * sends an endless or slowly dripping body costs at most `limit` bytes of memory and `timeoutMs`.
 * An abort of the request's signal ends it too (undici destroys the body).
 */
export async function readBody(res: RegistryResponse, opts: ReadBodyOptions): Promise<Buffer> {
  const { limit, tooLarge } = opts;
  const body = res.body;
  const len = Number(res.header('content-length'));
  if (tooLarge && Number.isFinite(len) && len > limit) {
    dropBody(res);
    throw tooLarge(len);
  }
  const ms = opts.timeoutMs ?? res.smallBodyTimeoutMs;
  const slow = unavailable(`${opts.what} did not arrive within ${formatSeconds(ms)}`, 'the registry is too slow or misbehaving; try again later');
  const timer = setTimeout(() => body.destroy(slow), ms);
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const chunk of body) {
      const c = chunk as Buffer;
      if (c.length > limit - n) {
        if (tooLarge) throw tooLarge(`more than ${limit}`);
        chunks.push(c.subarray(0, limit - n));
        n = limit;
        break; // leaving the loop destroys the body: the rest is never read
      }
      chunks.push(c);
      n += c.length;
    }
  } catch (e) {
    if (e === slow && !tooLarge) return Buffer.concat(chunks);
    throw e;
  } finally {
    clearTimeout(timer);
    dropBody(res);
  }
  return Buffer.concat(chunks);
}

function formatSeconds(ms: number): string {
  return ms >= 1000 && ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

/** Error bodies are kept up to this size: plenty for the spec's error JSON. */
export const ERROR_BODY_LIMIT = 64 << 10;

/** Time given to a body read only for its message (or not at all), at most. */
const ERROR_BODY_TIMEOUT_MS = 10_000;

/**
 * The text of an error response, for registryError: its first 64 KiB, whatever arrived within
 * 10 s (or the transport's smallBodyTimeoutMs when shorter), '' when the connection broke. Never
 * throws, except when the request was aborted.
 */
export async function errorText(res: RegistryResponse): Promise<string> {
  try {
    const timeoutMs = Math.min(res.smallBodyTimeoutMs, ERROR_BODY_TIMEOUT_MS);
    return (await readBody(res, { limit: ERROR_BODY_LIMIT, what: `error response from ${res.host}`, timeoutMs })).toString('utf8');
  } catch (e) {
    if (res.signal?.aborted || (e instanceof Error && e.name === 'AbortError')) throw e;
    return '';
  }
}

/**
 * Drop a body without reading (the rest of) it. Destroying an unread undici body makes it emit
 * an abort 'error', which is expected here and must not become an uncaught exception.
 */
export function dropBody(res: RegistryResponse): void {
  if (res.body.destroyed) return;
  res.body.on('error', () => {});
  res.body.destroy();
}

/**
 * Throw away a body that is not needed (a redirect's, a 401's, a success without content): read
 * to its end when it is small and quick (so the connection can be used again), else drop it.
 */
export async function discard(res: RegistryResponse): Promise<void> {
  const len = Number(res.header('content-length'));
  if (res.body.destroyed || (Number.isFinite(len) && len > ERROR_BODY_LIMIT)) {
    dropBody(res);
    return;
  }
  await errorText(res).catch(() => {});
}

/** A manifest or config of at most `limit` bytes; refuses larger ones without reading them whole. */
export async function readLimited(res: RegistryResponse, limit: number, what: string): Promise<Buffer> {
  const tooBig = (n: number | string) => invalidArgument(`${what} is too large (${n} bytes; the limit is ${limit} bytes)`, 'the registry sent something that is not a usable image manifest or config');
  return readBody(res, { limit, what: `${what} from ${res.host}`, tooLarge: tooBig });
}

/** Parse "os/arch[/variant]" (docker's --platform). */
export function parsePlatform(s: string): { os: string; architecture: string; variant?: string } {
  const parts = s.trim().toLowerCase().split('/');
  if (parts.length < 1 || parts.length > 3 || parts.some((p) => !/^[a-z0-9._-]+$/.test(p))) {
    throw invalidArgument(`invalid platform "${s}"`, 'use os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8');
  }
  if (parts.length === 1) return { os: 'linux', architecture: normalizeArch(parts[0]) };
  return { os: parts[0], architecture: normalizeArch(parts[1]), variant: parts[2] };
}

function normalizeArch(a: string): string {
  return ({ x86_64: 'amd64', 'x86-64': 'amd64', aarch64: 'arm64', armhf: 'arm', armel: 'arm', i386: '386' } as Record<string, string>)[a] ?? a;
}

/** The variant a platform means when it names none (containerd's Normalize). */
export function variantOf(arch: string, v?: string): string {
  if (v) return v;
  return ({ arm64: 'v8', arm: 'v7', amd64: 'v1' } as Record<string, string>)[arch] ?? '';
}
