// Docker image references: parse, normalise (docker.io, library/, :latest) and print them
// the short ("familiar") way docker does. Pure functions: no network.
import { invalidArgument } from '../errors.js';

export const DEFAULT_DOMAIN = 'docker.io';
export const LEGACY_DOMAIN = 'index.docker.io';
export const OFFICIAL_PREFIX = 'library/';

export interface Reference {
  domain: string; // docker.io, localhost:5000, 127.0.0.1:5000
  path: string; // library/busybox, bars/bb
  tag?: string;
  digest?: string;
}

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;
const DOMAIN = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?$|^\[[a-fA-F0-9:]+\](?::[0-9]+)?$/;

/** Parse and normalise a reference. Adds :latest when there is neither tag nor digest (unless noDefaultTag). */
export function parseReference(s: string, opts: { noDefaultTag?: boolean } = {}): Reference {
  const bad = (why: string) => invalidArgument(`invalid reference format "${s}": ${why}`, 'use NAME[:TAG][@DIGEST], e.g. localhost:5000/app:1');
  if (!s || s.length > 255 * 2) throw bad('empty or too long');
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad('malformed digest');
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad('malformed tag');
  }
  let domain = DEFAULT_DOMAIN;
  let path = rest;
  const slash = rest.indexOf('/');
  const first = slash >= 0 ? rest.slice(0, slash) : '';
  if (slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase())) {
    domain = first;
    path = rest.slice(slash + 1);
    if (!DOMAIN.test(domain)) throw bad('malformed registry host');
  }
  if (domain === LEGACY_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = OFFICIAL_PREFIX + path;
  if (path !== path.toLowerCase()) throw bad('repository name must be lowercase');
  for (const c of path.split('/')) if (!PATH_COMPONENT.test(c)) throw bad(`bad path component "${c}"`);
  if (!tag && !digest && !opts.noDefaultTag) tag = 'latest';
  return { domain, path, tag, digest };
}

/** docker.io/library/busybox */
export function repository(r: Reference): string {
  return `${r.domain}/${r.path}`;
}

/** Fully qualified: docker.io/library/busybox:latest, or name@sha256:... */
export function fullName(r: Reference): string {
  return repository(r) + (r.tag ? `:${r.tag}` : '') + (r.digest ? `@${r.digest}` : '');
}

/** The short form docker prints: busybox, bars/bb, localhost:5000/x */
export function familiarRepository(r: Reference): string {
  if (r.domain !== DEFAULT_DOMAIN) return repository(r);
  return r.path.startsWith(OFFICIAL_PREFIX) ? r.path.slice(OFFICIAL_PREFIX.length) : r.path;
}

export function familiarName(r: Reference): string {
  return familiarRepository(r) + (r.tag ? `:${r.tag}` : '') + (r.digest ? `@${r.digest}` : '');
}

/** Normalise any user-typed name to the key the image store uses: domain/path:tag */
export function normalizeTag(s: string): string {
  const r = parseReference(s);
  if (r.digest && !r.tag) throw invalidArgument(`"${s}" names a digest; a tag is needed here`);
  return `${repository(r)}:${r.tag}`;
}
