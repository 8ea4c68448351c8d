// The event journal: what docker's daemon streams on /events, recorded by whichever process acts
// (shale has no daemon), as JSON lines in <root>/events.jsonl. Appends are single writes of
// one short line with O_APPEND, so concurrent writers never interleave inside a line; the file
// rotates to events.jsonl.1 past 4 MiB. Readers (the API's /events, `shale events`) read both
// files for `since` and tail the current one to follow. Losing an event never fails the verb.
import { appendFileSync, closeSync, openSync, readFileSync, readSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';

export type EventType = 'container' | 'image' | 'volume' | 'network' | 'builder';

export interface EngineEvent {
  Type: EventType;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'local';
  time: number;
  timeNano: number;
  // the pre-1.22 fields docker still sends for containers and images
  status?: string;
  id?: string;
  from?: string;
}

const MAX_JOURNAL = 4 * 1024 * 1024;

export function journalPath(root: string): string {
  return join(root, 'events.jsonl');
}

export function emit(root: string, type: EventType, action: string, id: string, attributes: Record<string, string> = {}): void {
  const nowNs = BigInt(Date.now()) * 1_000_000n + BigInt(Number(process.hrtime.bigint() % 1_000_000n));
  const ev: EngineEvent = {
    Type: type, Action: action, Actor: { ID: id, Attributes: attributes }, scope: 'local',
    time: Number(nowNs / 1_000_000_000n), timeNano: Number(nowNs),
  };
  if (type === 'container' || type === 'image') {
    ev.status = action;
    ev.id = id;
    if (attributes.image) ev.from = attributes.image;
  }
  const path = journalPath(root);
  try {
    try {
      if (statSync(path).size > MAX_JOURNAL) renameSync(path, `${path}.1`);
    } catch { /* no journal yet */ }
    appendFileSync(path, JSON.stringify(ev) + '\n', { mode: 0o600 });
  } catch { /* an event is not worth failing the verb for */ }
}

function parse(text: string): EngineEvent[] {
  const out: EngineEvent[] = [];
  for (const l of text.split('\n')) {
    if (!l) continue;
    try { out.push(JSON.parse(l) as EngineEvent); } catch { /* a line cut by a crash */ }
  }
  return out;
}

/** Events recorded so far (oldest first), and where the current file ends, to follow from. */
export function readEvents(root: string): { events: EngineEvent[]; offset: number; ino: number } {
  const path = journalPath(root);
  const events: EngineEvent[] = [];
  try { events.push(...parse(readFileSync(`${path}.1`, 'utf8'))); } catch { /* none rotated */ }
  try {
    const buf = readFileSync(path);
    const end = buf.lastIndexOf(0x0a) + 1;
    events.push(...parse(buf.subarray(0, end).toString('utf8')));
    return { events, offset: end, ino: statSync(path).ino };
  } catch {
    return { events, offset: 0, ino: 0 };
  }
}

/** Events appended since offset (from the start of a new file after a rotation). */
export function readEventsFrom(root: string, offset: number, ino: number): { events: EngineEvent[]; offset: number; ino: number } {
  const path = journalPath(root);
  let st;
  try { st = statSync(path); } catch { return { events: [], offset, ino }; }
  if (st.ino !== ino || st.size < offset) { offset = 0; ino = st.ino; }
  if (st.size === offset) return { events: [], offset, ino };
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(Math.min(st.size - offset, MAX_JOURNAL));
    const n = readSync(fd, buf, 0, buf.length, offset);
    const end = buf.subarray(0, n).lastIndexOf(0x0a) + 1;
    return { events: parse(buf.subarray(0, end).toString('utf8')), offset: offset + end, ino };
  } finally {
    closeSync(fd);
  }
}
