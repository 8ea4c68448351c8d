// The detached shim: `node dist/containers/shim.js '<json>'`, started by `run -d`/`start`
// with its own session and no terminal. It supervises one container run (supervise.ts) and
// outlives the CLI that started it. It tells its parent whether the container started by
// one JSON line on fd 3, then keeps going alone; its own errors go to <dir>/shim.log.
import { appendFileSync, createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { Store } from '../store/index.js';
import { supervise, type Ready } from './supervise.js';
import { removeContainer } from './index.js';
import { prepareBundle } from './bundle.js';
import { ContainerStore, type Container } from './store.js';

interface ShimArgs {
  root: string;
  storageDriver?: string;
  runtime?: string;
  id: string;
  dir: string;
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2]) as ShimArgs;
  const report = createWriteStream('', { fd: 3 });
  report.on('error', () => undefined); // the CLI went away: nobody to tell
  let told = false;
  const tell = (r: Ready) => {
    if (told) return;
    told = true;
    report.end(JSON.stringify(r) + '\n');
  };
  process.on('SIGPIPE', () => undefined);
  process.on('SIGHUP', () => undefined);
  const engine = Store.open({ root: args.root, storageDriver: args.storageDriver, runtime: args.runtime });
  try {
    const store = new ContainerStore(engine);
    const autoRemove = store.get(args.id)?.hostConfig.AutoRemove ?? false;
    let started = false;
    for (let restarts = 0; ; restarts++) {
      const t0 = Date.now();
      const code = await supervise(engine, args.id, {
        runtime: args.runtime,
        onReady: (r) => { started = r.ok; tell(r); },
        remove: autoRemove ? () => removeContainer(engine, args.id, { force: true, volumes: true, fromShim: true }) : undefined,
      });
      // the restart policy: this process stays as the container's monitor between runs
      const c = store.get(args.id);
      if (!c || !started || !shouldRestart(c, code)) break;
      const count = (c.state.RestartCount ?? 0) + 1;
      store.updateState(args.id, (s) => ({ ...s, Restarting: true, RestartCount: count }));
      // docker's back-off: 100 ms, doubling, back to the start after a run of 10 s or more
      const delay = Date.now() - t0 >= 10_000 ? 100 : Math.min(100 * 2 ** Math.min(restarts, 10), 60_000);
      await new Promise((r) => setTimeout(r, delay));
      const now = store.get(args.id);
      if (!now || now.state.ManualStop || now.state.Running) break; // stopped or removed meanwhile
      store.updateState(args.id, (s) => ({ ...s, Restarting: false }));
      await prepareBundle(engine, now);
    }
  } catch (e) {
    appendFileSync(join(args.dir, 'shim.log'), `${new Date().toISOString()} ${(e as Error).stack ?? e}\n`);
    tell({ ok: false, error: (e as Error).message, exitCode: 125 });
    process.exitCode = 1;
  } finally {
    engine.close();
  }
}

/** docker's restart policies: no, always, unless-stopped, on-failure[:max] (never after a user's stop). */
function shouldRestart(c: Container, code: number): boolean {
  const p = c.hostConfig.RestartPolicy;
  if (!p || p.Name === 'no' || c.state.ManualStop) return false;
  if (p.Name === 'always' || p.Name === 'unless-stopped') return true;
  if (p.Name === 'on-failure') return code !== 0 && (!p.MaximumRetryCount || (c.state.RestartCount ?? 0) < p.MaximumRetryCount);
  return false;
}

void main();
