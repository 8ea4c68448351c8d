// The content store: blobs addressed by sha256 under <root>/content/blobs/sha256/<hex>.
// A write goes to <root>/content/ingest/<random>, is hashed on the way, checked against the
// expected digest/size, fsynced and renamed into place (then the dir is fsynced). A mismatch
// leaves nothing behind. A crash leaves only a stale ingest file, which cleanIngest() removes.
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, readdirSync, statSync, openSync, fsyncSync, closeSync, renameSync, writeSync } from 'node:fs';
import { open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HashingStream, hex, isDigest, sha256, verify, type Digest } from '../digest/index.js';
import { notFound, errno } from '../errors.js';

export interface Expected {
  digest?: string;
  size?: number;
}

export interface BlobInfo {
  digest: Digest;
  size: number;
}

function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try { fsyncSync(fd); } finally { closeSync(fd); }
  } catch { /* some filesystems refuse fsync on dirs */ }
}

export class ContentStore {
  readonly blobsDir: string;
  readonly ingestDir: string;
  constructor(readonly root: string) {
    this.blobsDir = join(root, 'content', 'blobs', 'sha256');
    this.ingestDir = join(root, 'content', 'ingest');
    mkdirSync(this.blobsDir, { recursive: true });
    mkdirSync(this.ingestDir, { recursive: true });
  }

  path(d: string): string {
    return join(this.blobsDir, hex(d));
  }

  has(d: string): boolean {
    return isDigest(d) && existsSync(this.path(d));
  }

  info(d: string): BlobInfo | undefined {
    try {
      return { digest: d as Digest, size: statSync(this.path(d)).size };
    } catch {
      return undefined;
    }
  }

  mtime(d: string): number | undefined {
    try {
      return statSync(this.path(d)).mtimeMs;
    } catch {
      return undefined;
    }
  }

  /**
   * Stream data into the store. Resolves with its digest once it is durable. `beforeCommit`
   * (if given) runs once the bytes are written and verified, before the blob becomes visible:
   * if it throws, nothing is stored (callers use it to wait for checks made on another copy of
   * the stream, such as a layer's tar being well-formed).
   */
  async ingest(source: Readable | AsyncIterable<Buffer>, expected: Expected = {}, what = 'blob', opts: { beforeCommit?: (got: BlobInfo) => Promise<void> } = {}): Promise<BlobInfo> {
    const tmp = join(this.ingestDir, `${Date.now()}-${randomBytes(6).toString('hex')}`);
    const hasher = new HashingStream();
    const fh = await open(tmp, 'wx', 0o644);
    try {
      await pipeline(source instanceof Readable ? source : Readable.from(source), hasher, createWriteStream('', { fd: fh.fd, autoClose: false }));
      await fh.sync();
    } catch (e) {
      await fh.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      throw e;
    }
    await fh.close();
    const got = { digest: hasher.digest(), size: hasher.size };
    try {
      verify(what, expected, got);
      await opts.beforeCommit?.(got);
    } catch (e) {
      await unlink(tmp).catch(() => {});
      throw e;
    }
    if (this.has(got.digest)) {
      await unlink(tmp);
    } else {
      await rename(tmp, this.path(got.digest));
      fsyncDir(this.blobsDir);
    }
    return got;
  }

  writeBytes(data: Buffer | string, expected: Expected = {}, what = 'blob'): BlobInfo {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    const got = { digest: sha256(buf), size: buf.length };
    verify(what, expected, got);
    if (!this.has(got.digest)) {
      const tmp = join(this.ingestDir, `${Date.now()}-${randomBytes(6).toString('hex')}`);
      const fd = openSync(tmp, 'wx', 0o644);
      try {
        let off = 0;
        while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, this.path(got.digest));
      fsyncDir(this.blobsDir);
    }
    return got;
  }

  readBytes(d: string): Buffer {
    try {
      return readFileSync(this.path(d));
    } catch (e) {
      if (errno(e) === 'ENOENT') throw notFound(`blob ${d} is not in the content store`, 'run `shale system check`');
      throw e;
    }
  }

  readJSON<T>(d: string): T {
    return JSON.parse(this.readBytes(d).toString('utf8')) as T;
  }

  open(d: string, start?: number): Readable {
    if (!this.has(d)) throw notFound(`blob ${d} is not in the content store`, 'run `shale system check`');
    return createReadStream(this.path(d), { start, highWaterMark: 1 << 20 });
  }

  async delete(d: string): Promise<void> {
    await rm(this.path(d), { force: true });
  }

  list(): Digest[] {
    return readdirSync(this.blobsDir).filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => `sha256:${n}` as Digest);
  }

  /** Bytes of all blobs (what a prune reclaimed is the difference of two calls). */
  totalSize(): number {
    return this.list().reduce((a, d) => a + (this.info(d)?.size ?? 0), 0);
  }

  /** Recompute a blob's digest. */
  async check(d: string): Promise<boolean> {
    const h = new HashingStream();
    await pipeline(createReadStream(this.path(d), { highWaterMark: 1 << 20 }), h, async function* (src) { for await (const _ of src) { /* drain */ } });
    return h.digest() === d;
  }

  /** Remove ingest files older than maxAgeMs (left by a crash or a cut download). */
  async cleanIngest(maxAgeMs = 0): Promise<number> {
    let n = 0;
    for (const f of await readdir(this.ingestDir)) {
      const p = join(this.ingestDir, f);
      try {
        const st = await stat(p);
        if (Date.now() - st.mtimeMs >= maxAgeMs) { await rm(p, { force: true, recursive: true }); n++; }
      } catch { /* raced with its writer */ }
    }
    return n;
  }
}

