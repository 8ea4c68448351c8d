// `shale load` of a docker-archive whose layer is not a well-formed tar: every case must end
// with a one-line error (no stack trace), exit code 1, and a store that `system check` passes
// with nothing left behind. The layers are the format-breaking tars of
// src/archive/testdata/hostile (made by its make-hostile.py), each wrapped here as the single
// layer of a docker-archive whose config names the layer's own sha256 as its diff_id (so the
// archive looks valid and the layer is what gets refused), plus variants built at test time:
// compressed, large enough to be streamed rather than buffered, the whole archive cut short,
// and the layer limits (size cap, free space). Also: a gzip layer of 100 MiB of zeros (which
// docker takes) loads and imports.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, createWriteStream, truncateSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gzipSync, createGzip } from 'node:zlib';
import { compressor, writeTar, type TarSourceEntry } from '../archive/index.js';
import { encodeHeader } from '../archive/tar/header.js';
import { blobFiles, DetRandom, filesIn, hasTool, REPO, shale, shaleWith, tempDir, tempRoot, type RunResult } from '../testutil/index.js';

const HOSTILE = join(REPO, 'src/archive/testdata/hostile');
const hostileCases: { file: string; error: string | null }[] = JSON.parse(readFileSync(join(HOSTILE, 'manifest.json'), 'utf8'));
const expectedError = (file: string): string => {
  const c = hostileCases.find((x) => x.file === file);
  assert.ok(c?.error, `${file} is a refused case of the hostile manifest`);
  return c.error;
};

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function fileEntry(name: string, data: Buffer): TarSourceEntry {
  return { header: { name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: 0 }, data };
}

async function writeTarFile(path: string, entries: TarSourceEntry[]): Promise<void> {
  await pipeline(writeTar(entries), createWriteStream(path));
}

