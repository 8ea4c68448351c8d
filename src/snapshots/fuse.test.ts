import { existsSync } from 'node:fs';
import { openSnapshotter } from './index.js';
import { snapshotterSuite } from './testsuite.js';

const skip = existsSync('/dev/fuse') ? undefined : '/dev/fuse is absent (load the fuse module or pass --device /dev/fuse to the container)';
snapshotterSuite('fuse-overlayfs', (root) => openSnapshotter(root, 'fuse-overlayfs'), { skip });
