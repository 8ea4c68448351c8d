// .dockerignore support, following docker's rules (moby/patternmatcher and its
// ignorefile reader): `#` comment lines, `!` exceptions where the last matching
// pattern wins, Go filepath.Match globs plus `**`, patterns cleaned like
// filepath.Clean with a leading `/` dropped, and a pattern that matches a
// parent directory excluding everything below it.

import path from 'node:path';
import { invalidArgument } from '../../errors.js';

/** filepath.Clean for slash paths: "./a//b/../c/" -> "a/c", "" -> "." */
function clean(p: string): string {
  if (p === '') return '.';
  let out = path.posix.normalize(p);
  if (out.length > 1 && out.endsWith('/')) out = out.slice(0, -1);
  return out;
}

/** Reads a .dockerignore file into its list of patterns (exceptions keep their `!`). */
export function parseDockerignore(text: string): string[] {
  if (text.startsWith('\uFEFF')) text = text.slice(1);
  const patterns: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    if (line.startsWith('#')) continue; // only a `#` in the first column starts a comment
    let pattern = line.trim();
    if (pattern === '') continue;
    const invert = pattern.startsWith('!');
    if (invert) pattern = pattern.slice(1).trim();
    if (pattern !== '') {
      pattern = clean(pattern);
      if (pattern.length > 1 && pattern.startsWith('/')) pattern = pattern.slice(1);
    }
    patterns.push(invert ? '!' + pattern : pattern);
  }
  return patterns;
}

type MatchType = 'exact' | 'prefix' | 'suffix' | 'regexp';

class Pattern {
  readonly type: MatchType;
  readonly dirs: string[];
  private readonly regexp?: RegExp;

  constructor(readonly pattern: string, readonly exclusion: boolean) {
    this.dirs = pattern.split('/');
    // translate to a regular expression the way patternmatcher does, noting
    // when a cheaper exact/prefix/suffix comparison is enough
    let re = '^';
    let type: MatchType = 'exact';
    const chars = Array.from(pattern);
    for (let i = 0; i < chars.length; i++) {
      const ch = chars[i];
      if (ch === '*' && chars[i + 1] === '*') {
        const start = i === 0;
        i++;
        if (chars[i + 1] === '/') i++; // `**/` is the same as `**`
        if (i + 1 >= chars.length) {
          // trailing `**` matches everything below
          if (type === 'exact') type = 'prefix';
          else {
            re += '.*';
            type = 'regexp';
          }
        } else {
          re += '(.*/)?';
          type = 'regexp';
        }
        if (start) type = 'suffix';
      } else if (ch === '*') {
        re += '[^/]*';
        type = 'regexp';
      } else if (ch === '?') {
        re += '[^/]';
        type = 'regexp';
      } else if ('.+()|{}$'.includes(ch)) {
        re += '\\' + ch;
      } else if (ch === '\\') {
        if (i + 1 >= chars.length) throw invalidArgument(`invalid .dockerignore pattern "${pattern}": trailing backslash`);
        re += '\\' + chars[++i];
        type = 'regexp';
      } else if (ch === '[' || ch === ']') {
        re += ch;
        type = 'regexp';
      } else re += ch;
    }
    this.type = type;
    if (type === 'regexp') {
      try {
        this.regexp = new RegExp(re + '$');
      } catch {
        throw invalidArgument(`invalid .dockerignore pattern "${pattern}": syntax error in pattern`);
      }
    }
  }

  match(p: string): boolean {
    switch (this.type) {
      case 'exact':
        return p === this.pattern;
      case 'prefix':
        return p.startsWith(this.pattern.slice(0, -2));
      case 'suffix': {
        const suffix = this.pattern.slice(2);
        return p.endsWith(suffix) || (suffix.startsWith('/') && p === suffix.slice(1));
      }
      case 'regexp':
        return (this.regexp as RegExp).test(p);
    }
  }
}

/** Segment-wise glob test used to decide whether a directory may hold an exception. */
function segmentMayMatch(patternSegment: string, name: string): boolean {
  if (patternSegment.includes('**')) return true;
  try {
    return new Pattern(patternSegment, false).match(name);
  } catch {
    return true;
  }
}

export class IgnoreMatcher {
  private readonly patterns: Pattern[] = [];

  constructor(patterns: string[]) {
    for (let p of patterns) {
      p = p.trim();
      if (p === '') continue;
      const exclusion = p.startsWith('!');
      if (exclusion) {
        if (p.length === 1) throw invalidArgument('illegal exclusion pattern: "!"');
        p = p.slice(1);
      }
      p = clean(p);
      if (p.length > 1 && p.startsWith('/')) p = p.slice(1); // context paths are relative
      this.patterns.push(new Pattern(p, exclusion));
    }
  }

  /** True if any pattern is an exception (`!pattern`). */
  get hasExceptions(): boolean {
    return this.patterns.some((p) => p.exclusion);
  }

  /**
   * Whether the context path (slash-separated, relative to the context root) is excluded.
   * A pattern matches the path itself or any of its parent directories; the last
   * pattern that matches decides. Docker makes no difference between files and
   * directories here (`dir/` is cleaned to `dir`), so isDir does not change the result.
   */
  ignores(relPath: string, isDir = false): boolean {
    void isDir;
    let p = clean(relPath);
    while (p.startsWith('/')) p = p.slice(1);
    if (p === '.' || p === '') return false; // the context root itself is never excluded
    const parents = p.split('/').slice(0, -1);
    let matched = false;
    for (const pattern of this.patterns) {
      // an inclusion can't change a match, an exception can't change a non-match
      if (pattern.exclusion !== matched) continue;
      let match = pattern.match(p);
      for (let i = 1; !match && i <= parents.length; i++) match = pattern.match(parents.slice(0, i).join('/'));
      if (match) matched = !pattern.exclusion;
    }
    return matched;
  }

  /**
   * Whether a walker may skip an excluded directory without looking inside:
   * true only if it is excluded and no exception pattern could match a path below it.
   */
  canSkipDir(relDir: string): boolean {
    if (!this.ignores(relDir, true)) return false;
    const parts = clean(relDir).replace(/^\/+/, '').split('/');
    return !this.patterns.some((pattern) => {
      if (!pattern.exclusion) return false;
      const n = Math.min(pattern.dirs.length, parts.length);
      for (let i = 0; i < n; i++) if (!segmentMayMatch(pattern.dirs[i], parts[i])) return false;
      return true;
    });
  }
}
