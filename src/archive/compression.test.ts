// The limits openUncompressed puts on a layer: an absolute cap on its uncompressed size and,
// when told where the layer lands, a floor on that filesystem's free space. No ratio test:
// a genuine layer of zeros compresses about 1000:1 and docker takes it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { maxLayerSize, minFreeSpace, openUncompressed, parseByteSize, type LayerLimits } from './compression.js';
import { ShaleError } from '../errors.js';

const MiB = 1 << 20;

/** gzip of `n` MiB of zeros (what matters here is the byte count, not that it is a tar). */
function gzippedZeros(n: number): Buffer {
  return gzipSync(Buffer.alloc(n * MiB));
}

async function readAll(data: Buffer, limits?: LayerLimits): Promise<number> {
  const { tar } = await openUncompressed(Readable.from([data]), limits);
  let n = 0;
  for await (const c of tar) n += (c as Buffer).length;
  return n;
}

test('100 MiB of zeros, about 1000:1, comes through under the default limits', async () => {
  const gz = gzippedZeros(100);
  assert.ok(gz.length * 900 < 100 * MiB, `compresses about 1000:1 (${gz.length} bytes)`);
  assert.equal(await readAll(gz), 100 * MiB);
  assert.equal(await readAll(gz, { freeSpaceAt: tmpdir() }), 100 * MiB, 'with the default free-space floor');
});

test('a layer over the size cap is refused, compressed or not', async () => {
  const refused = (e: unknown) => e instanceof ShaleError && e.code === 'InvalidArgument' && /larger than the limit of 64 MiB uncompressed \(SHALE_MAX_LAYER_SIZE\)/.test(e.message);
  await assert.rejects(readAll(gzippedZeros(100), { maxSize: 64 * MiB }), refused);
  await assert.rejects(readAll(Buffer.alloc(65 * MiB), { maxSize: 64 * MiB }), refused);
  assert.equal(await readAll(Buffer.alloc(64 * MiB), { maxSize: 64 * MiB }), 64 * MiB, 'exactly the cap is allowed');
});

test('free space below the floor stops the layer after the first 16 MiB; small layers are not checked', async () => {
  await assert.rejects(readAll(gzippedZeros(40), { freeSpaceAt: tmpdir(), minFree: Number.MAX_SAFE_INTEGER }), (e: unknown) => {
    assert.ok(e instanceof ShaleError && e.code === 'FailedPrecondition', String(e));
    assert.match(e.message, /^not enough disk space for the layer: .+ free on .+ after 16 MiB of it, and 8192 TiB must stay free \(SHALE_MIN_FREE_SPACE\)$/);
    return true;
  });
  assert.equal(await readAll(gzippedZeros(8), { freeSpaceAt: tmpdir(), minFree: Number.MAX_SAFE_INTEGER }), 8 * MiB);
  await assert.rejects(readAll(gzippedZeros(20), { freeSpaceAt: '/nonexistent/shale', minFree: 1 }), /ENOENT/);
});

test('sizes in SHALE_MAX_LAYER_SIZE and SHALE_MIN_FREE_SPACE', () => {
  const ok: [string, number][] = [['100', 100], ['10b', 10], ['512M', 512 * MiB], ['64G', 64 * 2 ** 30], ['64GiB', 64 * 2 ** 30], ['1.5k', 1536], ['2 TB', 2 * 2 ** 40], ['1P', 2 ** 50]];
  for (const [s, n] of ok) assert.equal(parseByteSize(s, 'X'), n, s);
  for (const s of ['lots', '-1', '1X', '64ib', '', '1e9', '99999999999P']) assert.throws(() => parseByteSize(s, 'X'), /^ShaleError: X=.* is not a size in bytes$/, s);
  const saved = { max: process.env.SHALE_MAX_LAYER_SIZE, free: process.env.SHALE_MIN_FREE_SPACE };
  try {
    delete process.env.SHALE_MAX_LAYER_SIZE;
    delete process.env.SHALE_MIN_FREE_SPACE;
    assert.equal(maxLayerSize(), 64 * 2 ** 30);
    assert.equal(minFreeSpace(), 256 * MiB);
    process.env.SHALE_MAX_LAYER_SIZE = '1G';
    process.env.SHALE_MIN_FREE_SPACE = '0';
    assert.equal(maxLayerSize(), 2 ** 30);
    assert.equal(minFreeSpace(), 0);
  } finally {
    for (const [k, v] of [['SHALE_MAX_LAYER_SIZE', saved.max], ['SHALE_MIN_FREE_SPACE', saved.free]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
});
