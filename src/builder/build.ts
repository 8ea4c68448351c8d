// `shale build`: a Dockerfile and a context become an image, one step at a time.
// FROM, COPY, ADD and RUN add a layer; every other instruction changes only the config and
// is recorded as an empty_layer history row. Each layer step is looked up in the build cache
// first: key = parent chain + instruction after substitution (+ source checksum for COPY/ADD).
import { realpathSync } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, open, rm, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, posix, relative, resolve } from 'node:path';
import { applyLayer, openUncompressed, readTar, writeTar, type TarSourceEntry } from '../archive/index.js';
import { sha256, type Digest } from '../digest/index.js';
import type { Store } from '../store/index.js';
import { errno, invalidArgument, notFound, permissionDenied, ShaleError } from '../errors.js';
import { chainIds } from '../images/store.js';
import { ingestTar, openLayerTar, type LayerRecord } from '../images/layers.js';
import { hostArch, type ContainerConfig, type History, type ImageConfig } from '../oci/index.js';
import { applyConfigInstruction, CONFIG_ONLY, envMap } from './config.js';
import { Scope } from '../scope/index.js';
import { BuildContext, checksumSources, openSource, readSourceLink } from './context.js';
import { placeEntries, stageOf, type FollowDest, type Stage } from './dest.js';
import { expandWord, parseDockerfile, type Env, type Instruction } from './dockerfile/index.js';

export interface RunStepRequest {
  engine: Store;
  layers: LayerRecord[];
  config: ContainerConfig;
  args: string[];
  env: string[];
  network: 'none' | 'host';
  /** where the command's output goes (build progress), or nowhere */
  output?: import('node:stream').Writable;
}
export type RunStep = (req: RunStepRequest) => Promise<LayerRecord>;

export interface BuildOptions {
  contextDir: string;
  /**
   * The Dockerfile: a path in the context (default "Dockerfile"), read through the context's
   * scope (a symlink out of the context is refused); or, with dockerfileFromCwd, the path the
   * user named with -f (relative to the working directory, as docker's CLI takes it). The
   * name used in errors when dockerfileText is set.
   */
  dockerfile?: string;
  dockerfileFromCwd?: boolean;
  dockerfileText?: string;
  tags?: string[];
  buildArgs?: Record<string, string>;
  labels?: Record<string, string>;
  target?: string;
  noCache?: boolean;
  network?: 'none' | 'host';
  /**
   * Entitlements the user granted (`--allow`, as `docker buildx build --allow`): RUN
   * --network=host needs network.host. A build whose default network is host (--network host)
   * has it implied, as buildx adds it for --network=host.
   */
  allow?: string[];
  runStep: RunStep;
  resolveBase?: (name: string) => Promise<void>; // e.g. pull from a loopback registry
  progress?: (line: string) => void;
  /** RUN output (stdout and stderr of the step's container) */
  output?: import('node:stream').Writable;
}

export interface BuildResult {
  id: Digest;
  steps: { text: string; cached: boolean; ms: number }[];
}

interface StageState {
  name?: string;
  config: ImageConfig;
  layers: LayerRecord[];
  history: History[];
  env: Env; // ARGs and ENV visible to expansion
  args: Set<string>;
  lastCreated: string;
}

const BUILDKIT_COMMENT = 'buildkit.dockerfile.v0';
const SOURCE_DATE_EPOCH = process.env.SOURCE_DATE_EPOCH ? Number(process.env.SOURCE_DATE_EPOCH) : undefined;

function where(file: string, ins: Instruction): string {
  return `${file}:${ins.line}`;
}

/** Entitlements a build can be granted (BuildKit's names); shale knows only this one. */
export const ENTITLEMENTS = ['network.host'] as const;

/** the largest Dockerfile read (BuildKit's dockerfile frontend refuses beyond a few MiB too) */
const MAX_DOCKERFILE = 4 << 20;

