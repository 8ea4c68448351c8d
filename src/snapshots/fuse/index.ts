// fuse-overlayfs: overlay2's layout and semantics in user space (the rootless path). The
// mounts run the fuse-overlayfs binary; upper dirs are read through ./upper.ts, which hides
// the bookkeeping files fuse-overlayfs writes next to the kernel-style whiteouts.
import type { Readable } from 'node:stream';
import type { Change } from '../../archive/index.js';
import { OverlayFamily } from '../overlay/index.js';
import type { Mount, Usage } from '../types.js';
import { changesFuseUpper, tarFuseUpper, usageFuseUpper } from './upper.js';

export class FuseOverlaySnapshotter extends OverlayFamily {
  readonly name = 'fuse-overlayfs' as const;

  // fuse-overlayfs parses its options itself (no one-page limit), so absolute paths always work
  protected overlayMount(lowers: string[], upper?: { upper: string; work: string }): Mount {
    const options = [`lowerdir=${lowers.join(':')}`];
    if (upper) options.push(`upperdir=${upper.upper}`, `workdir=${upper.work}`);
    return { type: 'fuse-overlayfs', source: 'fuse-overlayfs', options };
  }

  async changes(key: string): Promise<Change[]> {
    const r = this.diffRow(key, 'list the changes');
    return changesFuseUpper(this.fsOf(r), this.chain(r).map((l) => this.fsOf(l)));
  }

  diffTar(key: string): Readable {
    const r = this.diffRow(key, 'make a diff');
    return tarFuseUpper(this.fsOf(r), this.chain(r).map((l) => this.fsOf(l)));
  }

  override async usage(key: string): Promise<Usage> {
    return usageFuseUpper(this.fsOf(this.get(key)));
  }
}
