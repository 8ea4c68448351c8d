// /containers/*: create, start, attach (hijacked), wait, stop, kill, restart, rename, list,
// inspect, changes, logs, top, archive (docker cp both ways), export, delete, prune; /commit.
// A container started while a client is attached runs supervised by this server, its output
// going to the attach stream and the log; otherwise it starts detached under its own shim.
import { PassThrough, type Duplex, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  archiveFromContainer, commandOf, commitContainer, containerChanges, containerLogs, containerPath, containerTop, copyToContainer, createContainer,
  exportContainer, filtersFromJSON, inspectContainer, killContainer, listContainers, reconcile, recordedExit, removeContainer, startAttached,
  startDetached, stopContainer, withRootfs, pauseContainer, unpauseContainer, containerStats, type Container, type CreateOptions,
} from '../../engine/containers.js';
import { pruneContainers } from '../../engine/prune.js';
import { invalidArgument, notFound, ShaleError } from '../../errors.js';
import { emit } from '../../store/events.js';
import { frame, hijack, noContent, qbool, qint, readJSON, sendJSON } from '../http.js';
import type { Ctx, Router } from '../router.js';

interface Attached { out: Duplex; stdin?: Readable; stdout: boolean; stderr: boolean; tty: boolean; done: Promise<void>; finish: () => void }

/** Clients attached to a container that has not started yet: the next start runs it supervised here, streaming to them. */
const pending = new Map<string, Attached[]>();
/** Containers this server supervises (started with clients attached), and how each run ends. */
const supervised = new Map<string, Promise<unknown>>();

/**
 * On shutdown: the containers this process supervises cannot outlive it (their stdio and log
 * are here), so they are killed and waited for, as dockerd stops its containers.
 */
export async function stopSupervised(engine: Ctx['engine']): Promise<void> {
  await Promise.all([...supervised.entries()].map(async ([id, run]) => {
    await killContainer(engine, id, 'SIGKILL').catch(() => undefined);
    await run.catch(() => undefined);
  }));
}

function containerOf(ctx: Ctx, ref: string): Container {
  const c = ctx.engine.containers.tryResolve(ref);
  if (!c) throw notFound(`No such container: ${ref}`);
  return c;
}

const arr = (v: unknown): string[] | undefined => (Array.isArray(v) ? v.map(String) : typeof v === 'string' ? [v] : undefined);

function restartOf(p: { Name?: string; MaximumRetryCount?: number } | undefined): string | undefined {
  if (!p?.Name || p.Name === 'no') return undefined;
  return p.Name === 'on-failure' && p.MaximumRetryCount ? `on-failure:${p.MaximumRetryCount}` : p.Name;
}

