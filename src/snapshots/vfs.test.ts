import { openSnapshotter } from './index.js';
import { snapshotterSuite } from './testsuite.js';

// A vfs snapshot is a full copy whatever the depth (no mount option grows with the chain), and
// each layer copies its parent: 40 layers cover the same code as 120 in a third of the time.
snapshotterSuite('vfs', (root) => openSnapshotter(root, 'vfs'), { chainDepth: 40 });
