// The distribution-spec client: pull, push, login/logout against any OCI registry.
// Other modules (run, build) call pullIfMissing, which only ever reaches loopback registries.
import type { Store } from '../store/index.js';
import type { ImageRecord } from '../images/store.js';
import { familiarName, parseReference } from '../reference/index.js';
import { pull, type PullOptions } from './pull.js';
import { progressFor } from './progress.js';
import { isLoopback } from './transport.js';

export { pull, listTags, fetchManifest, parseManifest, choosePlatform, MANIFEST_LIMIT, type PullOptions, type PullResult } from './pull.js';
export { push, type PushOptions, type PushResult } from './push.js';
export { login, logout, loginDomain } from './login.js';
export { Transport, isLoopback, registryBase, parseChallenge, type TransportOptions } from './transport.js';
export { progressFor, silent, type Progress } from './progress.js';
export { RegistryError } from './errors.js';

/**
 * The image `ref` names, pulling it first when it is missing and lives on a loopback registry
 * (localhost, 127.0.0.0/8, ::1). Returns undefined for a missing image anywhere else: shale never
 * reaches out to a remote registry on its own (docker would pull; the caller reports "No such image").
 * Pull output goes to stderr unless opts.progress says otherwise.
 */
export async function pullIfMissing(engine: Store, ref: string, opts: PullOptions = {}): Promise<ImageRecord | undefined> {
  const have = engine.images.tryResolve(ref);
  if (have) return have;
  let r;
  try {
    r = parseReference(ref);
  } catch {
    return undefined;
  }
  if (!isLoopback(r.domain)) return undefined;
  const progress = opts.progress ?? progressFor(process.stderr);
  progress.line(`Unable to find image '${familiarName(r)}' locally`);
  const res = await pull(engine, ref, { ...opts, progress });
  return res.image;
}
