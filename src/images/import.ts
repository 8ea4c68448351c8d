// docker import: a rootfs tarball becomes a one-layer image. The diff_id is the sha256 of the
// uncompressed tar as given (docker does the same); the stored blob is gzip-compressed.
import type { Readable } from 'node:stream';
import { openUncompressed } from '../archive/index.js';
import type { Store } from '../store/index.js';
import { hostArch, type ImageConfig } from '../oci/index.js';
import { ingestTar } from './layers.js';
import type { ImageRecord } from './store.js';

export interface ImportOptions {
  tag?: string;
  message?: string;
  /** apply the Dockerfile-instruction changes (-c) to the config */
  changes?: (config: ImageConfig) => void;
  platform?: { os?: string; architecture?: string };
}

export async function importTarball(engine: Store, source: Readable, opts: ImportOptions = {}): Promise<ImageRecord> {
  const release = engine.images.lease(['*']);
  try {
    const { tar } = await openUncompressed(source, { freeSpaceAt: engine.content.ingestDir });
    const layer = await ingestTar(engine.content, tar);
    const created = new Date().toISOString();
    const config: ImageConfig = {
      architecture: opts.platform?.architecture ?? hostArch(),
      os: opts.platform?.os ?? 'linux',
      created,
      config: {},
      rootfs: { type: 'layers', diff_ids: [layer.diffId] },
      // docker: the message, or "Imported from -", is both the config's and the history's comment
      comment: opts.message || 'Imported from -',
      history: [{ created, created_by: '', comment: opts.message || 'Imported from -' }],
    };
    opts.changes?.(config);
    return engine.images.createImage(config, [layer], opts.tag ? [opts.tag] : []);
  } finally {
    release();
  }
}
