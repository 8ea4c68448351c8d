// The build verb: a context (a directory, or a tar stream as `build -` and the API's POST /build
// send it) and the builder's options in, an image out. Bases missing locally are pulled only from
// loopback registries (pullIfMissing); RUN steps run as containers on this engine's store.
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { build, privateTmp, type BuildOptions } from '../builder/build.js';
import { runStep } from '../builder/run.js';
import { applyLayer, openUncompressed } from '../archive/index.js';
import type { Engine } from './index.js';

export { ENTITLEMENTS } from '../builder/build.js';

export type BuildRequest = Omit<BuildOptions, 'contextDir' | 'runStep' | 'resolveBase'> & {
  /** a directory, or a tar (plain or compressed) of the context */
  context: { dir: string } | { tar: Readable };
};

export async function buildImage(engine: Engine, req: BuildRequest): Promise<Awaited<ReturnType<typeof build>>> {
  const { context, ...rest } = req;
  let tmp: string | undefined;
  try {
    let contextDir: string;
    if ('dir' in context) contextDir = context.dir;
    else {
      tmp = await mkdtemp(join(await privateTmp(engine), `build-ctx-${process.pid}-`));
      const { tar } = await openUncompressed(context.tar);
      await applyLayer(tmp, tar, { whiteouts: 'apply', sameOwner: false });
      contextDir = tmp;
    }
    return await build(engine, { ...rest, contextDir, runStep, resolveBase: async (name) => {
      // the registry client loads only when a base is missing locally
      const { pullIfMissing } = await import('../registry/index.js');
      await pullIfMissing(engine, name);
    } });
  } finally {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }
}
