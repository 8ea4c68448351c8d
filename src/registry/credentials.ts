// Registry credentials in docker's config.json ($DOCKER_CONFIG/config.json, else
// ~/.docker/config.json): `auths[server].auth` is base64("user:password"). We read the keys
// docker reads (a bare host, or a URL with scheme and path) and write the file the way docker
// does: other keys kept, mode 0600, replaced atomically.
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { errno, invalidArgument } from '../errors.js';
import { DEFAULT_DOMAIN } from '../reference/index.js';

/** The key docker uses for Docker Hub in config.json. */
export const INDEX_SERVER = 'https://index.docker.io/v1/';

export interface Credentials {
  username: string;
  password: string;
}

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  [k: string]: unknown;
}

interface DockerConfig {
  auths?: Record<string, AuthEntry>;
  [k: string]: unknown;
}

export function configPath(dir = process.env.DOCKER_CONFIG): string {
  return join(dir || join(homedir(), '.docker'), 'config.json');
}

function readConfig(path: string): DockerConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (errno(e) === 'ENOENT') return {};
    throw e;
  }
  if (!text.trim()) return {};
  try {
    const c = JSON.parse(text) as DockerConfig;
    return c && typeof c === 'object' ? c : {};
  } catch (e) {
    throw invalidArgument(`${path} is not valid JSON: ${(e as Error).message}`, 'fix or remove the file');
  }
}

/** The registry part of a config.json key: "https://host:5000/v1/" -> "host:5000". */
export function serverHost(key: string): string {
  let k = key.trim();
  k = k.replace(/^[a-z]+:\/\//i, '');
  k = k.split('/')[0];
  return k.toLowerCase();
}

/** The key a login to `server` is stored under (docker's: Hub is its v1 URL, others the bare host). */
export function credentialKey(server: string | undefined): string {
  if (!server) return INDEX_SERVER;
  const h = serverHost(server);
  if (h === DEFAULT_DOMAIN || h === 'index.docker.io' || h === 'registry-1.docker.io') return INDEX_SERVER;
  return h;
}

function sameServer(key: string, domain: string): boolean {
  const h = serverHost(key);
  if (domain === DEFAULT_DOMAIN) return h === 'index.docker.io' || h === DEFAULT_DOMAIN || h === 'registry-1.docker.io';
  return h === domain.toLowerCase();
}

function decode(e: AuthEntry): Credentials | undefined {
  if (e.auth) {
    const s = Buffer.from(e.auth, 'base64').toString('utf8');
    const i = s.indexOf(':');
    if (i > 0) return { username: s.slice(0, i), password: s.slice(i + 1) };
  }
  if (e.username && e.password) return { username: e.username, password: e.password };
  return undefined;
}

/** Credentials stored for a registry domain (as references name it: docker.io, localhost:5000). */
export function lookupCredentials(domain: string, path = configPath()): Credentials | undefined {
  const auths = readConfig(path).auths ?? {};
  const exact = domain === DEFAULT_DOMAIN ? INDEX_SERVER : domain;
  if (auths[exact]) {
    const c = decode(auths[exact]);
    if (c) return c;
  }
  for (const [k, v] of Object.entries(auths)) {
    if (sameServer(k, domain)) {
      const c = decode(v);
      if (c) return c;
    }
  }
  return undefined;
}

function writeConfig(path: string, c: DockerConfig): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, JSON.stringify(c, null, '\t') + '\n', { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

/** Save a login: auths[key].auth = base64(user:password); file mode 0600. */
export function storeCredentials(server: string | undefined, creds: Credentials, path = configPath()): string {
  const c = readConfig(path);
  const key = credentialKey(server);
  c.auths ??= {};
  c.auths[key] = { ...(c.auths[key] ?? {}), auth: Buffer.from(`${creds.username}:${creds.password}`).toString('base64') };
  delete c.auths[key].username;
  delete c.auths[key].password;
  writeConfig(path, c);
  return key;
}

/** Forget a login. Returns the keys removed (none when not logged in). */
export function eraseCredentials(server: string | undefined, path = configPath()): string[] {
  const c = readConfig(path);
  const key = credentialKey(server);
  const domain = key === INDEX_SERVER ? DEFAULT_DOMAIN : key;
  const gone = Object.keys(c.auths ?? {}).filter((k) => k === key || sameServer(k, domain));
  if (gone.length === 0) return [];
  for (const k of gone) delete c.auths![k];
  writeConfig(path, c);
  return gone;
}
