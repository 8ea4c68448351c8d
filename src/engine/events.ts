// The events verb: the journal (store/events.ts) read with docker's since/until and filters, and
// followed until `until` or the caller stops. `shale events` and the API's /events share it.
import { readEvents, readEventsFrom, type EngineEvent } from '../store/events.js';
import { invalidArgument } from '../errors.js';
import type { Filters } from './containers.js';
import type { Engine } from './index.js';

export type { EngineEvent } from '../store/events.js';

const EVENT_FILTERS = ['type', 'event', 'container', 'image', 'volume', 'label', 'scope', 'network', 'daemon', 'plugin', 'node', 'service', 'secret', 'config'];

function matches(ev: EngineEvent, f: Filters): boolean {
  for (const [k, vals] of Object.entries(f)) {
    if (!vals.length) continue;
    const a = ev.Actor.Attributes;
    const ok = vals.some((v) => {
      switch (k) {
        case 'type': return ev.Type === v;
        case 'event': return ev.Action === v || ev.Action.startsWith(`${v}:`);
        case 'container': return ev.Type === 'container' && (ev.Actor.ID.startsWith(v) || a.name === v.replace(/^\//, ''));
        case 'image': return a.image === v || (ev.Type === 'image' && (ev.Actor.ID === v || a.name === v));
        case 'volume': return ev.Type === 'volume' && ev.Actor.ID === v;
        case 'label': { const i = v.indexOf('='); return i < 0 ? v in a : a[v.slice(0, i)] === v.slice(i + 1); }
        case 'scope': return v === 'local';
        default: return false;
      }
    });
    if (!ok) return false;
  }
  return true;
}

/**
 * Events in [since, until] that match the filters. Without since, only what happens from now on
 * (docker's rule); with until in the past, the stream ends after the recorded ones.
 */
export function checkEventFilters(filters: Filters): void {
  for (const k of Object.keys(filters)) if (!EVENT_FILTERS.includes(k)) throw invalidArgument(`invalid filter '${k}'`);
}

export async function* engineEvents(engine: Engine, o: { since?: number; until?: number; filters?: Filters; signal?: AbortSignal; pollMs?: number } = {}): AsyncGenerator<EngineEvent> {
  checkEventFilters(o.filters ?? {});
  const f = o.filters ?? {};
  const inRange = (e: EngineEvent) => {
    const t = e.timeNano / 1e9;
    return (o.since === undefined || t >= o.since) && (o.until === undefined || t <= o.until);
  };
  const first = readEvents(engine.root);
  let { offset, ino } = first;
  if (o.since !== undefined) for (const e of first.events) if (inRange(e) && matches(e, f)) yield e;
  while (!o.signal?.aborted) {
    if (o.until !== undefined && Date.now() / 1000 > o.until) return;
    const r = readEventsFrom(engine.root, offset, ino);
    ({ offset, ino } = r);
    for (const e of r.events) if (inRange(e) && matches(e, f)) yield e;
    await new Promise<void>((ok) => {
      const t = setTimeout(ok, o.pollMs ?? 100);
      o.signal?.addEventListener('abort', () => { clearTimeout(t); ok(); }, { once: true });
    });
  }
}
