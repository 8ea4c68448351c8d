// Tar headers: ustar encode/decode plus pax extended records (binary-safe, so xattrs such as
// security.capability survive) and GNU long names on read. Written by hand because the tar
// libraries for Node either decode pax values as UTF-8 (mangling binary xattrs) or drop
// device nodes; a layer store needs both exactly.
import { invalidArgument } from '../../errors.js';

export type EntryType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarHeader {
  name: string;
  type: EntryType;
  mode: number; // permission bits incl. setuid/setgid/sticky (07777)
  uid: number;
  gid: number;
  size: number; // data bytes (files only)
  mtime: number; // seconds (may be fractional)
  linkname?: string;
  uname?: string;
  gname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Map<string, Buffer>;
}

const TYPEFLAG: Record<EntryType, string> = { file: '0', link: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };
const FROM_FLAG: Record<string, EntryType> = { '0': 'file', '\0': 'file', '7': 'file', '1': 'link', '2': 'symlink', '3': 'char', '4': 'block', '5': 'dir', '6': 'fifo' };

function readString(buf: Buffer, off: number, len: number): string {
  let end = off;
  while (end < off + len && buf[end] !== 0) end++;
  return buf.toString('utf8', off, end);
}

function readNumber(buf: Buffer, off: number, len: number, field: string): number {
  if (buf[off] & 0x80) {
    // base-256 (GNU) for large values
    let v = 0;
    for (let i = off + 1; i < off + len; i++) v = v * 256 + buf[i];
    if (buf[off] & 0x40) throw invalidArgument(`tar header: negative ${field}`);
    return v + (buf[off] & 0x3f) * 256 ** (len - 1);
  }
  const s = buf.toString('ascii', off, off + len).replace(/\0.*$/s, '').trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw invalidArgument(`tar header: malformed ${field} field "${s.slice(0, 20)}"`, 'the archive is corrupt or not a tar');
  return parseInt(s, 8);
}

function checksum(block: Buffer): number {
  let sum = 8 * 32;
  for (let i = 0; i < 512; i++) if (i < 148 || i >= 156) sum += block[i];
  return sum;
}

export function isZeroBlock(b: Buffer): boolean {
  for (let i = 0; i < 512; i++) if (b[i] !== 0) return false;
  return true;
}

export interface RawHeader {
  typeflag: string;
  name: string;
  linkname: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
}

export function decodeBlock(b: Buffer): RawHeader {
  const stored = readNumber(b, 148, 8, 'checksum');
  if (stored !== checksum(b)) throw invalidArgument('tar header checksum mismatch', 'the archive is corrupt or not a tar');
  const magic = b.toString('ascii', 257, 263);
  let name = readString(b, 0, 100);
  if (magic === 'ustar\0') {
    const prefix = readString(b, 345, 155);
    if (prefix) name = `${prefix}/${name}`;
  }
  return {
    typeflag: String.fromCharCode(b[156]),
    name,
    linkname: readString(b, 157, 100),
    mode: readNumber(b, 100, 8, 'mode'),
    uid: readNumber(b, 108, 8, 'uid'),
    gid: readNumber(b, 116, 8, 'gid'),
    size: readNumber(b, 124, 12, 'size'),
    mtime: readNumber(b, 136, 12, 'mtime'),
    uname: readString(b, 265, 32),
    gname: readString(b, 297, 32),
    devmajor: readNumber(b, 329, 8, 'devmajor'),
    devminor: readNumber(b, 337, 8, 'devminor'),
  };
}

/** Parse pax records; values stay raw bytes (xattrs are binary). */
export function decodePax(buf: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let off = 0;
  while (off < buf.length) {
    if (buf[off] === 0) break;
    const sp = buf.indexOf(0x20, off);
    if (sp < 0) throw invalidArgument('malformed pax header record', 'the archive is corrupt');
    const digits = buf.toString('ascii', off, sp);
    const len = /^[0-9]{1,9}$/.test(digits) ? parseInt(digits, 10) : NaN;
    if (!Number.isFinite(len) || len <= sp - off + 1 || off + len > buf.length || buf[off + len - 1] !== 0x0a) {
      throw invalidArgument('malformed pax header record length', 'the archive is corrupt');
    }
    const rec = buf.subarray(sp + 1, off + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq < 0) throw invalidArgument('malformed pax header record (no "=")', 'the archive is corrupt');
    out.set(rec.toString('utf8', 0, eq), Buffer.from(rec.subarray(eq + 1)));
    off += len;
  }
  return out;
}

export function entryType(typeflag: string, name: string): EntryType | undefined {
  const t = FROM_FLAG[typeflag];
  if (t === 'file' && name.endsWith('/') && typeflag !== '0') return 'dir'; // old v7 dirs
  return t;
}

