// Volume verbs: create, list (docker's filters), inspect, remove (refused while a container
// uses the volume), over the engine's volume store.
import { inspectVolume as inspect } from '../containers/inspect.js';
import { invalidArgument } from '../errors.js';
import type { Volume } from '../containers/volumes.js';
import type { Filters } from './containers.js';
import type { Engine } from './index.js';

export type { Volume } from '../containers/volumes.js';

export function inspectVolume(engine: Engine, name: string): Record<string, unknown> | undefined {
  return inspect(engine, name);
}

export function createVolume(engine: Engine, name: string | undefined, o: { labels?: Record<string, string>; driver?: string } = {}): Volume {
  return engine.volumes.create(name, o);
}

export function listVolumes(engine: Engine, filters: Filters = {}): Volume[] {
  let vols = engine.volumes.list();
  const containers = engine.containers.list();
  for (const [k, values] of Object.entries(filters)) {
    if (!values.length) continue;
    switch (k) {
      case 'name': vols = vols.filter((v) => values.some((x) => v.name.includes(x))); break;
      case 'driver': vols = vols.filter((v) => values.includes(v.driver)); break;
      case 'dangling': vols = vols.filter((v) => values.some((x) => (engine.volumes.users(v.name, containers).length === 0) === (x === 'true' || x === '1'))); break;
      case 'label': vols = vols.filter((v) => values.every((x) => { const j = x.indexOf('='); return j < 0 ? x in v.labels : v.labels[x.slice(0, j)] === x.slice(j + 1); })); break;
      default: throw invalidArgument(`invalid filter '${k}'`);
    }
  }
  return vols;
}

export function removeVolume(engine: Engine, name: string, o: { force?: boolean } = {}): void {
  engine.volumes.remove(name, engine.containers.list(), o);
}
