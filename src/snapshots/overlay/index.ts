// overlay2: kernel overlayfs. Each snapshot's fs dir is its diff: the upper dir while it is
// active, a lower dir once committed. Creating a snapshot makes two empty directories, so a
// container's rootfs costs the same whatever the image size.
//
//   active, no parent       bind mount (rw) of its own fs dir
//   active on a chain       overlay lowerdir=<chain links>,upperdir=fs,workdir=work
//   view/committed, 1 layer bind mount (ro) of that layer's fs dir
//   view/committed, more    overlay lowerdir=<chain links> (read-only by construction)
//
// Lower dirs are named by their l/<LINK> short links; mountAll() turns a long option string
// into relative paths (see ../mount.ts).
import { readFileSync } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { applyLayer, changesOverlay, tarOverlayUpper, type Change } from '../../archive/index.js';
import { BaseSnapshotter, type Row } from '../store.js';
import { dirUsage } from '../usage.js';
import type { DriverName, Kind, Mount, Usage } from '../types.js';

/** Kernel overlay features that would make an upper dir unreadable as a plain layer diff. */
function featureOffOptions(): string[] {
  const out: string[] = [];
  for (const [param, opt] of [['index', 'index=off'], ['redirect_dir', 'redirect_dir=off'], ['metacopy', 'metacopy=off']]) {
    try {
      if (/^(Y|on|follow)/.test(readFileSync(`/sys/module/overlay/parameters/${param}`, 'utf8').trim())) out.push(opt);
    } catch {
      // parameter unknown to this kernel: the feature is off
    }
  }
  return out;
}
let featureOpts: string[] | undefined;

export abstract class OverlayFamily extends BaseSnapshotter {
  abstract override readonly name: DriverName;

  constructor(root: string) {
    super(root, true);
  }

  protected async populate(stage: string, kind: Kind, parent: Row | undefined): Promise<void> {
    const fs = join(stage, 'fs');
    await mkdir(fs);
    await chmod(fs, 0o755);
    if (kind === 'active' && parent) await mkdir(join(stage, 'work'), { mode: 0o700 });
  }

  /** The mount of an overlay with these lowers (topmost first) and, when writable, an upper. */
  protected abstract overlayMount(lowers: string[], upper?: { upper: string; work: string }): Mount;

  protected mountsOf(r: Row): Mount[] {
    if (r.kind === 'active') {
      const chain = this.chain(r);
      if (chain.length === 0) return [{ type: 'bind', source: this.fsOf(r), options: ['rbind', 'rw'] }];
      return [this.overlayMount(chain.map((l) => this.linkOf(l)), { upper: this.fsOf(r), work: this.workOf(r) })];
    }
    const layers = this.layers(r);
    if (layers.length === 0) return [{ type: 'bind', source: this.fsOf(r), options: ['rbind', 'ro'] }];
    if (layers.length === 1) return [{ type: 'bind', source: this.fsOf(layers[0]), options: ['rbind', 'ro'] }];
    return [this.overlayMount(layers.map((l) => this.linkOf(l)))];
  }

  async usage(key: string): Promise<Usage> {
    return dirUsage(this.fsOf(this.get(key)));
  }

  async applyTar(key: string, tar: AsyncIterable<Buffer>): Promise<{ size: number }> {
    const r = this.getActive(key, 'apply a layer to');
    const res = await applyLayer(this.fsOf(r), tar, { whiteouts: 'overlay' });
    return { size: res.size };
  }
}

export class OverlaySnapshotter extends OverlayFamily {
  readonly name = 'overlay2' as const;

  protected overlayMount(lowers: string[], upper?: { upper: string; work: string }): Mount {
    if (!upper) return { type: 'overlay', source: 'overlay', options: ['ro', `lowerdir=${lowers.join(':')}`] };
    featureOpts ??= featureOffOptions();
    return { type: 'overlay', source: 'overlay', options: [...featureOpts, `lowerdir=${lowers.join(':')}`, `upperdir=${upper.upper}`, `workdir=${upper.work}`] };
  }

  async changes(key: string): Promise<Change[]> {
    const r = this.diffRow(key, 'list the changes');
    return changesOverlay(this.fsOf(r), this.chain(r).map((l) => this.fsOf(l)));
  }

  diffTar(key: string): Readable {
    return tarOverlayUpper(this.fsOf(this.diffRow(key, 'make a diff')));
  }
}
