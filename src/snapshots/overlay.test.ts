import { openSnapshotter } from './index.js';
import { snapshotterSuite } from './testsuite.js';

snapshotterSuite('overlay2', (root) => openSnapshotter(root, 'overlay2'));
