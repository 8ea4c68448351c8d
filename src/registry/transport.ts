// The HTTP side of the distribution client, kept apart from the protocol (ggcr's transport):
// one Transport per registry host picks http or https, answers the WWW-Authenticate challenge
// (Bearer tokens per scope set, or Basic), follows redirects (dropping credentials when the
// host changes) and retries connection failures. pull.ts and push.ts never see a token.
import { request, type Dispatcher } from 'undici';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { isIP } from 'node:net';
import { DEFAULT_DOMAIN } from '../reference/index.js';
import { lookupCredentials, type Credentials } from './credentials.js';
import { connectionError, isConnectionError, parseDiagnostics, registryError } from './errors.js';
import { ShaleError, unavailable } from '../errors.js';
import { discard, errorText, formatLimit, readBody } from './util.js';

/** A request body that can be made again (for an auth retry or a reconnect). */
export type BodySource = () => Buffer | Readable;

export interface RequestOptions {
  headers?: Record<string, string>;
  body?: BodySource;
  /** token scopes this request needs, e.g. repository:bars/bb:pull */
  scopes?: string[];
  signal?: AbortSignal;
  /** connection retries for this request (default: the transport's) */
  retries?: number;
}

export interface RegistryResponse {
  status: number;
  statusText: string;
  url: string;
  /** host[:port] the response came from, for messages */
  host: string;
  headers: Record<string, string | string[] | undefined>;
  /** read it with util's readBody/errorText/discard (bounded), or stream it (blobs) */
  body: Readable;
  header(name: string): string | undefined;
  /** the request's signal: its abort destroys the body */
  signal?: AbortSignal;
  /** time allowed to read a whole non-blob body (util.readBody) */
  smallBodyTimeoutMs: number;
}

export interface TransportOptions {
  /** registries (host[:port]) to reach over plain http, besides loopback */
  insecureRegistries?: string[];
  /** use these instead of config.json (login) */
  credentials?: Credentials | null;
  /** connection retries (default 3) and the first backoff (default 200 ms, doubled each time) */
  retries?: number;
  retryDelayMs?: number;
  /** undici dispatcher (tests) */
  dispatcher?: Dispatcher;
  /** time to wait for response headers (default 60 s; 300 s after sending a request body, as the registry may verify it first) */
  headersTimeoutMs?: number;
  /** longest silence within a response body before the connection counts as broken (default 60 s) */
  idleTimeoutMs?: number;
  /** time allowed for a whole non-blob body: token, manifest, config, error, tag list (default 60 s) */
  smallBodyTimeoutMs?: number;
}

/** Token responses larger than this are refused (real ones are a few KiB). */
export const TOKEN_RESPONSE_LIMIT = 1 << 20;
/** Tokens longer than this are refused: no registry accepts a header that large. */
export const TOKEN_LIMIT = 64 << 10;
/** Tag lists larger than this are refused. */
export const TAG_LIST_LIMIT = 16 << 20;

/** Registries named insecure by the environment: SHALE_INSECURE_REGISTRIES="a:5000,b". */
export function envInsecureRegistries(): string[] {
  return (process.env.SHALE_INSECURE_REGISTRIES ?? '').split(/[\s,]+/).filter(Boolean);
}

/** host part of "host:port", "[::1]:5000" */
export function hostOf(domain: string): string {
  if (domain.startsWith('[')) return domain.slice(1, domain.indexOf(']'));
  const i = domain.lastIndexOf(':');
  return i > 0 && domain.indexOf(':') === i ? domain.slice(0, i) : domain;
}

/** localhost, 127.0.0.0/8 and ::1: the registries docker (and shale) reach over http by default. */
export function isLoopback(domain: string): boolean {
  const h = hostOf(domain).toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1';
  return false;
}

