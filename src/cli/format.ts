// Output the way the docker CLI prints it: human sizes and durations, aligned tables, and a
// Go-template subset for --format ({{.Field}}, {{.A.B}}, {{json .}}, {{len .X}}, {{table ...}},
// {{upper}}/{{lower}}/{{join .X ","}}/{{index .X "k"}}, {{range .X}}...{{end}}, {{if}}...{{end}}).
import { invalidArgument } from '../errors.js';
import { goFormatG, humanSize } from '../units/index.js';

export { goFormatG, humanSize };

/** docker's units.HumanDuration (seconds and minutes truncate; hours round, then divide as integers). */
export function humanDuration(ms: number): string {
  const s = Math.trunc(ms / 1000);
  if (s < 1) return 'Less than a second';
  if (s === 1) return '1 second';
  if (s < 60) return `${s} seconds`;
  const m = Math.trunc(ms / 60_000);
  if (m === 1) return 'About a minute';
  if (m < 60) return `${m} minutes`;
  const h = Math.round(ms / 3600_000);
  if (h === 1) return 'About an hour';
  if (h < 48) return `${h} hours`;
  if (h < 24 * 7 * 2) return `${Math.trunc(h / 24)} days`;
  if (h < 24 * 30 * 2) return `${Math.trunc(h / 24 / 7)} weeks`;
  if (h < 24 * 365 * 2) return `${Math.trunc(h / 24 / 30)} months`;
  return `${Math.trunc(Math.trunc(ms / 3600_000) / 24 / 365)} years`;
}

export function since(iso: string | undefined): string {
  if (!iso) return 'N/A';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return 'N/A';
  return `${humanDuration(Date.now() - t)} ago`;
}

