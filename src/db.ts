// The metadata database (<root>/metadata.db): images, tags, layers, containers, volumes and
// build cache records. SQLite in WAL mode: every change is one transaction, several shale
// processes may use the store at once, and a kill -9 leaves the last committed state.
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { ensureShmBacked } from './sys/index.js';

export type DB = Database.Database;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS layers (
  blob TEXT PRIMARY KEY,          -- digest of the stored (maybe compressed) blob
  diff_id TEXT NOT NULL,          -- digest of the uncompressed tar
  media_type TEXT NOT NULL,
  blob_size INTEGER NOT NULL,
  size INTEGER NOT NULL,          -- docker's layer size: bytes of the files in the diff
  tar_size INTEGER NOT NULL       -- bytes of the uncompressed tar
);
CREATE INDEX IF NOT EXISTS layers_diff ON layers(diff_id);
CREATE TABLE IF NOT EXISTS images (
  id TEXT PRIMARY KEY,            -- config digest (docker's image ID)
  manifest TEXT NOT NULL,         -- manifest digest
  created TEXT,
  added TEXT NOT NULL,
  size INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS image_layers (
  image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  idx INTEGER NOT NULL,
  blob TEXT NOT NULL REFERENCES layers(blob),
  chain_id TEXT NOT NULL,
  PRIMARY KEY (image_id, idx)
);
CREATE INDEX IF NOT EXISTS image_layers_blob ON image_layers(blob);
CREATE TABLE IF NOT EXISTS tags (
  name TEXT PRIMARY KEY,          -- docker.io/library/busybox:latest
  image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS repo_digests (
  name TEXT PRIMARY KEY,          -- docker.io/library/busybox@sha256:...
  image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS build_cache (
  key TEXT PRIMARY KEY,           -- sha256 of parent chain + instruction + source checksum
  blob TEXT NOT NULL,             -- the layer this step made
  created TEXT NOT NULL,          -- when the step first ran (history uses it, so rebuilds match)
  last_used TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS leases (
  digest TEXT NOT NULL,           -- a blob being written by a live process; GC keeps it
  pid INTEGER NOT NULL,
  created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS leases_digest ON leases(digest);
`;

export function openDB(root: string): DB {
  ensureShmBacked(join(root, 'metadata.db'));
  const db = new Database(join(root, 'metadata.db'), { timeout: 10000 });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.exec(SCHEMA);
  return db;
}

/** Run fn in an IMMEDIATE transaction (takes the write lock up front, so concurrent writers queue). */
export function tx<T>(db: DB, fn: () => T): T {
  return db.transaction(fn).immediate();
}