/** Base URL of a registry's API: http for loopback and insecure ones, https otherwise; Hub's API host. */
export function registryBase(domain: string, insecure: string[] = []): string {
  if (domain === DEFAULT_DOMAIN) return 'https://registry-1.docker.io';
  const plain = isLoopback(domain) || insecure.some((i) => i.replace(/^[a-z]+:\/\//i, '').replace(/\/+$/, '').toLowerCase() === domain.toLowerCase());
  return `${plain ? 'http' : 'https'}://${domain}`;
}

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parse a WWW-Authenticate header: `Bearer realm="...",service="...",scope="..."`. */
export function parseChallenge(h: string | undefined): Challenge | undefined {
  if (!h) return undefined;
  const m = /^\s*([A-Za-z]+)\s*(.*)$/s.exec(h);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /([A-Za-z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?/g;
  let p: RegExpExecArray | null;
  while ((p = re.exec(m[2]))) params[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3];
  return { scheme: m[1].toLowerCase(), params };
}

function basic(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}

function firstHeader(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;
const RETRY_STATUS = new Set([429, 502, 503, 504]);

export class Transport {
  readonly domain: string;
  readonly base: string;
  private readonly creds: Credentials | undefined;
  private readonly retries: number;
  private readonly retryDelayMs: number;
  private readonly dispatcher?: Dispatcher;
  private readonly headersTimeoutMs?: number;
  private readonly idleTimeoutMs: number;
  readonly smallBodyTimeoutMs: number;
  private challenge?: Challenge;
  private readonly tokens = new Map<string, { token: string; expires: number }>();

  constructor(domain: string, opts: TransportOptions = {}) {
    this.domain = domain;
    this.base = registryBase(domain, [...(opts.insecureRegistries ?? []), ...envInsecureRegistries()]);
    this.creds = opts.credentials === null ? undefined : opts.credentials ?? lookupCredentials(domain);
    this.retries = opts.retries ?? 3;
    this.retryDelayMs = opts.retryDelayMs ?? 200;
    this.dispatcher = opts.dispatcher;
    this.headersTimeoutMs = opts.headersTimeoutMs;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 60_000;
    this.smallBodyTimeoutMs = opts.smallBodyTimeoutMs ?? 60_000;
  }

  get hasCredentials(): boolean {
    return this.creds !== undefined;
  }

  url(path: string): string {
    return /^https?:\/\//.test(path) ? path : `${this.base}${path}`;
  }

  /** One HTTP exchange with connection retries; no auth, no redirects. */
  private async send(method: string, url: string, headers: Record<string, string>, opts: RequestOptions): Promise<RegistryResponse> {
    const retries = opts.retries ?? this.retries;
    for (let attempt = 0; ; attempt++) {
      opts.signal?.throwIfAborted();
      try {
        const body = opts.body?.();
        const res = await request(url, {
          method: method as Dispatcher.HttpMethod,
          headers: { 'user-agent': 'shale/0.1.0', ...headers },
          body,
          signal: opts.signal,
          dispatcher: this.dispatcher,
          headersTimeout: this.headersTimeoutMs ?? (body ? 300_000 : 60_000),
          bodyTimeout: this.idleTimeoutMs,
        });
        const r: RegistryResponse = {
          status: res.statusCode,
          statusText: res.statusText ?? '',
          url,
          host: new URL(url).host,
          headers: res.headers,
          body: res.body,
          header: (n) => firstHeader(res.headers[n.toLowerCase()]),
          signal: opts.signal,
          smallBodyTimeoutMs: this.smallBodyTimeoutMs,
        };
        if (RETRY_STATUS.has(r.status) && (method === 'GET' || method === 'HEAD') && attempt < retries) {
          await discard(r);
          await sleep(this.retryDelayMs * 2 ** attempt, undefined, { signal: opts.signal });
          continue;
        }
        return r;
      } catch (e) {
        if (opts.signal?.aborted) throw e;
        if (isConnectionError(e) && attempt < retries) {
          await sleep(this.retryDelayMs * 2 ** attempt, undefined, { signal: opts.signal });
          continue;
        }
        if (e instanceof ShaleError) throw e;
        throw connectionError(this.domain, url, e);
      }
    }
  }

  private async token(scopes: string[], force: boolean, signal: AbortSignal | undefined): Promise<string> {
    const key = [...new Set(scopes)].sort().join(' ');
    const cached = this.tokens.get(key);
    if (cached && !force && cached.expires > Date.now()) return cached.token;
    const p = this.challenge!.params;
    if (!p.realm) throw new ShaleError('Unavailable', `registry ${this.domain} asked for a bearer token but named no realm`);
    const u = URL.canParse(p.realm) ? new URL(p.realm) : undefined;
    if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:')) throw unavailable(`registry ${this.domain} named a token realm that is not an http(s) URL: ${JSON.stringify(p.realm.slice(0, 200))}`, 'check the registry\'s auth configuration');
    if (p.service) u.searchParams.set('service', p.service);
    for (const s of new Set(scopes)) u.searchParams.append('scope', s);
    if (this.creds) u.searchParams.set('account', this.creds.username);
    const res = await this.send('GET', u.toString(), this.creds ? { authorization: basic(this.creds) } : {}, { signal });
    const what = `getting a token from ${u.host} for ${this.domain}`;
    if (res.status === 401 || res.status === 403) {
      const text = await errorText(res);
      throw registryError(what, res.status, res.statusText, parseDiagnostics(text).length ? text : JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: this.creds ? 'incorrect username or password' : 'authentication required' }] }));
    }
    if (res.status !== 200) throw registryError(what, res.status, res.statusText, await errorText(res));
    const bad = (why: string) => unavailable(`token server ${u.host} ${why}`, 'the token server is misbehaving; check the registry\'s auth configuration');
    const bytes = await readBody(res, {
      limit: TOKEN_RESPONSE_LIMIT,
      what: `token response from ${u.host}`,
      tooLarge: () => unavailable(`token response from ${u.host} is larger than ${formatLimit(TOKEN_RESPONSE_LIMIT)}`, 'the token server is misbehaving; check the registry\'s auth configuration'),
    });
    let j: unknown;
    try {
      j = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw bad('answered with something that is not JSON');
    }
    if (!j || typeof j !== 'object') throw bad('answered with something that is not a JSON object');
    const { token: t1, access_token: t2, expires_in } = j as { token?: unknown; access_token?: unknown; expires_in?: unknown };
    const token = t1 ?? t2;
    if (token === undefined || token === null || token === '') throw bad('returned no token');
    if (typeof token !== 'string') throw bad('returned a token that is not a string');
    if (!/^[\x21-\x7e]+$/.test(token)) throw bad('returned a token with characters not allowed in an HTTP header');
    if (token.length > TOKEN_LIMIT) throw bad(`returned a token of ${token.length} bytes (the limit is ${formatLimit(TOKEN_LIMIT)})`);
    const ttl = Math.max(60, Number(expires_in) || 60) * 1000;
    this.tokens.set(key, { token, expires: Date.now() + ttl - 10_000 });
    return token;
  }

  private async authorization(scopes: string[], signal: AbortSignal | undefined): Promise<string | undefined> {
    if (!this.challenge) return undefined;
    if (this.challenge.scheme === 'bearer') return `Bearer ${await this.token(scopes, false, signal)}`;
    if (this.challenge.scheme === 'basic' && this.creds) return basic(this.creds);
    return undefined;
  }

  /**
   * A request with auth and redirects. Error statuses come back as responses (the caller knows
   * what a 404 means); only connection failures throw.
   */
  async request(method: string, path: string, opts: RequestOptions = {}): Promise<RegistryResponse> {
    let url = this.url(path);
    const shown = path.split('?')[0]; // upload locations carry state in the query
    let scopes = opts.scopes ?? [];
    let authTried = false;
    let withAuth = true;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const headers: Record<string, string> = { ...(opts.headers ?? {}) };
      if (withAuth) {
        const a = await this.authorization(scopes, opts.signal);
        if (a) headers.authorization = a;
      }
      const res = await this.send(method, url, headers, opts);
      if (res.status === 401 && withAuth && !authTried) {
        const ch = parseChallenge(res.header('www-authenticate'));
        authTried = true;
        if (ch && (ch.scheme === 'bearer' || (ch.scheme === 'basic' && this.creds))) {
          await discard(res);
          const first = !this.challenge || this.challenge.scheme !== ch.scheme || this.challenge.params.realm !== ch.params.realm;
          this.challenge = ch;
          if (ch.params.scope) scopes = [...new Set([...scopes, ...ch.params.scope.split(' ')])];
          if (ch.scheme === 'bearer') await this.token(scopes, !first, opts.signal);
          continue;
        }
        return res;
      }
      if (REDIRECTS.has(res.status) && res.header('location')) {
        await discard(res);
        let next: URL;
        try {
          next = new URL(res.header('location')!, url);
        } catch {
          throw unavailable(`registry ${this.domain} redirected ${shown} to an invalid URL`, 'the registry is misbehaving');
        }
        if (next.protocol !== 'http:' && next.protocol !== 'https:') throw unavailable(`registry ${this.domain} redirected ${shown} to a ${next.protocol} URL`, 'the registry is misbehaving; only http(s) redirects are followed');
        if (next.origin !== new URL(this.base).origin) withAuth = false;
        url = next.toString();
        if (res.status === 303) method = 'GET';
        continue;
      }
      return res;
    }
    throw unavailable(`registry ${this.domain}: too many redirects for ${shown} (more than ${MAX_REDIRECTS})`, 'the registry redirects in a loop; check its address and configuration');
  }

  /** GET /v2/: checks the registry answers and (with credentials) that they are accepted. */
  async ping(scopes: string[] = [], signal?: AbortSignal): Promise<void> {
    const res = await this.request('GET', '/v2/', { scopes, signal });
    if (res.status === 200) {
      await discard(res);
      return;
    }
    const text = await errorText(res);
    const refused = (res.status === 401 || res.status === 403) && this.creds;
    throw registryError(`logging in to ${this.domain}`, res.status, res.statusText, refused || !parseDiagnostics(text).length ? JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: this.creds ? 'incorrect username or password' : 'authentication required' }] }) : text);
  }
}
