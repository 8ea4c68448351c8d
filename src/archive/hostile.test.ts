// Hostile layer tars (testdata/hostile, made by testdata/make-hostile.py) against applyLayer.
// Each is applied in both whiteout modes into <sandbox>/target; the sandbox also holds sentinel
// files and symlinks outside the target, and a fingerprint of everything outside the target
// (content, type, mode, owner, size, inode, link count, mtime and ctime in ns) must not change.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, readdirSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { applyLayer, openUncompressed, compressor, type ApplyResult } from './index.js';
import { ShaleError } from '../errors.js';
import { xattrsOf } from '../sys/index.js';

const HOSTILE = path.join(process.cwd(), 'src/archive/testdata/hostile');
const OK = path.join(process.cwd(), 'src/archive/testdata/ok');
const MODES = ['apply', 'overlay'] as const;

interface Check { path: string; type?: 'file' | 'dir' | 'symlink'; content?: string; noXattr?: string }
interface Case { file: string; tries: string; error: string | null; checks: Check[]; absent: string[]; maxLayerSize?: number }

const cases: Case[] = JSON.parse(readFileSync(path.join(HOSTILE, 'manifest.json'), 'utf8'));
const okCases: { file: string; compression: string }[] = JSON.parse(readFileSync(path.join(OK, 'manifest.json'), 'utf8'));

