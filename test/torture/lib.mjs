// Shared helpers for the torture harness: a temp root, the real CLI as a child process with a
// time bound, what a root leaves behind (mounts, processes, temp files), a seeded PRNG and a
// summary table. Plain ESM, no compile step; everything talks to 127.0.0.1 only.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(HERE, '../..');
/** The CLI under test: $SHALE_BIN (e.g. a build of another checkout) or this repo's bin/shale.js. */
export const BIN = resolve(process.env.SHALE_BIN || join(REPO, 'bin/shale.js'));

// ---------- arguments ----------
export function parseArgs(argv, defaults) {
  const o = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) continue;
    const [k, inline] = a.slice(2).split('=', 2);
    const key = k.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    let v = inline;
    if (v === undefined) {
      if (typeof defaults[key] === 'boolean') v = 'true';
      else v = argv[++i];
    }
    o[key] = typeof defaults[key] === 'number' ? Number(v) : typeof defaults[key] === 'boolean' ? v !== 'false' : v;
  }
  return o;
}

// ---------- PRNG ----------
/** mulberry32: small, seeded, good enough to pick delays and commands reproducibly. */
export function prng(seed) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)), // inclusive
    pick: (arr) => arr[Math.floor(next() * arr.length)],
    hex: (n) => Array.from({ length: n }, () => Math.floor(next() * 16).toString(16)).join(''),
  };
}
export function seedFrom(v) {
  if (v === undefined || v === '' || v === null || Number.isNaN(Number(v))) return (Date.now() ^ (process.pid << 8)) >>> 0;
  return Number(v) >>> 0;
}

// ---------- temp dirs ----------
export function tempRoot(prefix = 'shale-torture-') {
  return mkdtempSync(join(tmpdir(), prefix));
}

// ---------- running the CLI ----------
/**
 * Run `shale --root ROOT ...args` with a time bound. Resolves (never rejects) with
 * { code, signal, stdout, stderr, ms, timedOut }. On timeout the whole process group is killed.
 */
export function shale(root, args, opts = {}) {
  return run(process.execPath, [BIN, '--root', root, ...args], opts);
}

export function run(cmd, args, { timeoutMs = 120_000, input, env, cwd } = {}) {
  return new Promise((res) => {
    const t0 = Date.now();
    const child = spawn(cmd, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], detached: true, env: env ? { ...process.env, ...env } : process.env, cwd });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { if (stdout.length < 1 << 20) stdout += d; });
    child.stderr.on('data', (d) => { if (stderr.length < 1 << 20) stderr += d; });
    if (input !== undefined) child.stdin.end(input);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
    }, timeoutMs);
    child.on('error', (e) => { stderr += String(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      res({ code, signal, stdout, stderr, ms: Date.now() - t0, timedOut, pid: child.pid });
    });
  });
}

