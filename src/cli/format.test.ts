import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileFormat, goFormatG, goPrint, goSprintf, goTime, humanDuration, humanSize, printFormatted, rfc3339, table, truncate } from './format.js';
import { isShaleError } from '../errors.js';

test('humanSize prints like docker (units.HumanSize: decimal units, %.3g)', () => {
  const cases: [number, string][] = [
    [0, '0B'],
    [17, '17B'],
    [999, '999B'],
    [1000, '1kB'],
    [1024, '1.02kB'],
    [1_985_581, '1.99MB'],
    [100_000, '100kB'],
    [1_500, '1.5kB'],
    [10_240, '10.2kB'],
    [1_125, '1.12kB'], // an exact tie rounds half to even, as Go does
    [1_135, '1.14kB'],
    [999_999, '1e+03kB'], // Go's %g switches to an exponent here, and so does docker
    [4_261_642, '4.26MB'],
    [1_000_000_000, '1GB'],
    [123_456_789_012, '123GB'],
    [5_000_000_000_000, '5TB'],
  ];
  for (const [n, want] of cases) assert.equal(humanSize(n), want, `humanSize(${n})`);
});

test("goFormatG matches Go's %g with a precision", () => {
  const cases: [number, number, string][] = [
    [1.99, 3, '1.99'],
    [100, 3, '100'],
    [0.0001234, 3, '0.000123'],
    [0.00001234, 3, '1.23e-05'],
    [123456, 3, '1.23e+05'],
    [-2.5, 3, '-2.5'],
    [2.5, 1, '2'],
    [3.5, 1, '4'],
    [1e21, 3, '1e+21'],
  ];
  for (const [v, p, want] of cases) assert.equal(goFormatG(v, p), want, `%.${p}g of ${v}`);
});

test('humanDuration truncates like docker (units.HumanDuration)', () => {
  const s = 1000;
  const m = 60 * s;
  const h = 60 * m;
  const d = 24 * h;
  const cases: [number, string][] = [
    [0, 'Less than a second'],
    [999, 'Less than a second'],
    [1_500, '1 second'],
    [59 * s + 900, '59 seconds'],
    [90 * s, 'About a minute'],
    [119 * s, 'About a minute'],
    [2 * m, '2 minutes'],
    [59 * m + 59 * s, '59 minutes'],
    [90 * m, '2 hours'],
    [47 * h, '47 hours'],
    [3 * d, '3 days'],
    [20 * d, '2 weeks'],
    [90 * d, '3 months'],
    [3 * 365 * d, '3 years'],
  ];
  for (const [ms, want] of cases) assert.equal(humanDuration(ms), want, `humanDuration(${ms})`);
});

test('dates: goTime (CreatedAt) and rfc3339 (history -H=false)', () => {
  assert.equal(goTime('2024-01-01T00:00:00.123Z'), '2024-01-01 00:00:00 +0000 UTC');
  assert.equal(rfc3339('2024-06-30T12:34:56.789Z'), '2024-06-30T12:34:56Z');
  assert.equal(rfc3339(undefined), '');
  assert.equal(goTime(undefined), '');
});

test("table aligns like docker's tabwriter (minwidth 10, padding 3)", () => {
  const out = table([
    ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'],
    ['busybox', 'latest', 'd02a5a50139c', '2 minutes ago', '1.99MB'],
  ]);
  assert.equal(out, 'REPOSITORY   TAG       IMAGE ID       CREATED         SIZE\n' + 'busybox      latest    d02a5a50139c   2 minutes ago   1.99MB\n');
  // a short column is still 10 wide; an empty last cell leaves the padding, as docker's does
  assert.equal(table([['A', 'B'], ['x', '']]), 'A         B\nx         \n');
  assert.equal(table([]), '');
  // widths count characters, not bytes
  assert.equal(table([['ÄÖÜ', 'x'], ['a', 'y']]), 'ÄÖÜ       x\na         y\n');
});

test('truncate adds an ellipsis at the width, counting characters', () => {
  assert.equal(truncate('abcdef', 4), 'abc…');
  assert.equal(truncate('abcd', 4), 'abcd');
  assert.equal(truncate('/bin/sh -c #(nop)  CMD ["sh"]', 10), '/bin/sh -…');
});