/** The API's create body in the engine's options (docker's Config + HostConfig). */
function createOptions(name: string | undefined, body: Record<string, unknown>): CreateOptions {
  const hc = (body.HostConfig ?? {}) as Record<string, unknown>;
  if (typeof body.Image !== 'string' || !body.Image) throw invalidArgument('Config.Image is required');
  if (body.Tty) throw invalidArgument('a pseudo-TTY (Tty: true, docker run -t) is not supported yet', 'drop -t; output and -i input are piped');
  const ports = hc.PortBindings as Record<string, unknown> | undefined;
  if (ports && Object.keys(ports).length) throw invalidArgument('publishing ports (-p) needs a container network, which shale does not make yet', "use --network host and listen on the host's ports");
  const labels = Object.entries((body.Labels ?? {}) as Record<string, string>).map(([k, v]) => `${k}=${v}`);
  const mounts = ((hc.Mounts ?? []) as { Type?: string; Source?: string; Target?: string; ReadOnly?: boolean }[]).map((m) => {
    if (m.Type === 'tmpfs') return undefined;
    return [`type=${m.Type ?? 'volume'}`, ...(m.Source ? [`src=${m.Source}`] : []), `dst=${m.Target ?? ''}`, ...(m.ReadOnly ? ['readonly'] : [])].join(',');
  }).filter((x): x is string => !!x);
  const tmpfs = [
    ...Object.entries((hc.Tmpfs ?? {}) as Record<string, string>).map(([p, o]) => (o ? `${p}:${o}` : p)),
    ...((hc.Mounts ?? []) as { Type?: string; Target?: string }[]).filter((m) => m.Type === 'tmpfs').map((m) => m.Target ?? ''),
  ];
  const log = (hc.LogConfig ?? {}) as { Type?: string; Config?: Record<string, string> };
  let network = (hc.NetworkMode as string | undefined) || 'default';
  if (network === 'default') network = 'none';
  const entrypoint = body.Entrypoint === null || body.Entrypoint === undefined ? undefined : arr(body.Entrypoint) ?? [];
  return {
    image: body.Image as string,
    name,
    cmd: arr(body.Cmd),
    entrypoint,
    env: arr(body.Env),
    workdir: (body.WorkingDir as string) || undefined,
    user: (body.User as string) || undefined,
    labels,
    hostname: (body.Hostname as string) || undefined,
    stopSignal: (body.StopSignal as string) || undefined,
    stopTimeout: typeof body.StopTimeout === 'number' ? body.StopTimeout : undefined,
    interactive: !!body.OpenStdin,
    volumes: arr(hc.Binds),
    mounts,
    tmpfs,
    readOnly: !!hc.ReadonlyRootfs,
    capAdd: arr(hc.CapAdd),
    capDrop: arr(hc.CapDrop),
    privileged: !!hc.Privileged,
    rm: !!hc.AutoRemove,
    network,
    memory: typeof hc.Memory === 'number' && hc.Memory ? hc.Memory : undefined,
    memorySwap: typeof hc.MemorySwap === 'number' && hc.MemorySwap ? hc.MemorySwap : undefined,
    nanoCpus: typeof hc.NanoCpus === 'number' && hc.NanoCpus ? hc.NanoCpus : undefined,
    cpuShares: typeof hc.CpuShares === 'number' && hc.CpuShares ? hc.CpuShares : undefined,
    cpusetCpus: (hc.CpusetCpus as string) || undefined,
    pidsLimit: typeof hc.PidsLimit === 'number' && hc.PidsLimit ? hc.PidsLimit : undefined,
    restart: restartOf(hc.RestartPolicy as { Name?: string; MaximumRetryCount?: number } | undefined),
    init: hc.Init === true,
    logDriver: log.Type || undefined,
    logOpts: Object.entries(log.Config ?? {}).map(([k, v]) => `${k}=${v}`),
    detach: true,
  };
}

async function create(ctx: Ctx): Promise<void> {
  const body = await readJSON(ctx.req);
  const name = ctx.query.get('name') || undefined;
  const c = await createContainer(ctx.engine, { ...createOptions(name, body), runtime: ctx.engine.opts.runtime });
  sendJSON(ctx.res!, 201, { Id: c.id, Warnings: [] });
}

async function start(ctx: Ctx, ref: string): Promise<void> {
  let c = await reconcile(ctx.engine, containerOf(ctx, ref));
  if (c.state.Running) return noContent(ctx.res!, 304);
  const clients = pending.get(c.id);
  if (!clients?.length) {
    await startDetached(ctx.engine, c);
    return noContent(ctx.res!);
  }
  pending.delete(c.id);
  c = ctx.engine.containers.get(c.id)!;
  const stdin = clients.find((a) => a.stdin)?.stdin;
  const fan = (which: 'stdout' | 'stderr') => {
    const p = new PassThrough();
    p.on('data', (d: Buffer) => {
      for (const a of clients) if (a[which] && !a.out.destroyed) a.out.write(a.tty ? d : frame(which === 'stdout' ? 1 : 2, d));
    });
    return p;
  };
  const stdout = fan('stdout');
  const stderr = fan('stderr');
  const ready = new Promise<{ ok: boolean; error?: string; exitCode?: number }>((res) => {
    const run = startAttached(ctx.engine, c, { stdin, stdout, stderr, forwardSignals: false, onReady: (r) => res(r) });
    supervised.set(c.id, run);
    void run.finally(() => supervised.delete(c.id)).catch(() => undefined);
    void run.then(
      () => { for (const a of clients) a.finish(); },
      (e) => { res({ ok: false, error: (e as Error).message, exitCode: 125 }); for (const a of clients) a.finish(); },
    );
  });
  const r = await ready;
  if (!r.ok) throw new ShaleError('FailedPrecondition', r.error ?? 'the container did not start');
  noContent(ctx.res!);
}

