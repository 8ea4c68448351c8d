// Turning tar streams into stored layers. One pass over the bytes computes everything a
// layer record needs: the blob digest (as stored), the diff_id (uncompressed) and docker's
// layer size (the bytes of the files in the diff), while the blob streams into the store.
import { PassThrough, pipeline, Readable } from 'node:stream';
import { HashingStream, type Digest } from '../digest/index.js';
import type { ContentStore, Expected } from '../content/index.js';
import { compressionOfMediaType, compressor, decompressor, detect, ociLayerMediaType, openUncompressed, peek, readTar, type Compression } from '../archive/index.js';
import { invalidArgument } from '../errors.js';

export interface LayerRecord {
  blob: Digest;
  diffId: Digest;
  mediaType: string;
  blobSize: number;
  size: number;
  /** bytes of the uncompressed tar */
  tarSize: number;
}

/** A stored layer as its uncompressed tar stream (errors of the blob reach the reader). */
export function openLayerTar(content: ContentStore, l: Pick<LayerRecord, 'blob' | 'mediaType'>): Readable {
  const src = content.open(l.blob);
  const c = compressionOfMediaType(l.mediaType);
  if (c === 'none') return src;
  const d = decompressor(c);
  src.on('error', (e) => d.destroy(e));
  return src.pipe(d);
}

/** Sum of docker's layer size over a tar stream: regular files plus symlink target lengths. */
export async function scanLayerSize(tar: AsyncIterable<Buffer>): Promise<number> {
  let size = 0;
  for await (const { header } of readTar(tar)) {
    if (header.type === 'file') size += header.size;
    else if (header.type === 'symlink') size += Buffer.byteLength(header.linkname ?? '');
  }
  return size;
}

/**
 * Feed one readable to several consumers; any failure destroys the rest. Settles only when
 * every consumer has (so a failed ingest has removed its temporary file), with the first error.
 */
async function fanOut<T extends unknown[]>(source: Readable, consumers: { [K in keyof T]: (r: Readable) => Promise<T[K]> }): Promise<T> {
  const branches = consumers.map(() => new PassThrough({ highWaterMark: 1 << 20 }));
  let first: { error: unknown } | undefined;
  const fail = (e: Error) => {
    first ??= { error: e };
    for (const b of branches) b.destroy(e);
    source.destroy(e);
  };
  source.on('error', fail);
  for (const b of branches) {
    // fanOut reports a failure itself (the first error, below), so it listens on every branch:
    // a branch whose consumer is done reading (the content store, waiting for the tar scan
    // before it commits) has no listener left but pipe()'s, which re-throws an 'error' nobody
    // else listens to, and that crashed `shale load` of a malformed layer with a stack trace
    b.on('error', () => { /* reported as `first` */ });
    source.pipe(b);
  }
  const settled = await Promise.allSettled(consumers.map((c, i) => c(branches[i]).catch((e: Error) => { fail(e); throw e; })));
  if (first) throw first.error;
  return settled.map((r) => (r as PromiseFulfilledResult<unknown>).value) as T;
}

/**
 * How layers that shale makes (import, build, commit) are compressed: gzip unless
 * SHALE_LAYER_COMPRESSION says zstd or none.
 */
export function defaultCompression(): Compression {
  const c = process.env.SHALE_LAYER_COMPRESSION;
  if (c === undefined || c === '') return 'gzip';
  if (c === 'gzip' || c === 'zstd' || c === 'none') return c;
  throw invalidArgument(`SHALE_LAYER_COMPRESSION=${c} is not a layer compression`, 'use gzip, zstd or none');
}

/** Store an uncompressed layer tar, compressing it (gzip by default). */
export async function ingestTar(content: ContentStore, tar: Readable, compression: Compression = defaultCompression()): Promise<LayerRecord> {
  const diff = new HashingStream();
  tar.on('error', (e) => diff.destroy(e));
  const src = tar.pipe(diff);
  // the blob is committed only once the whole tar has been read as a well-formed archive
  let scanned!: Promise<number>;
  const [size, blob] = await fanOut<[number, { digest: Digest; size: number }]>(src, [
    (r) => (scanned = scanLayerSize(r)),
    (r) => {
      // pipeline, not pipe + 'error' forwarding: the branch fails (fanOut) after the store has
      // read all of the compressor's output, when nothing listens on the compressor any more
      const c = pipeline(r, compressor(compression), () => { /* reaches content.ingest through the compressor, fanOut through r */ });
      return content.ingest(c, {}, 'layer', { beforeCommit: async () => { await scanned; } });
    },
  ]);
  return { blob: blob.digest, diffId: diff.digest(), mediaType: ociLayerMediaType(compression), blobSize: blob.size, size, tarSize: diff.size };
}

/** Store a layer blob exactly as it comes (compressed or not), checking an expected digest/size. */
export async function ingestBlob(content: ContentStore, stream: Readable, expected: Expected = {}, expectedDiffId?: string): Promise<LayerRecord & { compression: Compression }> {
  const { head, stream: s } = await peek(stream);
  const compression = detect(head);
  // an uncompressed blob is its own tar: its diff_id is its digest, so it is hashed once
  const diff = compression === 'none' ? undefined : new HashingStream();
  const mismatch = (blob: string, diffId: string) => invalidArgument(`layer ${blob}: its uncompressed digest ${diffId} does not match the config's diff_id ${expectedDiffId}`, 'the image is corrupt');
  // the blob is committed only once its tar has been read whole and its diff_id checked
  let scanned!: Promise<number>;
  const [blob, size] = await fanOut<[{ digest: Digest; size: number }, number]>(s, [
    (r) => content.ingest(r, expected, expected.digest ? `layer ${expected.digest}` : 'layer', {
      beforeCommit: async (got) => {
        await scanned;
        const diffId = diff ? diff.digest() : got.digest;
        if (expectedDiffId && diffId !== expectedDiffId) throw mismatch(got.digest, diffId);
      },
    }),
    (r) => (scanned = (async () => {
      // within the size limit, and refused before the store's disk fills up
      const { tar } = await openUncompressed(r, { freeSpaceAt: content.ingestDir });
      if (!diff) return scanLayerSize(tar);
      tar.on('error', (e) => diff.destroy(e));
      diff.on('close', () => tar.destroy());
      return scanLayerSize(tar.pipe(diff));
    })()),
  ]);
  const diffId = diff ? diff.digest() : blob.digest;
  if (expectedDiffId && expectedDiffId !== diffId) throw mismatch(blob.digest, diffId);
  return { blob: blob.digest, diffId, mediaType: ociLayerMediaType(compression), blobSize: blob.size, size, tarSize: diff ? diff.size : blob.size, compression };
}
