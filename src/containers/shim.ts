// The detached shim: `node dist/containers/shim.js '<json>'`, started by `run -d`/`start`
// with its own session and no terminal. It supervises one container run (supervise.ts) and
// outlives the CLI that started it. It tells its parent whether the container started by
// one JSON line on fd 3, then keeps going alone; its own errors go to <dir>/shim.log.
import { appendFileSync, createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { Store } from '../store/index.js';
import { supervise, type Ready } from './supervise.js';
import { removeContainer } from './index.js';

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
    const c = engine.db.prepare('SELECT host_config FROM containers WHERE id = ?').get(args.id) as { host_config: string } | undefined;
    const autoRemove = c ? (JSON.parse(c.host_config) as { AutoRemove?: boolean }).AutoRemove : false;
    await supervise(engine, args.id, {
      runtime: args.runtime,
      onReady: tell,
      remove: autoRemove ? () => removeContainer(engine, args.id, { force: true, volumes: true, fromShim: true }) : undefined,
    });
  } catch (e) {
    appendFileSync(join(args.dir, 'shim.log'), `${new Date().toISOString()} ${(e as Error).stack ?? e}\n`);
    tell({ ok: false, error: (e as Error).message, exitCode: 125 });
    process.exitCode = 1;
  } finally {
    engine.close();
  }
}

void main();