/** `rel` inside `root` (a path relative to it, '' for the root itself), or undefined. */
function under(root: string, abs: string): string | undefined {
  const rel = relative(root, abs);
  return rel === '..' || rel.startsWith('../') || isAbsolute(rel) ? undefined : rel;
}

/**
 * Where a -f path the user named lies in the context, if it does: lexically under the context
 * (as given or as its real path), or with its directory's real path there. A Dockerfile in the
 * context is read through the context's scope; one outside it is the user's own choice of file.
 */
function dockerfileInContext(contextDir: string, abs: string): string | undefined {
  const roots = [resolve(contextDir)];
  try { roots.push(realpathSync(contextDir)); } catch { /* the scope reports a missing context */ }
  for (const r of roots) {
    const rel = under(r, abs);
    if (rel !== undefined) return rel;
  }
  try {
    const real = join(realpathSync(dirname(abs)), basename(abs));
    for (const r of roots) {
      const rel = under(r, real);
      if (rel !== undefined) return rel;
    }
  } catch { /* its directory does not exist: not in the context */ }
  return undefined;
}

/** Read a file the user named outside the context, at most `max` bytes. Undefined when missing. */
async function readBounded(path: string, max: number): Promise<Buffer | undefined> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') return undefined;
    throw e;
  }
  try {
    if (!(await fh.stat()).isFile()) throw invalidArgument(`failed to read dockerfile: ${path} is not a regular file`);
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of fh.createReadStream({ autoClose: false, highWaterMark: 64 * 1024 })) {
      n += (c as Buffer).length;
      if (n > max) throw invalidArgument(`failed to read dockerfile: ${path} is larger than ${max} bytes`);
      chunks.push(c as Buffer);
    }
    return Buffer.concat(chunks);
  } finally {
    await fh.close();
  }
}

/**
 * The Dockerfile's text. In the context it is read through the context's scope (escape
 * 'error', bounded): a Dockerfile that is a symlink out of the context, or under a symlinked
 * directory that leaves it, is refused naming the link, and never read.
 */
async function readDockerfile(ctx: BuildContext, file: string, fromCwd: boolean): Promise<string> {
  const what = 'failed to read dockerfile:';
  const missing = () => notFound(`failed to read dockerfile: open ${file}: no such file or directory`, 'pass -f PATH or put a Dockerfile in the context');
  const inContext = (rel: string): string => {
    const b = ctx.scope.readFile(rel, MAX_DOCKERFILE, what);
    if (!b) throw missing();
    return b.toString('utf8');
  };
  if (!fromCwd) return inContext(file);
  const abs = resolve(file);
  const rel = dockerfileInContext(ctx.dir, abs);
  if (rel !== undefined) return inContext(rel);
  const b = await readBounded(abs, MAX_DOCKERFILE);
  if (b) return b.toString('utf8');
  // not there from the working directory: a relative -f may name a file in the context
  if (!isAbsolute(file)) return inContext(file);
  throw missing();
}

/**
 * A directory under the engine root that only its owner can enter (docker's <root>/tmp):
 * flattened images for COPY --from and tar contexts from stdin are unpacked in it, so their
 * setuid files and the rest of their content are out of reach of other users while a build
 * runs (an archive's root entry may make its own directory 0755).
 */
export async function privateTmp(engine: Store): Promise<string> {
  const dir = join(engine.root, 'tmp');
  try {
    await mkdir(dir, { mode: 0o700 });
  } catch (e) {
    if (errno(e) !== 'EEXIST') throw e;
  }
  const st = await lstat(dir);
  const uid = process.getuid?.();
  if (!st.isDirectory() || (uid !== undefined && st.uid !== uid)) {
    throw new ShaleError('FailedPrecondition', `${dir} is not a directory owned by this user`, 'move it away; shale makes it again');
  }
  if ((st.mode & 0o777) !== 0o700) await chmod(dir, 0o700);
  return dir;
}

