// Helpers for the container tests: a throwaway engine root per test (cleaned up even on
// failure: containers killed, mounts taken off, files removed), images built from tiny
// in-memory layers, running a container and collecting its output, and tree checksums.
import { createHash } from 'node:crypto';
import { lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { spawnSync } from 'node:child_process';
import { writeTar, type TarSourceEntry } from '../archive/index.js';
import { Engine } from '../engine/index.js';
import { bootstrapBusybox } from '../images/bootstrap.js';
import { ingestTar } from '../images/layers.js';
import type { ImageRecord } from '../images/store.js';
import type { ImageConfig } from '../oci/index.js';
import { ContainerStore, createContainer, removeContainer, startAttached, type Container, type CreateOptions } from './index.js';

export function tempEngine(driver: string): Engine {
  const root = mkdtempSync(`/tmp/shale-ctest-${driver}-`);
  return Engine.open({ root, storageDriver: driver });
}

/** Remove every container, unmount everything under the root, delete it. Never throws. */
export async function destroyEngine(engine: Engine): Promise<void> {
  const root = engine.root;
  try {
    const store = new ContainerStore(engine);
    for (const c of store.list()) await removeContainer(engine, c.id, { force: true, volumes: true }).catch(() => undefined);
  } catch { /* best effort */ }
  try { engine.close(); } catch { /* closed */ }
  const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1]).filter((m) => m && (m === root || m.startsWith(root + '/')));
  for (const m of mounts.sort().reverse()) spawnSync('umount', ['-l', m]);
  rmSync(root, { recursive: true, force: true });
}

export function busybox(engine: Engine): Promise<ImageRecord> {
  return bootstrapBusybox(engine, 'busybox:latest');
}

const MTIME = Date.UTC(2024, 0, 1) / 1000;

export function fileEntry(name: string, data: string | Buffer, mode = 0o644): TarSourceEntry {
  const b = Buffer.isBuffer(data) ? data : Buffer.from(data);
  return { header: { name, type: 'file', mode, uid: 0, gid: 0, size: b.length, mtime: MTIME }, data: b };
}
export function dirEntry(name: string, mode = 0o755): TarSourceEntry {
  return { header: { name, type: 'dir', mode, uid: 0, gid: 0, size: 0, mtime: MTIME } };
}

/** A new image: the base image's layers plus one layer per entry list. */
export async function layeredImage(engine: Engine, base: ImageRecord, layers: TarSourceEntry[][], tag: string, config: ImageConfig['config'] = {}): Promise<ImageRecord> {
  const baseCfg = engine.images.config(base.id);
  const recs = engine.images.layers(base.id).map(({ chainId: _c, ...l }) => l);
  for (const entries of layers) recs.push(await ingestTar(engine.content, writeTar(entries), 'gzip'));
  const cfg: ImageConfig = {
    architecture: baseCfg.architecture, os: baseCfg.os, created: new Date().toISOString(),
    config: { ...baseCfg.config, ...config },
    rootfs: { type: 'layers', diff_ids: recs.map((l) => l.diffId) },
    history: recs.map(() => ({ created_by: 'test layer' })),
  };
  return engine.images.createImage(cfg, recs, [tag]);
}

class Collect extends Writable {
  chunks: Buffer[] = [];
  override _write(chunk: Buffer, _e: BufferEncoding, cb: () => void): void {
    this.chunks.push(Buffer.from(chunk));
    cb();
  }
  text(): string {
    return Buffer.concat(this.chunks).toString();
  }
}

export interface RunResult { code: number; stdout: string; stderr: string; c: Container }

/** create + start attached, collecting output (like `shale run` in the foreground). */
export async function run(engine: Engine, image: string, cmd: string[], o: Partial<CreateOptions> = {}): Promise<RunResult> {
  const c = await createContainer(engine, { image, cmd, ...o });
  const stdout = new Collect();
  const stderr = new Collect();
  const code = await startAttached(engine, c, { stdout, stderr, forwardSignals: false });
  return { code, stdout: stdout.text(), stderr: stderr.text(), c: new ContainerStore(engine).get(c.id) ?? c };
}

/** path -> checksum of type, mode, owner and content (or link target) for every entry under dir. */
export function treeSums(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    const p = join(dir, rel);
    const st = lstatSync(p);
    const h = createHash('sha256').update(`${st.mode}:${st.uid}:${st.gid}:${st.rdev}:`);
    if (st.isFile()) h.update(readFileSync(p));
    else if (st.isSymbolicLink()) h.update(readlinkSync(p));
    out.set(rel || '/', h.digest('hex'));
    if (st.isDirectory()) for (const n of readdirSync(p).sort()) walk(rel ? `${rel}/${n}` : n);
  };
  walk('');
  return out;
}

/** Bytes of the non-directories under dir (each inode once): what `du -b` counts for file data. */
export function fileBytes(dir: string): number {
  const seen = new Set<number>();
  let n = 0;
  const walk = (p: string) => {
    const st = lstatSync(p);
    if (seen.has(st.ino)) return;
    seen.add(st.ino);
    if (st.isDirectory()) for (const x of readdirSync(p)) walk(join(p, x));
    else n += st.size;
  };
  walk(dir);
  return n;
}
