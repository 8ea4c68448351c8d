// Registry commands: pull, push, login, logout.
import type { Command } from 'commander';
import { createInterface } from 'node:readline';
import { getEngine, out, err, collect, readStdin } from '../context.js';
import { invalidArgument, ShaleError } from '../../errors.js';
import { familiarRepository, parseReference, repository } from '../../reference/index.js';
// the registry client (and undici) load only when a registry command runs: start-up stays small
const client = () => import('../../engine/registry.js');


function count(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw invalidArgument(`invalid value "${v}" for ${flag}`, 'give a whole number of at least 1');
  return n;
}

/** Abort on Ctrl-C so a pull or push cleans up what it wrote before the process ends. */
async function interruptible<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const onSig = () => ac.abort(Object.assign(new ShaleError('Unavailable', 'interrupted', 'nothing partial was kept'), { exitCode: 130 }));
  process.once('SIGINT', onSig);
  process.once('SIGTERM', onSig);
  try {
    return await fn(ac.signal);
  } catch (e) {
    if (ac.signal.aborted) throw ac.signal.reason;
    throw e;
  } finally {
    process.off('SIGINT', onSig);
    process.off('SIGTERM', onSig);
  }
}


async function prompt(question: string, hidden: boolean): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true });
  if (hidden) {
    const w = rl as unknown as { _writeToOutput: (s: string) => void; output: NodeJS.WriteStream };
    w._writeToOutput = (s: string) => { if (s.startsWith(question)) w.output.write(question); };
  }
  try {
    return await new Promise<string>((resolve) => rl.question(question, resolve));
  } finally {
    if (hidden) process.stdout.write('\n');
    rl.close();
  }
}

/** The flags pull and push share. */
function transferOptions(c: Command, allTags: string): Command {
  return c
    .option('-a, --all-tags', allTags)
    .option('-q, --quiet', 'Suppress verbose output')
    .option('--insecure-registry <host>', 'Use plain http for this registry (also $SHALE_INSECURE_REGISTRIES)', collect, [])
    .option('--disable-content-trust', 'Ignored (accepted for docker compatibility)');
}

export function register(program: Command): void {
  transferOptions(program.command('pull').description('Download an image from a registry').argument('<name>', 'NAME[:TAG|@DIGEST]'), 'Download all tagged images in the repository')
    .option('--platform <platform>', 'Set platform (os/arch[/variant]); default: this machine')
    .option('--max-concurrent-downloads <n>', 'Layers downloaded at once', '3')
    .action(async (name: string, o: { allTags?: boolean; platform?: string; quiet?: boolean; maxConcurrentDownloads: string; insecureRegistry: string[] }) => {
      const engine = getEngine();
      const { progressFor, listTags, pull } = await client();
      const progress = progressFor(process.stdout, { quiet: o.quiet });
      const popts = { platform: o.platform, progress, maxConcurrentDownloads: count(o.maxConcurrentDownloads, '--max-concurrent-downloads'), transport: { insecureRegistries: o.insecureRegistry } };
      let names = [name];
      if (o.allTags) {
        const r = parseReference(name, { noDefaultTag: true });
        if (r.tag || r.digest) throw invalidArgument('tag can\'t be used with --all-tags/-a');
        names = (await listTags(name, { transport: popts.transport })).map((t) => `${repository(r)}:${t}`);
        if (names.length === 0) throw invalidArgument(`repository ${familiarRepository(r)} has no tags`);
      }
      const last = await interruptible(async (signal) => {
        let res;
        for (const n of names) res = await pull(engine, n, { ...popts, signal });
        return res!;
      });
      out(`${o.allTags ? repository(parseReference(name, { noDefaultTag: true })) : last.name}\n`);
    });

  transferOptions(program.command('push').description('Upload an image to a registry').argument('<name>', 'NAME[:TAG]'), 'Push all tags of the repository')
    .option('--max-concurrent-uploads <n>', 'Layers uploaded at once', '5')
    .action(async (name: string, o: { allTags?: boolean; quiet?: boolean; maxConcurrentUploads: string; insecureRegistry: string[] }) => {
      const engine = getEngine();
      const { progressFor, push } = await client();
      const progress = progressFor(process.stdout, { quiet: o.quiet });
      const popts = { progress, maxConcurrentUploads: count(o.maxConcurrentUploads, '--max-concurrent-uploads'), transport: { insecureRegistries: o.insecureRegistry } };
      const r = parseReference(name, { noDefaultTag: true });
      let names = [name];
      if (o.allTags) {
        if (r.tag || r.digest) throw invalidArgument('tag can\'t be used with --all-tags/-a');
        const prefix = `${repository(r)}:`;
        names = engine.images.allTags().map((t) => t.name).filter((n) => n.startsWith(prefix));
        if (names.length === 0) throw invalidArgument(`An image does not exist locally with the tag: ${familiarRepository(r)}`);
      }
      await interruptible(async (signal) => {
        for (const n of names) await push(engine, n, { ...popts, signal });
      });
      if (o.quiet) out(`${o.allTags ? repository(r) : `${repository(r)}:${r.tag ?? 'latest'}`}\n`);
    });

  program
    .command('login')
    .description('Log in to a registry')
    .argument('[server]', 'registry host (default: Docker Hub)')
    .option('-u, --username <username>', 'Username')
    .option('-p, --password <password>', 'Password')
    .option('--password-stdin', 'Take the password from stdin')
    .option('--insecure-registry <host>', 'Use plain http for this registry', collect, [])
    .action(async (server: string | undefined, o: { username?: string; password?: string; passwordStdin?: boolean; insecureRegistry: string[] }) => {
      let { username, password } = o;
      if (o.password && o.passwordStdin) throw invalidArgument('--password and --password-stdin are mutually exclusive');
      if (o.passwordStdin) {
        if (!username) throw invalidArgument('Must provide --username with --password-stdin');
        password = (await readStdin()).replace(/\r?\n$/, '');
      } else if (o.password) {
        err('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
      }
      if (!username || !password) {
        if (!process.stdin.isTTY) throw invalidArgument('Cannot perform an interactive login from a non TTY device', 'use -u USER --password-stdin');
        if (!username) username = (await prompt('Username: ', false)).trim();
        if (!password) password = await prompt('Password: ', true);
      }
      if (!username) throw invalidArgument('Username is required');
      if (!password) throw invalidArgument('Password is required');
      const { login } = await client();
      await login(server, { username, password }, { transport: { insecureRegistries: o.insecureRegistry } });
      out('Login Succeeded\n');
    });

  program
    .command('logout')
    .description('Log out from a registry')
    .argument('[server]', 'registry host (default: Docker Hub)')
    .action(async (server: string | undefined) => {
      const { logout } = await client();
      const { credentialKey } = await client();
      const key = credentialKey(server);
      const gone = logout(server);
      out(gone.length ? `Removing login credentials for ${key}\n` : `Not logged in to ${key}\n`);
    });
}
