// RUN during a build: a container on the image so far (the same create/start path as
// `shale run`, network none by default); its writable layer becomes the step's layer.
// Like docker's legacy builder, the state so far is committed as an untagged intermediate
// image for the container to start from, and dropped again afterwards.
import { randomBytes } from 'node:crypto';
import type { Writable } from 'node:stream';
import { Writable as W } from 'node:stream';
import type { RunStep } from './build.js';
import { ShaleError } from '../errors.js';
import { sha256 } from '../digest/index.js';
import { ingestTar } from '../images/layers.js';
import { clampMtimes } from '../archive/index.js';
import { hostArch, type ImageConfig } from '../oci/index.js';
import { createContainer, removeContainer, startAttached } from '../containers/index.js';
import { getSnapshotter } from '../store/rootfs.js';
import { BUILD_OWNER_LABEL, processIdentity } from '../store/owner.js';

const sink = (): Writable => new W({ write: (_c, _e, cb) => cb() });

export const runStep: RunStep = async (req) => {
  const { engine } = req;
  const cfg: ImageConfig = {
    architecture: hostArch(),
    os: 'linux',
    config: { ...req.config, Env: req.env, Entrypoint: null, Cmd: req.args, Volumes: req.config.Volumes },
    rootfs: { type: 'layers', diff_ids: req.layers.map((l) => l.diffId) },
    history: [{ created_by: 'shale build intermediate', empty_layer: true }],
  };
  const existed = engine.images.get(sha256(JSON.stringify(cfg)));
  const tmp = engine.images.createImage(cfg, req.layers, []);
  try {
    // the owner label lets `system check` tell a killed build's container from a live one
    const c = await createContainer(engine, { image: tmp.id, name: `shale-build-${randomBytes(6).toString('hex')}`, network: req.network, labels: [`${BUILD_OWNER_LABEL}=${processIdentity(process.pid)}`] });
    try {
      const out = req.output ?? sink();
      const code = await startAttached(engine, c, { stdout: out, stderr: out, forwardSignals: true });
      if (code !== 0) {
        throw new ShaleError('FailedPrecondition', `process "${req.args.join(' ')}" did not complete successfully: exit code: ${code}`);
      }
      const diff = getSnapshotter(engine).diffTar(c.id);
      const epoch = process.env.SOURCE_DATE_EPOCH ? Number(process.env.SOURCE_DATE_EPOCH) : NaN;
      return await ingestTar(engine.content, Number.isFinite(epoch) ? clampMtimes(diff, epoch) : diff);
    } finally {
      await removeContainer(engine, c.id, { force: true, volumes: true });
    }
  } finally {
    if (!existed) engine.images.remove(tmp.id, { force: true });
  }
};