async function attach(ctx: Ctx, ref: string): Promise<void> {
  const c = await reconcile(ctx.engine, containerOf(ctx, ref));
  const q = ctx.query;
  const wantStdin = qbool(q, 'stdin');
  const stream = qbool(q, 'stream');
  const logs = qbool(q, 'logs');
  const out = hijack(ctx.req, ctx.res, ctx.socket, ctx.upgraded, false);
  let finish!: () => void;
  const done = new Promise<void>((res) => (finish = res));
  const a: Attached = { out, stdout: qbool(q, 'stdout'), stderr: qbool(q, 'stderr'), tty: false, done, finish };
  if (wantStdin && ctx.upgraded) {
    const input = new PassThrough();
    if (ctx.head.length) input.write(ctx.head);
    ctx.socket.pipe(input);
    a.stdin = input;
  }
  if (logs) {
    for await (const e of containerLogs(ctx.engine, c.id, {})) {
      if ((e.stream === 'stdout' && a.stdout) || (e.stream === 'stderr' && a.stderr)) out.write(frame(e.stream === 'stdout' ? 1 : 2, Buffer.from(e.log)));
    }
  }
  if (!stream) return void out.end();
  if (c.state.Running) {
    // already running under a shim: follow its log from now (stdin cannot reach it)
    for await (const e of containerLogs(ctx.engine, c.id, { follow: true, tail: 0, signal: ctx.signal })) {
      if ((e.stream === 'stdout' && a.stdout) || (e.stream === 'stderr' && a.stderr)) out.write(frame(e.stream === 'stdout' ? 1 : 2, Buffer.from(e.log)));
    }
    return void out.end();
  }
  const list = pending.get(c.id) ?? [];
  list.push(a);
  pending.set(c.id, list);
  ctx.signal.addEventListener('abort', () => {
    const l = pending.get(c.id);
    if (l) pending.set(c.id, l.filter((x) => x !== a));
    finish();
  }, { once: true });
  await done;
  if (!out.destroyed) out.end();
}

