// A canary directory outside a scope: fingerprinted before and after a hostile operation, so a
// test fails on any byte written, any file made, changed or removed, and on any read that
// changed an access time we watch (content, mode, owner, links and sizes are all in the print).
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';

/** Every entry under dir: name, type, mode, owner, size and a hash of the content or link target. */
export function fingerprint(dir: string): string[] {
  const out: string[] = [];
  const visit = (rel: string) => {
    const p = rel ? join(dir, rel) : dir;
    const st = lstatSync(p);
    let what = '';
    if (st.isFile()) what = createHash('sha256').update(readFileSync(p)).digest('hex').slice(0, 16);
    else if (st.isSymbolicLink()) what = `-> ${readlinkSync(p)}`;
    out.push(`${rel || '.'} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.isDirectory() ? '' : st.size} ${what} ${st.mtimeMs}`);
    if (st.isDirectory()) for (const n of readdirSync(p).sort()) visit(rel ? `${rel}/${n}` : n);
  };
  visit('');
  return out;
}

/** Paths that a process could have opened to read: their access times. */
export function atimes(dir: string): Map<string, number> {
  const m = new Map<string, number>();
  const visit = (p: string) => {
    const st = lstatSync(p);
    m.set(p, st.atimeMs);
    if (st.isDirectory()) for (const n of readdirSync(p)) visit(join(p, n));
  };
  visit(dir);
  return m;
}
