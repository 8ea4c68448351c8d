// Table-driven tests for the Dockerfile parser: every testdata/valid/NAME.Dockerfile
// must parse to the summary in NAME.json, every testdata/invalid/NAME.Dockerfile
// must fail with an error containing the text of NAME.err.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parseDockerfile, type Dockerfile } from './parse.js';
import { isShaleError } from '../../errors.js';

const TESTDATA = path.join(process.cwd(), 'src/builder/dockerfile/testdata');

function fixtures(dir: string): string[] {
  return fs
    .readdirSync(path.join(TESTDATA, dir))
    .filter((f) => f.endsWith('.Dockerfile'))
    .map((f) => f.slice(0, -'.Dockerfile'.length))
    .sort();
}

type Expected = { instructions: Record<string, unknown>[]; [k: string]: unknown };

/** The parse result in the compact shape of the .json files; `original` only where the fixture lists it. */
function summarize(df: Dockerfile, expected: Expected): Expected {
  const s: Expected = { instructions: [] };
  if (Object.keys(df.directives).length) s.directives = df.directives;
  if (df.escape !== '\\') s.escape = df.escape;
  if (df.warnings.length) s.warnings = df.warnings;
  s.instructions = df.instructions.map((ins, i) => {
    const o: Record<string, unknown> = { cmd: ins.cmd, line: ins.line };
    if (ins.endLine !== ins.line) o.endLine = ins.endLine;
    o.args = ins.args;
    if (ins.json) o.json = true;
    if (Object.keys(ins.flags).length) o.flags = ins.flags;
    if (ins.heredocs.length) o.heredocs = ins.heredocs;
    if (ins.rawArgs && JSON.stringify(ins.rawArgs) !== JSON.stringify(ins.args)) o.rawArgs = ins.rawArgs;
    if (expected.instructions[i] && 'original' in expected.instructions[i]) o.original = ins.original;
    return o;
  });
  return s;
}

const valid = fixtures('valid');
const invalid = fixtures('invalid');

test('fixture tables are populated', () => {
  assert.ok(valid.length >= 60, `only ${valid.length} valid fixtures`);
  assert.ok(invalid.length >= 60, `only ${invalid.length} invalid fixtures`);
});

for (const name of valid) {
  test(`valid/${name}`, () => {
    const text = fs.readFileSync(path.join(TESTDATA, 'valid', `${name}.Dockerfile`), 'utf8');
    const expected = JSON.parse(fs.readFileSync(path.join(TESTDATA, 'valid', `${name}.json`), 'utf8')) as Expected;
    const df = parseDockerfile(text);
    assert.equal(df.file, 'Dockerfile');
    assert.deepEqual(summarize(df, expected), expected);
  });
}

for (const name of invalid) {
  test(`invalid/${name}`, () => {
    const text = fs.readFileSync(path.join(TESTDATA, 'invalid', `${name}.Dockerfile`), 'utf8');
    const want = fs.readFileSync(path.join(TESTDATA, 'invalid', `${name}.err`), 'utf8').trim();
    assert.throws(
      () => parseDockerfile(text),
      (e: unknown) => {
        assert.ok(isShaleError(e, 'InvalidArgument'), `not an InvalidArgument ShaleError: ${String(e)}`);
        assert.ok(e.message.includes(want), `error ${JSON.stringify(e.message)} does not contain ${JSON.stringify(want)}`);
        return true;
      },
    );
  });
}

test('errors name the file that was passed in', () => {
  assert.throws(() => parseDockerfile('FROM alpine\nBOGUS\n', 'build/app.Dockerfile'), {
    message: 'build/app.Dockerfile:2: unknown instruction: BOGUS',
  });
  assert.equal(parseDockerfile('FROM alpine\n', 'x/Dockerfile.dev').file, 'x/Dockerfile.dev');
});

test('original keeps the joined instruction text without comments', () => {
  const df = parseDockerfile('FROM alpine\nRUN echo a \\\n# note\n    b\n');
  assert.equal(df.instructions[1].original, 'RUN echo a     b');
  assert.equal(df.instructions[1].line, 2);
  assert.equal(df.instructions[1].endLine, 4);
});

test('ONBUILD keeps the trigger text and its flags unparsed in args', () => {
  const df = parseDockerfile('FROM alpine\nONBUILD RUN --mount=type=cache,target=/c make\n');
  assert.deepEqual(df.instructions[1].args, ['RUN --mount=type=cache,target=/c make']);
  assert.deepEqual(df.instructions[1].flags, {});
});

test('a file without a trailing newline and a file with one parse the same', () => {
  const a = parseDockerfile('FROM alpine\nRUN true');
  const b = parseDockerfile('FROM alpine\nRUN true\n');
  assert.deepEqual(a, b);
});

test('rawArgs are only set for ENV, LABEL and ARG', () => {
  const df = parseDockerfile('ARG A="1"\nFROM alpine\nENV B=2\nLABEL c=3\nRUN echo "x"\nCOPY "a" /b\n');
  assert.deepEqual(
    df.instructions.map((i) => [i.cmd, i.rawArgs]),
    [['ARG', ['A="1"']], ['FROM', undefined], ['ENV', ['B', '2']], ['LABEL', ['c', '3']], ['RUN', undefined], ['COPY', undefined]],
  );
});
