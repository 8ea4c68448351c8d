// Where the image commands meet containers and storage drivers. Kept apart so that the
// image store does not depend on containers; the containers module fills these in.
import type { Engine } from './index.js';

/** Name or short ID of a container that uses the image, if any. */
export function containerUsingImage(engine: Engine, imageId: string): string | undefined {
  void engine;
  void imageId;
  return undefined;
}

/** Remove unpacked layers (snapshots) that no image or container needs any more. */
export async function gcSnapshots(engine: Engine): Promise<void> {
  void engine;
}

/** inspect for non-image objects (containers, volumes). */
export async function inspectOther(engine: Engine, name: string, opts: { size?: boolean; type?: string }): Promise<unknown | undefined> {
  void engine;
  void name;
  void opts;
  return undefined;
}
