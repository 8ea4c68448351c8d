import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ContentStore } from './store.js';
import { sha256 } from '../digest/index.js';
import { isShaleError } from '../errors.js';
import { DetRandom, tempRoot } from '../testutil/index.js';

const ls = (dir: string) => readdirSync(dir).sort();

/** A stream that yields `data` in small chunks, yielding to the event loop between them. */
function chunked(data: Buffer, size = 64 * 1024): Readable {
  return Readable.from((async function* () {
    for (let off = 0; off < data.length; off += size) {
      await new Promise((r) => setImmediate(r));
      yield data.subarray(off, off + size);
    }
  })());
}

test('ingest with a wrong expected digest is refused, names both digests, and leaves nothing behind', async (t) => {
  const cs = new ContentStore(tempRoot(t));
  const data = new DetRandom('wrong-digest').bytes(300_000);
  const actual = sha256(data);
  const claimed = sha256('something else');
  await assert.rejects(cs.ingest(chunked(data), { digest: claimed }), (e: unknown) => {
    assert.ok(isShaleError(e, 'DataLoss'), `expected a DataLoss error, got ${String(e)}`);
    assert.match(e.message, new RegExp(claimed.slice(7)), 'the message names the expected digest');
    assert.match(e.message, new RegExp(actual.slice(7)), 'the message names the digest of what arrived');
    return true;
  });
  assert.deepEqual(ls(cs.blobsDir), [], 'no blob was stored');
  assert.deepEqual(ls(cs.ingestDir), [], 'no temporary file was left');
  assert.equal(cs.has(actual), false);
  assert.equal(cs.has(claimed), false);
});

test('writeBytes with a wrong digest or size is refused the same way', (t) => {
  const cs = new ContentStore(tempRoot(t));
  const data = Buffer.from('{"hello":"world"}');
  const claimed = sha256('not this');
  assert.throws(() => cs.writeBytes(data, { digest: claimed }), (e: unknown) => isShaleError(e, 'DataLoss') && e.message.includes(claimed) && e.message.includes(sha256(data)));
  assert.throws(() => cs.writeBytes(data, { size: data.length + 1 }), (e: unknown) => isShaleError(e, 'DataLoss') && /size mismatch/.test(e.message));
  assert.deepEqual(ls(cs.blobsDir), []);
  assert.deepEqual(ls(cs.ingestDir), []);
});

test('ingest with a wrong expected size is refused and leaves nothing behind', async (t) => {
  const cs = new ContentStore(tempRoot(t));
  const data = new DetRandom('size').bytes(10_000);
  await assert.rejects(cs.ingest(chunked(data, 1000), { digest: sha256(data), size: 9_999 }), /size mismatch: expected 9999 bytes, got 10000/);
  assert.deepEqual(ls(cs.blobsDir), []);
  assert.deepEqual(ls(cs.ingestDir), []);
});

test('a source that fails mid-way leaves nothing behind', async (t) => {
  const cs = new ContentStore(tempRoot(t));
  const src = Readable.from((async function* () {
    yield Buffer.alloc(100_000, 1);
    await new Promise((r) => setImmediate(r));
    throw new Error('connection reset');
  })());
  await assert.rejects(cs.ingest(src), /connection reset/);
  assert.deepEqual(ls(cs.blobsDir), []);
  assert.deepEqual(ls(cs.ingestDir), []);
});

test('the right digest is stored once, under its digest, with the same bytes', async (t) => {
  const cs = new ContentStore(tempRoot(t));
  const data = new DetRandom('right').bytes(2_500_000);
  const d = sha256(data);
  const a = await cs.ingest(chunked(data), { digest: d, size: data.length });
  assert.deepEqual(a, { digest: d, size: data.length });
  const b = await cs.ingest(chunked(data), { digest: d });
  assert.deepEqual(b, a);
  const c = cs.writeBytes(data, { digest: d });
  assert.deepEqual(c, a);
  assert.deepEqual(ls(cs.blobsDir), [d.slice(7)], 'exactly one file, named by the digest');
  assert.deepEqual(ls(cs.ingestDir), []);
  assert.ok(readFileSync(cs.path(d)).equals(data));
  assert.ok(cs.readBytes(d).equals(data));
  assert.equal(cs.info(d)?.size, data.length);
  assert.equal(await cs.check(d), true);
  assert.deepEqual(cs.list(), [d]);
});

test('concurrent ingests of the same bytes all succeed and store one blob', async (t) => {
  const cs = new ContentStore(tempRoot(t));
  const data = new DetRandom('concurrent').bytes(3_000_000);
  const d = sha256(data);
  const results = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 ? cs.ingest(chunked(data, 50_000 + i * 7_000), { digest: d }) : cs.ingest(chunked(data)))));
  for (const r of results) assert.deepEqual(r, { digest: d, size: data.length });
  assert.deepEqual(ls(cs.blobsDir), [d.slice(7)]);
  assert.deepEqual(ls(cs.ingestDir), []);
  assert.equal(await cs.check(d), true);
});

test('concurrent ingests of the same bytes from two store objects (two processes) agree', async (t) => {
  const root = tempRoot(t);
  const one = new ContentStore(root);
  const two = new ContentStore(root);
  const data = new DetRandom('two-stores').bytes(1_000_000);
  const [a, b] = await Promise.all([one.ingest(chunked(data)), two.ingest(chunked(data, 10_000))]);
  assert.equal(a.digest, b.digest);
  assert.deepEqual(ls(one.blobsDir), [a.digest.slice(7)]);
  assert.ok(two.readBytes(a.digest).equals(data));
});

test('check() notices a blob whose bytes no longer match its name', async (t) => {
  const cs = new ContentStore(tempRoot(t));
  const { digest } = cs.writeBytes(Buffer.from('original content'));
  assert.equal(await cs.check(digest), true);
  writeFileSync(cs.path(digest), 'tampered content');
  assert.equal(await cs.check(digest), false);
});

test('reading a missing blob is NotFound; open() refuses it too', (t) => {
  const cs = new ContentStore(tempRoot(t));
  const d = sha256('absent');
  assert.throws(() => cs.readBytes(d), (e: unknown) => isShaleError(e, 'NotFound') && e.message.includes(d));
  assert.throws(() => cs.open(d), (e: unknown) => isShaleError(e, 'NotFound'));
  assert.equal(cs.has(d), false);
  assert.equal(cs.has('sha256:short'), false);
});

test('cleanIngest removes stale temporary files and keeps fresh ones', async (t) => {
  const cs = new ContentStore(tempRoot(t));
  const stale = join(cs.ingestDir, 'stale');
  const fresh = join(cs.ingestDir, 'fresh');
  writeFileSync(stale, 'x');
  writeFileSync(fresh, 'y');
  const old = new Date(Date.now() - 2 * 3600_000);
  utimesSync(stale, old, old);
  assert.equal(await cs.cleanIngest(3600_000), 1);
  assert.deepEqual(ls(cs.ingestDir), ['fresh']);
  assert.equal(await cs.cleanIngest(0), 1);
  assert.deepEqual(ls(cs.ingestDir), []);
});

test('delete removes a blob and is idempotent', async (t) => {
  const cs = new ContentStore(tempRoot(t));
  const { digest } = cs.writeBytes(Buffer.from('bye'));
  await cs.delete(digest);
  await cs.delete(digest);
  assert.equal(cs.has(digest), false);
  assert.deepEqual(cs.list(), []);
});
