// Layer compression: gzip (zlib) and zstd (the zstd tool; Node 20's zlib has no zstd).
// Detects the format from magic bytes so any layer blob can be opened the same way.
import { createGzip, createGunzip, constants } from 'node:zlib';
import { spawn } from 'node:child_process';
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

/** Counts bytes; used to measure compressed input against expanded output. */
export class Counter extends Transform {
  bytes = 0;
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

/** Refuses decompression bombs: past `floor` bytes, output may be at most `ratio` times the input. */
export class ExpansionGuard extends Transform {
  out = 0;
  constructor(private input: Counter, private ratio = 500, private floor = 64 << 20) {
    super();
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.out += chunk.length;
    if (this.out > this.floor && this.out > this.ratio * Math.max(1, this.input.bytes)) {
      cb(invalidArgument(`layer expands more than ${this.ratio}:1 (${this.out} bytes from ${this.input.bytes} compressed): refusing a likely decompression bomb`, 'a real layer does not compress this well; check where it came from'));
      return;
    }
    cb(null, chunk);
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

/** Open a (maybe compressed) layer stream as its uncompressed tar, guarding against bombs. */
export async function openUncompressed(source: Readable): Promise<{ compression: Compression; tar: Readable }> {
  const { head, stream } = await peek(source);
  const c = detect(head);
  if (c === 'none') return { compression: c, tar: stream };
  const counter = new Counter();
  const guard = new ExpansionGuard(counter);
  const d = decompressor(c);
  const out = stream.pipe(counter).pipe(d).pipe(guard);
  const fail = (e: Error) => out.destroy(e);
  stream.on('error', fail);
  counter.on('error', fail);
  d.on('error', (e: Error & { code?: string }) => fail(e.code === 'Z_BUF_ERROR' || /unexpected end/i.test(e.message) ? invalidArgument(`compressed layer is truncated: ${e.message}`, 'the file or download was cut short') : e));
  // pipe() does not pass destruction upstream: when the reader gives up, release the whole chain
  out.on('close', () => {
    for (const s of [stream, counter, d]) if (!s.destroyed) s.destroy();
  });
  return { compression: c, tar: out };
}
