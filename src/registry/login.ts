// `login` / `logout`: check credentials against the registry (GET /v2/ through the challenge
// flow, so a token server that refuses them says so), then keep them in docker's config.json.
import { DEFAULT_DOMAIN } from '../reference/index.js';
import { configPath, credentialKey, eraseCredentials, INDEX_SERVER, serverHost, storeCredentials, type Credentials } from './credentials.js';
import { Transport, type TransportOptions } from './transport.js';

/** The reference domain a login server names: docker.io for Hub and its aliases. */
export function loginDomain(server: string | undefined): string {
  const key = credentialKey(server);
  return key === INDEX_SERVER ? DEFAULT_DOMAIN : serverHost(key);
}

/** Verify and store credentials. Returns the config.json key they were stored under. */
export async function login(server: string | undefined, creds: Credentials, opts: { transport?: TransportOptions; configFile?: string } = {}): Promise<string> {
  const t = new Transport(loginDomain(server), { ...opts.transport, credentials: creds });
  await t.ping();
  return storeCredentials(server, creds, opts.configFile ?? configPath());
}

/** Remove stored credentials; the keys removed (empty when there were none). */
export function logout(server: string | undefined, opts: { configFile?: string } = {}): string[] {
  return eraseCredentials(server, opts.configFile ?? configPath());
}
