// Shared test helpers: temporary roots that clean themselves up, a runner for the shale CLI
// (bin/shale.js, as a user runs it) and for peer tools, a busybox rootfs tarball made from
// /bin/busybox, deterministic pseudo-random data, and docker-archive tarballs built with
// GNU tar. Nothing here touches the network.
import { spawn, execFileSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync, copyFileSync, chmodSync, lstatSync, openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository checkout (dist/testutil/index.js -> ../..). */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SHALE_BIN = join(REPO, 'bin', 'shale.js');
export const BUSYBOX = '/bin/busybox';

/** What node:test passes to a test or a suite hook: enough to register a cleanup. */
export interface AfterHook {
  after(fn: () => void | Promise<void>): void;
}

/** Remove a directory tree, unmounting nothing: tests here never mount. */
export function removeTree(dir: string): void {
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
}

/**
 * A fresh directory under the system temp dir. With a test context it is removed when the
 * test (or suite) ends; otherwise call removeTree yourself.
 */
export function tempDir(t?: AfterHook, prefix = 'shale-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t?.after(() => removeTree(dir));
  return dir;
}

/** A fresh, empty shale data root (the CLI and Engine.open create what they need in it). */
export function tempRoot(t?: AfterHook): string {
  return tempDir(t, 'shale-root-');
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
}

/** Run a program to completion, collecting its output (never throws for a non-zero exit). */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? REPO, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const errs: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => errs.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(errs).toString('utf8') });
    });
    child.stdin.on('error', () => { /* the program did not read its input */ });
    child.stdin.end(opts.input ?? '');
  });
}

/** `shale --root ROOT ARGS...` via bin/shale.js. */
export function shale(root: string, ...args: string[]): Promise<RunResult> {
  return shaleWith(root, args);
}

export function shaleWith(root: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return run(process.execPath, [SHALE_BIN, '--root', root, ...args], opts);
}

/** Like shale(), but fails the test (with stderr in the message) unless the exit code is 0. */
export async function shaleOk(root: string, ...args: string[]): Promise<string> {
  const r = await shale(root, ...args);
  if (r.code !== 0) throw new Error(`shale ${args.join(' ')} exited ${r.code ?? r.signal}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Run a peer tool (skopeo, umoci, tar...), failing with its stderr unless it exits 0. */
export async function runOk(cmd: string, args: string[], opts: RunOptions = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code ?? r.signal}: ${r.stderr.trim()}`);
  return r.stdout;
}

