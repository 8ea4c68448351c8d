// The build context: files the Dockerfile may COPY, minus what .dockerignore excludes, and
// the checksum the build cache keys COPY/ADD on (content, mode, owner and names; not mtime).
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { lstat, readFile, readlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join, posix } from 'node:path';
import { walk } from '../archive/walk.js';
import { invalidArgument, notFound } from '../errors.js';
import { IgnoreMatcher, parseDockerignore } from './dockerfile/index.js';

export interface SourceFile {
  rel: string; // for a COPY source: its path in the context; for files under it: relative to it
  path: string;
  st: Stats;
}

export class BuildContext {
  private matcher: IgnoreMatcher;
  constructor(readonly dir: string) {
    const ign = join(dir, '.dockerignore');
    this.matcher = new IgnoreMatcher(existsSync(ign) ? parseDockerignore(readFileSync(ign, 'utf8')) : []);
  }

  ignored(rel: string, isDir: boolean): boolean {
    return rel !== '' && this.matcher.ignores(rel, isDir);
  }

  /**
   * Files a COPY source names (globs allowed in the last component), each with the files under it.
   * Paths may not leave the context.
   */
  async resolve(src: string, root = this.dir, filter = true): Promise<{ base: SourceFile; files: SourceFile[] }[]> {
    const clean = posix.normalize('/' + src).slice(1).replace(/\/$/, '');
    if (clean.startsWith('..')) throw invalidArgument(`COPY source ${src} is outside the build context`);
    const matches: string[] = [];
    if (/[*?[]/.test(clean)) {
      const re = globToRegExp(clean);
      for await (const e of walk(root)) if (re.test(e.rel) && !(filter && this.ignored(e.rel, e.st.isDirectory()))) matches.push(e.rel);
      if (matches.length === 0) throw notFound(`COPY failed: no source files were specified by ${src}`);
    } else matches.push(clean);
    const out: { base: SourceFile; files: SourceFile[] }[] = [];
    for (const m of matches) {
      const path = m ? join(root, m) : root;
      let st: Stats;
      try {
        st = await lstat(path);
      } catch {
        throw notFound(`COPY failed: file not found in build context or excluded by .dockerignore: stat ${m || '.'}: file does not exist`, 'check the path and .dockerignore');
      }
      if (filter && this.ignored(m, st.isDirectory())) throw notFound(`COPY failed: file not found in build context or excluded by .dockerignore: stat ${m}: file does not exist`);
      const files: SourceFile[] = [];
      if (st.isDirectory()) {
        for await (const e of walk(path)) {
          const full = m ? `${m}/${e.rel}` : e.rel;
          if (filter && this.ignored(full, e.st.isDirectory())) continue;
          files.push({ rel: e.rel, path: e.path, st: e.st });
        }
      }
      out.push({ base: { rel: m, path, st }, files });
    }
    return out;
  }
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
    const p = f.st.isSymbolicLink() ? readlink(f.path) : readFile(f.path);
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
    else if (f.st.isFile()) for await (const c of createReadStream(f.path, { highWaterMark: 1 << 20 })) h.update(c as Buffer);
    h.update('\0');
  }
  return h.digest('hex');
}
