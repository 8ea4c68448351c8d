// Small helpers shared by pull and push.
import { invalidArgument } from '../errors.js';
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

/** Read a response body of at most `limit` bytes; refuses larger ones without reading them whole. */
export async function readLimited(res: RegistryResponse, limit: number, what: string): Promise<Buffer> {
  const tooBig = (n: number | string) => invalidArgument(`${what} is too large (${n} bytes; the limit is ${limit} bytes)`, 'the registry sent something that is not a usable image manifest or config');
  const len = Number(res.header('content-length'));
  if (Number.isFinite(len) && len > limit) {
    res.body.destroy();
    throw tooBig(len);
  }
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res.body) {
    n += (c as Buffer).length;
    if (n > limit) {
      res.body.destroy();
      throw tooBig(`more than ${limit}`);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
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
