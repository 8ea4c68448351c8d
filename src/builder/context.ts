// The build context: files the Dockerfile may COPY, minus what .dockerignore excludes, and
// the checksum the build cache keys COPY/ADD on (content, mode, owner and names; not mtime).
//
// Every source is resolved through a Scope (src/scope): the context's own with escape 'error'
// (a symlinked parent that leaves the context is an error naming the link, never a read of
// what it points at), or a flattened image's with escape 'clamp' for COPY --from (symlinks are
// re-rooted in that image, as docker resolves them). The final component is not followed: a
// symlink source is copied as a symlink. Files are opened later with O_NOFOLLOW and must be the
// very file (device and inode) that was looked at here.
import { createHash } from 'node:crypto';
import { lstat, readlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join, posix } from 'node:path';
import { walk } from '../archive/walk.js';
import { invalidArgument, notFound, ShaleError } from '../errors.js';
import { openVerified, readVerified, Scope } from '../scope/index.js';
import { IgnoreMatcher, parseDockerignore } from './dockerfile/index.js';

export interface SourceFile {
  rel: string; // for a COPY source: its path in the context; for files under it: relative to it
  path: string;
  st: Stats;
}

/** the largest .dockerignore read (docker has no limit; a bigger one is not a real ignore file) */
const MAX_DOCKERIGNORE = 1 << 20;

export class BuildContext {
  private matcher: IgnoreMatcher;
  /** the context as a scope: nothing resolved in it may leave it */
  readonly scope: Scope;
  constructor(readonly dir: string) {
    this.scope = new Scope(dir, { escape: 'error', label: 'build context' });
    const ign = this.scope.readFile('.dockerignore', MAX_DOCKERIGNORE, 'failed to read .dockerignore:');
    this.matcher = new IgnoreMatcher(ign ? parseDockerignore(ign.toString('utf8')) : []);
  }

  ignored(rel: string, isDir: boolean): boolean {
    return rel !== '' && this.matcher.ignores(rel, isDir);
  }

  /**
   * Files a COPY source names (globs allowed), each with the files under it. `scope` is the
   * context (the default) or a flattened stage or image for COPY --from (then `filter` is off:
   * .dockerignore is about the context only).
   */
  async resolve(src: string, scope: Scope = this.scope, filter = true): Promise<{ base: SourceFile; files: SourceFile[] }[]> {
    const root = scope.root;
    const clean = posix.normalize('/' + src).slice(1).replace(/\/$/, '');
    if (clean.startsWith('..')) throw invalidArgument(`COPY source ${src} is outside the build context`);
    const missing = (m: string) => scope === this.scope
      ? notFound(`COPY failed: file not found in build context or excluded by .dockerignore: stat ${m || '.'}: file does not exist`, 'check the path and .dockerignore')
      : notFound(`COPY failed: file not found in the ${scope.label}: stat /${m}: file does not exist`);
    const matches: string[] = [];
    if (/[*?[]/.test(clean)) {
      // walk() never follows a symlink, so every match is a real entry under the root; each is
      // still resolved through the scope below like any other source
      const re = globToRegExp(clean);
      for await (const e of walk(root)) if (re.test(e.rel) && !(filter && this.ignored(e.rel, e.st.isDirectory()))) matches.push(e.rel);
      if (matches.length === 0) throw notFound(`COPY failed: no source files were specified by ${src}`);
    } else matches.push(clean);
    const out: { base: SourceFile; files: SourceFile[] }[] = [];
    for (const m of matches) {
      // parents followed inside the scope only; the final component is taken as it is
      const found = scope.resolve(m, { followFinal: false, what: 'source' });
      const st = found.st;
      if (!st) throw missing(m);
      const inner = found.inner.replace(/^\//, ''); // every symlink on the way resolved
      // .dockerignore applies to the name used and to where it leads (a link to an ignored file
      // does not bring it in: docker never sent that file to the builder)
      if (filter && (this.ignored(m, st.isDirectory()) || this.ignored(inner, st.isDirectory()))) throw missing(m);
      const path = inner ? join(root, inner) : root;
      const files: SourceFile[] = [];
      if (st.isDirectory()) {
        for await (const e of walk(path)) {
          if (filter && (this.ignored(m ? `${m}/${e.rel}` : e.rel, e.st.isDirectory()) || this.ignored(inner ? `${inner}/${e.rel}` : e.rel, e.st.isDirectory()))) continue;
          files.push({ rel: e.rel, path: e.path, st: e.st });
        }
      }
      out.push({ base: { rel: m, path, st }, files });
    }
    return out;
  }
}

/**
 * Open a source file for reading: never through a symlink in its last component, and only if it
 * is still the file that was lstat-ed (same device and inode; a swapped-in file is an error).
 */
export function openSource(path: string, st: Stats, what = path) {
  return openVerified(path, st, what, 'the build read it');
}

/** readlink of a source symlink, checked to be the link that was lstat-ed. */
export async function readSourceLink(path: string, st: Stats, what = path): Promise<string> {
  const target = await readlink(path);
  const now = await lstat(path);
  if (!now.isSymbolicLink() || now.dev !== st.dev || now.ino !== st.ino) throw new ShaleError('Conflict', `${what} was replaced while the build read it`, 'retry when nothing is rewriting the build context');
  return target;
}

function globToRegExp(g: string): RegExp {
  let re = '';
  for (let i = 0; i < g.length; i++) {
    const c = g[i];
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const j = g.indexOf(']', i);
      re += j > i ? g.slice(i, j + 1) : '\\[';
      if (j > i) i = j;
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Checksum of sources for the cache key: names, types, modes, owners, contents; never mtimes. */
export async function checksumSources(sources: { base: SourceFile; files: SourceFile[] }[]): Promise<string> {
  const h = createHash('sha256');
  const all: { name: string; f: SourceFile }[] = [];
  for (const s of sources) {
    all.push({ name: s.base.rel, f: s.base });
    for (const f of s.files) all.push({ name: f.rel, f });
  }
  // small files and link targets are read AHEAD at a time; hashing stays in order
  const AHEAD = 32;
  const small = (f: SourceFile) => f.st.isSymbolicLink() || (f.st.isFile() && f.st.size <= 1 << 20);
  const read = (f: SourceFile): Promise<Buffer | string> | undefined => {
    if (!small(f)) return undefined;
    const p = f.st.isSymbolicLink() ? readSourceLink(f.path, f.st) : readVerified(f.path, f.st, f.path, 'the build read it');
    p.catch(() => undefined); // awaited in its turn
    return p;
  };
  const pending = all.slice(0, AHEAD).map((x) => read(x.f));
  for (let i = 0; i < all.length; i++) {
    const { name, f } = all[i];
    if (i + AHEAD < all.length) pending.push(read(all[i + AHEAD].f));
    const data = pending[i];
    pending[i] = undefined;
    h.update(`${name}\0${f.st.mode}\0${f.st.uid}\0${f.st.gid}\0`);
    if (data) h.update(await data);
    else if (f.st.isFile()) {
      const fh = await openSource(f.path, f.st);
      try {
        for await (const c of fh.createReadStream({ highWaterMark: 1 << 20, autoClose: false })) h.update(c as Buffer);
      } finally {
        await fh.close();
      }
    }
    h.update('\0');
  }
  return h.digest('hex');
}
