// Layer compression: gzip (zlib) and zstd (the zstd tool; Node 20's zlib has no zstd).
// Detects the format from magic bytes so any layer blob can be opened the same way.
import { humanBytes } from '../units/index.js';
import { createGzip, createGunzip, constants } from 'node:zlib';
import { spawn } from 'node:child_process';
import { statfs } from 'node:fs/promises';
import { Duplex, PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import { failedPrecondition, invalidArgument } from '../errors.js';

export type Compression = 'gzip' | 'zstd' | 'none';

export const MEDIA_TYPES = {
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerForeignGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const;

export function compressionOfMediaType(mt: string): Compression {
  if (mt.endsWith('+zstd') || mt.endsWith('.zstd')) return 'zstd';
  if (mt.endsWith('gzip')) return 'gzip';
  return 'none';
}

export function ociLayerMediaType(c: Compression): string {
  return c === 'gzip' ? MEDIA_TYPES.ociLayerGzip : c === 'zstd' ? MEDIA_TYPES.ociLayerZstd : MEDIA_TYPES.ociLayer;
}

export function detect(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

function zstdProcess(args: string[]): Duplex {
  const child = spawn('zstd', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const duplex = Duplex.from({ writable: child.stdin, readable: child.stdout });
  child.on('error', (e: NodeJS.ErrnoException) => duplex.destroy(e.code === 'ENOENT' ? failedPrecondition('zstd is not installed', 'install the Debian package zstd') : e));
  // a consumer that stops early (a refused layer) must not leave zstd running, or it keeps the process alive
  duplex.on('close', () => {
    if (!duplex.readableEnded && child.exitCode === null && child.signalCode === null) child.kill();
  });
  child.on('close', (code) => {
    if (code !== 0 && code !== null) duplex.destroy(invalidArgument(`zstd failed: ${stderr.trim() || 'exit ' + code}`, 'the layer is not valid zstd data'));
  });
  return duplex;
}

export function compressor(c: Compression, level?: number): Duplex {
  if (c === 'gzip') return createGzip({ level: level ?? constants.Z_DEFAULT_COMPRESSION, memLevel: 9 });
  if (c === 'zstd') return zstdProcess(['-q', '-c', `-${level ?? 3}`, '-T0']);
  return new PassThrough();
}

export function decompressor(c: Compression): Duplex {
  if (c === 'gzip') return createGunzip();
  if (c === 'zstd') return zstdProcess(['-q', '-d', '-c']);
  return new PassThrough();
}

const UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };

/** A byte count as written in an environment variable: 1234, 512M, 64G, 1.5TiB (binary units). */
export function parseByteSize(value: string, name: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:([kmgtp])(?:i?b)?|b)?\s*$/i.exec(value);
  const n = m ? Math.floor(Number(m[1]) * UNITS[(m[2] ?? '').toLowerCase()]) : NaN;
  if (!Number.isSafeInteger(n)) throw invalidArgument(`${name}=${value} is not a size in bytes`, 'use a number of bytes, optionally with K, M, G or T (e.g. 64G)');
  return n;
}

function sizeFromEnv(name: string, fallback: number): number {
  const v = process.env[name];
  return v === undefined || v.trim() === '' ? fallback : parseByteSize(v, name);
}

/** Largest uncompressed layer accepted: SHALE_MAX_LAYER_SIZE, 64 GiB unless set. */
export const maxLayerSize = (): number => sizeFromEnv('SHALE_MAX_LAYER_SIZE', 64 * 2 ** 30);
/** Free space a layer being written must leave on its filesystem: SHALE_MIN_FREE_SPACE, 256 MiB unless set. */
export const minFreeSpace = (): number => sizeFromEnv('SHALE_MIN_FREE_SPACE', 256 * 2 ** 20);

/** How often (in uncompressed bytes) the free space is looked at while a layer streams. */
const SPACE_CHECK_EVERY = 16 << 20;

export interface LayerLimits {
  /** refuse a layer whose uncompressed tar is larger (default: maxLayerSize()) */
  maxSize?: number;
  /** a path on the filesystem the layer is written to: refuse before it has less than minFree left */
  freeSpaceAt?: string;
  /** default: minFreeSpace() */
  minFree?: number;
}

/**
 * Limits on an uncompressed layer stream. An absolute cap on its size (a decompression bomb
 * expands without end; a genuine layer of zeros compresses 1000:1 and is still a layer, so the
 * ratio is no test), and, when told where the layer lands, a look at that filesystem's free
 * space every 16 MiB, so a layer that would not fit is refused before the disk is full.
 */
export class LayerGuard extends Transform {
  out = 0;
  private readonly maxSize: number;
  private readonly minFree: number;
  private nextCheck = SPACE_CHECK_EVERY;
  constructor(private readonly limits: LayerLimits = {}) {
    super();
    this.maxSize = limits.maxSize ?? maxLayerSize();
    this.minFree = limits.freeSpaceAt ? limits.minFree ?? minFreeSpace() : 0;
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.out += chunk.length;
    if (this.out > this.maxSize) {
      cb(invalidArgument(`layer is larger than the limit of ${humanBytes(this.maxSize)} uncompressed (SHALE_MAX_LAYER_SIZE)`, 'a decompression bomb looks like this; if the layer is genuine, raise SHALE_MAX_LAYER_SIZE'));
      return;
    }
    const at = this.limits.freeSpaceAt;
    if (!at || this.out < this.nextCheck) {
      cb(null, chunk);
      return;
    }
    this.nextCheck = this.out + SPACE_CHECK_EVERY;
    statfs(at).then(
      (s) => {
        const free = s.bavail * s.bsize;
        if (free < this.minFree) cb(failedPrecondition(`not enough disk space for the layer: ${humanBytes(free)} free on ${at} after ${humanBytes(this.out)} of it, and ${humanBytes(this.minFree)} must stay free (SHALE_MIN_FREE_SPACE)`, 'free some space (e.g. `shale image prune`) and try again'));
        else cb(null, chunk);
      },
      (e: Error) => cb(e),
    );
  }
}

/** Peek at the first bytes of a stream, returning them and a stream that still yields everything. */
export async function peek(source: Readable, n = 8): Promise<{ head: Buffer; stream: Readable }> {
  const chunks: Buffer[] = [];
  let len = 0;
  const it = source[Symbol.asyncIterator]();
  while (len < n) {
    const r = await it.next();
    if (r.done) break;
    chunks.push(r.value as Buffer);
    len += (r.value as Buffer).length;
  }
  const head = Buffer.concat(chunks);
  async function* rest(): AsyncGenerator<Buffer> {
    try {
      if (head.length) yield head;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield r.value as Buffer;
      }
    } finally {
      await it.return?.(); // destroyed early: release the source too
    }
  }
  return { head: head.subarray(0, n), stream: Readable.from(rest(), { objectMode: false }) };
}

/**
 * Open a (maybe compressed) layer stream as its uncompressed tar, within `limits` (LayerGuard).
 * Every error of the chain reaches the returned stream, and destroying that stream (a reader
 * that gives up) releases the whole chain.
 */
export async function openUncompressed(source: Readable, limits: LayerLimits = {}): Promise<{ compression: Compression; tar: Readable }> {
  const guard = new LayerGuard(limits); // first: a bad SHALE_MAX_LAYER_SIZE throws before anything is read
  const { head, stream } = await peek(source);
  const c = detect(head);
  const d = c === 'none' ? undefined : decompressor(c);
  const upstream = d ? [stream, d] : [stream];
  const out = (d ? stream.pipe(d) : stream).pipe(guard);
  const fail = (e: Error) => out.destroy(e);
  stream.on('error', fail);
  d?.on('error', (e: Error & { code?: string }) => fail(e.code === 'Z_BUF_ERROR' || /unexpected end/i.test(e.message) ? invalidArgument(`compressed layer is truncated: ${e.message}`, 'the file or download was cut short') : e));
  // pipe() does not pass destruction upstream: when the reader gives up, release the whole chain
  out.on('close', () => {
    for (const s of upstream) if (!s.destroyed) s.destroy();
  });
  return { compression: c, tar: out };
}
