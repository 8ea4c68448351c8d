// Output the way the docker CLI prints it: human sizes and durations, aligned tables, and a
// Go-template subset for --format ({{.Field}}, {{.A.B}}, {{json .}}, {{len .X}}, {{table ...}},
// {{upper}}/{{lower}}/{{join .X ","}}/{{index .X "k"}}, {{range .X}}...{{end}}, {{if}}...{{end}}).
import { invalidArgument } from '../errors.js';

/** docker's units.HumanSize: decimal units, 3 significant digits ("1.99MB", "0B"). */
export function humanSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${Number(v.toPrecision(3))}${units[i]}`;
}

/** docker's units.HumanDuration */
export function humanDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 1) return 'Less than a second';
  if (s === 1) return '1 second';
  if (s < 60) return `${s} seconds`;
  const m = Math.round(s / 60);
  if (m === 1) return 'About a minute';
  if (m < 60) return `${m} minutes`;
  const h = Math.round(s / 3600);
  if (h === 1) return 'About an hour';
  if (h < 48) return `${h} hours`;
  if (h < 24 * 7 * 2) return `${Math.round(h / 24)} days`;
  if (h < 24 * 30 * 2) return `${Math.round(h / 24 / 7)} weeks`;
  if (h < 24 * 365 * 2) return `${Math.round(h / 24 / 30)} months`;
  return `${Math.round(h / 24 / 365)} years`;
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

export function truncate(s: string, n: number): string {
  return [...s].length > n ? [...s].slice(0, n - 1).join('') + '…' : s;
}

/** Align rows like Go's tabwriter with padding 3 (docker's tables). */
export function table(rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, [...c].length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c + ' '.repeat(widths[i] - [...c].length + 3))).join('').trimEnd()).join('\n') + '\n';
}

// ---------------------------------------------------------------- Go templates (subset)

type Node =
  | { t: 'text'; v: string }
  | { t: 'expr'; v: string }
  | { t: 'range'; v: string; body: Node[] }
  | { t: 'if'; v: string; body: Node[]; else: Node[] };

function tokenize(src: string): Node[] {
  const re = /\{\{-?\s*(.*?)\s*-?\}\}/gs;
  const stack: { node: Node[]; kind?: Node }[] = [{ node: [] }];
  let last = 0;
  let m: RegExpExecArray | null;
  const cur = () => stack[stack.length - 1];
  while ((m = re.exec(src))) {
    if (m.index > last) cur().node.push({ t: 'text', v: src.slice(last, m.index) });
    last = re.lastIndex;
    const a = m[1];
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
  if (last < src.length) cur().node.push({ t: 'text', v: src.slice(last) });
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

function evalExpr(expr: string, dot: unknown): unknown {
  const parts = expr.split('|').map((p) => p.trim());
  let val: unknown;
  parts.forEach((p, i) => {
    const args = splitArgs(p);
    const arg = (a: string) => (a.startsWith('"') ? JSON.parse(a) : a.startsWith('.') ? lookup(dot, a) : /^-?\d+$/.test(a) ? Number(a) : a);
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
      case 'truncate': val = String(fnArgs[0]).slice(0, Number(fnArgs[1])); break;
      case 'pad': val = String(fnArgs[0]); break;
      default:
        if (args.length === 1) val = arg(args[0]);
        else throw invalidArgument(`template: function "${args[0]}" not defined`);
    }
  });
  return val;
}

function render(nodes: Node[], dot: unknown): string {
  let out = '';
  for (const n of nodes) {
    if (n.t === 'text') out += n.v;
    else if (n.t === 'expr') {
      const v = evalExpr(n.v, dot);
      out += typeof v === 'string' ? v : goPrint(v);
    } else if (n.t === 'range') {
      const v = evalExpr(n.v, dot);
      const items = Array.isArray(v) ? v : v && typeof v === 'object' ? Object.values(v) : [];
      for (const it of items) out += render(n.body, it);
    } else {
      const v = evalExpr(n.v, dot);
      const truthy = Array.isArray(v) ? v.length > 0 : v && typeof v === 'object' ? Object.keys(v).length > 0 : Boolean(v);
      out += render(truthy ? n.body : n.else, dot);
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
  return { isTable, header, row: (obj) => render(nodes, obj) };
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
