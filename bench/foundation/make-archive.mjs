// Make a large docker-archive (what `docker save` wrote before v25) with GNU tar:
//   node bench/foundation/make-archive.mjs OUT.tar [TOTAL_MB] [FILES] [LAYERS]
// The files are pseudo-random (AES-CTR keyed by a fixed seed) with exponentially distributed
// sizes, spread over LAYERS layers (40/30/20/10 % of the files for four), 100 files per
// directory. Same arguments, same bytes: every tar is made with fixed owners, order and mtimes.
// Prints a JSON line: {"bytes":..,"files":..,"layers":[..diff_ids]}.
import { createCipheriv, createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

const [outArg, mbArg = '500', filesArg = '20000', layersArg = '4'] = process.argv.slice(2);
if (!outArg) {
  console.error('usage: make-archive.mjs OUT.tar [TOTAL_MB] [FILES] [LAYERS]');
  process.exit(2);
}
const out = resolve(outArg);
const totalBytes = Number(mbArg) * 1e6;
const nfiles = Number(filesArg);
const nlayers = Number(layersArg);

const key = createHash('sha256').update('shale bench foundation').digest();
const cipher = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16));
const rand = (n) => cipher.update(Buffer.alloc(n));
const uniform = () => (rand(4).readUInt32LE(0) + 0.5) / 2 ** 32;

// file sizes: exponential around the mean, then scaled so they add up to the total exactly
const raw = Array.from({ length: nfiles }, () => -Math.log(uniform()));
const scale = totalBytes / raw.reduce((a, b) => a + b, 0);
const sizes = raw.map((r) => Math.floor(r * scale));
sizes[0] += totalBytes - sizes.reduce((a, b) => a + b, 0);

// files per layer: 4 -> 40/30/20/10 %, otherwise decreasing weights n, n-1, ..., 1
const weights = Array.from({ length: nlayers }, (_, i) => nlayers - i);
const wsum = weights.reduce((a, b) => a + b, 0);
const perLayer = weights.map((w) => Math.floor((nfiles * w) / wsum));
perLayer[0] += nfiles - perLayer.reduce((a, b) => a + b, 0);

const TAR = ['--numeric-owner', '--owner=0', '--group=0', '--sort=name', '--mtime=2024-01-01 00:00:00Z'];
const work = mkdtempSync(join(dirname(out), '.make-archive-'));
try {
  const diffIds = [];
  const layerPaths = [];
  let next = 0;
  for (let l = 0; l < nlayers; l++) {
    const tree = join(work, `tree${l}`);
    for (let i = 0; i < perLayer[l]; i++, next++) {
      const dir = join(tree, `layer${l}`, `d${String(Math.floor(i / 100)).padStart(4, '0')}`);
      if (i % 100 === 0) mkdirSync(dir, { recursive: true });
      const fd = openSync(join(dir, `f${String(next).padStart(6, '0')}.bin`), 'w', 0o644);
      for (let off = 0; off < sizes[next]; off += 1 << 20) writeSync(fd, rand(Math.min(1 << 20, sizes[next] - off)));
      closeSync(fd);
    }
    const tmp = join(work, `layer${l}.tar`);
    execFileSync('tar', [...TAR, '-C', tree, '-cf', tmp, '.']);
    rmSync(tree, { recursive: true, force: true });
    const hex = execFileSync('sha256sum', [tmp], { encoding: 'utf8' }).split(' ')[0];
    mkdirSync(join(work, 'archive', hex), { recursive: true });
    renameSync(tmp, join(work, 'archive', hex, 'layer.tar'));
    diffIds.push(`sha256:${hex}`);
    layerPaths.push(`${hex}/layer.tar`);
  }
  const created = '2024-01-01T00:00:00Z';
  const config = {
    architecture: 'amd64',
    os: 'linux',
    created,
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: diffIds.map((_, i) => ({ created, created_by: `COPY layer${i} /layer${i} # buildkit`, comment: 'buildkit.dockerfile.v0' })),
  };
  const cfg = Buffer.from(JSON.stringify(config));
  const cfgHex = createHash('sha256').update(cfg).digest('hex');
  writeFileSync(join(work, 'archive', `${cfgHex}.json`), cfg);
  writeFileSync(join(work, 'archive', 'manifest.json'), JSON.stringify([{ Config: `${cfgHex}.json`, RepoTags: ['bench/big:1'], Layers: layerPaths }]));
  const members = readdirSync(join(work, 'archive')).sort();
  execFileSync('tar', [...TAR, '-C', join(work, 'archive'), '-cf', out, ...members]);
  console.log(JSON.stringify({ bytes: statSync(out).size, files: nfiles, fileBytes: totalBytes, layers: diffIds, config: `sha256:${cfgHex}` }));
} finally {
  rmSync(work, { recursive: true, force: true });
}
