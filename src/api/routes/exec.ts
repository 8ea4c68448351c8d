// /containers/{id}/exec, /exec/{id}/start (hijacked or detached), /exec/{id}/json. Exec
// instances live in this server's memory, as in dockerd.
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { execInContainer, reconcile } from '../../engine/containers.js';
import { conflict, invalidArgument, notFound } from '../../errors.js';
import { emit } from '../../store/events.js';
import { frame, framer, hijack, readJSON, sendJSON } from '../http.js';
import type { Ctx, Router } from '../router.js';

interface ExecInstance {
  id: string;
  containerId: string;
  cmd: string[];
  env?: string[];
  workdir?: string;
  user?: string;
  attachStdin: boolean;
  attachStdout: boolean;
  attachStderr: boolean;
  running: boolean;
  exitCode: number | null;
  created: number;
}

const execs = new Map<string, ExecInstance>();
const MAX_EXECS = 1000;

async function create(ctx: Ctx): Promise<void> {
  const c = ctx.engine.containers.tryResolve(ctx.params[0]);
  if (!c) throw notFound(`No such container: ${ctx.params[0]}`);
  const now = await reconcile(ctx.engine, c);
  if (!now.state.Running) throw conflict(`Container ${c.id} is not running`);
  const b = await readJSON(ctx.req);
  if (b.Tty) throw invalidArgument('a pseudo-TTY (exec -t) is not supported yet', 'drop -t');
  const cmd = Array.isArray(b.Cmd) ? b.Cmd.map(String) : [];
  if (!cmd.length) throw invalidArgument('No exec command specified');
  if (execs.size >= MAX_EXECS) for (const [k, v] of execs) if (!v.running) { execs.delete(k); if (execs.size < MAX_EXECS) break; }
  const id = randomBytes(32).toString('hex');
  execs.set(id, {
    id, containerId: c.id, cmd, env: Array.isArray(b.Env) ? b.Env.map(String) : undefined, workdir: (b.WorkingDir as string) || undefined, user: (b.User as string) || undefined,
    attachStdin: !!b.AttachStdin, attachStdout: b.AttachStdout !== false, attachStderr: b.AttachStderr !== false, running: false, exitCode: null, created: Date.now(),
  });
  emit(ctx.engine.root, 'container', `exec_create: ${cmd.join(' ')}`, c.id, { name: c.name, execID: id });
  sendJSON(ctx.res!, 201, { Id: id });
}

function instance(id: string): ExecInstance {
  const x = execs.get(id);
  if (!x) throw notFound(`No such exec instance: ${id}`);
  return x;
}

async function start(ctx: Ctx): Promise<void> {
  const x = instance(ctx.params[0]);
  if (x.running || x.exitCode !== null) throw conflict(`Exec ${x.id} has already run`);
  const b = await readJSON(ctx.req);
  const detach = !!b.Detach;
  x.running = true;
  const run = (stdio?: Parameters<typeof execInContainer>[2]['stdio']) => execInContainer(ctx.engine, x.containerId, {
    cmd: x.cmd, env: x.env, workdir: x.workdir, user: x.user, interactive: x.attachStdin && !!stdio?.stdin, detach: detach && !stdio, stdio,
  });
  if (detach) {
    try {
      x.exitCode = await run();
    } finally {
      x.running = false;
    }
    ctx.res!.writeHead(200, { 'Content-Type': 'application/json' });
    ctx.res!.end();
    return;
  }
  const out = hijack(ctx.req, ctx.res, ctx.socket, ctx.upgraded, false);
  let stdin: PassThrough | undefined;
  if (x.attachStdin && ctx.upgraded) {
    stdin = new PassThrough();
    if (ctx.head.length) stdin.write(ctx.head);
    ctx.socket.pipe(stdin);
  }
  const devnull = () => new PassThrough().resume();
  try {
    x.exitCode = await run({ stdin, stdout: x.attachStdout ? framer(out, 1) : devnull(), stderr: x.attachStderr ? framer(out, 2) : devnull() });
  } catch (e) {
    x.exitCode = (e as { exitCode?: number }).exitCode ?? 126;
    if (!out.destroyed) out.write(frame(2, Buffer.from(`${(e as Error).message}\n`)));
  } finally {
    x.running = false;
    if (!out.destroyed) out.end();
  }
}

export function register(r: Router): void {
  r.add('POST', '/containers/{id}/exec', create)
    .add('POST', '/exec/{id}/start', start)
    .add('POST', '/exec/{id}/resize', (ctx) => { instance(ctx.params[0]); ctx.res!.writeHead(200); ctx.res!.end(); })
    .add('GET', '/exec/{id}/json', (ctx) => {
      const x = instance(ctx.params[0]);
      sendJSON(ctx.res!, 200, {
        ID: x.id, ContainerID: x.containerId, Running: x.running, ExitCode: x.exitCode, Pid: 0, OpenStdin: x.attachStdin, OpenStdout: x.attachStdout, OpenStderr: x.attachStderr,
        CanRemove: false, DetachKeys: '', ProcessConfig: { tty: false, entrypoint: x.cmd[0], arguments: x.cmd.slice(1), privileged: false, user: x.user ?? '' },
      });
    });
}
