// The few system calls Node lacks (mount, mknod, xattrs). One module so the rest of shale
// never shells out on its own; each call runs a standard tool from util-linux/coreutils/attr.
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { promisify } from 'node:util';
import { failedPrecondition, permissionDenied, ShaleError } from '../errors.js';

const run = promisify(execFile);

/** Whether a process with this pid exists (EPERM: it does, owned by someone else). */
export function pidAlive(pid: number | undefined): boolean {
  if (!Number.isInteger(pid) || (pid as number) <= 0) return false;
  try {
    process.kill(pid as number, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The start time of a process (field 22 of /proc/PID/stat, in clock ticks since boot), or ''
 * when it does not exist: with the pid it names one process even after the pid is reused.
 */
export function processStartTime(pid: number): string {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) may hold spaces and parentheses: count from its closing one
    return st.slice(st.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    return '';
  }
}

/**
 * SQLite maps <db>-shm into memory. A -shm file left sparse by a process that hit a full disk
 * (its size set, some blocks never allocated) kills the next process that touches such a page
 * with SIGBUS, before any error can be shown. Before a database is opened, allocate what is
 * missing (fallocate keeps the contents); when the disk cannot give it, say so in one line.
 */
export function ensureShmBacked(dbPath: string): void {
  const shm = `${dbPath}-shm`;
  let st;
  try {
    st = statSync(shm);
  } catch {
    return;
  }
  if (st.blocks * 512 >= st.size) return;
  const r = spawnSync('fallocate', ['-l', String(st.size), shm], { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new ShaleError('Unavailable', `no space left on device for the metadata database's shared memory (${shm}, ${st.size} bytes): ${(r.stderr || r.error?.message || '').trim()}`, 'free some space on the data root\'s filesystem and retry');
  }
}

function toolMissing(tool: string, pkg: string): ShaleError {
  return failedPrecondition(`${tool} is not installed`, `install the Debian package ${pkg}`);
}

async function exec(tool: string, pkg: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run(tool, args, { maxBuffer: 256 << 20, encoding: 'utf8' });
    return stdout;
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT') throw toolMissing(tool, pkg);
    const msg = (err.stderr ?? err.message).toString().trim();
    if (/permission denied|operation not permitted|must be superuser/i.test(msg)) {
      const hint = tool === 'mount' || tool === 'umount' || tool === 'fuse-overlayfs'
        ? 'mounting a container rootfs needs CAP_SYS_ADMIN: run shale as root (image commands work without it; a rootless run path is not there yet)'
        : 'creating device nodes needs CAP_MKNOD: run as root';
      throw permissionDenied(`${tool} ${args.join(' ')}: ${msg.split('\n')[0]}`, hint);
    }
    throw new ShaleError('Internal', `${tool} ${args.join(' ')}: ${msg}`);
  }
}

export async function mknod(path: string, kind: 'c' | 'b' | 'p', major = 0, minor = 0): Promise<void> {
  if (kind === 'p') await exec('mknod', 'coreutils', [path, 'p']);
  else await exec('mknod', 'coreutils', [path, kind, String(major), String(minor)]);
}

export async function setXattr(path: string, name: string, value: Buffer): Promise<void> {
  await exec('setfattr', 'attr', ['-h', '-n', name, '-v', '0x' + value.toString('hex'), path]);
}

/** Decode getfattr's escaped file names (\ooo octal escapes). */
function unescape(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\' && /^[0-7]{3}$/.test(s.slice(i + 1, i + 4))) {
      bytes.push(parseInt(s.slice(i + 1, i + 4), 8));
      i += 3;
    } else if (s[i] === '\\' && s[i + 1] === '\\') {
      bytes.push(0x5c);
      i += 1;
    } else bytes.push(...Buffer.from(s[i], 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

function parseGetfattr(out: string): Map<string, Map<string, Buffer>> {
  const res = new Map<string, Map<string, Buffer>>();
  let cur: Map<string, Buffer> | undefined;
  for (const line of out.split('\n')) {
    if (line.startsWith('# file: ')) {
      cur = new Map();
      res.set(unescape(line.slice(8)), cur);
    } else if (cur && line && !line.startsWith('#')) {
      const eq = line.indexOf('=');
      if (eq < 0) continue;
      const k = line.slice(0, eq);
      const v = line.slice(eq + 1);
      cur.set(k, v.startsWith('0x') ? Buffer.from(v.slice(2), 'hex') : v.startsWith('0s') ? Buffer.from(v.slice(2), 'base64') : Buffer.from(v.replace(/^"|"$/g, '')));
    }
  }
  for (const [k, v] of res) if (v.size === 0) res.delete(k);
  return res;
}

let haveGetfattr: boolean | undefined;
/** All xattrs under a tree (not following symlinks), absolute path -> name -> value. Empty map when getfattr is missing. */
export async function xattrsOfTree(root: string): Promise<Map<string, Map<string, Buffer>>> {
  if (haveGetfattr === undefined) haveGetfattr = spawnSync('getfattr', ['--version']).status === 0;
  if (!haveGetfattr) return new Map();
  try {
    const { stdout } = await run('getfattr', ['-R', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', root], { maxBuffer: 1 << 30, encoding: 'utf8' });
    return parseGetfattr(stdout);
  } catch (e) {
    const err = e as { stdout?: string };
    return parseGetfattr(err.stdout ?? ''); // getfattr exits 1 if some file vanished; keep what it read
  }
}

export async function xattrsOf(path: string): Promise<Map<string, Buffer>> {
  if (haveGetfattr === undefined) haveGetfattr = spawnSync('getfattr', ['--version']).status === 0;
  if (!haveGetfattr) return new Map();
  try {
    const { stdout } = await run('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', path], { encoding: 'utf8' });
    return parseGetfattr(stdout).get(path) ?? new Map();
  } catch {
    return new Map();
  }
}

export interface Mount {
  type: string; // overlay | bind | fuse.fuse-overlayfs
  source: string;
  target?: string;
  options: string[];
}

export async function mount(m: Mount, target: string, cwd?: string): Promise<void> {
  if (m.type === 'bind') {
    await exec('mount', 'mount', ['--bind', ...(m.options.includes('ro') ? ['-o', 'ro'] : []), m.source, target]);
    return;
  }
  if (m.type === 'fuse-overlayfs') {
    await exec('fuse-overlayfs', 'fuse-overlayfs', ['-o', m.options.join(','), target]);
    return;
  }
  const args = ['-t', m.type, '-o', m.options.join(','), m.source, target];
  try {
    await run('mount', args, { cwd, encoding: 'utf8' });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    const msg = (err.stderr ?? err.message).trim();
    if (/permission denied|must be superuser|not permitted/i.test(msg)) {
      throw permissionDenied(`mounting ${m.type} on ${target} failed: ${msg}`, 'overlayfs needs CAP_SYS_ADMIN; run as root or use --storage-driver vfs');
    }
    throw new ShaleError('Internal', `mounting ${m.type} on ${target} failed: ${msg}`, 'check dmesg for the kernel\'s reason');
  }
}

export async function unmount(target: string, lazy = false): Promise<void> {
  try {
    await run('umount', lazy ? ['-l', target] : [target], { encoding: 'utf8' });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    const msg = (err.stderr ?? err.message).trim();
    if (/not mounted|no mount point/i.test(msg)) return;
    throw new ShaleError('Internal', `umount ${target}: ${msg}`);
  }
}

/** Every mount point in this process's mount table (it escapes space, tab, newline and backslash as \\ooo). */
export function mountPoints(): string[] {
  let text: string;
  try {
    text = readFileSync('/proc/self/mounts', 'utf8');
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const l of text.split('\n')) {
    const t = l.split(' ')[1];
    if (t) out.push(t.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
  }
  return out;
}

/** Is something mounted on target (an absolute, canonical path)? Reads /proc/self/mounts, no process. */
export function isMounted(target: string): boolean {
  return mountPoints().includes(target);
}

/**
 * Try a mount synchronously and take it off again (storage-driver detection needs an answer
 * before anything async can run). Returns the mount tool's error text when it fails.
 */
export function probeMountSync(m: Mount, target: string, cwd?: string): { ok: true } | { ok: false; error: string } {
  const args = m.type === 'bind' ? ['--bind', m.source, target] : ['-t', m.type, '-o', m.options.join(','), m.source, target];
  const r = spawnSync('mount', args, { cwd, encoding: 'utf8' });
  if (r.error || r.status !== 0) return { ok: false, error: (r.stderr || r.error?.message || `mount exited with ${r.status}`).trim() };
  const u = spawnSync('umount', [target], { encoding: 'utf8' });
  if (u.status !== 0) spawnSync('umount', ['-l', target]);
  return { ok: true };
}
