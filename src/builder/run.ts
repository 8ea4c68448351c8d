// RUN during a build: a container on the image so far (same runtime path as `shale run`),
// network none by default; its writable layer becomes the step's layer.
import type { RunStep } from './build.js';
import { notImplemented } from '../errors.js';

export const runStep: RunStep = async () => {
  throw notImplemented('RUN is not wired yet');
};
