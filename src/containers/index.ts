// Containers: create (a record plus a thin writable snapshot on the image's layers), start
// (mount the rootfs, resolve mounts and user, write the OCI bundle, hand it to the runtime
// under a supervisor), stop/kill/wait, exec, remove. The engine, the builder and the shim use
// these; each verb lives in its own file (create, bundle, lifecycle, exec).
export { ContainerStore, shortCid, type Container } from './store.js';
export { VolumeStore } from './volumes.js';
export { createContainer, parseVolumeFlag, parseMountFlag, type CreateOptions } from './create.js';
export { mountRootfs } from './bundle.js';
export {
  reconcile, startDetached, startAttached, runtimeFor, whilePaused, killContainer, waitStopped, stopContainer, removeContainer, pauseContainer, unpauseContainer,
} from './lifecycle.js';
export { execInContainer, type ExecOptions } from './exec.js';
