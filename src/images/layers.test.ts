import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { ContentStore } from '../content/index.js';
import { sha256 } from '../digest/index.js';
import { ingestBlob, ingestTar } from './layers.js';
import { DetRandom, filesIn, gnuTar, tempDir, tempRoot, type AfterHook } from '../testutil/index.js';

/** A small layer tar (GNU tar): one 10,000-byte file and a symlink. */
function layerTar(t: AfterHook): Buffer {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'tree', 'etc'), { recursive: true });
  writeFileSync(join(dir, 'tree', 'etc', 'data'), new DetRandom('layers').bytes(10_000));
  symlinkSync('/etc/data', join(dir, 'tree', 'link'));
  gnuTar(join(dir, 'tree'), join(dir, 'layer.tar'));
  return readFileSync(join(dir, 'layer.tar'));
}

const nothingStored = (cs: ContentStore) => {
  assert.deepEqual(filesIn(cs.blobsDir), [], 'no blob was stored');
  assert.deepEqual(filesIn(cs.ingestDir), [], 'no temporary file was left');
};

test('ingestTar stores a gzip blob and records diff_id, digest, sizes', async (t) => {
  const cs = new ContentStore(tempRoot(t));
  const tar = layerTar(t);
  const rec = await ingestTar(cs, Readable.from([tar]));
  assert.equal(rec.diffId, sha256(tar), 'diff_id: the sha256 of the uncompressed tar');
  assert.equal(rec.tarSize, tar.length);
  assert.equal(rec.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
  assert.equal(rec.size, 10_000 + '/etc/data'.length, "docker's size: file bytes plus symlink targets");
  const blob = cs.readBytes(rec.blob);
  assert.equal(rec.blob, sha256(blob));
  assert.equal(rec.blobSize, blob.length);
  assert.ok(gunzipSync(blob).equals(tar), 'the blob decompresses to the very tar');
});

test('ingestTar with zstd', async (t) => {
  const cs = new ContentStore(tempRoot(t));
  const tar = layerTar(t);
  const rec = await ingestTar(cs, Readable.from([tar]), 'zstd');
  assert.equal(rec.diffId, sha256(tar));
  assert.equal(rec.mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd');
  assert.equal(cs.readBytes(rec.blob).readUInt32LE(0), 0xfd2fb528, 'zstd magic');
});

test('a tar found malformed only at its end (truncated) is refused and nothing is stored', async (t) => {
  const cs = new ContentStore(tempRoot(t));
  const tar = layerTar(t);
  // cut where the end-of-archive marker starts: every entry is whole, the archive is not
  let end = tar.length;
  while (end > 0 && tar[end - 1] === 0) end--;
  const whole = tar.subarray(0, Math.ceil(end / 512) * 512);
  await assert.rejects(ingestTar(cs, Readable.from([whole])), /truncated: no end-of-archive marker/);
  nothingStored(cs);
  await assert.rejects(ingestTar(cs, Readable.from([tar.subarray(0, 3000)])), /truncated/);
  nothingStored(cs);
  await assert.rejects(ingestTar(cs, Readable.from([Buffer.alloc(0)])), /not a tar archive: it is empty/);
  nothingStored(cs);
  // the same for a blob: its digest matches, its tar does not parse
  const cut = gzipSync(whole);
  await assert.rejects(ingestBlob(cs, Readable.from([cut]), { digest: sha256(cut) }), /truncated/);
  nothingStored(cs);
});

test('ingestBlob keeps the bytes as they come and checks digest and diff_id before storing', async (t) => {
  const cs = new ContentStore(tempRoot(t));
  const tar = layerTar(t);
  const gz = gzipSync(tar);

  const plain = await ingestBlob(cs, Readable.from([tar]), { digest: sha256(tar), size: tar.length }, sha256(tar));
  assert.deepEqual({ blob: plain.blob, diffId: plain.diffId, compression: plain.compression, tarSize: plain.tarSize, mediaType: plain.mediaType }, { blob: sha256(tar), diffId: sha256(tar), compression: 'none', tarSize: tar.length, mediaType: 'application/vnd.oci.image.layer.v1.tar' });
  const zipped = await ingestBlob(cs, Readable.from([gz]), { digest: sha256(gz) }, sha256(tar));
  assert.deepEqual({ blob: zipped.blob, diffId: zipped.diffId, compression: zipped.compression, size: zipped.size }, { blob: sha256(gz), diffId: sha256(tar), compression: 'gzip', size: plain.size });
  assert.ok(cs.readBytes(zipped.blob).equals(gz), 'stored as it came, not recompressed');
  await cs.delete(plain.blob);
  await cs.delete(zipped.blob);

  const lie = sha256('some other layer');
  for (const [what, bytes] of [['uncompressed', tar], ['gzip', gz]] as const) {
    await assert.rejects(ingestBlob(cs, Readable.from([bytes]), {}, lie), (e: Error) => e.message.includes(lie) && e.message.includes(sha256(tar)), `${what}: diff_id mismatch`);
    nothingStored(cs);
    await assert.rejects(ingestBlob(cs, Readable.from([bytes]), { digest: lie }), (e: Error) => e.message.includes(`layer ${lie}: digest mismatch`), `${what}: digest mismatch`);
    nothingStored(cs);
  }
});

test("ContentStore.ingest's beforeCommit sees the blob and can veto it", async (t) => {
  const cs = new ContentStore(tempRoot(t));
  const data = Buffer.from('checked elsewhere');
  let seen: unknown;
  await assert.rejects(cs.ingest(Readable.from([data]), {}, 'blob', { beforeCommit: async (got) => { seen = got; throw new Error('vetoed'); } }), /vetoed/);
  assert.deepEqual(seen, { digest: sha256(data), size: data.length });
  nothingStored(cs);
  const ok = await cs.ingest(Readable.from([data]), {}, 'blob', { beforeCommit: async () => {} });
  assert.ok(cs.has(ok.digest));
});
