// Registry errors: the distribution spec's error JSON ({"errors":[{code,message,detail}]}) and the
// connection failures of the transport, turned into ShaleErrors with a message that names the
// registry and says what to do. Callers branch on ShaleError.code, never on message text.
import { ShaleError, errno, type ErrorCode } from '../errors.js';

/** One entry of the distribution spec's error body. */
export interface Diagnostic {
  code: string;
  message?: string;
  detail?: unknown;
}

/** Parse an error body; an empty list when it is not the spec's JSON (HEAD responses have no body). */
export function parseDiagnostics(body: string): Diagnostic[] {
  try {
    const j = JSON.parse(body) as { errors?: Diagnostic[] };
    return Array.isArray(j.errors) ? j.errors.filter((d) => d && typeof d.code === 'string') : [];
  } catch {
    return [];
  }
}

/** "manifest unknown: manifest unknown" style text, as docker prints a registry's errors. */
export function describeDiagnostics(ds: Diagnostic[]): string {
  return oneLine(ds.map((d) => `${d.code.toLowerCase().replace(/_/g, ' ')}${typeof d.message === 'string' && d.message ? `: ${d.message}` : ''}`).join('; '), 300);
}

/** Text a registry sent, fit for a one-line message: control characters and runs of space as one space, at most `max` characters. */
export function oneLine(s: string, max = 500): string {
  const t = s.replace(/[\s\x00-\x1f\x7f-\x9f]+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max)}…` : t;
}

/** A registry answered with an error status. Keeps the status and the diagnostics for callers. */
export class RegistryError extends ShaleError {
  readonly status: number;
  readonly diagnostics: Diagnostic[];
  constructor(code: ErrorCode, message: string, status: number, diagnostics: Diagnostic[], hint?: string) {
    super(code, message, hint);
    this.status = status;
    this.diagnostics = diagnostics;
  }
  has(code: string): boolean {
    return this.diagnostics.some((d) => d.code === code);
  }
}

function codeForStatus(status: number): ErrorCode {
  if (status === 401 || status === 403) return 'PermissionDenied';
  if (status === 404) return 'NotFound';
  if (status === 400 || status === 405 || status === 413 || status === 416) return 'InvalidArgument';
  if (status === 429 || status >= 500) return 'Unavailable';
  return 'Internal';
}

/** Build the error for an unexpected response. `what` is the context, e.g. "pulling blob sha256:…". */
export function registryError(what: string, status: number, statusText: string, body: string): RegistryError {
  const ds = parseDiagnostics(body);
  const detail = ds.length ? describeDiagnostics(ds) : oneLine(`${status} ${statusText}`, 200);
  let hint: string | undefined;
  if (status === 401 || status === 403) hint = 'log in with `shale login REGISTRY`, or check the repository name';
  else if (status === 429) hint = 'the registry is rate limiting; wait and try again';
  else if (status >= 500) hint = 'the registry failed; try again later';
  return new RegistryError(codeForStatus(status), `${what}: ${detail}`, status, ds, hint);
}

const RETRYABLE = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNABORTED',
  'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
]);

/** The registry could not be reached or the connection broke: Unavailable, and worth another try. */
export class ConnectionError extends ShaleError {}

/** A failure of the connection (not an answer from the registry): worth trying again. */
export function isConnectionError(e: unknown): boolean {
  if (e instanceof ConnectionError) return true;
  if (e instanceof ShaleError) return false;
  const c = errno(e);
  if (c && RETRYABLE.has(c)) return true;
  const cause = (e as { cause?: unknown })?.cause;
  if (cause && cause !== e && isConnectionError(cause)) return true;
  const m = (e as Error)?.message ?? '';
  return /other side closed|socket hang up|terminated|premature close|aborted/i.test(m) && (e as Error)?.name !== 'AbortError';
}

/** A connection failure as the user should read it. */
export function connectionError(registry: string, url: string, e: unknown): ShaleError {
  const c = errno(e) ?? errno((e as { cause?: unknown })?.cause);
  const m = (e as Error)?.message ?? String(e);
  const hint = c === 'ECONNREFUSED'
    ? `is the registry at ${registry} running? check the host and port`
    : c === 'ENOTFOUND' || c === 'EAI_AGAIN'
      ? `the registry host ${registry} does not resolve; check the name`
      : 'check the registry and the network, then try again';
  return new ConnectionError('Unavailable', `cannot reach registry ${registry} (${redact(url)}): ${m}`, hint, { cause: e });
}

/** Drop credentials and query strings (upload tokens) from a URL before printing it. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    u.search = '';
    return u.toString();
  } catch {
    return url;
  }
}
