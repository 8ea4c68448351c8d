// Tar writer: push headers and file data into a Readable, with backpressure.
import { Readable } from 'node:stream';
import { openVerified, readVerified } from '../../scope/index.js';

const SMALL = 1 << 20;
import { encodeHeader, padding, END_OF_ARCHIVE, type TarHeader } from './header.js';

export interface TarSourceEntry {
  header: TarHeader;
  /** For regular files: a path to read the data from, or the bytes themselves. */
  file?: string;
  /** the file's identity when it was lstat-ed: the open must find the same file, never a symlink swapped in since */
  expect?: { dev: number; ino: number };
  data?: Buffer;
  /** Or a stream of exactly header.size bytes (opened when the entry is written). */
  stream?: () => AsyncIterable<Buffer>;
}

const AHEAD = 16; // small files read in parallel ahead of the writer

/** Start reading the next small files while earlier ones are written. */
async function* readAhead(entries: AsyncIterable<TarSourceEntry> | Iterable<TarSourceEntry>): AsyncGenerator<{ e: TarSourceEntry; pending?: Promise<Buffer> }> {
  const it = Symbol.asyncIterator in entries ? entries[Symbol.asyncIterator]() : (entries as Iterable<TarSourceEntry>)[Symbol.iterator]();
  const queue: { e: TarSourceEntry; pending?: Promise<Buffer> }[] = [];
  let done = false;
  for (;;) {
    // a streamed entry may read from the same source as the entries after it (a tar being
    // rewritten): it is written before the source is asked for more
    while (!done && queue.length < AHEAD && !queue.some((q) => q.e.stream)) {
      const r = await it.next();
      if (r.done) { done = true; break; }
      const e = r.value;
      const small = e.file && !e.stream && !e.data && e.header.type === 'file' && e.header.size > 0 && e.header.size <= SMALL;
      const pending = small ? readVerified(e.file!, e.expect, e.header.name, 'it was archived') : undefined;
      pending?.catch(() => undefined); // handled when its turn comes
      queue.push({ e, pending });
    }
    const next = queue.shift();
    if (!next) return;
    yield next;
  }
}

/**
 * An entry's file, opened without following a symlink in its last component and checked to be
 * the file that was lstat-ed (a live container may swap it for a link to a host file meanwhile).
 */
const openChecked = (e: TarSourceEntry) => openVerified(e.file!, e.expect, e.header.name, 'it was archived');

/** Turn an (async) sequence of entries into a tar byte stream. */
export function writeTar(entries: AsyncIterable<TarSourceEntry> | Iterable<TarSourceEntry>): Readable {
  async function* gen(): AsyncGenerator<Buffer> {
    for await (const { e, pending } of readAhead(entries)) {
      const header = encodeHeader(e.header);
      if (e.header.type !== 'file' || e.header.size === 0) {
        yield header;
        continue;
      }
      if (pending) {
        // small files: read ahead, one chunk (header + data + padding) — far less per-file overhead
        const data = await pending;
        if (data.length < e.header.size) throw new Error(`${e.header.name} changed size while being archived (${data.length} of ${e.header.size} bytes)`);
        yield Buffer.concat([header, data.length === e.header.size ? data : data.subarray(0, e.header.size), Buffer.alloc(padding(e.header.size))]);
        continue;
      }
      yield header;
      let n = 0;
      if (e.data) {
        n = e.data.length;
        yield e.data;
      } else if (e.file || e.stream) {
        const src = e.stream ? e.stream() : (await openChecked(e)).createReadStream({ highWaterMark: 1 << 20 });
        for await (const chunk of src) {
          const b = chunk as Buffer;
          const take = Math.min(b.length, e.header.size - n);
          if (take > 0) yield take === b.length ? b : b.subarray(0, take);
          n += take;
          if (n >= e.header.size) break;
        }
      }
      if (n !== e.header.size) throw new Error(`${e.header.name} changed size while being archived (${n} of ${e.header.size} bytes)`);
      const pad = padding(n);
      if (pad) yield Buffer.alloc(pad);
    }
    yield END_OF_ARCHIVE;
  }
  return Readable.from(gen(), { objectMode: false });
}
