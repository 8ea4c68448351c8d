// Registry verbs: pull, push, tags, login/logout, with docker's events. Loaded lazily by the
// CLI (a command that talks to no registry does not pay for the client).
import { pull as pullImage, push as pushImage, type PullOptions, type PullResult, type PushOptions, type PushResult } from '../registry/index.js';
import { familiarName, parseReference } from '../reference/index.js';
import { emit } from '../store/events.js';
import type { Engine } from './index.js';

export { listTags, login, logout, progressFor, silent, type Progress } from '../registry/index.js';
export { credentialKey } from '../registry/credentials.js';

export async function pull(engine: Engine, ref: string, o: PullOptions = {}): Promise<PullResult> {
  const r = await pullImage(engine, ref, o);
  emit(engine.root, 'image', 'pull', familiarName(parseReference(ref)), { name: familiarName(parseReference(ref)) });
  return r;
}

export async function push(engine: Engine, ref: string, o: PushOptions = {}): Promise<PushResult> {
  const r = await pushImage(engine, ref, o);
  emit(engine.root, 'image', 'push', familiarName(parseReference(ref)), { name: familiarName(parseReference(ref)) });
  return r;
}