export async function build(engine: Store, o: BuildOptions): Promise<BuildResult> {
  const file = o.dockerfile ?? 'Dockerfile';
  // the context directory itself is the user's choice (followed if it is a link); what is in it is not
  const cst = await stat(o.contextDir).catch((e) => { if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') return undefined; throw e; });
  if (!cst) throw notFound(`unable to prepare context: path "${o.contextDir}" not found`);
  if (!cst.isDirectory()) throw invalidArgument(`unable to prepare context: context must be a directory: ${o.contextDir}`);
  const ctx = new BuildContext(o.contextDir);
  const text = o.dockerfileText ?? (await readDockerfile(ctx, file, !!o.dockerfileFromCwd));
  const df = parseDockerfile(text, basename(file));
  const allow = new Set(o.allow ?? []);
  if (o.network === 'host') allow.add('network.host');
  for (const a of allow) if (!(ENTITLEMENTS as readonly string[]).includes(a)) throw invalidArgument(`--allow ${a}: invalid entitlement`, `shale builds know ${ENTITLEMENTS.join(', ')}`);
  const say = o.progress ?? (() => {});
  const result: BuildResult = { id: '' as Digest, steps: [] };
  const release = engine.images.lease(['*']);
  const temps: string[] = [];
  try {
    // global ARGs (before the first FROM) and stages
    const globalArgs: Env = {};
    const stages: { name?: string; from: Instruction; body: Instruction[] }[] = [];
    for (const ins of df.instructions) {
      if (ins.cmd === 'FROM') {
        const asIdx = ins.args.findIndex((a) => a.toUpperCase() === 'AS');
        stages.push({ name: asIdx > 0 ? ins.args[asIdx + 1]?.toLowerCase() : undefined, from: ins, body: [] });
      } else if (stages.length === 0) {
        if (ins.cmd !== 'ARG') throw invalidArgument(`${where(df.file, ins)}: ${ins.cmd} before FROM`);
        for (const a of ins.rawArgs ?? ins.args) {
          const i = a.indexOf('=');
          const k = i < 0 ? a : a.slice(0, i);
          globalArgs[k] = o.buildArgs?.[k] ?? (i < 0 ? undefined : expandWord(a.slice(i + 1), globalArgs, df.escape));
        }
      } else stages[stages.length - 1].body.push(ins);
    }
    if (stages.length === 0) throw invalidArgument(`${df.file}: no FROM instruction`);
    let targetIdx = stages.length - 1;
    if (o.target) {
      targetIdx = stages.findIndex((s) => s.name === o.target!.toLowerCase());
      if (targetIdx < 0) throw notFound(`failed to reach build target ${o.target} in Dockerfile`);
    }
    const done: StageState[] = [];
    const flattened = new Map<string, string>();
    const rootfsOf = async (layers: LayerRecord[]): Promise<string> => {
      const key = chainIds(layers.map((l) => l.diffId)).pop() ?? 'empty';
      const have = flattened.get(key);
      if (have) return have;
      const dir = await mkdtemp(join(await privateTmp(engine), `build-from-${process.pid}-`));
      temps.push(dir);
      for (const l of layers) await applyLayer(dir, openLayerTar(engine.content, l), { whiteouts: 'apply' });
      flattened.set(key, dir);
      return dir;
    };
    const now = () => new Date().toISOString();
    const totalSteps = stages.slice(0, targetIdx + 1).reduce((a, s) => a + 1 + s.body.length, 0);
    let stepNo = 0;

    for (let si = 0; si <= targetIdx; si++) {
      const stage = stages[si];
      const fromIns = stage.from;
      const fromName = expandWord(fromIns.args[0], globalArgs, df.escape);
      stepNo++;
      const t0 = Date.now();
      let st: StageState;
      const byStage = done.find((d) => d.name && d.name === fromName.toLowerCase());
      if (fromName === 'scratch') {
        st = { config: { architecture: hostArch(), os: 'linux', config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] }, rootfs: { type: 'layers', diff_ids: [] }, history: [] }, layers: [], history: [], env: {}, args: new Set(), lastCreated: new Date(0).toISOString() };
      } else if (byStage) {
        st = { ...structuredClone({ config: byStage.config, history: byStage.history, env: byStage.env }), layers: [...byStage.layers], args: new Set(), lastCreated: byStage.lastCreated };
      } else {
        let img = engine.images.tryResolve(fromName);
        if (!img && o.resolveBase) {
          await o.resolveBase(fromName);
          img = engine.images.tryResolve(fromName);
        }
        if (!img) throw notFound(`${where(df.file, fromIns)}: FROM ${fromName}: no such image in the local store`, 'shale never pulls from public registries: bootstrap, load, import or pull (from a registry you name) the base first');
        const cfg = engine.images.config(img.id);
        st = { config: structuredClone(cfg), layers: engine.images.layers(img.id), history: [...(cfg.history ?? [])], env: {}, args: new Set(), lastCreated: cfg.created ?? new Date(0).toISOString() };
        st.config.config ??= {};
      }
      st.name = stage.name;
      st.env = { ...envMap(st.config.config ?? {}) };
      say(`#${stepNo} [${stepNo}/${totalSteps}] FROM ${fromName}${stage.name ? ` AS ${stage.name}` : ''}`);
      say(`#${stepNo} DONE ${((Date.now() - t0) / 1000).toFixed(1)}s`);
      result.steps.push({ text: `FROM ${fromName}`, cached: true, ms: Date.now() - t0 });

      // ONBUILD triggers of the base run first
      const triggers = (st.config.config?.OnBuild ?? []).map((t) => parseDockerfile(`FROM scratch\n${t}\n`, `${df.file} (ONBUILD)`).instructions[1]);
      if (st.config.config) st.config.config.OnBuild = null;
      const body = [...triggers, ...stage.body];

      for (const ins of body) {
        stepNo++;
        const t1 = Date.now();
        const label = `[${stepNo}/${totalSteps}] ${ins.original.replace(/\s+/g, ' ').slice(0, 200)}`;
        const cfg = (st.config.config ??= {});
        try {
          if (ins.cmd === 'ARG') {
            for (const a of ins.rawArgs ?? ins.args) {
              const i = a.indexOf('=');
              const k = i < 0 ? a : a.slice(0, i);
              st.args.add(k);
              const def = i < 0 ? globalArgs[k] : expandWord(a.slice(i + 1), st.env, df.escape);
              st.env[k] = o.buildArgs?.[k] ?? def;
            }
            say(`#${stepNo} ${label}`);
            continue; // ARG leaves no history row in BuildKit
          }
          if (CONFIG_ONLY.has(ins.cmd)) {
            const createdBy = applyConfigInstruction(cfg, ins, st.env, df.escape);
            st.history.push({ created: st.lastCreated, created_by: createdBy, comment: BUILDKIT_COMMENT, empty_layer: true });
            say(`#${stepNo} ${label}`);
            result.steps.push({ text: ins.original, cached: false, ms: Date.now() - t1 });
            continue;
          }
          const parentChain = chainIds(st.layers.map((l) => l.diffId)).pop() ?? '';
          let layer: LayerRecord | undefined;
          let createdBy: string;
          let cacheKey: string;
          let makeLayer: () => Promise<LayerRecord>;
          if (ins.cmd === 'COPY' || ins.cmd === 'ADD') {
            const plan = await planCopy(ins, st, ctx, df.escape, done, rootfsOf, engine);
            createdBy = `${ins.cmd} ${plan.display} # buildkit`;
            cacheKey = sha256(JSON.stringify([parentChain, ins.cmd, plan.expanded, ins.flags, plan.checksum]));
            // only on a cache miss: the destination is resolved in the stage's filesystem (dest.ts)
            const stage = stageOf(engine, st.layers, () => privateTmp(engine));
            makeLayer = () => ingestTar(engine.content, writeTar(plan.entries(stage)));
          } else if (ins.cmd === 'RUN') {
            let args: string[];
            const shell = cfg.Shell ?? ['/bin/sh', '-c'];
            if (ins.heredocs.length && !ins.json) {
              args = [...shell, ins.heredocs.map((h) => h.content).join('')];
            } else args = ins.json ? ins.args : [...shell, ins.args.join(' ')];
            const buildArgEnv = [...st.args].filter((k) => st.env[k] !== undefined && !(cfg.Env ?? []).some((e) => e.startsWith(`${k}=`))).map((k) => `${k}=${st.env[k]}`);
            const env = [...(cfg.Env ?? []), ...buildArgEnv];
            createdBy = `RUN ${ins.json ? JSON.stringify(args) : args.join(' ')} # buildkit`;
            if (buildArgEnv.length) createdBy = `RUN |${buildArgEnv.length} ${buildArgEnv.join(' ')} ${args.join(' ')} # buildkit`;
            cacheKey = sha256(JSON.stringify([parentChain, 'RUN', args, env, cfg.User ?? '', cfg.WorkingDir ?? '', ins.flags]));
            const network = runNetwork(ins.flags.network?.[0], o.network ?? 'none', allow);
            makeLayer = () => o.runStep({ engine, layers: st.layers, config: cfg, args, env, network, output: o.output });
          } else throw invalidArgument(`${where(df.file, ins)}: ${ins.cmd} is not supported`);

          let created = now();
          if (!o.noCache) {
            const row = engine.db.prepare('SELECT blob, created FROM build_cache WHERE key = ?').get(cacheKey) as { blob: string; created: string } | undefined;
            const rec = row && engine.content.has(row.blob) ? engine.images.getLayer(row.blob) : undefined;
            if (row && rec) {
              layer = rec;
              created = row.created;
              engine.db.prepare('UPDATE build_cache SET last_used = ? WHERE key = ?').run(now(), cacheKey);
            }
          }
          say(`#${stepNo} ${label}`);
          const cached = !!layer;
          if (!layer) {
            layer = await makeLayer();
            engine.images.putLayer(layer);
            engine.db.prepare('INSERT OR REPLACE INTO build_cache (key, blob, created, last_used) VALUES (?, ?, ?, ?)').run(cacheKey, layer.blob, created, created);
          }
          st.layers.push(layer);
          st.lastCreated = created;
          st.history.push({ created, created_by: createdBy, comment: BUILDKIT_COMMENT });
          say(cached ? `#${stepNo} CACHED` : `#${stepNo} DONE ${((Date.now() - t1) / 1000).toFixed(1)}s`);
          result.steps.push({ text: ins.original, cached, ms: Date.now() - t1 });
        } catch (e) {
          if (e instanceof ShaleError && !e.message.startsWith(df.file)) {
            throw new ShaleError(e.code, `${where(df.file, ins)}: ${ins.cmd}: ${e.message}`, e.hint);
          }
          throw e;
        }
      }
      st.config.rootfs = { type: 'layers', diff_ids: st.layers.map((l) => l.diffId) };
      st.config.history = st.history;
      st.config.created = st.lastCreated;
      done.push(st);
    }
    const final = done[targetIdx];
    if (o.labels && Object.keys(o.labels).length) final.config.config = { ...final.config.config, Labels: { ...final.config.config?.Labels, ...o.labels } };
    const img = engine.images.createImage(final.config, final.layers, o.tags ?? []);
    result.id = img.id;
    say(`#${stepNo + 1} exporting to image`);
    say(`#${stepNo + 1} writing image ${img.id} done`);
    for (const t of o.tags ?? []) say(`#${stepNo + 1} naming to ${t} done`);
    return result;
  } finally {
    release();
    for (const t of temps) await rm(t, { recursive: true, force: true });
  }
}

