// Table-driven tests for Dockerfile word expansion (expandWord / expandWords /
// removeQuotes), checked against the results docker's shell lexer gives.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expandWord, expandWords, removeQuotes, EXPANDING_INSTRUCTIONS } from './expand.js';
import { isShaleError } from '../../errors.js';

const env = { PWD: '/home', SHELL: 'bash', NULL: '', SPACE: 'abc  def', KOREAN: '한국어', UNDEF: undefined };

// [input, expected result, or an Error-message substring prefixed with "error:"]
const wordCases: [string, string][] = [
  ['hello', 'hello'],
  ['he$PWD', 'he/home'],
  ['he${PWD}xx', 'he/homexx'],
  ['he${hi}xx', 'hexx'],
  ['$UNDEF', ''],
  ['$.', '$.'],
  ['he$1x', 'hex'],
  ['$@@@', '@@'],
  ['안녕$KOREAN', '안녕한국어'],
  ['he\\$PWD', 'he$PWD'],
  ['he\\\\$PWD', 'he\\/home'],
  ['\\${}', '${}'],
  ['"he\\$PWD"', 'he$PWD'],
  ['"$PWD"', '/home'],
  ["'$PWD'", '$PWD'],
  ['"he\'$PWD\'"', "he'/home'"],
  ["'\\$PWD'", '\\$PWD'],
  ["he'll'o", 'hello'],
  ["he\\'llo", "he'llo"],
  ['abc\\tdef', 'abctdef'],
  ['"abc\\tdef"', 'abc\\tdef'],
  ['"abc\\\\tdef"', 'abc\\tdef'],
  ['hello\\', 'hello'],
  ["'hello\\'", 'hello\\'],
  ['"a  b"', 'a  b'],
  ['x $SPACE y', 'x abc  def y'],
  ['he${XXX:-000}xx', 'he000xx'],
  ['he${PWD:-000}xx', 'he/homexx'],
  ['he${XXX:-${PWD:-yyy}}xx', 'he/homexx'],
  ['${NULL:-empty}', 'empty'],
  ['${NULL-empty}', ''],
  ['${XXX-unset}', 'unset'],
  ['he${PWD:+000}xx', 'he000xx'],
  ['he${XXX:+000}xx', 'hexx'],
  ['${NULL:+alt}', ''],
  ['${NULL+alt}', 'alt'],
  ['he${PWD:+${SHELL}}xx', 'hebashxx'],
  ['he${PWD?}', 'he/home'],
  ['he${NULL?}', 'he'],
  ['he${XXX:-\\$PWD:}xx', 'he$PWD:xx'],
  ['${aaa:-bbb {foo}', 'bbb {foo'],
  ['${aaa}}', '}'],
  ['${1:-bbb}', 'bbb'],
  ['${FILE%.*}.bak', 'app.tar.bak'],
  ['${FILE%%.*}', 'app'],
  ['${FILE#*.}', 'tar.gz'],
  ['${FILE##*.}', 'gz'],
  ['${URL/http:/https:}', 'https://example.com/http:'],
  ['${URL//http:/x}', 'x//example.com/x'],
  ['something-${V}${VARIANT:+-${VARIANT}}.tar.gz', 'something-1.2-v7.tar.gz'],
  ['he${XXX?}', 'error:XXX: is not allowed to be unset'],
  ['he${NULL:?}', 'error:NULL: is not allowed to be empty'],
  ['${XXX:?must be set}', 'error:XXX: must be set'],
  ['${XXX?gone}', 'error:XXX: gone'],
  ["he'llo", 'error:matching single-quote'],
  ['"hello\\"', 'error:matching double-quote'],
  ['${}', 'error:bad substitution'],
  ['he${.}', 'error:unsupported modifier (.)'],
  ['${PWD', "error:missing '}'"],
  ["${aaa:-bbb ${foo}", "error:missing '}'"],
  ['he${PWD:=000}xx', 'error:unsupported modifier (:=)'],
  ['${FILE:#x}', 'error:unsupported modifier (:#)'],
];

const patternEnv = { ...env, FILE: 'app.tar.gz', URL: 'http://example.com/http:', V: '1.2', VARIANT: 'v7' };

for (const [input, want] of wordCases) {
  test(`expandWord ${input}`, () => {
    if (want.startsWith('error:')) {
      assert.throws(
        () => expandWord(input, patternEnv),
        (e: unknown) => isShaleError(e, 'InvalidArgument') && e.message.startsWith('failed to process') && e.message.includes(want.slice(6)),
      );
    } else {
      assert.equal(expandWord(input, patternEnv), want);
    }
  });
}

const wordsCases: [string, Record<string, string>, string[]][] = [
  ['hello there', {}, ['hello', 'there']],
  ['hello\\ there', {}, ['hello there']],
  ['hello" there  "', {}, ['hello there  ']],
  ['hello${space}bye', { space: 'abc  def' }, ['helloabc', 'defbye']],
  ['hello"${space}"bye', { space: 'abc  def' }, ['helloabc  defbye']],
  ['${leading}def', { leading: '  ab c' }, ['ab', 'cdef']],
  ['80/tcp $PORTS', { PORTS: '443 8080' }, ['80/tcp', '443', '8080']],
  ['"" x', {}, ['x']],
  ['   ', {}, []],
];

for (const [input, vars, want] of wordsCases) {
  test(`expandWords ${input}`, () => {
    assert.deepEqual(expandWords(input, vars), want);
  });
}

test('backtick escape (escape directive) replaces the backslash', () => {
  assert.equal(expandWord('C:\\path\\$HOME', { HOME: 'h' }, '`'), 'C:\\path\\h');
  assert.equal(expandWord('`$HOME', { HOME: 'h' }, '`'), '$HOME');
  assert.equal(expandWord('"a `" b"', {}, '`'), 'a " b');
});

test('prototype keys are not variables', () => {
  assert.equal(expandWord('[$constructor][${toString:-d}]', {}), '[][d]');
});

test('removeQuotes drops quotes and escapes but leaves $ alone', () => {
  assert.equal(removeQuotes('"hello $USER"'), 'hello $USER');
  assert.equal(removeQuotes("'$HOME'"), '$HOME');
  assert.equal(removeQuotes('a\\ b'), 'a b');
  assert.equal(removeQuotes('"a\\"b"'), 'a"b');
  assert.throws(() => removeQuotes('"open'), /matching double-quote/);
});

test('EXPANDING_INSTRUCTIONS lists what the builder expands and leaves shell forms alone', () => {
  for (const cmd of ['ADD', 'ARG', 'COPY', 'ENV', 'EXPOSE', 'FROM', 'LABEL', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR']) {
    assert.ok(EXPANDING_INSTRUCTIONS.has(cmd), cmd);
  }
  for (const cmd of ['RUN', 'CMD', 'ENTRYPOINT', 'SHELL', 'HEALTHCHECK', 'ONBUILD', 'MAINTAINER']) {
    assert.ok(!EXPANDING_INSTRUCTIONS.has(cmd), cmd);
  }
});
