// vfs: every active snapshot is a full copy of its parent (cp -a --reflink=auto, so on btrfs
// or xfs it is cheap and everywhere it preserves owners, modes, times, hardlinks and xattrs).
// Needs no privileges except for the bind mount, and path() gives the directory to use as
// a rootfs without mounting at all. Changes are found by comparing with the parent's copy.
import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { applyLayer, changesDirs, tarChanges, type Change } from '../../archive/index.js';
import { failedPrecondition, ShaleError } from '../../errors.js';
import { BaseSnapshotter, type Row } from '../store.js';
import type { Kind, Mount, Usage } from '../types.js';

const run = promisify(execFile);

export class VfsSnapshotter extends BaseSnapshotter {
  readonly name = 'vfs' as const;
  private readonly empty: string;

  constructor(root: string) {
    super(root, false);
    this.empty = join(root, 'empty');
    mkdirSync(this.empty, { recursive: true, mode: 0o755 });
  }

  protected async populate(stage: string, kind: Kind, parent: Row | undefined): Promise<void> {
    const fs = join(stage, 'fs');
    if (kind === 'active' && parent) {
      try {
        await run('cp', ['-a', '--reflink=auto', '--', this.fsOf(parent), fs], { maxBuffer: 16 << 20 });
      } catch (e) {
        const err = e as { stderr?: string; message: string; code?: string };
        if (err.code === 'ENOENT') throw failedPrecondition('cp is not installed', 'install the Debian package coreutils');
        throw new ShaleError('Internal', `copying snapshot ${parent.key} for vfs failed: ${(err.stderr || err.message).trim()}`, 'check free disk space');
      }
      return;
    }
    await mkdir(fs);
    await chmod(fs, 0o755);
  }

  /** The directory holding the full content of key (views share their parent's). */
  path(key: string): string {
    const r = this.get(key);
    if (r.kind === 'view' && r.parent !== null) return this.fsOf(this.get(r.parent));
    return this.fsOf(r);
  }

  protected mountsOf(r: Row): Mount[] {
    const source = r.kind === 'view' && r.parent !== null ? this.fsOf(this.get(r.parent)) : this.fsOf(r);
    return [{ type: 'bind', source, options: ['rbind', r.kind === 'active' ? 'rw' : 'ro'] }];
  }

  /** vfs layers are full copies: the one directory under key is its parent's copy (or its own, committed). */
  override lowerDirs(key: string): string[] {
    const r = this.get(key);
    if (r.kind === 'committed') return [this.fsOf(r)];
    return r.parent !== null ? [this.fsOf(this.get(r.parent))] : [];
  }

  private parentFs(r: Row): string {
    return r.parent !== null ? this.fsOf(this.get(r.parent)) : this.empty;
  }

  async changes(key: string): Promise<Change[]> {
    const r = this.diffRow(key, 'list the changes');
    return changesDirs(this.parentFs(r), this.fsOf(r));
  }

  diffTar(key: string): Readable {
    const r = this.diffRow(key, 'make a diff');
    const self = this;
    async function* gen(): AsyncGenerator<Buffer> {
      const changes = await changesDirs(self.parentFs(r), self.fsOf(r));
      yield* tarChanges(changes, self.fsOf(r)) as AsyncIterable<Buffer>;
    }
    return Readable.from(gen(), { objectMode: false });
  }

  async applyTar(key: string, tar: AsyncIterable<Buffer>): Promise<{ size: number }> {
    const r = this.getActive(key, 'apply a layer to');
    const res = await applyLayer(this.fsOf(r), tar, { whiteouts: 'apply' });
    return { size: res.size };
  }

  /** The diff against the parent: bytes of added/changed non-directories and their inodes (root included), as overlay2 would count its upper dir. */
  async usage(key: string): Promise<Usage> {
    const r = this.get(key);
    if (r.kind === 'view') return { size: 0, inodes: 1 };
    const seen = new Set<number>();
    let size = 0;
    let inodes = 1;
    for (const c of await changesDirs(this.parentFs(r), this.fsOf(r))) {
      if (!c.st) { inodes++; continue; } // a deletion: overlay would hold a whiteout inode
      if (seen.has(c.st.ino)) continue;
      seen.add(c.st.ino);
      inodes++;
      if (!c.st.isDirectory()) size += c.st.size;
    }
    return { size, inodes };
  }
}
