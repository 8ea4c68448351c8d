// The image commands' output, through bin/shale.js: docker's table layout, --format, -q,
// history rows, inspect templates, tag/rmi, import -c/-m and image prune.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Engine } from '../engine/index.js';
import { importTarball } from '../images/import.js';
import { loadArchive, openFile } from '../images/transport.js';
import { blobFiles, busyboxTar, DetRandom, makeDockerArchive, sha256File, shale, shaleOk, shaleWith, tempDir, tempRoot, type AfterHook } from '../testutil/index.js';

const suiteScope: AfterHook = { after: (fn) => process.on('exit', fn) };
let work: string;
let bbTar: string;
/** a root with busybox:latest and localhost:5000/team/app:v1.2.3, two images over one layer */
let shared: string;
let bbId: string;
let appId: string;

/** Read a root in-process (faster than the CLI where the CLI is not what is tested). */
function withEngine<T>(root: string, fn: (e: Engine) => T): T {
  const engine = Engine.open({ root });
  try {
    return fn(engine);
  } finally {
    engine.close();
  }
}

const tagsIn = (root: string) => withEngine(root, (e) => e.images.allTags().map((t) => `${t.name.replace(/^docker\.io\/library\//, '')} ${short(t.image_id)}`).sort());

async function loadInto(root: string, archive: string): Promise<string> {
  const engine = Engine.open({ root });
  try {
    return (await loadArchive(engine, openFile(archive))).images[0].id;
  } finally {
    engine.close();
  }
}

async function importInto(root: string, tag?: string): Promise<string> {
  const engine = Engine.open({ root });
  try {
    return (await importTarball(engine, createReadStream(bbTar), { tag })).id;
  } finally {
    engine.close();
  }
}

before(async () => {
  work = tempDir(suiteScope, 'shale-cli-');
  bbTar = busyboxTar(join(work, 'busybox.tar'));
  shared = tempRoot(suiteScope);
  bbId = await importInto(shared, 'busybox:latest');
  appId = await importInto(shared, 'localhost:5000/team/app:v1.2.3');
});

const lines = (s: string) => s.replace(/\n$/, '').split('\n');
const short = (id: string) => id.slice(7, 19);

/** Split a table line at the columns where the header's names start. */
function cells(header: string, line: string): Record<string, string> {
  const names = header.split(/ {2,}/);
  const starts = names.map((n) => header.indexOf(n));
  return Object.fromEntries(names.map((n, i) => [n, line.slice(starts[i], starts[i + 1] ?? undefined).trimEnd()]));
}

test("images: docker's header and column alignment", async () => {
  const one = lines(await shaleOk(shared, 'images', 'busybox'));
  assert.equal(one.length, 2);
  // one short repository: every column but the last is max(10, widest + 3) wide
  assert.match(one[0], /^REPOSITORY {3}TAG {7}IMAGE ID {7}CREATED {3,}SIZE$/);
  assert.match(one[1], new RegExp(`^busybox {6}latest {4}${short(bbId)} {3}\\S.*\\S {3,}1\\.99MB$`));
  assert.equal(one[0].indexOf('SIZE'), one[1].indexOf('1.99MB'));

  const all = lines(await shaleOk(shared, 'images'));
  assert.equal(all.length, 3);
  const repoWidth = 'localhost:5000/team/app'.length + 3;
  assert.ok(all[0].startsWith('REPOSITORY'.padEnd(repoWidth) + 'TAG'.padEnd(10) + 'IMAGE ID'.padEnd(15) + 'CREATED'), all[0]);
  const rows = all.slice(1).map((l) => cells(all[0], l));
  assert.deepEqual(rows.map((r) => `${r.REPOSITORY}:${r.TAG} ${r['IMAGE ID']} ${r.SIZE}`).sort(), [`busybox:latest ${short(bbId)} 1.99MB`, `localhost:5000/team/app:v1.2.3 ${short(appId)} 1.99MB`]);
  for (const r of rows) assert.match(r.CREATED, /^(Less than a second|\d+ seconds?|About a minute|\d+ minutes) ago$/);
});

