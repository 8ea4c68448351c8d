// Rewrite a layer tar entry by entry: used to clamp timestamps to SOURCE_DATE_EPOCH so that
// a RUN step that writes the same files gives the same layer digest (BuildKit's
// rewrite-timestamp). Data streams through; nothing is buffered but one entry's header.
import type { Readable } from 'node:stream';
import { readTar } from './tar/reader.js';
import { writeTar, type TarSourceEntry } from './tar/writer.js';

export function clampMtimes(tar: AsyncIterable<Buffer>, epoch: number): Readable {
  async function* entries(): AsyncGenerator<TarSourceEntry> {
    for await (const { header, body } of readTar(tar)) {
      const h = { ...header, mtime: Math.min(header.mtime, epoch) };
      yield h.type === 'file' && h.size > 0 ? { header: h, stream: () => body } : { header: h };
    }
  }
  return writeTar(entries());
}
