// Which repositories of which registry are known to hold a blob (we pulled it from there or
// pushed it there). push uses it to ask for a cross-repository mount instead of uploading a
// blob the registry already has under another name. A hint only: a wrong row costs one
// refused mount, after which the blob is uploaded.
import { tx, type DB } from '../db.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS registry_blob_sources (
  digest TEXT NOT NULL,           -- blob digest
  registry TEXT NOT NULL,         -- reference domain: docker.io, 127.0.0.1:5000
  repo TEXT NOT NULL,             -- repository path on that registry: bars/bb
  updated TEXT NOT NULL,
  PRIMARY KEY (digest, registry, repo)
);
`;

const ready = new WeakSet<DB>();

function init(db: DB): void {
  if (ready.has(db)) return;
  db.exec(SCHEMA);
  ready.add(db);
}

/** Remember that `registry/repo` holds these blobs. */
export function recordSources(db: DB, registry: string, repo: string, digests: string[]): void {
  init(db);
  const now = new Date().toISOString();
  const ins = db.prepare('INSERT INTO registry_blob_sources (digest, registry, repo, updated) VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET updated = excluded.updated');
  tx(db, () => { for (const d of new Set(digests)) ins.run(d, registry, repo, now); });
}

/** Forget a repository as a source of a blob (a mount from it was refused). */
export function forgetSource(db: DB, registry: string, repo: string, digest: string): void {
  init(db);
  db.prepare('DELETE FROM registry_blob_sources WHERE digest = ? AND registry = ? AND repo = ?').run(digest, registry, repo);
}

/** Repositories on `registry` other than `except` known to hold the blob, most recent first. */
export function sourcesOf(db: DB, registry: string, digest: string, except: string): string[] {
  init(db);
  const rows = db.prepare('SELECT repo FROM registry_blob_sources WHERE digest = ? AND registry = ? AND repo != ? ORDER BY updated DESC LIMIT 5').all(digest, registry, except) as { repo: string }[];
  return rows.map((r) => r.repo);
}
