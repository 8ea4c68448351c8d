// The storage-driver contract, as small as containerd's snapshotter.
//
//   committed  a read-only layer; the only kind that can be a parent
//   active     a writable snapshot on top of a committed chain (a container's rootfs,
//              or a layer being unpacked/built); commit() turns it into a committed one
//   view       a read-only mount of a committed chain; cannot be committed
//
// A snapshot is named by a caller-chosen key (a chain ID, a container ID…). Drivers return
// Mount descriptions; mountAll()/unmountAll() in mount.ts put them on a target directory.
import type { Readable } from 'node:stream';
import type { Mount } from '../sys/index.js';
import type { Change } from '../archive/index.js';

export type { Mount } from '../sys/index.js';
export type { Change } from '../archive/index.js';

export type Kind = 'committed' | 'active' | 'view';
export type DriverName = 'overlay2' | 'vfs' | 'fuse-overlayfs';
export const DRIVER_NAMES: readonly DriverName[] = ['overlay2', 'fuse-overlayfs', 'vfs'];

export interface SnapshotInfo {
  key: string;
  parent?: string;
  kind: Kind;
  /** ISO 8601; for a committed snapshot, when it was committed */
  created: string;
  labels?: Record<string, string>;
}

export interface Usage {
  /** bytes of the snapshot's own diff: lstat sizes of its non-directory entries, hardlinks once */
  size: number;
  /** distinct inodes of the snapshot's own diff (its root included) */
  inodes: number;
}

export interface CleanupReport {
  /** keys whose directory was missing; they (and snapshots built on them) were dropped */
  removedKeys: string[];
  /** directories and links that belonged to no snapshot and were deleted */
  removedPaths: string[];
}

export interface Snapshotter {
  readonly name: DriverName;
  /** the driver's own directory, <shale root>/<driver> */
  readonly root: string;
  /** A writable snapshot on top of the committed chain ending at parent. */
  prepare(key: string, parent?: string, labels?: Record<string, string>): Promise<Mount[]>;
  /** A read-only snapshot of the committed chain ending at parent. */
  view(key: string, parent?: string, labels?: Record<string, string>): Promise<Mount[]>;
  /** The mounts of an existing snapshot (committed ones come back read-only). */
  mounts(key: string): Promise<Mount[]>;
  /** active `key` -> committed `name` (the active key no longer exists afterwards). */
  commit(name: string, key: string, labels?: Record<string, string>): Promise<void>;
  /** Refuses (Conflict) while other snapshots are built on it. */
  remove(key: string): Promise<void>;
  /** Hold keys against remove() until the returned release() (or this process's death). */
  hold(keys: string[]): () => void;
  stat(key: string): Promise<SnapshotInfo>;
  list(): Promise<SnapshotInfo[]>;
  exists(key: string): boolean;
  usage(key: string): Promise<Usage>;
  /** What an active (or committed) snapshot changed against its parent, sorted, docker's A/C/D. */
  changes(key: string): Promise<Change[]>;
  /** Those changes as an OCI layer tar (whiteouts as .wh.NAME / .wh..wh..opq). */
  diffTar(key: string): Readable;
  /** Unpack a layer tar into an ACTIVE snapshot's own directory (it should not be mounted meanwhile). */
  applyTar(key: string, tar: AsyncIterable<Buffer>): Promise<{ size: number }>;
  /** The read-only directories under key: its committed parents (and itself when committed), topmost first. */
  lowerDirs?(key: string): string[];
  /** Remove directories without a metadata row and rows whose directory is gone (also done on open). */
  cleanup(): Promise<CleanupReport>;
  close(): void;
}
