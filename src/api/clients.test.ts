// Real clients against `shale system service`: the docker CLI (Debian's docker.io, API 1.41),
// dockerode and docker-compose 1.29 drive a server on a temporary root, and the shale CLI sees
// the same root. Needs root (overlay mounts, runc) and the clients; without a client the
// test says so and is skipped, except under CI=true, where that fails.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import Docker from 'dockerode';
import { Engine } from '../engine/index.js';
import { destroyEngine } from '../containers/testutil.js';
import { run, SHALE_BIN, shaleOk, tempDir, type RunResult } from '../testutil/index.js';

const DOCKER = ['/usr/bin/docker', '/usr/local/bin/docker'].find((p) => existsSync(p));
const COMPOSE = ['/usr/bin/docker-compose'].find((p) => existsSync(p));
const need = (what: string, have: unknown) => {
  if (have) return false;
  if (process.env.CI === 'true') throw new Error(`${what} is missing (apt-get install docker.io docker-compose): this test needs it under CI`);
  return `${what} is not installed`;
};

let root: string;
let sock: string;
let server: ChildProcess | undefined;
let work: string;

before(async () => {
  work = tempDir(undefined, 'shale-clients-');
  root = join(work, 'root');
  sock = join(work, 'api.sock');
  await shaleOk(root, 'bootstrap', 'busybox');
  server = spawn(process.execPath, [SHALE_BIN, '--root', root, 'system', 'service', '--time', '0', `unix://${sock}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  // the server says where it listens once the socket is there
  await new Promise<void>((res, rej) => {
    let err = '';
    server!.stderr!.on('data', (d: Buffer) => {
      err += d;
      if (err.includes('API listening on')) res();
    });
    server!.once('exit', (c) => rej(new Error(`system service exited (${c}): ${err}`)));
  });
});

after(async () => {
  if (server && server.exitCode === null) {
    const gone = new Promise((r) => server!.once('exit', r));
    server.kill('SIGTERM');
    await gone;
  }
  if (root) await destroyEngine(Engine.open({ root }));
  if (work) await run('rm', ['-rf', work]);
});

const env = () => ({ ...process.env, DOCKER_HOST: `unix://${sock}`, DOCKER_BUILDKIT: '0', DOCKER_CONFIG: join(work, 'docker-config') });
const d = (args: string[], input?: string | Buffer): Promise<RunResult> => run(DOCKER!, args, { env: env(), input, timeoutMs: 120_000 });
async function dOk(args: string[], input?: string | Buffer): Promise<string> {
  const r = await d(args, input);
  assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

test('docker CLI: version, import, build (cached rebuild is the same image, --iidfile, -q), images, history', { skip: need('the docker CLI', DOCKER) }, async () => {
  assert.equal((await dOk(['version', '--format', '{{.Server.APIVersion}}'])).trim(), '1.41');
  const ctx = join(work, 'ctx');
  mkdirSync(ctx, { recursive: true });
  writeFileSync(join(ctx, 'hello.txt'), 'from the context\n');
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM busybox\nLABEL purpose=clients\nCOPY hello.txt /data/hello.txt\nRUN echo built > /data/run.txt\nCMD ["cat", "/data/hello.txt"]\n');
  const iid = join(work, 'iid');
  await dOk(['build', '-t', 'cl-img', '--iidfile', iid, ctx]);
  const id1 = readFileSync(iid, 'utf8').trim();
  assert.match(id1, /^sha256:[0-9a-f]{64}$/);
  const id2 = (await dOk(['build', '-q', '-t', 'cl-img', ctx])).trim();
  assert.equal(id2, id1, 'a cached rebuild gives the same image');
  assert.match(await dOk(['images', '--format', '{{.Repository}}:{{.Tag}}']), /^cl-img:latest$/m);
  const hist = await dOk(['history', '--format', '{{.CreatedBy}}|{{.Size}}', 'cl-img']);
  assert.match(hist, /CMD \["cat" "\/data\/hello.txt"\]|CMD \[/);
  assert.match(hist, /echo built > \/data\/run\.txt.*\|6B/);
  const tar = join(work, 'rootfs.tar');
  await run('tar', ['-C', '/', '-cf', tar, 'bin/busybox']);
  const imported = (await dOk(['import', '-c', 'CMD ["/bin/busybox", "true"]', tar, 'cl-imported'])).trim();
  assert.match(imported, /^sha256:/);
  assert.equal((await dOk(['inspect', '--format', '{{json .Config.Cmd}}', 'cl-imported'])).trim(), '["/bin/busybox","true"]');
});

test('docker CLI: run (output, exit code, -i stdin), run -d + logs -f + stop + wait, exec, diff, ps -s, commit, cp, export', { skip: need('the docker CLI', DOCKER) }, async () => {
  assert.equal(await dOk(['run', '--rm', 'busybox', 'echo', 'hi']), 'hi\n');
  assert.equal((await d(['run', '--rm', 'busybox', 'sh', '-c', 'exit 7'])).code, 7);
  assert.equal(await dOk(['run', '--rm', '-i', 'busybox', 'sh', '-c', 'cat; echo " and back"'], 'piped in'), 'piped in and back\n');
  // logs -f ends when the container does
  await dOk(['run', '-d', '--name', 'cl-short', 'busybox', 'sh', '-c', 'echo one; sleep 1; echo two']);
  assert.equal(await dOk(['logs', '-f', 'cl-short']), 'one\ntwo\n');
  assert.equal((await dOk(['wait', 'cl-short'])).trim(), '0');
  await dOk(['run', '-d', '--name', 'cl-long', 'busybox', 'sh', '-c', 'echo started; sleep 300']);
  await dOk(['exec', 'cl-long', 'sh', '-c', 'head -c 50000 /dev/zero > /big.bin; mkdir -p /etc/x; rm /bin/vi']);
  const diff = (await dOk(['diff', 'cl-long'])).trim().split('\n').sort();
  assert.deepEqual(diff, ['A /big.bin', 'A /etc/x', 'C /bin', 'C /etc', 'D /bin/vi']);
  const size = (await dOk(['ps', '-a', '-s', '--filter', 'name=cl-long', '--format', '{{.Size}}'])).trim();
  assert.match(size, /^50(\.\d+)?kB \(virtual /);
  // cp both ways
  writeFileSync(join(work, 'in.txt'), 'copied in\n');
  await dOk(['cp', join(work, 'in.txt'), 'cl-long:/in.txt']);
  assert.equal(await dOk(['exec', 'cl-long', 'cat', '/in.txt']), 'copied in\n');
  await dOk(['cp', 'cl-long:/in.txt', join(work, 'out.txt')]);
  assert.equal(readFileSync(join(work, 'out.txt'), 'utf8'), 'copied in\n');
  // commit and export
  const committed = (await dOk(['commit', '-c', 'CMD ["cat", "/in.txt"]', 'cl-long', 'cl-committed'])).trim();
  assert.match(committed, /^sha256:/);
  assert.equal(await dOk(['run', '--rm', 'cl-committed']), 'copied in\n');
  const listing = await run('sh', ['-c', `${DOCKER} export cl-long | tar -t`], { env: env() });
  assert.match(listing.stdout, /^big\.bin$/m);
  const rmRunning = await d(['rm', 'cl-long']);
  assert.notEqual(rmRunning.code, 0);
  assert.match(rmRunning.stderr, /Error response from daemon: .*(running|stop)/i);
  await dOk(['stop', '-t', '1', 'cl-long']);
  assert.match((await dOk(['inspect', '--format', '{{.State.Status}}', 'cl-long'])).trim(), /^exited$/);
  await dOk(['rm', 'cl-long', 'cl-short']);
});

test('docker CLI: volumes, save | load, system df, rmi, events, errors in docker\'s words', { skip: need('the docker CLI', DOCKER) }, async () => {
  const t0 = Math.floor(Date.now() / 1000) - 1;
  await dOk(['volume', 'create', 'cl-vol']);
  await dOk(['run', '--rm', '-v', 'cl-vol:/v', 'busybox', 'sh', '-c', 'echo kept > /v/f']);
  assert.equal(await dOk(['run', '--rm', '-v', 'cl-vol:/v', 'busybox', 'cat', '/v/f']), 'kept\n');
  assert.match(await dOk(['volume', 'ls', '--format', '{{.Name}}']), /^cl-vol$/m);
  await dOk(['volume', 'rm', 'cl-vol']);
  const archive = join(work, 'saved.tar');
  await run('sh', ['-c', `${DOCKER} save busybox > ${archive}`], { env: env() });
  await dOk(['tag', 'busybox', 'cl-tagged:1']);
  await dOk(['rmi', 'cl-tagged:1']);
  assert.match(await dOk(['load', '-i', archive]), /Loaded image: busybox:latest/);
  assert.match(await dOk(['system', 'df']), /^Images\s+\d+/m);
  await dOk(['run', '--name', 'cl-ev', 'busybox', 'true']);
  await dOk(['rm', 'cl-ev']);
  const events = await dOk(['events', '--since', String(t0), '--until', String(Math.floor(Date.now() / 1000) + 1), '--filter', 'container=cl-ev', '--format', '{{.Action}}']);
  assert.deepEqual(events.trim().split('\n'), ['create', 'start', 'die', 'destroy']);
  const missing = await d(['inspect', 'no-such-thing-cl']);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /No such object: no-such-thing-cl/);
  const noImage = await d(['run', '--rm', '--pull', 'never', 'no-such-image-cl:1']);
  assert.equal(noImage.code, 125);
  assert.match(noImage.stderr, /No such image|Unable to find image/);
});

test('the shale CLI and the API share one root', { skip: need('the docker CLI', DOCKER) }, async () => {
  await dOk(['volume', 'create', 'cl-shared']);
  const vols = (await shaleOk(root, 'volume', 'ls', '-q')).split('\n');
  assert.ok(vols.includes('cl-shared'), 'the shale CLI sees the volume made through the API');
  await shaleOk(root, 'tag', 'busybox', 'made-by-shale:1');
  assert.match(await dOk(['images', '--format', '{{.Repository}}:{{.Tag}}']), /^made-by-shale:1$/m);
  await dOk(['volume', 'rm', 'cl-shared']);
  await shaleOk(root, 'rmi', 'made-by-shale:1');
});

test('dockerode: create, attach, start, wait, remove; build a tar context', async () => {
  const docker = new Docker({ socketPath: sock });
  const c = await docker.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'echo out; echo err >&2; exit 4'], AttachStdout: true, AttachStderr: true });
  const stream = await c.attach({ stream: true, stdout: true, stderr: true, hijack: true });
  const out = new PassThrough();
  const err = new PassThrough();
  let so = '';
  let se = '';
  out.on('data', (b: Buffer) => (so += b));
  err.on('data', (b: Buffer) => (se += b));
  c.modem.demuxStream(stream, out, err);
  const ended = new Promise((r) => stream.on('end', r));
  const waited = c.wait({ condition: 'next-exit' });
  await c.start();
  const w = (await waited) as { StatusCode: number };
  await ended;
  assert.equal(w.StatusCode, 4);
  assert.equal(so, 'out\n');
  assert.equal(se, 'err\n');
  await c.remove();
  await assert.rejects(c.inspect(), (e: { statusCode?: number }) => e.statusCode === 404);
  // a build from a tar stream
  const ctx = join(work, 'ctx-dockerode');
  mkdirSync(ctx, { recursive: true });
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM busybox\nRUN echo from-dockerode > /f\n');
  const tar = spawn('tar', ['-C', ctx, '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const progress = await docker.buildImage(tar.stdout!, { t: 'cl-dockerode' });
  const lines = await new Promise<{ aux?: { ID: string }; error?: string }[]>((res, rej) => docker.modem.followProgress(progress, (e: Error | null, r: unknown[]) => (e ? rej(e) : res(r as { aux?: { ID: string } }[]))));
  assert.ok(!lines.some((l) => l.error), JSON.stringify(lines));
  const id = lines.find((l) => l.aux?.ID)?.aux?.ID;
  const info = await docker.getImage('cl-dockerode').inspect();
  assert.equal(info.Id, id);
  assert.equal(info.RootFS.Layers?.length, 2);
});

test('docker-compose 1.29: a built service and an image service with a named volume; up -d, ps, logs, down -v', { skip: need('docker-compose', COMPOSE && DOCKER) }, async () => {
  const dir = join(work, 'compose');
  mkdirSync(join(dir, 'app'), { recursive: true });
  writeFileSync(join(dir, 'app', 'Dockerfile'), 'FROM busybox\nCMD ["sh", "-c", "echo app-up > /data/app.txt; echo app says hi; sleep 300"]\n');
  writeFileSync(join(dir, 'docker-compose.yml'), [
    'version: "3.7"',
    'services:',
    '  app:',
    '    build: ./app',
    '    network_mode: none',
    '    volumes: ["shared:/data"]',
    '  side:',
    '    image: busybox',
    '    network_mode: none',
    '    command: ["sh", "-c", "echo side says hi; sleep 300"]',
    '    volumes: ["shared:/data"]',
    'volumes:',
    '  shared: {}',
    '',
  ].join('\n'));
  const c = (args: string[]) => run(COMPOSE!, ['-p', 'clproj', ...args], { cwd: dir, env: env(), timeoutMs: 180_000 });
  const up = await c(['up', '-d']);
  assert.equal(up.code, 0, up.stderr);
  const ps = await c(['ps']);
  assert.match(ps.stdout, /clproj_app_1\s.*Up/);
  assert.match(ps.stdout, /clproj_side_1\s.*Up/);
  let logs = '';
  for (let i = 0; i < 50 && !(/app says hi/.test(logs) && /side says hi/.test(logs)); i++) {
    logs = (await c(['logs', '--no-color'])).stdout;
    if (!(/app says hi/.test(logs) && /side says hi/.test(logs))) await new Promise((r) => setTimeout(r, 100));
  }
  assert.match(logs, /app_1\s+\| app says hi/);
  assert.match(logs, /side_1\s+\| side says hi/);
  assert.equal(await dOk(['exec', 'clproj_side_1', 'cat', '/data/app.txt']), 'app-up\n', 'the named volume is shared');
  const down = await c(['down', '-v']);
  assert.equal(down.code, 0, down.stderr);
  assert.equal((await dOk(['ps', '-a', '--filter', 'name=clproj', '--format', '{{.Names}}'])).trim(), '');
  assert.doesNotMatch(await dOk(['volume', 'ls', '--format', '{{.Name}}']), /clproj_shared/);
});