/** Start `shale --root ROOT ...args` and return { child, done } — for killing it mid-way. */
export function startShale(root, args) {
  const t0 = Date.now();
  const child = spawn(process.execPath, [BIN, '--root', root, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  const done = new Promise((res) => child.on('close', (code, signal) => res({ code, signal, stdout, stderr, ms: Date.now() - t0 })));
  return { child, done };
}

export function sh(cmd, opts = {}) {
  const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The first line of an error, trimmed, for tables. */
export function firstLine(s) {
  return String(s ?? '').trim().split('\n').find((l) => l.trim()) ?? '';
}

// ---------- what a root leaves behind ----------
/** /proc/self/mounts lines whose mount point or options mention the root. */
export function mountsUnder(root) {
  const r = resolve(root);
  return readFileSync('/proc/self/mounts', 'utf8').split('\n').filter((l) => l && l.includes(r)).map((l) => {
    const [src, target, type, options] = l.split(' ');
    return { src, target: target.replace(/\\040/g, ' '), type, options, line: l };
  });
}

/** Processes (not this one) whose command line mentions the root. */
export function processesMentioning(root) {
  const r = resolve(root);
  const found = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    let cmd;
    try { cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ').trim(); } catch { continue; }
    if (cmd.includes(r)) found.push({ pid: Number(p), cmd: cmd.slice(0, 300) });
  }
  return found;
}

function entries(dir) {
  try { return readdirSync(dir); } catch { return []; }
}

/**
 * Temporary files and state a settled root should not have: ingest files, staging/trash dirs,
 * probe and init temp dirs, runtime state and container dirs of containers that do not exist,
 * snapshot dirs without a row. `containers` and `volumes` are the ids/names the CLI lists.
 */
export function leftoverFiles(root, { containers = [], volumes = [] } = {}) {
  const out = [];
  const add = (kind, p) => out.push({ kind, path: p });
  for (const f of entries(join(root, 'content', 'ingest'))) add('ingest', join('content/ingest', f));
  for (const f of entries(join(root, 'tmp'))) add('tmp', join('tmp', f));
  for (const d of ['overlay2', 'vfs', 'fuse-overlayfs']) for (const f of entries(join(root, d, 'tmp'))) add('snapshot-tmp', join(d, 'tmp', f));
  for (const f of entries(root)) if (/^(\.overlay-probe-|tmp-init-|\.tmp|tmp-)/.test(f)) add('root-temp', f);
  const cids = new Set(containers);
  const known = (id) => cids.has(id) || [...cids].some((c) => c.startsWith(id) || id.startsWith(c));
  for (const f of entries(join(root, 'containers'))) if (!known(f)) add('container-dir', join('containers', f));
  for (const f of entries(join(root, 'runtime', 'runc'))) if (!known(f)) add('runtime-state', join('runtime/runc', f));
  // exit codes of auto-removed containers are kept ten minutes by design (for `wait`): only older ones leak
  for (const f of entries(join(root, 'runtime', 'exits'))) {
    let age = 0;
    try { age = Date.now() - statSync(join(root, 'runtime', 'exits', f)).mtimeMs; } catch { /* gone */ }
    if (!known(f) && age > 660_000) add('exit-file', join('runtime/exits', f));
  }
  const vols = new Set(volumes);
  for (const f of entries(join(root, 'volumes'))) {
    if (f === '.trash') { for (const t of entries(join(root, 'volumes', f))) add('volume-trash', join('volumes/.trash', t)); continue; }
    if (!vols.has(f) && !f.startsWith('metadata.db')) add('volume-dir', join('volumes', f));
  }
  // snapshot dirs that no row of the driver's metadata names
  for (const d of ['overlay2', 'vfs']) {
    const dbPath = join(root, d, 'metadata.db');
    if (!existsSync(dbPath)) continue;
    const ids = snapshotIds(dbPath);
    if (!ids) continue;
    for (const f of entries(join(root, d, 'snapshots'))) if (!ids.has(f)) add('snapshot-dir', join(d, 'snapshots', f));
  }
  return out;
}

let Database;
async function loadSqlite() {
  if (Database !== undefined) return;
  try { Database = (await import(join(REPO, 'node_modules/better-sqlite3/lib/index.js'))).default; } catch { Database = null; }
}
await loadSqlite();
function snapshotIds(dbPath) {
  if (!Database) return undefined;
  let db;
  try {
    db = new Database(dbPath, { readonly: true, fileMustExist: true, timeout: 5000 });
    const t = db.prepare("SELECT name FROM sqlite_master WHERE type='table'").all().map((r) => r.name);
    const table = t.find((n) => /snapshot/.test(n));
    if (!table) return undefined;
    const cols = db.prepare(`PRAGMA table_info(${table})`).all().map((c) => c.name);
    if (!cols.includes('id')) return undefined;
    return new Set(db.prepare(`SELECT id FROM ${table}`).all().map((r) => String(r.id)));
  } catch { return undefined; } finally { try { db?.close(); } catch { /* */ } }
}

/** Images as `ID REPO:TAG` (full IDs). */
export async function listImages(root) {
  const r = await shale(root, ['images', '-a', '--no-trunc', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}'], { timeoutMs: 60_000 });
  if (r.code !== 0) return { ok: false, error: firstLine(r.stderr), images: [] };
  const images = r.stdout.split('\n').filter(Boolean).map((l) => { const [id, ref] = l.split(' '); return { id, ref }; });
  return { ok: true, images };
}
export async function listContainers(root) {
  const r = await shale(root, ['ps', '-aq', '--no-trunc'], { timeoutMs: 60_000 });
  return r.code === 0 ? r.stdout.split('\n').filter(Boolean) : [];
}
export async function listVolumes(root) {
  const r = await shale(root, ['volume', 'ls', '-q'], { timeoutMs: 60_000 });
  return r.code === 0 ? r.stdout.split('\n').filter(Boolean) : [];
}

/** `system check` parsed: { code, problems[], info[], unreferenced, out }. */
export async function systemCheck(root, repair = false) {
  const r = await shale(root, ['system', 'check', ...(repair ? ['--repair'] : [])], { timeoutMs: 180_000 });
  const problems = r.stderr.split('\n').filter((l) => l.trim()).filter((l) => !/^\s*$/.test(l));
  const info = r.stdout.split('\n').filter((l) => l && !/^checked \d+ blobs/.test(l));
  return { code: r.code, timedOut: r.timedOut, problems, info, out: (r.stdout + r.stderr).trim(), clean: r.code === 0 && problems.length === 0 };
}

// ---------- cleaning up ----------
/** Kill every process mentioning the root (runc containers via runc first), unmount, rm -rf. */
export async function destroyRoot(root, { keep = false } = {}) {
  const r = resolve(root);
  const runcRoot = join(r, 'runtime', 'runc');
  if (existsSync(runcRoot)) {
    for (const id of entries(runcRoot)) {
      sh(`runc --root '${runcRoot}' kill '${id}' KILL 2>/dev/null; runc --root '${runcRoot}' delete -f '${id}' 2>/dev/null`);
    }
  }
  for (let i = 0; i < 5; i++) {
    const ps = processesMentioning(r);
    if (!ps.length) break;
    for (const p of ps) { try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ } }
    await sleep(100);
  }
  for (let i = 0; i < 5; i++) {
    const ms = mountsUnder(r).filter((m) => m.target.startsWith(r)).sort((a, b) => b.target.length - a.target.length);
    if (!ms.length) break;
    for (const m of ms) sh(`umount '${m.target}' 2>/dev/null || umount -l '${m.target}' 2>/dev/null`);
  }
  if (!keep) rmSync(r, { recursive: true, force: true, maxRetries: 3 });
}

// ---------- registry ----------
export async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise((r) => s.close(r));
  return port;
}

/** docker-registry on 127.0.0.1:<free port> with its own storage (as src/registry/testkit.ts). */
export async function startRegistry() {
  const dir = mkdtempSync(join(tmpdir(), 'shale-torture-registry-'));
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const cfg = join(dir, 'config.yml');
    writeFileSync(cfg, `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n`);
    const child = spawn('docker-registry', ['serve', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    for (let i = 0; i < 80 && child.exitCode === null; i++) {
      try {
        const r = await fetch(`http://127.0.0.1:${port}/v2/`);
        if (r.status === 200) {
          return {
            port, host: `127.0.0.1:${port}`, dir,
            async stop() {
              if (child.exitCode === null) { child.kill('SIGTERM'); await new Promise((r) => child.once('exit', r)); }
              rmSync(dir, { recursive: true, force: true });
            },
          };
        }
      } catch { /* not yet */ }
      await sleep(100);
    }
    child.kill('SIGKILL');
    if (attempt === 2) throw new Error(`docker-registry did not start: ${stderr}`);
  }
}

// ---------- fixtures ----------
/** A deterministic pseudo-random file of `mb` megabytes. */
export function writeRandomFile(path, mb, seed = 1) {
  const r = prng(seed);
  const buf = Buffer.alloc(mb << 20);
  for (let i = 0; i < buf.length; i += 4) buf.writeUInt32LE((r.next() * 0x100000000) >>> 0, i);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, buf);
}

/** A build context: FROM busybox, COPY of `mb` MB, a RUN that writes and sleeps a little. */
export function makeBuildContext(dir, { mb = 4, unique = '', seed = 1, runSleep = 0.3 } = {}) {
  mkdirSync(dir, { recursive: true });
  writeRandomFile(join(dir, 'big.bin'), mb, seed);
  writeFileSync(join(dir, 'unique.txt'), `unique ${unique}\n`);
  writeFileSync(join(dir, 'Dockerfile'), [
    'FROM busybox',
    'COPY big.bin /data/big.bin',
    'COPY unique.txt /data/unique.txt',
    `RUN head -c 1048576 /data/big.bin > /data/run.bin && sleep ${runSleep} && echo done > /data/run.txt`,
    'CMD ["cat", "/data/unique.txt"]',
    '',
  ].join('\n'));
  return dir;
}

// ---------- reporting ----------
export function table(rows, cols) {
  const w = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? '').length)));
  const line = (vals) => vals.map((v, i) => String(v ?? '').padEnd(w[i])).join('  ');
  return [line(cols), line(w.map((n) => '-'.repeat(n))), ...rows.map((r) => line(cols.map((c) => r[c])))].join('\n');
}

export function log(...a) {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${a.join(' ')}\n`);
}

export function dirSize(p) {
  let n = 0;
  try {
    const st = statSync(p);
    if (!st.isDirectory()) return st.size;
    for (const f of readdirSync(p)) n += dirSize(join(p, f));
  } catch { /* gone */ }
  return n;
}
