#!/usr/bin/env node
// Disk full: the root on a small loop-mounted ext4 (64 MB, no reserved blocks), filled up with a
// filler file outside the store dir. Every operation that needs space must fail with a clear
// one-line error that says no space is left (ENOSPC), leave nothing half-written visible, and the
// store must work again once the filler is deleted. The loop mount is always undone.
//
//   node test/torture/diskfull.mjs [--size-mb 64]
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  parseArgs, tempRoot, shale, sh, firstLine, listImages, listVolumes, systemCheck, destroyRoot, startRegistry,
  makeBuildContext, writeRandomFile, leftoverFiles, mountsUnder, processesMentioning, listContainers, table, log, BIN,
} from './lib.mjs';

const NOSPACE = /no space|ENOSPC|disk (is )?full|not enough disk space/i;

export async function diskFull({ sizeMb = 64 } = {}) {
  const work = tempRoot('shale-torture-disk-');
  const img = join(work, 'fs.img');
  const mnt = join(work, 'mnt');
  const root = join(mnt, 'store');
  const filler = join(mnt, 'filler');
  const rows = [];
  const findings = [];
  let registry;
  let mounted = false;
  try {
    mkdirSync(mnt);
    let r = sh(`truncate -s ${sizeMb}M '${img}' && mkfs.ext4 -q -F -m 0 '${img}' && mount -o loop '${img}' '${mnt}'`);
    if (r.code !== 0) throw new Error(`cannot make the loop filesystem: ${r.stderr}`);
    mounted = true;
    // fixtures (outside the small filesystem)
    registry = await startRegistry();
    const big = join(work, 'big');
    const ctx = makeBuildContext(join(work, 'ctx'), { mb: 24, unique: 'disk', seed: 5, runSleep: 0 });
    const tmpl = join(work, 'tmpl');
    const archive = join(work, 'archive.tar');
    const pullRef = `${registry.host}/disk/big:latest`;
    for (const a of [['bootstrap', 'busybox'], ['build', '-q', '-t', 'archived:latest', ctx], ['save', '-o', archive, 'archived:latest'], ['tag', 'archived:latest', pullRef], ['push', pullRef]]) {
      const x = await shale(tmpl, a);
      if (x.code !== 0) throw new Error(`fixture ${a.join(' ')}: ${x.stderr}`);
    }
    await destroyRoot(tmpl);
    mkdirSync(join(big, 'data'), { recursive: true });
    sh(`mkdir -p '${big}/bin' && cp /bin/busybox '${big}/bin/' && ln -sf busybox '${big}/bin/sh'`);
    writeRandomFile(join(big, 'data', 'x.bin'), 24, 9);
    const rootfsTar = join(work, 'rootfs.tar');
    sh(`tar -C '${big}' -cf '${rootfsTar}' .`);

    // store with a base image and a running-able container, then fill the disk
    for (const a of [['bootstrap', 'busybox'], ['volume', 'create', 'vol'], ['create', '--name', 'src', 'busybox', 'sh', '-c', 'head -c 20000000 /dev/urandom > /junk; true']]) {
      const x = await shale(root, a);
      if (x.code !== 0) throw new Error(`setup ${a.join(' ')}: ${x.stderr}`);
    }
    const before = await listImages(root);
    sh(`dd if=/dev/zero of='${filler}' bs=1M 2>/dev/null; sync`);
    log(`filled: ${sh(`df -h '${mnt}' | tail -1`).stdout.trim()}`);

    const ops = [
      ['load', ['load', '-i', archive]],
      ['import', ['import', rootfsTar, 'imported:latest']],
      ['build', ['build', '-t', 'built:latest', ctx]],
      ['pull', ['pull', pullRef]],
      ['run (writes 20 MB)', ['run', '--rm', 'busybox', 'sh', '-c', 'head -c 20000000 /dev/urandom > /big']],
      ['run true', ['run', '--rm', 'busybox', 'true']],
      ['start (writes 20 MB)', ['start', '-a', 'src']],
      ['commit', ['commit', 'src', 'committed:latest']],
      ['volume write', ['run', '--rm', '-v', 'vol:/v', 'busybox', 'sh', '-c', 'head -c 20000000 /dev/urandom > /v/big']],
      ['volume create', ['volume', 'create', 'vol2']],
      ['create', ['create', '--name', 'c2', 'busybox', 'true']],
      ['tag', ['tag', 'busybox:latest', 'another:tag']],
    ];
    for (const [name, args] of ops) {
      const x = await shale(root, args, { timeoutMs: 180_000 });
      // build prints BuildKit-style progress (#N ...) before its error: judge the lines after it
      const err = (x.stderr || '').split('\n').filter((l) => !/^#\d+ /.test(l)).join('\n').trim();
      const lines = err.split('\n').filter((l) => l.trim());
      let verdict;
      if (x.timedOut) verdict = 'HANG';
      else if (x.code === 0) verdict = 'succeeded';
      else if (NOSPACE.test(err) && lines.length <= 2 && !/^\s+at /m.test(err)) verdict = 'clear ENOSPC';
      else if (NOSPACE.test(err)) verdict = 'ENOSPC but not one line';
      // the container's own program hit the full disk (overlayfs may answer EIO): its error is its
      // output, passed through as docker does, and its exit code is the container's
      else if (/writes 20 MB/.test(name) && /I\/O error|No space left/i.test(err) && !/^Error:/m.test(err)) verdict = 'clear ENOSPC';
      else verdict = 'UNCLEAR error';
      rows.push({ op: name, exit: x.timedOut ? 'timeout' : (x.code ?? x.signal), verdict, error: firstLine(err).slice(0, 150), lines: lines.length });
      log(`  ${name}: ${verdict} (${x.code ?? x.signal}) ${firstLine(err).slice(0, 200)}`);
      if (verdict !== 'clear ENOSPC' && verdict !== 'succeeded') findings.push(`${name}: ${verdict}: ${err.slice(0, 600)}`);
      // nothing half-written visible
      const c = await systemCheck(root);
      if (!c.clean) findings.push(`after ${name} on a full disk, system check: ${c.out.slice(0, 600)}`);
    }
    const mid = await listImages(root);
    for (const ref of ['imported:latest', 'built:latest', 'committed:latest', 'archived:latest', pullRef]) {
      const i = mid.images.find((m) => m.ref === ref);
      if (i) {
        const x = await shale(root, ['run', '--rm', ref, 'true']);
        if (x.code !== 0) findings.push(`${ref} is listed after a full-disk attempt but does not run: ${firstLine(x.stderr)}`);
      }
    }
    // space returns
    sh(`rm -f '${filler}'; sync`);
    const afterCheck = await systemCheck(root);
    if (!afterCheck.clean) {
      findings.push(`system check once space returned: ${afterCheck.out.slice(0, 600)}`);
      await systemCheck(root, true);
    }
    const b = await shale(root, ['run', '--rm', 'busybox', 'true']);
    if (b.code !== 0) findings.push(`run --rm busybox true once space returned: ${firstLine(b.stderr)}`);
    const after = await listImages(root);
    for (const i of before.images) if (!after.images.some((a) => a.id === i.id)) findings.push(`lost image ${i.ref}`);
    for (const [name, args] of [['load', ['load', '-i', archive]], ['run', ['run', '--rm', 'busybox', 'sh', '-c', 'echo ok > /f']], ['volume write', ['run', '--rm', '-v', 'vol:/v', 'busybox', 'sh', '-c', 'echo ok > /v/f']]]) {
      const x = await shale(root, args, { timeoutMs: 180_000 });
      rows.push({ op: `${name} (space back)`, exit: x.code, verdict: x.code === 0 ? 'works again' : 'STILL FAILS', error: firstLine(x.stderr).slice(0, 150) });
      if (x.code !== 0) findings.push(`${name} once space returned: ${firstLine(x.stderr)}`);
    }
    // sweep + leftovers
    for (const id of await listContainers(root)) await shale(root, ['rm', '-f', id]);
    await systemCheck(root, true);
    await shale(root, ['image', 'prune', '-f']);
    const fin = await systemCheck(root);
    if (!fin.clean) findings.push(`final system check: ${fin.out.slice(0, 600)}`);
    const leaks = [
      ...fin.info.map((i) => `check-info: ${i}`),
      ...mountsUnder(root).map((m) => `mount: ${m.target}`),
      ...processesMentioning(root).map((p) => `process: ${p.cmd.slice(0, 150)}`),
      ...leftoverFiles(root, { containers: await listContainers(root), volumes: await listVolumes(root) }).map((f) => `${f.kind}: ${f.path}`),
    ];
    for (const l of leaks) findings.push(`leak after the sweep: ${l}`);
    return { rows, findings };
  } finally {
    if (existsSync(root)) await destroyRoot(root, { keep: true });
    if (mounted) {
      const loop = sh(`findmnt -n -o SOURCE '${mnt}'`).stdout.trim();
      const u = sh(`umount '${mnt}' || umount -l '${mnt}'`);
      if (u.code !== 0) log(`umount failed: ${u.stderr}`);
      if (loop.startsWith('/dev/loop')) sh(`losetup -d '${loop}' 2>/dev/null`);
    }
    await registry?.stop();
    sh(`rm -rf '${work}'`);
  }
}

async function main() {
  const o = parseArgs(process.argv.slice(2), { sizeMb: 64, minFree: '0' });
  // shale refuses a layer that would leave less than SHALE_MIN_FREE_SPACE (256 MiB) free; on a 64 MB
  // filesystem that refuses everything, so by default the real ENOSPC path is tested
  process.env.SHALE_MIN_FREE_SPACE = o.minFree;
  log(`disk full: ${o.sizeMb} MB ext4 loop filesystem, bin=${BIN}`);
  const r = await diskFull({ sizeMb: o.sizeMb });
  console.log('\ndisk full\n');
  console.log(table(r.rows, ['op', 'exit', 'verdict', 'error']));
  if (r.findings.length) { console.log('\nfindings:'); for (const f of r.findings) console.log(`  - ${f}`); }
  process.exitCode = r.findings.length ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
void writeFileSync;
