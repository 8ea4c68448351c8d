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
  const add = async (name: string, f: SourceFile) => {
    const st = f.st;
    h.update(`${name}\0${st.mode}\0${st.uid}\0${st.gid}\0`);
    if (st.isSymbolicLink()) h.update(await readlink(f.path));
    else if (st.isFile()) {
      if (st.size <= 1 << 20) h.update(await readFile(f.path));
      else for await (const c of createReadStream(f.path, { highWaterMark: 1 << 20 })) h.update(c as Buffer);
    }
    h.update('\0');
  };
  for (const s of sources) {
    await add(s.base.rel, s.base);
    for (const f of s.files) await add(f.rel, f);
  }
  return h.digest('hex');
}
