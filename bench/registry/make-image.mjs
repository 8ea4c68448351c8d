// Make a large multi-layer image in a shale root for the registry benchmark:
//   node bench/registry/make-image.mjs ROOT NAME LAYERS MB_PER_LAYER
// Each layer holds MB_PER_LAYER files of 1 MiB: a quarter random bytes, three quarters base64
// text of random bytes, so gzip shrinks it a little (to about 80%) as it would real content.
import { randomBytes } from 'node:crypto';
import { Engine } from '../../dist/engine/index.js';
import { writeTar } from '../../dist/archive/index.js';
import { ingestTar } from '../../dist/images/layers.js';
import { hostArch } from '../../dist/oci/index.js';

const [root, name, nLayers = '5', mb = '40'] = process.argv.slice(2);
if (!root || !name) {
  console.error('usage: make-image.mjs ROOT NAME [LAYERS] [MB_PER_LAYER]');
  process.exit(2);
}
const MiB = 1 << 20;
function fileData() {
  const rnd = randomBytes(MiB / 4);
  const text = Buffer.from(randomBytes(MiB).toString('base64')).subarray(0, MiB - rnd.length);
  return Buffer.concat([rnd, text]);
}
function* entries(layer) {
  const h = (n, type, size = 0) => ({ name: n, type, mode: type === 'dir' ? 0o755 : 0o644, uid: 0, gid: 0, size, mtime: 1700000000 });
  yield { header: h(`layer${layer}`, 'dir') };
  for (let i = 0; i < Number(mb); i++) {
    const data = fileData();
    yield { header: h(`layer${layer}/f${i}`, 'file', data.length), data };
  }
}
const engine = Engine.open({ root });
const release = engine.images.lease(['*']);
try {
  const layers = [];
  for (let l = 0; l < Number(nLayers); l++) layers.push(await ingestTar(engine.content, writeTar(entries(l)), 'gzip'));
  const created = new Date().toISOString();
  const img = engine.images.createImage({
    architecture: hostArch(), os: 'linux', created, config: { Cmd: ['sh'] },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map((_, i) => ({ created, created_by: `bench layer ${i}` })),
  }, layers, [name]);
  const total = layers.reduce((a, l) => a + l.blobSize, 0);
  console.log(`${img.id} ${layers.length} layers, ${(total / MiB).toFixed(1)} MiB compressed`);
} finally {
  release();
  engine.close();
}
