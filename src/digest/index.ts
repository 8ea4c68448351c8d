// Digests: "sha256:<64 hex>". Everything that names content uses this form.
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { invalidArgument, dataLoss } from '../errors.js';

export type Digest = `sha256:${string}`;

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export function isDigest(s: string): s is Digest {
  return DIGEST_RE.test(s);
}

export function parseDigest(s: string): Digest {
  if (!isDigest(s)) throw invalidArgument(`invalid digest "${s}"`, 'a digest is sha256: followed by 64 lowercase hex characters');
  return s;
}

export function sha256(data: string | Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function hex(d: string): string {
  return d.startsWith('sha256:') ? d.slice(7) : d;
}

/** A pass-through stream that hashes and counts what flows through it. */
export class HashingStream extends Transform {
  private hash: Hash = createHash('sha256');
  size = 0;
  private result?: Digest;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    cb(null, chunk);
  }
  digest(): Digest {
    if (!this.result) this.result = `sha256:${this.hash.digest('hex')}`;
    return this.result;
  }
}

/** Check an expected digest/size against what was computed; throws DataLoss naming both. */
export function verify(what: string, expected: { digest?: string; size?: number }, got: { digest: Digest; size: number }): void {
  if (expected.size !== undefined && expected.size >= 0 && expected.size !== got.size) {
    throw dataLoss(`${what}: size mismatch: expected ${expected.size} bytes, got ${got.size}`, 'the data is truncated or corrupt; fetch it again');
  }
  if (expected.digest && expected.digest !== got.digest) {
    throw dataLoss(`${what}: digest mismatch: expected ${expected.digest}, got ${got.digest}`, 'the data is corrupt or was tampered with; nothing was stored');
  }
}
