// A `volume rm` killed with SIGKILL while it deletes a large volume must never bring the old
// data back: a `volume create` of the same name afterwards is empty, and what the killed rm was
// deleting is swept away by the next volume command.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { shaleOk, SHALE_BIN, tempRoot } from '../testutil/index.js';

test('a volume rm killed mid-delete: the name comes back empty, the trash is swept', async (t) => {
  const root = tempRoot(t);
  await shaleOk(root, 'volume', 'create', 'big');
  const data = join(root, 'volumes', 'big', '_data');
  for (let d = 0; d < 40; d++) {
    mkdirSync(join(data, `d${d}`));
    for (let f = 0; f < 500; f++) writeFileSync(join(data, `d${d}`, `f${f}`), 'old data');
  }
  const db = new Database(join(root, 'metadata.db'), { readonly: true, fileMustExist: true });
  t.after(() => db.close());
  const rm = spawn(process.execPath, [SHALE_BIN, '--root', root, 'volume', 'rm', 'big'], { stdio: 'ignore' });
  // the moment the row is gone (committed), the rm is deleting files: kill it there
  for (;;) {
    if (!db.prepare('SELECT 1 FROM volumes WHERE name = ?').get('big')) break;
    if (rm.exitCode !== null) break;
    await new Promise((r) => setImmediate(r));
  }
  rm.kill('SIGKILL');
  await new Promise((r) => rm.on('close', r));
  await shaleOk(root, 'volume', 'create', 'big');
  assert.deepEqual(readdirSync(data), [], 'the old files came back under the name');
  const trash = join(root, 'volumes', '.trash');
  assert.ok(!existsSync(trash) || readdirSync(trash).length === 0, 'the killed rm left its trash');
});