export function hasTool(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const GNU_TAR_FIXED = ['--numeric-owner', '--owner=0', '--group=0', '--sort=name', '--mtime=2024-01-01 00:00:00Z'];

/** tar -cf OUT -C DIR . with fixed owners, order and mtimes, so equal trees give equal bytes. */
export function gnuTar(dir: string, out: string, members: string[] = ['.']): void {
  execFileSync('tar', [...GNU_TAR_FIXED, '-C', dir, '-cf', out, ...members]);
}

/**
 * A busybox root filesystem: /bin/busybox, one symlink per applet, /etc/passwd and /etc/group,
 * the usual empty directories. Written to `out` as a tarball (GNU tar, deterministic).
 */
export function makeBusyboxRootfs(dir: string): void {
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'tmp', 'root', 'proc', 'sys', 'dev', 'var/tmp', 'home']) mkdirSync(join(dir, d), { recursive: true });
  copyFileSync(BUSYBOX, join(dir, 'bin/busybox'));
  chmodSync(join(dir, 'bin/busybox'), 0o755);
  const applets = execFileSync(BUSYBOX, ['--list-full'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const a of applets) {
    const p = join(dir, a);
    if (a === 'bin/busybox' || existsSync(p)) continue;
    mkdirSync(dirname(p), { recursive: true });
    symlinkSync('/bin/busybox', p);
  }
  chmodSync(join(dir, 'tmp'), 0o1777);
  chmodSync(join(dir, 'var/tmp'), 0o1777);
  writeFileSync(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  writeFileSync(join(dir, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
}

/** Make the busybox rootfs tarball at `out` (its parent must exist). Returns `out`. */
export function busyboxTar(out: string): string {
  const work = mkdtempSync(join(tmpdir(), 'shale-bbroot-'));
  try {
    makeBusyboxRootfs(work);
    gnuTar(work, out);
  } finally {
    removeTree(work);
  }
  return out;
}

export function sha256File(path: string): string {
  return 'sha256:' + execFileSync('sha256sum', [path], { encoding: 'utf8' }).split(' ')[0];
}

/** Deterministic pseudo-random bytes: AES-128-CTR over zeros, keyed by the seed. Fast. */
export class DetRandom {
  private cipher;
  constructor(seed: string) {
    const key = createHash('sha256').update(seed).digest();
    this.cipher = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  }
  bytes(n: number): Buffer {
    return this.cipher.update(Buffer.alloc(n));
  }
  /** A uniform integer in [0, n). */
  int(n: number): number {
    return this.bytes(4).readUInt32LE(0) % n;
  }
}

export interface TreeSpec {
  /** number of files */
  files: number;
  /** bytes per file (each file a different pseudo-random size around this) */
  avgSize: number;
  /** files per directory */
  perDir?: number;
}

/** Fill `dir` with `files` files of pseudo-random content under d000/, d001/...; returns total bytes. */
export function writeTree(dir: string, spec: TreeSpec, seed: string): number {
  const rnd = new DetRandom(seed);
  const perDir = spec.perDir ?? 200;
  let total = 0;
  for (let i = 0; i < spec.files; i++) {
    const sub = join(dir, `d${String(Math.floor(i / perDir)).padStart(3, '0')}`);
    if (i % perDir === 0) mkdirSync(sub, { recursive: true });
    const size = Math.max(0, Math.round(spec.avgSize * (0.25 + 1.5 * (rnd.int(1 << 20) / (1 << 20)))));
    const fd = openSync(join(sub, `f${i}.bin`), 'w', 0o644);
    try {
      for (let off = 0; off < size; off += 1 << 20) writeSync(fd, rnd.bytes(Math.min(1 << 20, size - off)));
    } finally {
      closeSync(fd);
    }
    total += size;
  }
  return total;
}

export interface ArchiveLayer {
  /** a directory whose contents make the layer */
  dir: string;
}

export interface MadeArchive {
  path: string;
  diffIds: string[];
  configDigest: string;
}

/**
 * A docker-archive (what `docker save` wrote before v25) made with GNU tar from directory
 * layers: <diffid-hex>/layer.tar, <config-hex>.json, manifest.json, repositories.
 */
export function makeDockerArchive(out: string, layers: ArchiveLayer[], opts: { tag?: string; editConfig?: (config: { rootfs: { diff_ids: string[] } } & Record<string, unknown>) => void } = {}): MadeArchive {
  const tag = opts.tag;
  const work = mkdtempSync(join(dirname(out), '.archive-'));
  try {
    const diffIds: string[] = [];
    const names: string[] = [];
    for (const l of layers) {
      const tmp = join(work, 'layer.tmp');
      gnuTar(l.dir, tmp);
      const d = sha256File(tmp);
      const hexd = d.slice(7);
      mkdirSync(join(work, hexd), { recursive: true });
      execFileSync('mv', [tmp, join(work, hexd, 'layer.tar')]);
      diffIds.push(d);
      names.push(`${hexd}/layer.tar`);
    }
    const created = '2024-01-01T00:00:00Z';
    const config = {
      architecture: 'amd64', os: 'linux', created,
      config: { Cmd: ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: diffIds },
      history: layers.map((_, i) => ({ created, created_by: `/bin/sh -c #(nop) ADD layer ${i}` })),
    };
    opts.editConfig?.(config);
    const cfg = Buffer.from(JSON.stringify(config));
    const cfgHex = createHash('sha256').update(cfg).digest('hex');
    writeFileSync(join(work, `${cfgHex}.json`), cfg);
    writeFileSync(join(work, 'manifest.json'), JSON.stringify([{ Config: `${cfgHex}.json`, RepoTags: tag ? [tag] : null, Layers: names }]));
    const members = readdirSync(work).sort();
    gnuTar(work, out, members);
    return { path: out, diffIds, configDigest: `sha256:${cfgHex}` };
  } finally {
    removeTree(work);
  }
}

/** Bytes the tree takes (apparent sizes, as `du -sb` counts them). */
export function duBytes(dir: string): number {
  return Number(execFileSync('du', ['-sb', dir], { encoding: 'utf8' }).split('\t')[0]);
}

/** Names of the files directly in a directory (none if it does not exist). */
export function filesIn(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => lstatSync(join(dir, n)).isFile()).sort();
  } catch {
    return [];
  }
}

/** The blobs in a data root's content store. */
export function blobFiles(root: string): string[] {
  return filesIn(join(root, 'content', 'blobs', 'sha256'));
}

export function fileSize(path: string): number {
  return statSync(path).size;
}