test('images --format, {{json .}}, -q and --no-trunc', async () => {
  const names = lines(await shaleOk(shared, 'images', '--format', '{{.Repository}}:{{.Tag}}')).sort();
  assert.deepEqual(names, ['busybox:latest', 'localhost:5000/team/app:v1.2.3']);

  const objs = lines(await shaleOk(shared, 'images', '--format', '{{json .}}')).map((l) => JSON.parse(l) as Record<string, string>);
  assert.equal(objs.length, 2);
  for (const o of objs) {
    assert.deepEqual(Object.keys(o), ['Containers', 'CreatedAt', 'CreatedSince', 'Digest', 'ID', 'Repository', 'SharedSize', 'Size', 'Tag', 'UniqueSize', 'VirtualSize'], 'the keys docker prints, in its (sorted) order');
    assert.match(o.ID, /^[a-f0-9]{12}$/);
    assert.match(o.CreatedAt, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000 UTC$/);
    assert.equal(o.Size, '1.99MB');
    assert.equal(o.Digest, '<none>');
    // two images over one layer: all of it is shared (system df -v's SHARED SIZE / UNIQUE SIZE)
    assert.equal(o.SharedSize, '1.99MB');
    assert.equal(o.UniqueSize, '0B');
  }
  assert.deepEqual(objs.map((o) => o.ID).sort(), [short(bbId), short(appId)].sort());

  assert.deepEqual(lines(await shaleOk(shared, 'images', '-q')).sort(), [short(bbId), short(appId)].sort());
  assert.deepEqual(lines(await shaleOk(shared, 'images', '-q', '--no-trunc')).sort(), [bbId, appId].sort());
  assert.deepEqual(lines(await shaleOk(shared, 'images', '-q', 'localhost:5000/team/app')), [short(appId)]);
  const table = lines(await shaleOk(shared, 'images', '--format', 'table {{.ID}}\t{{.Repository}}', 'busybox'));
  assert.deepEqual(table, [`IMAGE ID       REPOSITORY`, `${short(bbId)}   busybox`]);
});

test('history of an imported image: one row, "Imported from -", sizes human or in bytes', async () => {
  const busyboxBytes = readFileSync('/bin/busybox').length;
  const t = lines(await shaleOk(shared, 'history', 'busybox'));
  assert.equal(t.length, 2);
  assert.match(t[0], /^IMAGE {10}CREATED {3,}CREATED BY {3}SIZE {6}COMMENT$/);
  const row = cells(t[0], t[1]);
  assert.equal(row.IMAGE, short(bbId));
  assert.match(row.CREATED, / ago$/);
  assert.equal(row['CREATED BY'], '');
  assert.equal(row.SIZE, '1.99MB');
  assert.equal(row.COMMENT, 'Imported from -');

  const noTrunc = lines(await shaleOk(shared, 'history', '--no-trunc', 'busybox'));
  assert.ok(noTrunc[1].startsWith(bbId + '   '), noTrunc[1]);

  const raw = lines(await shaleOk(shared, 'history', '-H=false', 'busybox'));
  const r = cells(raw[0], raw[1]);
  assert.match(r.CREATED, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'RFC 3339 dates');
  const bytes = Number(r.SIZE);
  // docker's layer size: the files' bytes plus the symlink targets' lengths
  assert.ok(bytes > busyboxBytes && bytes < busyboxBytes + 20_000, `size in bytes: ${r.SIZE}`);

  assert.equal(await shaleOk(shared, 'history', '--format', '{{.CreatedBy}}|{{.Size}}', 'busybox'), '|1.99MB\n');
  assert.equal(await shaleOk(shared, 'history', '-q', 'busybox'), `${short(bbId)}\n`);
  const obj = JSON.parse(await shaleOk(shared, 'history', '--format', '{{json .}}', 'busybox'));
  assert.deepEqual(Object.keys(obj), ['Comment', 'CreatedAt', 'CreatedBy', 'CreatedSince', 'ID', 'Size']);
});

