// `shale bootstrap busybox`: a small base image made offline from Debian's busybox-static.
// The rootfs is generated in memory (busybox, one symlink per applet, /etc/passwd, /etc/group)
// with fixed timestamps, so every machine makes the same layer.
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { Readable } from 'node:stream';
import { writeTar, type TarSourceEntry } from '../archive/index.js';
import type { Store } from '../store/index.js';
import { failedPrecondition } from '../errors.js';
import { importTarball } from './import.js';
import type { ImageRecord } from './store.js';

const MTIME = Date.UTC(2024, 0, 1) / 1000;

export function busyboxRootfs(busybox = '/bin/busybox'): Readable {
  let st;
  try {
    st = statSync(busybox);
  } catch {
    throw failedPrecondition(`${busybox} not found`, 'install the Debian package busybox-static');
  }
  const applets = execFileSync(busybox, ['--list-full'], { encoding: 'utf8' }).split('\n').filter(Boolean).sort();
  const dirs = ['bin', 'dev', 'etc', 'home', 'proc', 'root', 'sbin', 'sys', 'tmp', 'usr', 'usr/bin', 'usr/sbin', 'var', 'var/tmp'];
  const entries: TarSourceEntry[] = [];
  const h = (name: string, type: TarSourceEntry['header']['type'], mode: number, extra: Partial<TarSourceEntry['header']> = {}) => ({ name, type, mode, uid: 0, gid: 0, size: 0, mtime: MTIME, ...extra });
  const files = new Map<string, TarSourceEntry>();
  for (const d of dirs) files.set(d, { header: h(d, 'dir', d === 'tmp' || d === 'var/tmp' ? 0o1777 : d === 'root' ? 0o700 : 0o755) });
  files.set('bin/busybox', { header: h('bin/busybox', 'file', 0o755, { size: st.size }), file: busybox });
  for (const a of applets) if (a !== 'bin/busybox' && !files.has(a)) files.set(a, { header: h(a, 'symlink', 0o777, { linkname: '/bin/busybox' }) });
  const passwd = Buffer.from('root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  const group = Buffer.from('root:x:0:\nnogroup:x:65534:\n');
  files.set('etc/passwd', { header: h('etc/passwd', 'file', 0o644, { size: passwd.length }), data: passwd });
  files.set('etc/group', { header: h('etc/group', 'file', 0o644, { size: group.length }), data: group });
  for (const k of [...files.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))) entries.push(files.get(k)!);
  return writeTar(entries);
}

export async function bootstrapBusybox(engine: Store, tag = 'busybox:latest', busybox?: string): Promise<ImageRecord> {
  return importTarball(engine, busyboxRootfs(busybox), {
    tag,
    message: 'shale bootstrap busybox (from busybox-static)',
    changes: (c) => {
      c.config = { ...c.config, Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] };
    },
  });
}
