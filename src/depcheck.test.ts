// The import direction, checked: no module imports one from a higher layer, and no import goes
// through a computed path (the compiler and this test could not see it). ggcr's depcheck_test.go
// is the model. Tests, test kits and conformance suites may reach up; the code they test may not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

// dist/depcheck.test.js -> the TypeScript sources beside dist/
const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'src');

/** Lower first. A module may import from its own rank or below. */
const RANKS: string[][] = [
  ['errors', 'units', 'digest', 'oci', 'reference', 'sys'],
  ['db', 'scope', 'archive', 'content'],
  ['snapshots'],
  ['images', 'store'], // the image transports take a Store; the Store holds the ImageStore
  ['containers', 'registry'],
  ['builder'],
  ['engine'],
  ['cli', 'api'],
];
const rankOf = new Map(RANKS.flatMap((names, i) => names.map((n) => [n, i] as const)));

function isTestCode(file: string): boolean {
  return /\.test\.ts$|(^|\/)(testkit|testutil|testsuite|canary)\.ts$/.test(file) || file.split('/').includes('testutil');
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = join(dir, d.name);
    if (d.isDirectory()) return d.name === 'testdata' ? [] : sources(p);
    return d.name.endsWith('.ts') && !d.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** The top folder (or file stem) under src/ a path belongs to. */
function unit(absPath: string): string {
  const rel = relative(SRC, absPath).split(sep);
  return rel.length === 1 ? rel[0].replace(/\.[jt]s$/, '') : rel[0];
}

test('every source folder has a rank', () => {
  const units = new Set(sources(SRC).filter((f) => !isTestCode(relative(SRC, f))).map(unit));
  const missing = [...units].filter((u) => !rankOf.has(u));
  assert.deepEqual(missing, [], `give these a rank in depcheck.test.ts: ${missing.join(', ')}`);
});

test('no lower layer imports a higher one, and no import path is computed', () => {
  const bad: string[] = [];
  for (const file of sources(SRC)) {
    const rel = relative(SRC, file);
    if (isTestCode(rel)) continue;
    const text = readFileSync(file, 'utf8');
    const from = rankOf.get(unit(file)) ?? -1;
    for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+'([^']+)'|\bimport\(\s*([^)]*?)\s*\)/g)) {
      const spec = m[1] ?? m[2];
      if (m[2] !== undefined && !/^'[^']+'$/.test(spec)) {
        bad.push(`${rel}: import(${spec}) goes through a computed path`);
        continue;
      }
      const s = spec.replace(/^'|'$/g, '');
      if (!s.startsWith('.')) continue;
      const target = unit(resolve(dirname(file), s));
      const to = rankOf.get(target) ?? -1;
      if (to > from) bad.push(`${rel} (${unit(file)}) imports ${s} (${target}, a higher layer)`);
    }
  }
  assert.deepEqual(bad, []);
});