test('history: one row per instruction, empty layers as 0B, CREATED BY truncated unless --no-trunc', async (t) => {
  const root = tempRoot(t);
  const dir = tempDir(t);
  mkdirSync(join(dir, 'l0'));
  writeFileSync(join(dir, 'l0', 'a.bin'), new DetRandom('history').bytes(12_345));
  const longCmd = '/bin/sh -c apt-get update && apt-get install -y --no-install-recommends\tca-certificates curl';
  const archive = makeDockerArchive(join(dir, 'img.tar'), [{ dir: join(dir, 'l0') }], {
    tag: 'hist:1',
    editConfig: (c) => {
      const created = '2024-01-01T00:00:00Z';
      c.history = [
        { created, created_by: 'ARG VERSION=1', empty_layer: true },
        { created, created_by: longCmd },
        { created, created_by: 'CMD ["/bin/sh"]', empty_layer: true, comment: 'buildkit.dockerfile.v0' },
      ];
    },
  });
  const id = short(await loadInto(root, archive.path));
  const rows = lines(await shaleOk(root, 'history', '--format', '{{.ID}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}', 'hist:1'));
  assert.deepEqual(rows, [
    `${id}|CMD ["/bin/sh"]|0B|buildkit.dockerfile.v0`,
    `<missing>|/bin/sh -c apt-get update && apt-get install…|12.3kB|`,
    `<missing>|ARG VERSION=1|0B|`,
  ]);
  const full = lines(await shaleOk(root, 'history', '--no-trunc', '-H=false', '--format', '{{.CreatedBy}}|{{.Size}}|{{.CreatedSince}}', 'hist:1'));
  assert.equal(full[1], `${longCmd.replace('\t', ' ')}|12345|2024-01-01T00:00:00Z`);
  assert.equal(full[0], 'CMD ["/bin/sh"]|0|2024-01-01T00:00:00Z');
  // the default table: the empty comment cells still pad the SIZE column, as docker's tabwriter does
  const table = lines(await shaleOk(root, 'history', 'hist:1'));
  assert.equal(table.length, 4);
  assert.equal(cells(table[0], table[2])['CREATED BY'], '/bin/sh -c apt-get update && apt-get install…');
  assert.equal(cells(table[0], table[2]).SIZE, '12.3kB');
});

test('inspect: --format with len and json, and the default JSON', async () => {
  assert.equal(await shaleOk(shared, 'inspect', '--format', '{{len .RootFS.Layers}}', 'busybox'), '1\n');
  assert.equal(await shaleOk(shared, 'inspect', '--format', '{{json .RootFS.Layers}}', 'busybox'), `["${sha256File(bbTar)}"]\n`);
  assert.equal(await shaleOk(shared, 'inspect', '--format', '{{.Id}} {{.Os}}', 'busybox', short(appId)), `${bbId} linux\n${appId} linux\n`);
  const [obj] = JSON.parse(await shaleOk(shared, 'inspect', 'busybox')) as Record<string, unknown>[];
  assert.equal(obj.Id, bbId);
  assert.deepEqual(obj.RepoTags, ['busybox:latest']);
  assert.equal(obj.Comment, 'Imported from -');
  assert.equal(typeof obj.Size, 'number');
  assert.deepEqual(obj.RootFS, { Type: 'layers', Layers: [sha256File(bbTar)] });
  const missing = await shale(shared, 'inspect', 'busybox', 'nosuchimage');
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /No such object: nosuchimage/);
  assert.equal(JSON.parse(missing.stdout).length, 1, 'what was found is still printed');
});

test('tag then rmi of one name only untags; rmi of the last name deletes the image and its blobs', async (t) => {
  const root = tempRoot(t);
  const id = await importInto(root, 'busybox:latest');
  assert.equal(await shaleOk(root, 'tag', 'busybox', 'mine:1'), '');
  assert.deepEqual(tagsIn(root), [`busybox:latest ${short(id)}`, `mine:1 ${short(id)}`]);
  const blobs = blobFiles(root);
  assert.equal(blobs.length, 3);

  assert.equal(await shaleOk(root, 'rmi', 'mine:1'), 'Untagged: mine:1\n');
  assert.deepEqual(blobFiles(root), blobs, 'untagging deletes nothing');
  assert.deepEqual(tagsIn(root), [`busybox:latest ${short(id)}`]);

  assert.equal(await shaleOk(root, 'rmi', 'busybox'), `Untagged: busybox:latest\nDeleted: ${id}\n`);
  assert.deepEqual(blobFiles(root), []);
  assert.deepEqual(tagsIn(root), []);
  assert.deepEqual(withEngine(root, (e) => e.images.list()), []);
  const again = await shale(root, 'rmi', 'busybox');
  assert.equal(again.code, 1);
  assert.match(again.stderr, /No such image: busybox/);
});

