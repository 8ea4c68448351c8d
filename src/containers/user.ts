// `-u`/USER -> uid, gid and supplementary groups, read from the container's own /etc/passwd
// and /etc/group (resolved inside its root, so a hostile symlink cannot make us read the
// host's files). Follows docker: "name", "uid", "name:group", "uid:gid"; a numeric uid that
// is not in passwd is fine (gid 0), an unknown name is an error.
import { invalidArgument } from '../errors.js';
import { Scope } from '../scope/index.js';

export interface User {
  uid: number;
  gid: number;
  additionalGids: number[];
  home?: string;
}

const MAX_DB = 4 << 20; // /etc/passwd and /etc/group: bounded like every byte from an image

function readEntries(root: string, file: string): string[][] {
  try {
    const data = new Scope(root, { label: 'container' }).readFile(file, MAX_DB, file);
    if (!data) return [];
    return data.toString('utf8').split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(':'));
  } catch {
    return [];
  }
}

const isNum = (s: string) => /^\d+$/.test(s);

export function resolveUser(root: string, spec: string | undefined): User {
  const s = spec ?? '';
  if (s === '') return { uid: 0, gid: 0, additionalGids: [], home: '/root' };
  const [u, g] = s.split(':', 2);
  const passwd = readEntries(root, '/etc/passwd');
  const groups = readEntries(root, '/etc/group');
  const pw = passwd.find((p) => (isNum(u) ? p[2] === u : p[0] === u));
  if (!pw && !isNum(u)) throw invalidArgument(`unable to find user ${u}: no matching entries in passwd file`, 'use a numeric uid, or a user the image defines');
  const uid = pw ? Number(pw[2]) : Number(u);
  let gid = pw ? Number(pw[3]) : 0;
  if (g !== undefined && g !== '') {
    const gr = groups.find((x) => (isNum(g) ? x[2] === g : x[0] === g));
    if (!gr && !isNum(g)) throw invalidArgument(`unable to find group ${g}: no matching entries in group file`, 'use a numeric gid, or a group the image defines');
    gid = gr ? Number(gr[2]) : Number(g);
  }
  const name = pw?.[0];
  const additionalGids = g === undefined && name ? groups.filter((x) => (x[3] ?? '').split(',').includes(name)).map((x) => Number(x[2])).filter((x) => x !== gid) : [];
  return { uid, gid, additionalGids, home: pw?.[5] };
}
