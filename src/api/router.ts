// Routes of the Engine API: method + path pattern (docker's, with an optional /v1.NN prefix
// taken off first) to a handler. Names may hold slashes (image references), so a parameter
// is a regular expression group.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Engine } from '../engine/index.js';

export interface Ctx {
  engine: Engine;
  req: IncomingMessage;
  /** undefined when the request came as an Upgrade (attach, exec start): use socket */
  res?: ServerResponse;
  socket: Duplex;
  /** bytes the client sent after the upgrade request, already read */
  head: Buffer;
  upgraded: boolean;
  params: string[];
  query: URLSearchParams;
  /** the API version the client asked for (from the path prefix), or the server's */
  version: string;
  /** fires when the client goes away */
  signal: AbortSignal;
}

export type Handler = (ctx: Ctx) => Promise<void> | void;

interface Route { method: string; re: RegExp; handler: Handler }

export class Router {
  private routes: Route[] = [];

  add(method: string, pattern: string, handler: Handler): this {
    // {name} matches one segment, {name*} the rest up to the pattern's next literal part
    const src = pattern.replace(/\{[a-z]+\*\}/gi, '(.+)').replace(/\{[a-z]+\}/gi, '([^/]+)');
    this.routes.push({ method, re: new RegExp(`^${src}$`), handler });
    return this;
  }

  match(method: string, path: string): { handler: Handler; params: string[] } | { allowed: string[] } | undefined {
    const allowed: string[] = [];
    for (const r of this.routes) {
      const m = r.re.exec(path);
      if (!m) continue;
      if (r.method === method || (method === 'HEAD' && r.method === 'GET')) return { handler: r.handler, params: m.slice(1).map(decodeURIComponent) };
      allowed.push(r.method);
    }
    return allowed.length ? { allowed } : undefined;
  }
}
