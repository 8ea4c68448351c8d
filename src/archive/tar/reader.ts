// Streaming tar reader: walks an archive entry by entry without buffering file data.
// The caller gets each header (pax and GNU long names already folded in) and a body
// iterator that must be consumed (or is skipped) before the next entry.
import { invalidArgument, dataLoss } from '../../errors.js';
import { decodeBlock, decodePax, entryType, isZeroBlock, padding, type TarHeader } from './header.js';

const MAX_META = 1 << 20; // pax / long-name records larger than 1 MiB are refused

/** Pulls exact byte counts from an async iterable of chunks. */
export class ByteReader {
  private it: AsyncIterator<Buffer>;
  private buf: Buffer = Buffer.alloc(0);
  private done = false;
  consumed = 0;
  constructor(source: AsyncIterable<Buffer | Uint8Array>) {
    this.it = (source as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }
  private async fill(): Promise<boolean> {
    if (this.done) return false;
    const r = await this.it.next();
    if (r.done) { this.done = true; return false; }
    const chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    return true;
  }
  /** Exactly n bytes, or fewer only at end of stream. */
  async read(n: number): Promise<Buffer> {
    while (this.buf.length < n) if (!(await this.fill())) break;
    const out = this.buf.subarray(0, Math.min(n, this.buf.length));
    this.buf = this.buf.subarray(out.length);
    this.consumed += out.length;
    return out;
  }
  async *chunks(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0 && !(await this.fill())) throw dataLoss(`tar archive is truncated (${left} bytes of an entry missing)`, 'the file or download was cut short');
      const take = Math.min(left, this.buf.length);
      const out = this.buf.subarray(0, take);
      this.buf = this.buf.subarray(take);
      this.consumed += take;
      left -= take;
      yield out;
    }
  }
  async skip(n: number): Promise<void> {
    for await (const _ of this.chunks(n)) { /* discard */ }
  }
  /** Stop reading: lets the source release what it holds (a file, a decompressor process). */
  async close(): Promise<void> {
    this.done = true;
    this.buf = Buffer.alloc(0);
    try {
      await this.it.return?.();
    } catch {
      /* the source already failed; its error was (or will be) reported by the reader */
    }
  }
  /** Drain whatever is left (trailing zero blocks or padding from compressors). */
  async drain(): Promise<void> {
    this.buf = Buffer.alloc(0);
    while (await this.fill()) this.buf = Buffer.alloc(0);
  }
}

export interface TarEntry {
  header: TarHeader;
  /** Data of a regular file; must be iterated fully or not at all. */
  body: AsyncIterable<Buffer>;
}

/** Iterate the entries of an (uncompressed) tar stream. */
export async function* readTar(source: AsyncIterable<Buffer | Uint8Array>): AsyncGenerator<TarEntry> {
  const r = new ByteReader(source);
  try {
    yield* entries(r);
  } finally {
    await r.close(); // also when the consumer stops early or throws
  }
}

// pax keys of GNU's sparse formats 0.x and 1.0: the data that follows is a sparse map plus
// fragments, not the file, so taking it as a regular file would silently corrupt it
const GNU_SPARSE = /^GNU\.sparse\./;

async function* entries(r: ByteReader): AsyncGenerator<TarEntry> {
  let pax: Map<string, Buffer> | undefined;
  let longName: string | undefined;
  let longLink: string | undefined;
  let sawEntry = false;
  for (;;) {
    const block = await r.read(512);
    if (block.length === 0) {
      if (!sawEntry) throw invalidArgument('not a tar archive: it is empty');
      throw dataLoss('tar archive is truncated: no end-of-archive marker', 'the file or download was cut short');
    }
    if (block.length < 512) throw dataLoss('tar archive is truncated inside a header', 'the file or download was cut short');
    if (isZeroBlock(block)) {
      await r.drain();
      return;
    }
    const raw = decodeBlock(block);
    sawEntry = true;
    const meta = async (): Promise<Buffer> => {
      if (raw.size > MAX_META) throw invalidArgument(`tar extended header of ${raw.size} bytes is too large (limit ${MAX_META})`, 'the archive is malformed or hostile');
      const b = await r.read(raw.size);
      if (b.length < raw.size) throw dataLoss('tar archive is truncated inside an extended header');
      await r.skip(padding(raw.size));
      return b;
    };
    switch (raw.typeflag) {
      case 'x': pax = decodePax(await meta()); continue;
      // global pax headers are checked and then ignored, as Go's archive/tar (docker, containerd)
      // does: a global path/size/xattr would otherwise apply to every entry after it
      case 'g': decodePax(await meta()); continue;
      case 'L': longName = (await meta()).toString('utf8').replace(/\0+$/, ''); continue;
      case 'K': longLink = (await meta()).toString('utf8').replace(/\0+$/, ''); continue;
    }
    const p = pax ?? new Map<string, Buffer>();
    pax = undefined;
    let name = longName ?? raw.name;
    let linkname = longLink ?? raw.linkname;
    longName = longLink = undefined;
    const str = (k: string) => p.get(k)?.toString('utf8');
    const num = (k: string, d: number) => {
      const v = str(k);
      if (v === undefined) return d;
      const n = Number(v);
      if (!/^\d+(\.\d+)?$/.test(v) || !Number.isFinite(n)) throw invalidArgument(`tar pax header ${k}="${v.slice(0, 30)}" is not a valid number`);
      return n;
    };
    if (p.has('path')) name = str('path')!;
    if (p.has('linkpath')) linkname = str('linkpath')!;
    const type = entryType(raw.typeflag, name);
    const size = num('size', raw.size);
    if (!Number.isSafeInteger(size)) throw invalidArgument(`tar entry ${JSON.stringify(name)} has an impossible size ${size}`);
    if (type === undefined) {
      // unknown type (e.g. GNU sparse 'S', volume 'V'): refuse rather than silently drop content
      throw invalidArgument(`tar entry ${JSON.stringify(name)} has unsupported type flag ${JSON.stringify(raw.typeflag)}`, 'only files, dirs, links, symlinks, devices and fifos are allowed in a layer');
    }
    if ([...p.keys()].some((k) => GNU_SPARSE.test(k))) {
      throw invalidArgument(`tar entry ${JSON.stringify(name)} is a GNU sparse file (pax GNU.sparse.*), which is unsupported`, 'create the layer without --sparse');
    }
    let xattrs: Map<string, Buffer> | undefined;
    for (const [k, v] of p) {
      if (k.startsWith('SCHILY.xattr.')) (xattrs ??= new Map()).set(k.slice('SCHILY.xattr.'.length), v);
    }
    const header: TarHeader = {
      name, type, linkname: linkname || undefined, mode: raw.mode & 0o7777,
      uid: num('uid', raw.uid), gid: num('gid', raw.gid),
      size: type === 'file' ? size : 0, mtime: num('mtime', raw.mtime),
      uname: str('uname') ?? raw.uname, gname: str('gname') ?? raw.gname,
      devmajor: raw.devmajor, devminor: raw.devminor, xattrs,
    };
    // only regular files carry data; for every other type the size field is ignored, as Go's
    // archive/tar does, so a layer reads as the same entries here as in docker
    const dataSize = type === 'file' ? size : 0;
    let consumed = false;
    const body: AsyncIterable<Buffer> = {
      [Symbol.asyncIterator]: () => { consumed = true; return r.chunks(dataSize)[Symbol.asyncIterator](); },
    };
    const start = r.consumed;
    yield { header, body };
    const read = consumed ? r.consumed - start : 0;
    await r.skip(dataSize - read + padding(dataSize));
  }
}
