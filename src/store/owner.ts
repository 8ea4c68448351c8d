// Who owns a transient object (a build's RUN container and its intermediate image): a pid plus
// the process's start time, so a recycled pid is not taken for the owner.
import { processStartTime } from '../sys/index.js';

export const BUILD_OWNER_LABEL = 'shale.build.owner';

/** "pid:starttime" of a live process. */
export function processIdentity(pid: number): string {
  return `${pid}:${processStartTime(pid)}`;
}

/** Whether the process named by an identity from processIdentity still runs. */
export function isAlive(identity: string): boolean {
  const [pid, start] = identity.split(':');
  const now = processStartTime(Number(pid));
  return now !== '' && (start === '' || now === start);
}