async function wait(ctx: Ctx, ref: string): Promise<void> {
  const c0 = containerOf(ctx, ref);
  const cond = ctx.query.get('condition') || 'not-running';
  if (!['not-running', 'next-exit', 'removed'].includes(cond)) throw invalidArgument(`invalid condition: "${cond}"`);
  const res = ctx.res!;
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.flushHeaders();
  const startFinished = c0.state.FinishedAt;
  let code: number | undefined;
  while (!ctx.signal.aborted) {
    const now = ctx.engine.containers.get(c0.id);
    if (!now) {
      code = recordedExit(ctx.engine.root, c0.id) ?? code ?? 0;
      break;
    }
    const c = await reconcile(ctx.engine, now);
    if (!c.state.Running) {
      code = c.state.ExitCode;
      const exitedSince = c.state.FinishedAt !== startFinished;
      if (cond === 'not-running' || (cond === 'next-exit' && exitedSince)) break;
      if (cond === 'removed' && c.state.Status === 'exited' && exitedSince && !c.hostConfig.AutoRemove) { /* keep waiting for an rm */ }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  if (!res.writableEnded) res.end(JSON.stringify({ Error: null, StatusCode: code ?? 0 }) + '\n');
}

function listing(ctx: Ctx, x: { c: Container; sizeRw?: number; sizeRootFs?: number }): Record<string, unknown> {
  const { c } = x;
  let image = c.config.Image;
  try { if (ctx.engine.images.tryResolve(image)?.id !== c.imageId) image = c.imageId; } catch { image = c.imageId; }
  const status = (() => {
    const s = c.state;
    const ago = (t: string) => human(Date.now() - Date.parse(t));
    switch (s.Status) {
      case 'running': return `Up ${ago(s.StartedAt)}${s.Paused ? ' (Paused)' : ''}`;
      case 'exited': return `Exited (${s.ExitCode}) ${ago(s.FinishedAt)} ago`;
      case 'removing': return 'Removal In Progress';
      case 'dead': return 'Dead';
      default: return 'Created';
    }
  })();
  return {
    Id: c.id, Names: [`/${c.name}`], Image: image, ImageID: c.imageId, Command: commandOf(c), Created: Math.floor(Date.parse(c.created) / 1000),
    Ports: [], ...(x.sizeRw !== undefined ? { SizeRw: x.sizeRw, SizeRootFs: x.sizeRootFs } : {}), Labels: c.config.Labels ?? {}, State: c.state.Status, Status: status,
    HostConfig: { NetworkMode: c.hostConfig.NetworkMode }, NetworkSettings: { Networks: {} },
    Mounts: c.hostConfig.Mounts.map((m) => ({ Type: m.Type, Name: m.Type === 'volume' ? m.Source : undefined, Source: m.Source, Destination: m.Target, Driver: m.Type === 'volume' ? 'local' : '', Mode: '', RW: !m.ReadOnly, Propagation: '' })),
  };
}

/** docker's units.HumanDuration. */
function human(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 1) return 'Less than a second';
  if (s === 1) return '1 second';
  if (s < 60) return `${s} seconds`;
  const m = Math.floor(s / 60);
  if (m === 1) return 'About a minute';
  if (m < 60) return `${m} minutes`;
  const h = Math.round(s / 3600);
  if (h === 1) return 'About an hour';
  if (h < 48) return `${h} hours`;
  if (h < 24 * 7 * 2) return `${Math.floor(h / 24)} days`;
  if (h < 24 * 30 * 2) return `${Math.floor(h / 24 / 7)} weeks`;
  if (h < 24 * 365 * 2) return `${Math.floor(h / 24 / 30)} months`;
  return `${Math.floor(h / 24 / 365)} years`;
}

async function logs(ctx: Ctx, ref: string): Promise<void> {
  const c = containerOf(ctx, ref);
  const q = ctx.query;
  const out = qbool(q, 'stdout');
  const err = qbool(q, 'stderr');
  if (!out && !err) throw invalidArgument('Bad parameters: you must choose at least one stream');
  const ts = qbool(q, 'timestamps');
  const res = ctx.res!;
  const it = containerLogs(ctx.engine, c.id, { follow: qbool(q, 'follow'), tail: q.get('tail') ?? 'all', since: qint(q, 'since'), until: qint(q, 'until'), signal: ctx.signal });
  res.writeHead(200, { 'Content-Type': 'application/vnd.docker.multiplexed-stream' });
  res.flushHeaders();
  for await (const e of it) {
    if (ctx.signal.aborted) break;
    if ((e.stream === 'stdout' && !out) || (e.stream === 'stderr' && !err)) continue;
    const line = (ts ? `${e.time} ` : '') + e.log;
    res.write(frame(e.stream === 'stdout' ? 1 : 2, Buffer.from(line)));
  }
  res.end();
}

/** GET/HEAD /containers/{id}/archive: the path's stat in X-Docker-Container-Path-Stat, and (GET) a tar of it. */
async function archiveGet(ctx: Ctx, ref: string): Promise<void> {
  const path = ctx.query.get('path');
  if (!path) throw invalidArgument('path is required');
  const c = containerOf(ctx, ref);
  await withRootfs(ctx.engine, c.id, async (cc, rootfs) => {
    const p = containerPath(ctx.engine, cc, rootfs, path);
    if (!p.st) throw notFound(`Could not find the file ${path} in container ${ref}`);
    const base = p.containerPath.split('/').filter(Boolean).pop() ?? '/';
    const st = { name: base, size: p.st.size, mode: modeBits(p.st.mode), mtime: new Date(p.st.mtimeMs).toISOString(), linkTarget: '' };
    const header = Buffer.from(JSON.stringify(st)).toString('base64');
    if (ctx.req.method === 'HEAD') {
      ctx.res!.writeHead(200, { 'X-Docker-Container-Path-Stat': header });
      ctx.res!.end();
      return;
    }
    const a = archiveFromContainer(ctx.engine, cc, rootfs, path, {});
    try {
      ctx.res!.writeHead(200, { 'Content-Type': 'application/x-tar', 'X-Docker-Container-Path-Stat': header });
      await pipeline(a.stream, ctx.res!);
    } finally {
      a.close();
    }
  });
}

/** Go's os.FileMode bits from a Unix mode (directory, symlink flags as docker sends them). */
function modeBits(mode: number): number {
  let m = mode & 0o777;
  const type = mode & 0o170000;
  if (type === 0o040000) m |= 0x80000000; // ModeDir
  if (type === 0o120000) m |= 0x08000000; // ModeSymlink
  if (mode & 0o4000) m |= 0x00800000;
  if (mode & 0o2000) m |= 0x00400000;
  if (mode & 0o1000) m |= 0x00100000;
  return m >>> 0;
}

async function archivePut(ctx: Ctx, ref: string): Promise<void> {
  const path = ctx.query.get('path');
  if (!path) throw invalidArgument('path is required');
  const c = containerOf(ctx, ref);
  await withRootfs(ctx.engine, c.id, (cc, rootfs) => copyToContainer(ctx.engine, cc, rootfs, { tar: ctx.req }, path, {
    ...(qbool(ctx.query, 'copyUIDGID') ? { archive: true } : {}),
  }));
  noContent(ctx.res!, 200);
}

export function register(r: Router): void {
  r.add('POST', '/containers/create', create)
    .add('GET', '/containers/json', async (ctx) => {
      const q = ctx.query;
      const rows = await listContainers(ctx.engine, { all: qbool(q, 'all'), limit: qint(q, 'limit'), size: qbool(q, 'size'), filters: filtersFromJSON(q.get('filters')) });
      sendJSON(ctx.res!, 200, rows.map((x) => listing(ctx, x)));
    })
    .add('POST', '/containers/prune', async (ctx) => {
      const rep = await pruneContainers(ctx.engine);
      sendJSON(ctx.res!, 200, { ContainersDeleted: rep.removed, SpaceReclaimed: rep.reclaimed });
    })
    .add('GET', '/containers/{id}/json', async (ctx) => sendJSON(ctx.res!, 200, await inspectContainer(ctx.engine, containerOf(ctx, ctx.params[0]), qbool(ctx.query, 'size'))))
    .add('POST', '/containers/{id}/start', (ctx) => start(ctx, ctx.params[0]))
    .add('POST', '/containers/{id}/attach', (ctx) => attach(ctx, ctx.params[0]))
    .add('POST', '/containers/{id}/wait', (ctx) => wait(ctx, ctx.params[0]))
    .add('POST', '/containers/{id}/stop', async (ctx) => {
      const c = await reconcile(ctx.engine, containerOf(ctx, ctx.params[0]));
      if (!c.state.Running) return noContent(ctx.res!, 304);
      await stopContainer(ctx.engine, c.id, qint(ctx.query, 't'), ctx.query.get('signal') ?? undefined);
      emit(ctx.engine.root, 'container', 'stop', c.id, { image: c.config.Image, name: c.name });
      noContent(ctx.res!);
    })
    .add('POST', '/containers/{id}/restart', async (ctx) => {
      const c = containerOf(ctx, ctx.params[0]);
      await stopContainer(ctx.engine, c.id, qint(ctx.query, 't'));
      await startDetached(ctx.engine, ctx.engine.containers.resolve(c.id));
      noContent(ctx.res!);
    })
    .add('POST', '/containers/{id}/kill', async (ctx) => {
      const c = containerOf(ctx, ctx.params[0]);
      const sig = ctx.query.get('signal') || 'SIGKILL';
      await killContainer(ctx.engine, c.id, sig);
      emit(ctx.engine.root, 'container', 'kill', c.id, { image: c.config.Image, name: c.name, signal: sig });
      noContent(ctx.res!);
    })
    .add('POST', '/containers/{id}/rename', (ctx) => {
      const c = containerOf(ctx, ctx.params[0]);
      const name = ctx.query.get('name');
      if (!name) throw invalidArgument('name is required');
      ctx.engine.containers.rename(c.id, name.replace(/^\//, ''));
      emit(ctx.engine.root, 'container', 'rename', c.id, { name: name.replace(/^\//, ''), oldName: `/${c.name}` });
      noContent(ctx.res!);
    })
    .add('GET', '/containers/{id}/changes', async (ctx) => {
      containerOf(ctx, ctx.params[0]);
      const kinds = { C: 0, A: 1, D: 2 } as const;
      sendJSON(ctx.res!, 200, (await containerChanges(ctx.engine, ctx.params[0])).map((ch) => ({ Path: ch.path, Kind: kinds[ch.kind] })));
    })
    .add('GET', '/containers/{id}/logs', (ctx) => logs(ctx, ctx.params[0]))
    .add('GET', '/containers/{id}/top', async (ctx) => sendJSON(ctx.res!, 200, await containerTop(ctx.engine, containerOf(ctx, ctx.params[0]).id, (ctx.query.get('ps_args') ?? '').split(/\s+/).filter(Boolean))))
    .add('GET', '/containers/{id}/archive', (ctx) => archiveGet(ctx, ctx.params[0]))
    .add('HEAD', '/containers/{id}/archive', (ctx) => archiveGet(ctx, ctx.params[0]))
    .add('PUT', '/containers/{id}/archive', (ctx) => archivePut(ctx, ctx.params[0]))
    .add('GET', '/containers/{id}/export', async (ctx) => {
      const x = await exportContainer(ctx.engine, containerOf(ctx, ctx.params[0]).id);
      try {
        ctx.res!.writeHead(200, { 'Content-Type': 'application/x-tar' });
        await pipeline(x.stream, ctx.res!);
      } finally {
        await x.release();
      }
    })
    .add('POST', '/containers/{id}/pause', async (ctx) => { await pauseContainer(ctx.engine, containerOf(ctx, ctx.params[0]).id); noContent(ctx.res!); })
    .add('POST', '/containers/{id}/unpause', async (ctx) => { await unpauseContainer(ctx.engine, containerOf(ctx, ctx.params[0]).id); noContent(ctx.res!); })
    .add('GET', '/containers/{id}/stats', async (ctx) => {
      const c = containerOf(ctx, ctx.params[0]);
      const stream = qbool(ctx.query, 'stream', true) && !qbool(ctx.query, 'one-shot');
      const it = containerStats(ctx.engine, c.id, { stream, signal: ctx.signal });
      const res = ctx.res!;
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.flushHeaders();
      for await (const s of it) res.write(JSON.stringify(s) + '\n');
      res.end();
    })
    .add('POST', '/containers/{id}/resize', (ctx) => { containerOf(ctx, ctx.params[0]); noContent(ctx.res!, 200); })
    .add('DELETE', '/containers/{id}', async (ctx) => {
      const c = containerOf(ctx, ctx.params[0]);
      await removeContainer(ctx.engine, c.id, { force: qbool(ctx.query, 'force'), volumes: qbool(ctx.query, 'v') });
      noContent(ctx.res!);
    })
    .add('POST', '/commit', async (ctx) => {
      const q = ctx.query;
      const ref = q.get('container');
      if (!ref) throw invalidArgument('container is required');
      containerOf(ctx, ref);
      const body = await readJSON(ctx.req);
      const repo = q.get('repo');
      const tag = q.get('tag');
      const id = await commitContainer(ctx.engine, ref, {
        repo: repo ? (tag ? `${repo}:${tag}` : repo) : undefined, changes: q.getAll('changes').flatMap((c) => c.split('\n')).filter(Boolean),
        config: Object.keys(body).length ? body : undefined, message: q.get('comment') ?? undefined, author: q.get('author') ?? undefined,
      });
      sendJSON(ctx.res!, 201, { Id: id });
    });
}
