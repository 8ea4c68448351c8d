// The shale CLI: docker's commands, flags and output over the engine.
import { Command, CommanderError } from 'commander';
import { ShaleError } from '../errors.js';
import { closeEngine, setGlobals } from './context.js';
import { register as registerImages } from './commands/images.js';
import { register as registerSystem } from './commands/system.js';
import { register as registerContainers } from './commands/containers.js';
import { register as registerRegistry } from './commands/registry.js';
import { register as registerBuild } from './commands/build.js';

const EXIT: Record<string, number> = { NotFound: 1, InvalidArgument: 1, Conflict: 1, FailedPrecondition: 1, PermissionDenied: 1 };

/** docker accepts `-H=false`; commander wants `-H false`. */
function normalizeArgv(argv: string[]): string[] {
  return argv.flatMap((a) => {
    const m = /^(-[a-zA-Z])=(.*)$/.exec(a);
    return m ? [m[1], m[2]] : [a];
  });
}

export function buildProgram(): Command {
  const program = new Command('shale');
  program
    .description('A container image and storage engine with a docker-compatible CLI')
    .version('0.1.0', '-v, --version')
    .option('--root <dir>', 'Data root (default $SHALE_ROOT, /var/lib/shale as root, $XDG_DATA_HOME/shale otherwise)')
    .option('-s, --storage-driver <driver>', 'Storage driver: overlay2, vfs, fuse-overlayfs (default: detected)')
    .option('--runtime <path>', 'OCI runtime (runc or crun; default: found on PATH)')
    .option('-D, --debug', 'Print stack traces')
    .enablePositionalOptions()
    .showHelpAfterError()
    .hook('preAction', (cmd) => {
      const o = cmd.optsWithGlobals() as { root?: string; storageDriver?: string; runtime?: string; debug?: boolean };
      setGlobals({ root: o.root, storageDriver: o.storageDriver ?? process.env.SHALE_STORAGE_DRIVER, runtime: o.runtime, debug: o.debug });
    });
  registerImages(program);
  registerSystem(program);
  registerContainers(program);
  registerRegistry(program);
  registerBuild(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  // `shale export c | head`: a reader that went away is not an error (docker's CLI stops quietly)
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    // anything else reached stdout because a pipeline into it failed (a source that broke
    // mid-stream destroys its destination with its error): that pipeline's rejection reports it
  });
  const program = buildProgram();
  program.exitOverride();
  const debug = argv.includes('-D') || argv.includes('--debug');
  try {
    await program.parseAsync(normalizeArgv(argv), { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode === 0 ? 0 : 125;
    } else if (e instanceof ShaleError) {
      process.stderr.write(`Error: ${e.describe()}\n`);
      if (debug) process.stderr.write(`${e.stack}\n`);
      process.exitCode = (e as ShaleError & { exitCode?: number }).exitCode ?? EXIT[e.code] ?? 1;
    } else {
      const err = e as Error & { code?: string };
      // a full disk says what to do, whichever layer met it
      const hint = err.code === 'SQLITE_FULL' || err.code === 'ENOSPC' || err.code === 'EDQUOT' ? " (free some space on the data root's filesystem and retry)" : '';
      process.stderr.write(`Error: ${err.message}${hint}\n`);
      if (debug) process.stderr.write(`${err.stack}\n`);
      process.exitCode = 1;
    }
  } finally {
    closeEngine();
  }
}