/** Go's "2006-01-02 15:04:05 -0700 MST" as docker prints CreatedAt. */
export function goTime(iso: string | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000 UTC`;
}

/** Go's time.RFC3339 in UTC ("2024-01-01T00:00:00Z"), as `history -H=false` prints dates. */
export function rfc3339(iso: string | undefined): string {
  if (!iso) return '';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '';
  return new Date(Math.floor(t / 1000) * 1000).toISOString().replace(/\.000Z$/, 'Z');
}

export function truncate(s: string, n: number): string {
  return [...s].length > n ? [...s].slice(0, n - 1).join('') + '…' : s;
}

/**
 * Align rows like docker's tables: Go's tabwriter with minwidth 10, padding 3, padded with
 * spaces. Every cell but a row's last is padded to its column's width (so a row whose last
 * cell is empty ends in spaces, as docker's does); the last cell is printed as it is.
 */
export function table(rows: string[][]): string {
  if (rows.length === 0) return '';
  const MINWIDTH = 10;
  const PADDING = 3;
  const len = (c: string) => [...c].length;
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => {
    if (i < r.length - 1) widths[i] = Math.max(widths[i] ?? MINWIDTH, len(c) + PADDING);
  });
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c + ' '.repeat(widths[i] - len(c)))).join('')).join('\n') + '\n';
}

// ---------------------------------------------------------------- Go templates (subset)

type Node =
  | { t: 'text'; v: string }
  | { t: 'expr'; v: string }
  | { t: 'range'; v: string; body: Node[] }
  | { t: 'if'; v: string; body: Node[]; else: Node[] };

function tokenize(src: string): Node[] {
  // "{{- " trims the whitespace before the action, " -}}" the whitespace after it (as Go does)
  const re = /\{\{(-\s)?\s*(.*?)\s*(\s-)?\}\}/gs;
  const stack: { node: Node[]; kind?: Node }[] = [{ node: [] }];
  let last = 0;
  let trimNext = false;
  let m: RegExpExecArray | null;
  const cur = () => stack[stack.length - 1];
  const text = (v: string, trimEnd: boolean) => {
    let t = trimNext ? v.trimStart() : v;
    if (trimEnd) t = t.trimEnd();
    if (t) cur().node.push({ t: 'text', v: t });
  };
  while ((m = re.exec(src))) {
    text(src.slice(last, m.index), Boolean(m[1]));
    trimNext = Boolean(m[3]);
    last = re.lastIndex;
    const a = m[2];
    if (a.startsWith('range ')) {
      const n: Node = { t: 'range', v: a.slice(6), body: [] };
      cur().node.push(n);
      stack.push({ node: n.body, kind: n });
    } else if (a.startsWith('if ')) {
      const n: Node = { t: 'if', v: a.slice(3), body: [], else: [] };
      cur().node.push(n);
      stack.push({ node: n.body, kind: n });
    } else if (a === 'else') {
      const top = stack.pop()!;
      if (!top.kind || top.kind.t !== 'if') throw invalidArgument('template: unexpected {{else}}');
      stack.push({ node: top.kind.else, kind: top.kind });
    } else if (a === 'end') {
      if (stack.length < 2) throw invalidArgument('template: unexpected {{end}}');
      stack.pop();
    } else cur().node.push({ t: 'expr', v: a });
  }
  text(src.slice(last), false);
  if (stack.length !== 1) throw invalidArgument('template: missing {{end}}');
  return stack[0].node;
}

function splitArgs(s: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  let m;
  while ((m = re.exec(s))) out.push(m[1] !== undefined ? JSON.stringify(JSON.parse(`"${m[1]}"`)) : m[2]);
  return out;
}

/** Go's fmt.Sprintf for the verbs templates use: %s %v %d %q %%, with - and a width. */
export function goSprintf(fmt: string, args: unknown[]): string {
  let i = 0;
  return fmt.replace(/%(-?)(\d*)([svdq%])/g, (_, left: string, width: string, verb: string) => {
    if (verb === '%') return '%';
    if (i >= args.length) return `%!${verb}(MISSING)`;
    const a = args[i++];
    let v = verb === 'q' ? JSON.stringify(String(a)) : verb === 'd' && typeof a !== 'number' ? `%!d(string=${String(a)})` : typeof a === 'string' ? a : goPrint(a);
    const w = Number(width || 0);
    if ([...v].length < w) v = left ? v + ' '.repeat(w - [...v].length) : ' '.repeat(w - [...v].length) + v;
    return v;
  });
}

function lookup(dot: unknown, path: string): unknown {
  if (path === '.') return dot;
  let v: unknown = dot;
  for (const k of path.split('.').filter(Boolean)) {
    if (v === null || v === undefined) return undefined;
    const obj = v as Record<string, unknown>;
    const val = obj[k];
    v = typeof val === 'function' ? (val as () => unknown).call(obj) : val;
  }
  return v;
}

/** How Go's text/template prints a value. */
export function goPrint(v: unknown): string {
  if (v === undefined || v === null) return '<no value>';
  if (Array.isArray(v)) return `[${v.map(goPrint).join(' ')}]`;
  if (typeof v === 'object') return `map[${Object.keys(v as object).sort().map((k) => `${k}:${goPrint((v as Record<string, unknown>)[k])}`).join(' ')}]`;
  return String(v);
}

type Vars = Record<string, unknown>;

/** Split a pipeline on the | that are not inside a quoted string. */
function splitPipeline(expr: string): string[] {
  return (expr.match(/(?:"(?:[^"\\]|\\.)*"|[^|"])+/g) ?? ['']).map((p) => p.trim());
}

function evalExpr(expr: string, dot: unknown, vars: Vars = {}): unknown {
  const parts = splitPipeline(expr);
  let val: unknown;
  parts.forEach((p, i) => {
    const args = splitArgs(p);
    const variable = (a: string) => {
      const m = /^\$(\w*)(.*)$/.exec(a)!;
      if (!(m[1] in vars)) throw invalidArgument(`template: undefined variable "$${m[1]}"`);
      return m[2] ? lookup(vars[m[1]], m[2]) : vars[m[1]];
    };
    const arg = (a: string) => (a.startsWith('"') ? JSON.parse(a) : a.startsWith('.') ? lookup(dot, a) : a.startsWith('$') ? variable(a) : /^-?\d+$/.test(a) ? Number(a) : a);
    const fnArgs = args.slice(1).map(arg);
    if (i > 0) fnArgs.push(val);
    switch (args[0]) {
      case 'json': val = JSON.stringify(fnArgs[0] ?? null); break;
      case 'len': { const x = fnArgs[0]; val = Array.isArray(x) || typeof x === 'string' ? x.length : x && typeof x === 'object' ? Object.keys(x).length : 0; break; }
      case 'upper': val = String(fnArgs[0]).toUpperCase(); break;
      case 'lower': val = String(fnArgs[0]).toLowerCase(); break;
      case 'title': val = String(fnArgs[0]).replace(/\b\w/g, (c) => c.toUpperCase()); break;
      case 'join': val = (fnArgs[0] as unknown[] ?? []).join(String(fnArgs[1])); break;
      case 'index': val = (fnArgs[0] as Record<string, unknown> | undefined)?.[String(fnArgs[1])]; break;
      case 'println': val = fnArgs.map(goPrint).join(' ') + '\n'; break;
      case 'print': val = fnArgs.map(goPrint).join(''); break;
      case 'printf': val = goSprintf(String(fnArgs[0]), fnArgs.slice(1)); break;
      case 'truncate': val = String(fnArgs[0]).slice(0, Number(fnArgs[1])); break;
      case 'pad': val = String(fnArgs[0]); break;
      default:
        if (args.length === 1) val = arg(args[0]);
        else throw invalidArgument(`template: function "${args[0]}" not defined`);
    }
  });
  return val;
}

function render(nodes: Node[], dot: unknown, vars: Vars): string {
  let out = '';
  for (const n of nodes) {
    if (n.t === 'text') out += n.v;
    else if (n.t === 'expr') {
      const v = evalExpr(n.v, dot, vars);
      out += typeof v === 'string' ? v : goPrint(v);
    } else if (n.t === 'range') {
      // {{range .X}}, {{range $v := .X}}, {{range $k, $v := .X}}; maps in sorted key order, as Go does
      const decl = /^\$(\w+)\s*(?:,\s*\$(\w+)\s*)?:=\s*(.*)$/.exec(n.v);
      const v = evalExpr(decl ? decl[3] : n.v, dot, vars);
      const entries: [unknown, unknown][] = Array.isArray(v) ? v.map((x, i) => [i, x]) : v && typeof v === 'object' ? Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]) : [];
      for (const [k, it] of entries) {
        const inner = { ...vars };
        if (decl && decl[2]) {
          inner[decl[1]] = k;
          inner[decl[2]] = it;
        } else if (decl) inner[decl[1]] = it;
        out += render(n.body, it, inner);
      }
    } else {
      const v = evalExpr(n.v, dot, vars);
      const truthy = Array.isArray(v) ? v.length > 0 : v && typeof v === 'object' ? Object.keys(v).length > 0 : Boolean(v);
      out += render(truthy ? n.body : n.else, dot, vars);
    }
  }
  return out;
}

export interface Formatter {
  isTable: boolean;
  header?: string[];
  row(obj: unknown): string;
}

/** Compile a --format value. "table X" prints a header made of the field names docker would use. */
export function compileFormat(fmt: string, headers: Record<string, string> = {}): Formatter {
  let f = fmt;
  let isTable = false;
  if (f === 'json') f = '{{json .}}';
  if (f.startsWith('table')) {
    isTable = true;
    f = f.slice(5).trimStart();
  }
  f = f.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  const nodes = tokenize(f);
  let header: string[] | undefined;
  if (isTable) {
    header = f.split('\t').map((col) => col.replace(/\{\{\s*\.(\w+)\s*\}\}/g, (_, k: string) => headers[k] ?? k.toUpperCase()));
  }
  return { isTable, header, row: (obj) => render(nodes, obj, { '': obj }) };
}

/** Print objects with a --format, as a table when asked. */
export function printFormatted(objs: unknown[], fmt: string, headers: Record<string, string> = {}): string {
  const c = compileFormat(fmt, headers);
  if (c.isTable) {
    const rows = objs.map((o) => c.row(o).split('\t'));
    return table([c.header!, ...rows]);
  }
  return objs.map((o) => c.row(o) + '\n').join('');
}

/** docker's --since/--until: unix seconds, an RFC 3339 time, or a duration back from now (10m, 1h30m). */
export function timeArg(v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v);
  const d = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$/.exec(v);
  if (d && v) return Date.now() / 1000 - (Number(d[1] ?? 0) * 3600 + Number(d[2] ?? 0) * 60 + Number(d[3] ?? 0));
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw invalidArgument(`invalid time value ${v}`, 'use seconds since the epoch, an RFC 3339 time, or a duration like 10m');
  return t / 1000;
}