function writeString(b: Buffer, off: number, len: number, s: string): boolean {
  const bytes = Buffer.from(s, 'utf8');
  if (bytes.length > len) return false;
  bytes.copy(b, off);
  return true;
}

function writeOctal(b: Buffer, off: number, len: number, v: number): boolean {
  const s = Math.floor(v).toString(8);
  if (s.length > len - 1) return false;
  b.write(s.padStart(len - 1, '0') + '\0', off, len, 'ascii');
  return true;
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len), 'ascii'), body]);
}

function ustarBlock(h: { name: string; linkname: string; typeflag: string; mode: number; uid: number; gid: number; size: number; mtime: number; uname: string; gname: string; devmajor: number; devminor: number }, pax: Map<string, Buffer>): Buffer {
  const b = Buffer.alloc(512);
  let name = h.name;
  let prefix = '';
  if (Buffer.byteLength(name) > 100) {
    // try the ustar prefix split, else pax path
    const i = name.lastIndexOf('/', 155);
    if (i > 0 && Buffer.byteLength(name.slice(0, i)) <= 155 && Buffer.byteLength(name.slice(i + 1)) <= 100 && name.slice(i + 1) !== '') {
      prefix = name.slice(0, i);
      name = name.slice(i + 1);
    } else {
      pax.set('path', Buffer.from(h.name));
      name = h.name.slice(0, 99).replace(/[^\x20-\x7e]/g, '_');
    }
  }
  writeString(b, 0, 100, name);
  writeOctal(b, 100, 8, h.mode & 0o7777);
  if (!writeOctal(b, 108, 8, h.uid)) { pax.set('uid', Buffer.from(String(h.uid))); writeOctal(b, 108, 8, 0); }
  if (!writeOctal(b, 116, 8, h.gid)) { pax.set('gid', Buffer.from(String(h.gid))); writeOctal(b, 116, 8, 0); }
  if (!writeOctal(b, 124, 12, h.size)) { pax.set('size', Buffer.from(String(h.size))); writeOctal(b, 124, 12, 0); }
  const sec = Math.floor(h.mtime);
  if (!writeOctal(b, 136, 12, Math.max(0, sec))) { pax.set('mtime', Buffer.from(String(sec))); writeOctal(b, 136, 12, 0); }
  b.write(h.typeflag, 156, 1, 'ascii');
  if (!writeString(b, 157, 100, h.linkname)) { pax.set('linkpath', Buffer.from(h.linkname)); writeString(b, 157, 100, h.linkname.slice(0, 99).replace(/[^\x20-\x7e]/g, '_')); }
  b.write('ustar\0', 257, 6, 'ascii');
  b.write('00', 263, 2, 'ascii');
  if (!writeString(b, 265, 32, h.uname)) pax.set('uname', Buffer.from(h.uname));
  if (!writeString(b, 297, 32, h.gname)) pax.set('gname', Buffer.from(h.gname));
  writeOctal(b, 329, 8, h.devmajor);
  writeOctal(b, 337, 8, h.devminor);
  if (prefix) writeString(b, 345, 155, prefix);
  b.write('        ', 148, 8, 'ascii');
  const sum = checksum(b);
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return b;
}

export function padding(size: number): number {
  return (512 - (size % 512)) % 512;
}

/** Encode a header (and a pax header before it when needed) as bytes. */
export function encodeHeader(h: TarHeader): Buffer {
  const pax = new Map<string, Buffer>();
  if (h.xattrs) for (const [k, v] of [...h.xattrs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) pax.set(`SCHILY.xattr.${k}`, v);
  const name = h.type === 'dir' && !h.name.endsWith('/') ? h.name + '/' : h.name;
  const main = ustarBlock(
    {
      name, linkname: h.linkname ?? '', typeflag: TYPEFLAG[h.type], mode: h.mode, uid: h.uid, gid: h.gid,
      size: h.type === 'file' ? h.size : 0, mtime: h.mtime, uname: h.uname ?? '', gname: h.gname ?? '',
      devmajor: h.devmajor ?? 0, devminor: h.devminor ?? 0,
    },
    pax,
  );
  if (pax.size === 0) return main;
  const body = Buffer.concat([...pax].map(([k, v]) => paxRecord(k, v)));
  const ph = ustarBlock(
    { name: 'PaxHeaders/' + name.replace(/\/$/, '').split('/').pop()!.slice(0, 80), linkname: '', typeflag: 'x', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: Math.max(0, Math.floor(h.mtime)), uname: '', gname: '', devmajor: 0, devminor: 0 },
    new Map(),
  );
  return Buffer.concat([ph, body, Buffer.alloc(padding(body.length)), main]);
}

export const END_OF_ARCHIVE = Buffer.alloc(1024);
