// Who owns a transient object (a build's RUN container and its intermediate image): a pid plus
// the process's start time, so a recycled pid is not taken for the owner.
import { readFileSync } from 'node:fs';

export const BUILD_OWNER_LABEL = 'shale.build.owner';

/** "pid:starttime" of a live process, or "pid:" when /proc cannot tell. */
export function processIdentity(pid: number): string {
  return `${pid}:${startTime(pid) ?? ''}`;
}

function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) may hold spaces and parentheses: count from its closing one
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Whether the process named by an identity from processIdentity still runs. */
export function isAlive(identity: string): boolean {
  const [pid, start] = identity.split(':');
  const now = startTime(Number(pid));
  return now !== undefined && (start === '' || now === start);
}