/**
 * A RUN's network: its --network flag (default, none, host) over the build's. Host needs the
 * network.host entitlement, as in BuildKit, which refuses it unless the build was allowed it.
 */
function runNetwork(flag: string | undefined, dflt: 'none' | 'host', allow: Set<string>): 'none' | 'host' {
  if (flag === undefined || flag === 'default') return dflt;
  if (flag === 'none') return 'none';
  if (flag === 'host') {
    if (!allow.has('network.host')) throw permissionDenied('entitlement network.host is not allowed', 'pass --allow network.host to build');
    return 'host';
  }
  throw invalidArgument(`unsupported network mode ${flag}`, 'use --network=default, none or host');
}

interface CopyPlan {
  display: string;
  expanded: string[];
  checksum: string;
  /** the layer's entries, placed in the stage's filesystem when there is one */
  entries: (stage?: Stage) => AsyncGenerator<TarSourceEntry>;
}

function owner(spec: string | undefined): { uid: number; gid: number } {
  if (!spec) return { uid: 0, gid: 0 };
  const [u, g] = spec.split(':');
  const num = (x: string | undefined, d: number) => (x === undefined || x === '' ? d : x === 'root' ? 0 : /^\d+$/.test(x) ? Number(x) : NaN);
  const uid = num(u, 0);
  const gid = num(g, uid);
  if (Number.isNaN(uid) || Number.isNaN(gid)) throw invalidArgument(`--chown=${spec}: only numeric ids and root are supported`, 'use --chown=UID:GID');
  return { uid, gid };
}

