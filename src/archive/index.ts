export { applyLayer, type ApplyOptions, type ApplyResult } from './apply.js';
export { tarDirectory, tarOverlayUpper, tarChanges, typeOf, type TarOptions } from './create.js';
export { changesDirs, changesOverlay, type Change } from './changes.js';
export * from './compression.js';
export { readTar, type TarEntry } from './tar/reader.js';
export { writeTar, type TarSourceEntry } from './tar/writer.js';
export type { TarHeader, EntryType } from './tar/header.js';
export * from './whiteout.js';
export { clampMtimes } from './rewrite.js';
