// Tar writer: push headers and file data into a Readable, with backpressure.
import { Readable } from 'node:stream';
import { createReadStream } from 'node:fs';
import { encodeHeader, padding, END_OF_ARCHIVE, type TarHeader } from './header.js';

export interface TarSourceEntry {
  header: TarHeader;
  /** For regular files: a path to read the data from, or the bytes themselves. */
  file?: string;
  data?: Buffer;
  /** Or a stream of exactly header.size bytes (opened when the entry is written). */
  stream?: () => AsyncIterable<Buffer>;
}

/** Turn an (async) sequence of entries into a tar byte stream. */
export function writeTar(entries: AsyncIterable<TarSourceEntry> | Iterable<TarSourceEntry>): Readable {
  async function* gen(): AsyncGenerator<Buffer> {
    for await (const e of entries as AsyncIterable<TarSourceEntry>) {
      yield encodeHeader(e.header);
      if (e.header.type !== 'file' || e.header.size === 0) continue;
      let n = 0;
      if (e.data) {
        n = e.data.length;
        yield e.data;
      } else if (e.file || e.stream) {
        const src = e.stream ? e.stream() : createReadStream(e.file!, { highWaterMark: 1 << 20 });
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