const obj = {
  ID: 'abc',
  Repository: 'busybox',
  Tag: 'latest',
  Config: { Cmd: ['/bin/sh', '-c'], Env: ['A=b', 'C=d'], Labels: { k: 'v', a: 'b' } },
  RootFS: { Type: 'layers', Layers: ['sha256:1', 'sha256:2'] },
  Size: 1985581,
  Empty: [] as string[],
  Flag: true,
};

test('the Go-template subset renders what docker formats use', () => {
  const cases: [string, string][] = [
    ['{{.Repository}}:{{.Tag}}', 'busybox:latest'],
    ['{{ .ID }}', 'abc'],
    ['{{.RootFS.Type}}', 'layers'],
    ['{{len .RootFS.Layers}}', '2'],
    ['{{json .RootFS.Layers}}', '["sha256:1","sha256:2"]'],
    ['{{json .Config.Labels}}', '{"k":"v","a":"b"}'],
    ['{{.Config.Cmd}}', '[/bin/sh -c]'],
    ['{{.Config.Labels}}', 'map[a:b k:v]'],
    ['{{.Size}}', '1985581'],
    ['{{.Missing}}', '<no value>'],
    ['{{json .Missing}}', 'null'],
    ['{{upper .Tag}}', 'LATEST'],
    ['{{lower "ABC"}}', 'abc'],
    ['{{join .Config.Env ","}}', 'A=b,C=d'],
    ['{{index .Config.Labels "k"}}', 'v'],
    ['{{range .Config.Env}}[{{.}}]{{end}}', '[A=b][C=d]'],
    ['{{range $e := .Empty}}x{{end}}none', 'none'],
    ['{{range $e := .Config.Env}}<{{$e}}>{{end}}', '<A=b><C=d>'],
    ['{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}', 'a=b;k=v;'],
    ['{{range .Config.Labels}}{{.}}{{end}}', 'bv'],
    ['{{range .Config.Env}}{{$.Tag}}{{end}}', 'latestlatest'],
    ['{{if .Flag}}yes{{else}}no{{end}}', 'yes'],
    ['{{if .Empty}}yes{{else}}no{{end}}', 'no'],
    ['{{.Tag | upper}}', 'LATEST'],
    ['{{printf "%-8s|%3d|%q" .Tag .Size .ID}}', 'latest  |1985581|"abc"'],
    ['{{println .Tag}}', 'latest\n'],
    ['a  {{- .Tag -}}  b', 'alatestb'],
    ['{{.ID}}\\t{{.Tag}}', 'abc\tlatest'],
  ];
  for (const [fmt, want] of cases) assert.equal(compileFormat(fmt).row(obj), want, fmt);
  assert.equal(compileFormat('json').row({ b: 1, a: [1] }), '{"b":1,"a":[1]}');
});

test('malformed templates are refused with an InvalidArgument', () => {
  for (const bad of ['{{if .Flag}}x', '{{end}}', '{{else}}', '{{nosuchfn .ID "x"}}', '{{$nope}}']) {
    assert.throws(() => compileFormat(bad).row(obj), (e: unknown) => isShaleError(e, 'InvalidArgument') && e.message.startsWith('template:'), bad);
  }
});

test('printFormatted: one line per object, or a table with docker header names', () => {
  const rows = [{ ID: 'a1', Repository: 'busybox', Tag: 'latest' }, { ID: 'b22', Repository: 'localhost:5000/app', Tag: '1' }];
  assert.equal(printFormatted(rows, '{{.Repository}}:{{.Tag}}'), 'busybox:latest\nlocalhost:5000/app:1\n');
  assert.equal(
    printFormatted(rows, 'table {{.ID}}\t{{.Repository}}:{{.Tag}}', { ID: 'IMAGE ID' }),
    'IMAGE ID   REPOSITORY:TAG\n' + 'a1         busybox:latest\n' + 'b22        localhost:5000/app:1\n',
  );
});

test('goPrint and goSprintf print values as Go does', () => {
  assert.equal(goPrint(null), '<no value>');
  assert.equal(goPrint([1, 'a', [true]]), '[1 a [true]]');
  assert.equal(goPrint({ b: 1, a: { c: 'x' } }), 'map[a:map[c:x] b:1]');
  assert.equal(goSprintf('%s=%v %%', ['k', [1, 2]]), 'k=[1 2] %');
  assert.equal(goSprintf('%5s|', ['ab']), '   ab|');
  assert.equal(goSprintf('%s %s', ['only']), 'only %!s(MISSING)');
});