let work: string;
before(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'shale-hostile-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

let n = 0;
/** A fresh sandbox: sentinels outside the target, lower-layer content inside it. */
async function sandbox(): Promise<{ dir: string; target: string }> {
  const dir = path.join(work, `sb${n++}`);
  await mkdir(path.join(dir, 'outside/sub'), { recursive: true });
  await writeFile(path.join(dir, 'outside/passwd'), 'root:x:0:0:outside sentinel:/root:/bin/sh\n', { mode: 0o600 });
  await writeFile(path.join(dir, 'outside/sub/secret'), 'secret\n', { mode: 0o600 });
  await symlink('passwd', path.join(dir, 'outside/link-to-passwd'));
  await symlink('outside', path.join(dir, 'escape'));
  const target = path.join(dir, 'target');
  await mkdir(path.join(target, 'etc'), { recursive: true });
  await writeFile(path.join(target, 'etc/passwd'), 'root:x:0:0:lower layer:/root:/bin/sh\n');
  await writeFile(path.join(target, 'old'), 'old\n');
  await symlink('../outside', path.join(target, 'lowerlink'));
  return { dir, target };
}

/** Everything in the sandbox except the target's subtree, one line per path. */
async function fingerprint(dir: string, skip: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (p: string, rel: string) => {
    const st = await lstat(p, { bigint: true });
    let extra = '';
    if (st.isFile()) extra = createHash('sha256').update(await readFile(p)).digest('hex');
    else if (st.isSymbolicLink()) extra = '-> ' + (await readlink(p));
    out.push(`${rel || '.'} mode=${st.mode.toString(8)} uid=${st.uid} gid=${st.gid} size=${st.size} ino=${st.ino} nlink=${st.nlink} mtime=${st.mtimeNs} ctime=${st.ctimeNs} ${extra}`);
    if (st.isDirectory()) {
      for (const name of (await readdir(p)).sort()) {
        const r = rel ? `${rel}/${name}` : name;
        if (r === skip) { out.push(`${r} (target, not compared)`); continue; }
        await visit(path.join(p, name), r);
      }
    }
  };
  await visit(dir, '');
  return out;
}

function digest(lines: string[]): string {
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}

async function applyFile(file: string, target: string, whiteouts: 'apply' | 'overlay', warnings: string[] = [], maxSize?: number): Promise<ApplyResult & { compression: string }> {
  const { compression, tar } = await openUncompressed(createReadStream(file), { maxSize });
  const r = await applyLayer(target, tar, { whiteouts, onWarning: (w) => warnings.push(w) });
  return { ...r, compression };
}

describe('hostile layer fixtures', () => {
  test('manifest, README and files agree, and there are enough cases', () => {
    const files = readdirSync(HOSTILE).filter((f) => f !== 'README.md' && f !== 'manifest.json').sort();
    assert.deepEqual(cases.map((c) => c.file).sort(), files, 'every fixture is in manifest.json and every manifest row has a file');
    assert.ok(cases.filter((c) => c.error).length >= 22, 'at least 22 fixtures must be refused');
    const readme = readFileSync(path.join(HOSTILE, 'README.md'), 'utf8');
    for (const c of cases) {
      const row = readme.split('\n').find((l) => l.startsWith(`| ${c.file} |`));
      assert.ok(row, `README has a row for ${c.file}`);
      if (c.error) assert.ok(row.includes('`' + c.error.replace(/\|/g, '\\|') + '`'), `README row for ${c.file} names ${c.error}`);
    }
    assert.match(readme, /digest/i, 'README notes the lying-digest case');
  });
});

for (const c of cases) {
  describe(c.file, () => {
    for (const mode of MODES) {
      test(`${c.error ? 'refused' : 'applies, confined'} [${mode}]: ${c.tries}`, async () => {
        const { dir, target } = await sandbox();
        const beforeFp = await fingerprint(dir, 'target');
        const run = applyFile(path.join(HOSTILE, c.file), target, mode, [], c.maxLayerSize);
        if (c.error) {
          await assert.rejects(run, (e: unknown) => {
            assert.ok(e instanceof ShaleError, `expected a ShaleError, got ${e instanceof Error ? e.stack : String(e)}`);
            assert.ok(e.message.includes(c.error!), `message ${JSON.stringify(e.message)} should contain ${JSON.stringify(c.error)}`);
            return true;
          });
        } else {
          await run;
          for (const k of c.checks) {
            const p = path.join(target, k.path);
            const st = await lstat(p);
            if (k.type === 'file') assert.ok(st.isFile(), `${k.path} is a regular file`);
            if (k.type === 'dir') assert.ok(st.isDirectory(), `${k.path} is a directory`);
            if (k.type === 'symlink') assert.ok(st.isSymbolicLink(), `${k.path} is a symlink`);
            if (k.content !== undefined) assert.equal(await readFile(p, 'utf8'), k.content);
            if (k.noXattr) assert.equal((await xattrsOf(p)).has(k.noXattr), false, `${k.path} must not carry ${k.noXattr}`);
          }
        }
        const afterFp = await fingerprint(dir, 'target');
        assert.deepEqual(afterFp, beforeFp, 'nothing outside the target may be created, modified or deleted');
        assert.equal(digest(afterFp), digest(beforeFp));
        for (const a of c.absent) assert.equal(existsSync(a), false, `${a} must not exist`);
        assert.ok(existsSync(target), 'the target itself survives');
      });
    }
  });
}

describe('valid layers still apply', () => {
  for (const c of okCases) {
    for (const mode of MODES) {
      test(`${c.file} [${mode}] (${c.compression})`, async () => {
        const { dir, target } = await sandbox();
        const beforeFp = await fingerprint(dir, 'target');
        const warnings: string[] = [];
        const r = await applyFile(path.join(OK, c.file), target, mode, warnings);
        assert.equal(r.compression, c.compression, 'compression detected from magic bytes');
        assert.equal(r.entries, 7);
        assert.deepEqual(warnings, []);
        assert.equal(await readFile(path.join(target, 'etc/hostname'), 'utf8'), 'shale\n');
        assert.equal(await readFile(path.join(target, 'etc/passwd'), 'utf8'), 'root:x:0:0:lower layer:/root:/bin/sh\n', 'lower content is kept');
        const bb = await lstat(path.join(target, 'bin/busybox'));
        assert.equal(bb.mode & 0o7777, 0o755);
        assert.equal(bb.mtimeMs, 1700000000 * 1000);
        assert.equal((await lstat(path.join(target, 'bin/ls'))).ino, bb.ino, 'hardlink shares the inode');
        assert.equal(await readlink(path.join(target, 'bin/sh')), 'busybox');
        assert.equal((await lstat(path.join(target, 'bin'))).mtimeMs, 1700000000 * 1000, 'dir mtime set after its children');
        if (mode === 'apply') assert.equal(existsSync(path.join(target, 'old')), false, '.wh.old deleted the lower file');
        else {
          const st = await lstat(path.join(target, 'old'));
          assert.ok(st.isCharacterDevice() && st.rdev === 0, '.wh.old became an overlay whiteout (char 0/0)');
        }
        assert.deepEqual(await fingerprint(dir, 'target'), beforeFp);
      });
    }
  }
});

// zstd runs as a child process: a layer refused half way must not leave it running (the
// process would never exit)
test('a refused zstd layer does not leave zstd running', async () => {
  const { target } = await sandbox();
  const hostile = readFileSync(path.join(HOSTILE, 'lower-symlink-then-file.tar'));
  // the bad entry first, then megabytes more, so zstd is still writing when the reader gives up
  const filler = Buffer.alloc(8 << 20, 'x');
  const z = compressor('zstd');
  const chunks: Buffer[] = [];
  z.on('data', (d: Buffer) => chunks.push(d));
  const done = new Promise((res) => z.on('end', res));
  z.end(Buffer.concat([hostile.subarray(0, 1536), filler]));
  await done;
  const { compression, tar } = await openUncompressed(Readable.from([Buffer.concat(chunks)]));
  assert.equal(compression, 'zstd');
  await assert.rejects(applyLayer(target, tar), /goes through the symlink/);
  let left: string[] = [];
  for (let i = 0; i < 50; i++) {
    left = zstdChildren();
    if (left.length === 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.deepEqual(left, [], 'zstd child still running');
});

/** Live (not zombie) zstd processes whose parent is this process, from /proc. */
function zstdChildren(): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let stat: string;
    try { stat = readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { continue; }
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const [state, ppid] = stat.slice(close + 2).split(' ');
    if (comm === 'zstd' && Number(ppid) === process.pid && state !== 'Z') out.push(`${pid} ${state}`);
  }
  return out;
}