async function tarBytes(entries: TarSourceEntry[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of writeTar(entries)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A docker-archive with `layer` as its only layer; diff_id defaults to the layer's own sha256. */
async function dockerArchive(path: string, layer: Buffer, diffId = `sha256:${sha256(layer)}`): Promise<string> {
  const config = Buffer.from(JSON.stringify({
    architecture: 'amd64', os: 'linux', created: '2024-01-01T00:00:00Z', config: { Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: [diffId] },
    history: [{ created: '2024-01-01T00:00:00Z', created_by: 'malformed layer' }],
  }));
  const cfgName = `${sha256(config)}.json`;
  const layerName = `${sha256(layer)}/layer.tar`;
  const manifest = Buffer.from(JSON.stringify([{ Config: cfgName, RepoTags: ['malformed:1'], Layers: [layerName] }]));
  await writeTarFile(path, [fileEntry(cfgName, config), fileEntry(layerName, layer), fileEntry('manifest.json', manifest)]);
  return path;
}

async function compress(kind: 'gzip' | 'zstd', data: Buffer): Promise<Buffer> {
  if (kind === 'gzip') return gzipSync(data);
  const chunks: Buffer[] = [];
  await pipeline(Readable.from([data]), compressor('zstd'), async (src: AsyncIterable<Buffer>) => { for await (const c of src) chunks.push(c); });
  return Buffer.concat(chunks);
}

/** The refusal every case must end with, and a store that checks clean with nothing left in it. */
async function assertCleanRefusal(root: string, r: RunResult, expected: string | RegExp): Promise<void> {
  const detail = `exit ${r.code ?? r.signal}, stderr:\n${r.stderr}`;
  assert.equal(r.signal, null, detail);
  assert.equal(r.code, 1, detail);
  assert.equal(r.stdout, '', detail);
  assert.doesNotMatch(r.stderr, /^\s+at /m, `no stack trace: ${detail}`);
  assert.doesNotMatch(r.stderr, /Unhandled|node:events|Node\.js v/, detail);
  const lines = r.stderr.replace(/\n$/, '').split('\n');
  assert.equal(lines.length, 1, `stderr is one line: ${detail}`);
  assert.match(lines[0], /^Error: /);
  if (typeof expected === 'string') assert.ok(lines[0].includes(expected), `stderr ${JSON.stringify(lines[0])} should contain ${JSON.stringify(expected)}`);
  else assert.match(lines[0], expected);

  const check = await shale(root, 'system', 'check');
  assert.equal(check.code, 0, `system check: ${check.stdout}${check.stderr}`);
  assert.match(check.stdout, /checked 0 blobs, 0 images, 0 layers: no problems/);
  assert.doesNotMatch(check.stdout + check.stderr, /removed|stale|problem:/, 'the refused load left no temporary file for system check to clean up');
  assert.deepEqual(blobFiles(root), [], 'no blob stays behind');
  assert.deepEqual(filesIn(join(root, 'content', 'ingest')), [], 'no temporary file stays behind');
}

interface Case {
  name: string;
  /** makes the archive in `dir`, returns its path */
  make: (dir: string) => Promise<string>;
  error: string | RegExp;
  env?: NodeJS.ProcessEnv;
  stdin?: boolean;
}

const hostileFile = (f: string) => readFileSync(join(HOSTILE, f));
const MiB = 1 << 20;

// the hostile tars that break the tar format itself (the others are well-formed tars whose
// entries are refused when the layer is unpacked, which is `create`'s business, below)
const FORMAT_BREAKING = [
  'bad-checksum.tar', 'not-a-tar.tar', 'empty.tar', 'non-octal-size.tar',
  'huge-size-base256.tar', 'huge-size-truncated.tar', 'negative-size-base256.tar', 'pax-negative-size.tar',
  'pax-absurd-record-length.tar', 'pax-huge-header.tar',
  'gnu-sparse.tar', 'gnu-sparse-pax.tar', 'gnu-sparse-7g.tar', 'gnu-sparse-pax-7g.tar',
  'truncated.tar.gz',
];

/** A 5 MiB file entry (more than load keeps in memory, so the layer is streamed) and then `tail`. */
async function bigPrefix(): Promise<Buffer> {
  const data = new DetRandom('load-malformed').bytes(5 * MiB);
  const tar = await tarBytes([fileEntry('big.bin', data)]);
  return tar.subarray(0, tar.length - 1024); // without the end-of-archive marker
}

const cases: Case[] = [
  ...FORMAT_BREAKING.map((f): Case => ({ name: f, make: (dir) => dockerArchive(join(dir, 'a.tar'), hostileFile(f)), error: expectedError(f) })),
  ...(['bad-checksum.tar', 'huge-size-truncated.tar', 'negative-size-base256.tar', 'gnu-sparse-7g.tar'] as const).map((f): Case => ({
    name: `${f} gzip-compressed`,
    make: async (dir) => dockerArchive(join(dir, 'a.tar'), await compress('gzip', hostileFile(f))),
    error: expectedError(f),
  })),
  ...(hasTool('zstd') ? [{
    name: 'non-octal-size.tar zstd-compressed',
    make: async (dir: string) => dockerArchive(join(dir, 'a.tar'), await compress('zstd', hostileFile('non-octal-size.tar'))),
    error: expectedError('non-octal-size.tar'),
  }] : []),
  {
    name: 'a 5 MiB layer (streamed, not buffered) whose second header has a bad checksum',
    make: async (dir) => dockerArchive(join(dir, 'a.tar'), Buffer.concat([await bigPrefix(), hostileFile('bad-checksum.tar')])),
    error: 'checksum mismatch',
  },
  {
    name: 'a 5 MiB layer, gzip-compressed, then a header with a negative size',
    make: async (dir) => dockerArchive(join(dir, 'a.tar'), gzipSync(Buffer.concat([await bigPrefix(), hostileFile('negative-size-base256.tar')]))),
    error: 'negative size',
  },
  {
    name: 'a header claiming 7 GiB followed by 5 MiB of data, then the end of the layer',
    make: async (dir) => {
      const head = encodeHeader({ name: 'seven', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 7 * 2 ** 30, mtime: 0 });
      return dockerArchive(join(dir, 'a.tar'), Buffer.concat([head, new DetRandom('seven').bytes(5 * MiB)]));
    },
    error: 'truncated',
  },
  {
    name: 'the archive itself cut off in the middle of a 5 MiB layer',
    make: async (dir) => {
      const layer = Buffer.concat([await bigPrefix(), Buffer.alloc(1024)]);
      const path = await dockerArchive(join(dir, 'a.tar'), layer);
      truncateSync(path, 3 * MiB);
      return path;
    },
    error: 'truncated',
  },
  {
    name: 'bad-checksum.tar read from stdin',
    make: (dir) => dockerArchive(join(dir, 'a.tar'), hostileFile('bad-checksum.tar')),
    error: 'checksum mismatch',
    stdin: true,
  },
  {
    name: 'gzip-bomb.tar.gz with SHALE_MAX_LAYER_SIZE=64M',
    make: (dir) => dockerArchive(join(dir, 'a.tar'), hostileFile('gzip-bomb.tar.gz')),
    env: { SHALE_MAX_LAYER_SIZE: '64M' },
    error: 'layer is larger than the limit of 64 MiB uncompressed (SHALE_MAX_LAYER_SIZE)',
  },
  {
    name: 'a plain 5 MiB layer with SHALE_MAX_LAYER_SIZE=1M',
    make: async (dir) => dockerArchive(join(dir, 'a.tar'), Buffer.concat([await bigPrefix(), Buffer.alloc(1024)])),
    env: { SHALE_MAX_LAYER_SIZE: '1M' },
    error: 'larger than the limit of 1 MiB',
  },
  {
    name: 'a layer that would leave less free space than SHALE_MIN_FREE_SPACE',
    make: async (dir) => dockerArchive(join(dir, 'a.tar'), gzipSync(Buffer.concat([await bigPrefix(), Buffer.alloc(32 * MiB), Buffer.alloc(1024)]))),
    env: { SHALE_MIN_FREE_SPACE: '1P' },
    error: /^Error: not enough disk space for the layer: .* free on .*content\/ingest after 16 MiB of it, and 1024 TiB must stay free \(SHALE_MIN_FREE_SPACE\)/,
  },
  {
    name: 'an unreadable SHALE_MAX_LAYER_SIZE',
    make: (dir) => dockerArchive(join(dir, 'a.tar'), hostileFile('pax-global-header.tar')),
    env: { SHALE_MAX_LAYER_SIZE: 'lots' },
    error: 'SHALE_MAX_LAYER_SIZE=lots is not a size in bytes',
  },
];

let work: string;
before(() => {
  work = tempDir({ after: (fn) => process.on('exit', fn) }, 'shale-malformed-');
});

describe('shale load of a docker-archive with a malformed layer', { concurrency: 4 }, () => {
  cases.forEach((c, i) => {
    test(`${c.name}: one-line error, exit 1, store clean`, async (t) => {
      const root = tempRoot(t);
      const dir = join(work, `case${i}`);
      mkdirSync(dir);
      const archive = await c.make(dir);
      const env = c.env ? { ...process.env, ...c.env } : undefined;
      const r = c.stdin
        ? await shaleWith(root, ['load'], { input: readFileSync(archive), env })
        : await shaleWith(root, ['load', '-i', archive], { env });
      await assertCleanRefusal(root, r, c.error);
    });
  });
});

// import takes a layer tar directly (and compresses it into the store), through the same fan-out
describe('shale import of a malformed tar', { concurrency: 4 }, () => {
  for (const f of ['bad-checksum.tar', 'huge-size-truncated.tar', 'negative-size-base256.tar', 'gnu-sparse-7g.tar', 'truncated.tar.gz']) {
    test(`${f}: one-line error, exit 1, store clean`, async (t) => {
      const root = tempRoot(t);
      await assertCleanRefusal(root, await shale(root, 'import', join(HOSTILE, f), 'malformed:1'), expectedError(f));
    });
  }
});

test('a layer that is a well-formed tar but unpacks outside its root loads, and create refuses it in one line', async (t) => {
  const root = tempRoot(t);
  const dir = tempDir(t);
  const archive = await dockerArchive(join(dir, 'a.tar'), hostileFile('traversal-dotdot.tar'));
  const load = await shale(root, 'load', '-i', archive);
  assert.equal(load.code, 0, load.stderr);
  const create = await shale(root, 'create', 'malformed:1', '/bin/sh');
  assert.equal(create.code, 1, create.stderr);
  assert.equal(create.stdout, '');
  assert.doesNotMatch(create.stderr, /^\s+at /m);
  assert.equal(create.stderr.replace(/\n$/, '').split('\n').length, 1, create.stderr);
  assert.ok(create.stderr.includes(expectedError('traversal-dotdot.tar')), create.stderr);
  const check = await shale(root, 'system', 'check');
  assert.equal(check.code, 0, check.stdout + check.stderr);
  assert.match(check.stdout, /checked 3 blobs, 1 images, 1 layers: no problems/);
  assert.equal(existsSync(join(dir, 'outside')), false);
});

/** A gzip layer holding one 100 MiB file of zeros (~100 KiB compressed, about 1000:1), and its diff_id. */
async function zerosLayer(path: string): Promise<string> {
  const hash = createHash('sha256');
  const size = 100 * MiB;
  async function* zeros(): AsyncGenerator<Buffer> {
    const chunk = Buffer.alloc(MiB);
    for (let left = size; left > 0; left -= MiB) yield chunk;
  }
  const tee = new Transform({ transform(chunk: Buffer, _e, cb) { hash.update(chunk); cb(null, chunk); } });
  await pipeline(writeTar([{ header: { name: 'zeros', type: 'file', mode: 0o644, uid: 0, gid: 0, size, mtime: 0 }, stream: zeros }]), tee, createGzip(), createWriteStream(path));
  return `sha256:${hash.digest('hex')}`;
}

test('a gzip layer of 100 MiB of zeros (1000:1, which docker takes) loads and imports', async (t) => {
  const dir = tempDir(t);
  const layerPath = join(dir, 'zeros.tar.gz');
  const diffId = await zerosLayer(layerPath);
  const layer = readFileSync(layerPath);
  assert.ok(layer.length < 1 * MiB, `the layer compresses well (${layer.length} bytes)`);

  const root = tempRoot(t);
  const archive = await dockerArchive(join(dir, 'a.tar'), layer, diffId);
  const load = await shale(root, 'load', '-i', archive);
  assert.equal(load.code, 0, load.stderr);
  assert.equal(load.stdout.trim(), 'Loaded image: malformed:1');
  const inspect = await shale(root, 'inspect', '--format', '{{.Size}} {{json .RootFS.Layers}}', 'malformed:1');
  assert.equal(inspect.code, 0, inspect.stderr);
  assert.equal(inspect.stdout.trim(), `${100 * MiB} ${JSON.stringify([diffId])}`);

  const imported = await shale(root, 'import', layerPath, 'zeros:imported');
  assert.equal(imported.code, 0, imported.stderr);
  const layers = await shale(root, 'inspect', '--format', '{{json .RootFS.Layers}}', 'zeros:imported');
  assert.equal(layers.stdout.trim(), JSON.stringify([diffId]), 'import keeps the diff_id of the uncompressed tar');

  const check = await shale(root, 'system', 'check');
  assert.equal(check.code, 0, check.stdout + check.stderr);
  assert.match(check.stdout, /no problems/);
});