test('import -c CMD -c ENV -m sets Config.Cmd, Config.Env and the comment', async (t) => {
  const root = tempRoot(t);
  const id = (await shaleOk(root, 'import', '-c', 'CMD ["/bin/sh"]', '-c', 'ENV A=b', '-m', 'msg', bbTar, 'imp:1')).trim();
  assert.match(id, /^sha256:[a-f0-9]{64}$/);
  assert.equal(await shaleOk(root, 'inspect', '--format', '{{json .Config.Cmd}} {{json .Config.Env}} {{.Comment}}', 'imp:1'), '["/bin/sh"] ["A=b"] msg\n');
  assert.equal(await shaleOk(root, 'history', '--format', '{{.Comment}}|{{.Size}}', 'imp:1'), 'msg|1.99MB\n');
  // from stdin, with no tag: a dangling image
  const blobs = blobFiles(root);
  const empty = await shale(root, 'import', '-', '--message', 'from stdin');
  assert.equal(empty.code, 1, 'import - with nothing on stdin fails');
  assert.match(empty.stderr, /not a tar archive: it is empty/);
  assert.deepEqual(blobFiles(root), blobs, 'and stores nothing');
  const piped = await shaleWith(root, ['import', '-'], { input: readFileSync(bbTar) });
  assert.equal(piped.code, 0, piped.stderr);
  assert.match(await shaleOk(root, 'images', '--format', '{{.Repository}}:{{.Tag}}'), /^<none>:<none>$/m);
  const bad = await shale(root, 'import', '-c', 'RUN echo hi', bbTar);
  assert.notEqual(bad.code, 0, 'RUN is not a config change');
});

test('image prune removes dangling images; prune -a removes every unused image and its blobs', async (t) => {
  const root = tempRoot(t);
  const dir = tempDir(t);
  const tagged = await importInto(root, 'keep:1');
  const dangling = await importInto(root);
  // another tagged image with a layer of its own
  mkdirSync(join(dir, 'l'));
  writeFileSync(join(dir, 'l', 'x'), new DetRandom('prune').bytes(50_000));
  await loadInto(root, makeDockerArchive(join(dir, 'other.tar'), [{ dir: join(dir, 'l') }], { tag: 'other:1' }).path);

  const p1 = await shaleOk(root, 'image', 'prune', '-f');
  assert.equal(p1, `Deleted Images:\ndeleted: ${dangling}\n\nTotal reclaimed space: ${p1.match(/Total reclaimed space: (\S+)/)![1]}\n`);
  assert.match(p1, /Total reclaimed space: \d+B\n/, 'only its config and manifest went (under 1 kB); the layer is shared');
  assert.deepEqual(tagsIn(root).map((x) => x.split(' ')[0]), ['keep:1', 'other:1']);
  assert.equal(withEngine(root, (e) => e.images.list().length), 2);

  const p2 = await shaleOk(root, 'image', 'prune', '-a', '-f');
  assert.match(p2, new RegExp(`untagged: keep:1\ndeleted: ${tagged}`));
  assert.match(p2, /untagged: other:1\ndeleted: sha256:/);
  assert.match(p2, /Total reclaimed space: 1\.1\dMB\n$/);
  assert.deepEqual(withEngine(root, (e) => e.images.list()), []);
  assert.deepEqual(blobFiles(root), [], 'every blob went with the images');
  assert.equal(await shaleOk(root, 'image', 'prune', '-a', '-f'), 'Total reclaimed space: 0B\n');
});