async function planCopy(ins: Instruction, st: StageState, ctx: BuildContext, escape: string, done: StageState[], rootfsOf: (l: LayerRecord[]) => Promise<string>, engine: Store): Promise<CopyPlan> {
  const x = (w: string) => expandWord(w, st.env, escape);
  const words = ins.json ? ins.args : ins.args;
  const heredocs = ins.heredocs;
  if (words.length < (heredocs.length ? 1 : 2)) throw invalidArgument(`${ins.cmd} requires at least two arguments`);
  const destRaw = x(words[words.length - 1]);
  const srcs = words.slice(0, -1).map(x).filter((s) => !s.startsWith('<<'));
  const workdir = st.config.config?.WorkingDir ?? '/';
  let dest = destRaw.startsWith('/') ? destRaw : posix.join(workdir, destRaw) + (destRaw.endsWith('/') ? '/' : '');
  const destIsDir = dest.endsWith('/') || srcs.length + heredocs.length > 1;
  dest = posix.normalize(dest);
  const own = owner(ins.flags.chown?.[0] ? x(ins.flags.chown[0]) : undefined);
  const chmod = ins.flags.chmod?.[0] ? parseInt(ins.flags.chmod[0], 8) : undefined;
  if (chmod !== undefined && Number.isNaN(chmod)) throw invalidArgument(`--chmod=${ins.flags.chmod![0]} is not an octal mode`);
  let scope = ctx.scope;
  let filter = true;
  const from = ins.flags.from?.[0];
  if (from) {
    const fromName = x(from);
    const stage = done.find((d) => d.name === fromName.toLowerCase()) ?? (/^\d+$/.test(fromName) ? done[Number(fromName)] : undefined);
    let layers: LayerRecord[];
    let label = 'stage';
    if (stage) layers = stage.layers;
    else {
      const img = engine.images.tryResolve(fromName);
      if (!img) throw notFound(`COPY --from=${fromName}: no such stage or image in the local store`);
      layers = engine.images.layers(img.id);
      label = 'image';
    }
    // sources are resolved inside the flattened stage or image, symlinks re-rooted there (an
    // absolute link in it never reaches the host), as docker resolves them in the source rootfs
    scope = new Scope(await rootfsOf(layers), { escape: 'clamp', label });
    filter = false;
  }
  if (ins.cmd === 'ADD') for (const s of srcs) if (/^(https?|git):\/\//.test(s) || s.startsWith('git@')) throw invalidArgument(`ADD ${s}: remote sources need the network, which shale builds do not use`, 'download the file into the build context and ADD it from there');
  const sources = (await Promise.all(srcs.map((s) => ctx.resolve(s, scope, filter)))).flat();
  const checksum = await checksumSources(sources) + sha256(heredocs.map((h) => h.name + '\0' + h.content).join('\0'));
  const clamp = (t: number) => (SOURCE_DATE_EPOCH !== undefined ? Math.min(t, SOURCE_DATE_EPOCH) : t);
  async function* entries(stage?: Stage): AsyncGenerator<TarSourceEntry> {
    const out = new Map<string, TarSourceEntry>();
    // one file to a destination without a trailing slash: docker follows that name in the image
    // (a link to a directory, or a directory, takes the file in under its own name)
    let follow: FollowDest | undefined;
    const addDir = (p: string, mtime: number) => {
      const name = p.replace(/^\//, '');
      if (name && !out.has(name)) out.set(name, { header: { name, type: 'dir', mode: 0o755, uid: own.uid, gid: own.gid, size: 0, mtime } });
    };
    // the directory a copied file lands in (docker creates it 0755 when missing)
    const parentDirs = (p: string, mtime: number) => {
      const parent = posix.dirname(p);
      if (parent !== '/') addDir(parent, mtime);
    };
    const put = async (target: string, f: { path: string; st: import('node:fs').Stats }) => {
      const name = target.replace(/^\//, '');
      const st = f.st;
      const mtime = clamp(Math.floor(st.mtimeMs / 1000));
      const mode = chmod ?? st.mode & 0o7777;
      if (st.isDirectory()) out.set(name, { header: { name, type: 'dir', mode, uid: own.uid, gid: own.gid, size: 0, mtime } });
      else if (st.isSymbolicLink()) out.set(name, { header: { name, type: 'symlink', mode: 0o777, uid: own.uid, gid: own.gid, size: 0, mtime, linkname: await readSourceLink(f.path, st) } });
      else if (st.isFile()) out.set(name, { header: { name, type: 'file', mode, uid: own.uid, gid: own.gid, size: st.size, mtime }, file: f.path, expect: { dev: st.dev, ino: st.ino } });
    };
    for (const s of sources) {
      if (s.base.st.isDirectory()) {
        addDir(dest, clamp(Math.floor(s.base.st.mtimeMs / 1000)));
        parentDirs(dest, 0);
        for (const f of s.files) await put(posix.join(dest, f.rel), f);
      } else {
        const isArchive = ins.cmd === 'ADD' && s.base.st.isFile() && (await looksLikeTar(s.base.path, s.base.st));
        if (isArchive) {
          addDir(dest, clamp(Math.floor(s.base.st.mtimeMs / 1000)));
          for await (const e of extractEntries(s.base.path, s.base.st, s.base.rel, dest)) out.set(e.header.name, e);
          continue;
        }
        const target = destIsDir ? posix.join(dest, basename(s.base.rel)) : dest;
        parentDirs(target, 0);
        await put(target, s.base);
        if (!destIsDir) follow = { name: target.replace(/^\//, ''), base: basename(s.base.rel) };
      }
    }
    for (const h of heredocs) {
      const target = destIsDir ? posix.join(dest, h.name) : dest;
      const data = Buffer.from(h.expand ? expandWord(h.content, st.env, escape) : h.content);
      parentDirs(target, 0);
      const name = target.replace(/^\//, '');
      out.set(name, { header: { name, type: 'file', mode: chmod ?? 0o644, uid: own.uid, gid: own.gid, size: data.length, mtime: clamp(0) }, data });
      if (!destIsDir) follow = { name, base: h.name };
    }
    // a layer that writes through a symlink it makes itself cannot be applied later (the layer
    // extractor refuses it): refuse it now, so such an image is never made
    const throughOwnLinks = (m: Map<string, TarSourceEntry>) => {
      for (const k of m.keys()) {
        const parts = k.split('/');
        for (let i = 1; i < parts.length; i++) {
          const parent = parts.slice(0, i).join('/');
          if (m.get(parent)?.header.type === 'symlink') throw invalidArgument(`${ins.cmd} would write /${k} through the symlink /${parent} it also makes`, 'copy the link and the files under its name in separate steps, or copy the directory it points to');
        }
      }
    };
    throughOwnLinks(out);
    // at their places in the image: through its symlinks, as docker resolves them (dest.ts)
    const placed = await placeEntries(out, { follow, own, stage });
    throughOwnLinks(placed);
    const names = [...placed.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    // hard links (from an ADD archive) after everything else, so each follows what it links to
    for (const k of names) if (placed.get(k)!.header.type !== 'link') yield placed.get(k)!;
    for (const k of names) if (placed.get(k)!.header.type === 'link') yield placed.get(k)!;
  }
  const display = [...(from ? [`--from=${from}`] : []), ...srcs, ...heredocs.map((h) => `<<${h.name}`), destRaw].join(' ');
  return { display, expanded: [...srcs, dest], checksum, entries };
}

async function looksLikeTar(path: string, st: import('node:fs').Stats): Promise<boolean> {
  const fh = await openSource(path, st);
  try {
    const b = Buffer.alloc(512);
    const { bytesRead } = await fh.read(b, 0, 512, 0);
    if (bytesRead >= 2 && b[0] === 0x1f && b[1] === 0x8b) return true;
    if (bytesRead >= 4 && b.readUInt32LE(0) === 0xfd2fb528) return true;
    return bytesRead === 512 && b.toString('ascii', 257, 262) === 'ustar';
  } finally {
    await fh.close();
  }
}

/**
 * ADD of a local archive: its entries re-rooted at dest (paths checked like any layer). An
 * archive that writes through a symlink it made itself (`l -> /etc`, then `l/passwd`) is
 * refused, naming the entry: the image it would make could never be created.
 */
async function* extractEntries(path: string, st: import('node:fs').Stats, src: string, dest: string): AsyncGenerator<TarSourceEntry> {
  const { cleanName } = await import('../archive/safe-path.js');
  const fh = await openSource(path, st);
  const stream = fh.createReadStream({ autoClose: false });
  try {
    const { tar } = await openUncompressed(stream);
    // names (relative to the archive's root) that are symlinks, as the archive has made them so far
    const links = new Set<string>();
    const through = (parts: string[]): string | undefined => {
      for (let i = 1; i < parts.length; i++) {
        const p = parts.slice(0, i).join('/');
        if (links.has(p)) return p;
      }
      return undefined;
    };
    for await (const { header, body } of readTar(tar)) {
      const parts = cleanName(header.name);
      if (parts.length === 0) continue;
      const rel = parts.join('/');
      const via = through(parts);
      if (via !== undefined) throw invalidArgument(`ADD ${src}: archive entry ${header.name} is written through the symlink ${via} the archive made`, 'an archive for ADD may not write under its own symlinks');
      const name = posix.join(dest, ...parts).replace(/^\//, '');
      const h = { ...header, name };
      let isLink = h.type === 'symlink';
      if (h.type === 'link' && h.linkname) {
        const target = cleanName(h.linkname, 'hardlink target');
        const tvia = through(target);
        if (tvia !== undefined) throw invalidArgument(`ADD ${src}: archive entry ${header.name} is a hard link through the symlink ${tvia} the archive made`, 'an archive for ADD may not link under its own symlinks');
        isLink = links.has(target.join('/')); // a hard link to one of its symlinks is that symlink again
        h.linkname = posix.join(dest, ...target).replace(/^\//, '');
      }
      if (isLink) links.add(rel);
      else links.delete(rel); // replaced by a file or directory of the same name
      if (h.type === 'file') {
        const chunks: Buffer[] = [];
        for await (const c of body) chunks.push(Buffer.from(c));
        yield { header: h, data: Buffer.concat(chunks) };
      } else yield { header: h };
    }
  } finally {
    stream.destroy();
    await fh.close();
  }
}

