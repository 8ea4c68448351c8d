// Table-driven tests for .dockerignore parsing and matching, following docker's
// (moby/patternmatcher) semantics.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDockerignore, IgnoreMatcher } from './ignore.js';
import { isShaleError } from '../../errors.js';

test('parseDockerignore cleans patterns and drops comments and blank lines', () => {
  const text = [
    '\uFEFF# comment',
    '',
    '   ',
    'node_modules',
    '  *.log  ',
    '/abs/path',
    './rel/path/',
    'a/b/../c',
    '!keep.log',
    '! spaced/./exception',
    ' # not a comment: only column 0 starts one',
    '/',
    '!',
    'win\r',
  ].join('\n');
  assert.deepEqual(parseDockerignore(text), [
    'node_modules',
    '*.log',
    'abs/path',
    'rel/path',
    'a/c',
    '!keep.log',
    '!spaced/exception',
    '# not a comment: only column 0 starts one',
    '/',
    '!',
    'win',
  ]);
});

// [patterns, path, ignored]
const cases: [string[], string, boolean][] = [
  [['*'], 'fileutils.go', true],
  [['*.go'], 'fileutils.go', true],
  [['*.go'], 'dir/fileutils.go', false],
  [['*/*.go'], 'dir/fileutils.go', true],
  [['!fileutils.go', '*.go'], 'fileutils.go', true],
  [['*.go', '!fileutils.go'], 'fileutils.go', false],
  [['docs', '!docs/README.md'], 'docs/README.md', false],
  [['docs', '!docs/README.md'], 'docs/other.md', true],
  [['docs/', '!docs/README.md'], 'docs/README.md', false],
  [['docs/*', '!docs/README.md'], 'docs/README.md', false],
  [['node_modules'], 'node_modules/pkg/index.js', true],
  [['node_modules'], 'src/node_modules/pkg', false],
  [['**/node_modules'], 'src/node_modules/pkg', true],
  [['**'], 'dir/file', true],
  [['**/'], 'file', true],
  [['dir/**'], 'dir/dir2/file', true],
  [['abc/**'], 'abc', false],
  [['abc/**'], 'abc/def', true],
  [['**/dir2/*'], 'dir/dir2/file', true],
  [['**/file*.txt'], 'dir/dir/file.txt', true],
  [['**/**/*.txt2'], 'dir/dir/file.txt', false],
  [['**/*.txt'], 'file.txt', true],
  [['a**/*.txt'], 'a/dir/dir/file.txt', true],
  [['a/*.txt'], 'a/dir/file.txt', false],
  [['**/foo/bar'], 'foo/bar', true],
  [['**/.foo'], 'bar.foo', false],
  [['.*'], '.git', true],
  [['.*'], 'foo', false],
  [['abc.def'], 'abcZdef', false],
  [['abc?def'], 'abcZdef', true],
  [['abc?def'], 'abc/def', false],
  [['a[b-d]e'], 'ace', true],
  [['a[b-d]e'], 'aae', false],
  [['a[^b-d]e'], 'aze', true],
  [['a\\*b'], 'a*b', true],
  [['a\\*b'], 'axb', false],
  [['a\\\\'], 'a\\', true],
  [['a(b)c/def'], 'a(b)c/def', true],
  [['a.|)$(}+{bc'], 'a.|)$(}+{bc', true],
  [['dist/*.whl'], 'dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl', true],
  [['**', '!util/docker/web'], 'util/docker/web/foo', false],
  [['**', '!util/docker/web', 'util/docker/web/foo'], 'util/docker/web/foo', true],
  [['/abs'], 'abs', true],
  [['./rel'], 'rel/x', true],
  [['*.md'], './README.md', true],
  [['*.md'], '/README.md', true],
  [['Dockerfile', '.dockerignore'], 'Dockerfile', true],
  [['Dockerfile', '.dockerignore'], '.dockerignore', true],
  [['*'], '.', false],
  [[], 'anything', false],
];

for (const [patterns, p, want] of cases) {
  test(`ignores ${JSON.stringify(patterns)} ${p} -> ${want}`, () => {
    assert.equal(new IgnoreMatcher(patterns).ignores(p), want);
  });
}

test('directories and files are matched alike (trailing slash is cleaned away)', () => {
  const m = new IgnoreMatcher(['build/']);
  assert.equal(m.ignores('build', true), true);
  assert.equal(m.ignores('build', false), true);
  assert.equal(m.ignores('build/out.o'), true);
});

test('canSkipDir only when no exception can reach inside the directory', () => {
  const m = new IgnoreMatcher(['docs', '!docs/keep/*.md', 'tmp', 'vendor']);
  assert.equal(m.canSkipDir('tmp'), true);
  assert.equal(m.canSkipDir('docs'), false);
  assert.equal(m.canSkipDir('docs/keep'), false);
  assert.equal(m.canSkipDir('docs/other'), true);
  assert.equal(m.canSkipDir('src'), false, 'not ignored at all');
  assert.equal(new IgnoreMatcher(['*', '!**/*.go']).canSkipDir('deep'), false);
  assert.equal(m.hasExceptions, true);
  assert.equal(new IgnoreMatcher(['a']).hasExceptions, false);
});

test('bad patterns are rejected as InvalidArgument', () => {
  for (const bad of [['!'], ['a['], ['trailing\\']]) {
    assert.throws(() => new IgnoreMatcher(bad), (e: unknown) => isShaleError(e, 'InvalidArgument'), JSON.stringify(bad));
  }
});

test('parsed file feeds the matcher end to end', () => {
  const m = new IgnoreMatcher(parseDockerignore('# build output\n**/*.o\n!keep/**\nsecrets/\n'));
  assert.equal(m.ignores('src/a.o'), true);
  assert.equal(m.ignores('keep/a.o'), false);
  assert.equal(m.ignores('secrets/key.pem'), true);
  assert.equal(m.ignores('src/a.c'), false);
});
