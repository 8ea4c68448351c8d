// Dockerfile parser: turns Dockerfile text into a list of instructions with
// their flags, arguments and heredocs, following docker's (buildkit's) parser
// and instruction rules: parser directives, comments, line continuations,
// JSON (exec) form, ENV/LABEL/ARG word rules, heredocs, and the per-instruction
// argument and flag checks. Variable expansion is left to expand.ts.

import { invalidArgument, ShaleError } from '../../errors.js';
import { lexWords, removeQuotes } from './expand.js';

export interface Heredoc {
  name: string;
  /** the lines up to the terminator, each with its newline; leading tabs already removed when chomp */
  content: string;
  /** false when any part of the terminator word was quoted (`<<'EOF'`): no expansion of the content */
  expand: boolean;
  /** true for `<<-EOF` */
  chomp: boolean;
}

export interface Instruction {
  /** upper-case instruction name: FROM, RUN, ... */
  cmd: string;
  /** the instruction's text with continuations joined and comments dropped */
  original: string;
  /** 1-based line where the instruction starts */
  line: number;
  /** last line, heredoc bodies included */
  endLine: number;
  /** --name=value flags, name without the dashes; boolean flags hold "true"/"false" */
  flags: Record<string, string[]>;
  /** arguments; quotes are kept except for ENV, LABEL and ARG (see rawArgs) */
  args: string[];
  /** exec (JSON array) form */
  json: boolean;
  heredocs: Heredoc[];
  /** ENV, LABEL, ARG: the words before quote removal, same shape as args; expand these, not args */
  rawArgs?: string[];
}

export interface Dockerfile {
  file: string;
  /** parser directives found at the top: syntax, escape, check */
  directives: Record<string, string>;
  /** the escape character: `\` or a backtick */
  escape: string;
  instructions: Instruction[];
  /** things docker warns about but accepts, e.g. empty continuation lines */
  warnings: { line: number; message: string }[];
}

export const INSTRUCTIONS: ReadonlySet<string> = new Set([
  'ADD', 'ARG', 'CMD', 'COPY', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'FROM', 'HEALTHCHECK', 'LABEL',
  'MAINTAINER', 'ONBUILD', 'RUN', 'SHELL', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR',
]);

type FlagKind = 'string' | 'bool' | 'strings';
const FLAGS: Record<string, Record<string, FlagKind>> = {
  ADD: { chown: 'string', chmod: 'string', link: 'bool', 'keep-git-dir': 'bool', checksum: 'string', unpack: 'bool', exclude: 'strings' },
  COPY: { chown: 'string', chmod: 'string', from: 'string', link: 'bool', parents: 'bool', exclude: 'strings' },
  FROM: { platform: 'string' },
  RUN: { mount: 'strings', network: 'string', security: 'string', device: 'strings' },
  HEALTHCHECK: { interval: 'string', timeout: 'string', 'start-period': 'string', 'start-interval': 'string', retries: 'string' },
};

const DIRECTIVE_NAMES = new Set(['syntax', 'escape', 'check']);
const HEREDOC_RE = /^(\d*)<<(-?)\s*([^<]*)$/;
const STAGE_NAME_RE = /^[a-z][a-z0-9_.-]*$/;

/** An error tied to a line; turned into `FILE:LINE: message` by the parser. */
class LineError extends Error {
  constructor(readonly line: number, message: string) {
    super(message);
  }
}

const trimNewline = (s: string) => s.replace(/[\r\n]+$/, '');
const isComment = (s: string) => s.trimStart().startsWith('#');
const escapeRe = (c: string) => c.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');

export function parseDockerfile(text: string, file = 'Dockerfile'): Dockerfile {
  try {
    return new Parser(text, file).parse();
  } catch (e) {
    if (e instanceof LineError) throw invalidArgument(`${file}:${e.line}: ${e.message}`);
    throw e;
  }
}

class Parser {
  private readonly lines: string[];
  private pos = 0; // index of the next unread line; also the number of lines read
  private escape = '\\';
  private continuation = /([^\\])\\[ \t]*$|^\\[ \t]*$/;
  private readonly directives: Record<string, string> = {};
  private directivesDone = false;

  constructor(text: string, private readonly file: string) {
    if (text.startsWith('\uFEFF')) text = text.slice(1);
    this.lines = text.split('\n');
    if (this.lines[this.lines.length - 1] === '') this.lines.pop();
  }

  parse(): Dockerfile {
    const instructions: Instruction[] = [];
    const warnings: Dockerfile['warnings'] = [];
    let seenFrom = false;
    while (this.pos < this.lines.length) {
      let first = trimNewline(this.lines[this.pos]).trimStart();
      this.directive(first, this.pos + 1);
      this.pos++;
      const line = this.pos;
      if (isComment(first)) first = '';
      let [text, done] = this.trimContinuation(first);
      if (done && text === '') continue;
      let emptyContinuation = false;
      while (!done && this.pos < this.lines.length) {
        const next = trimNewline(this.lines[this.pos++]);
        if (isComment(next)) continue;
        if (next.trim() === '') {
          emptyContinuation = true;
          continue;
        }
        const [part, end] = this.trimContinuation(next);
        text += part;
        done = end;
      }
      if (text.trim() === '') continue; // only escapes and comments
      if (emptyContinuation) warnings.push({ line, message: `Empty continuation line found in: ${text}` });

      const { ins, heredocOk } = this.instruction(text, line);
      if (heredocOk && text.includes('<<')) ins.heredocs = this.heredocs(text, line);
      ins.endLine = this.pos;

      if (!seenFrom && ins.cmd !== 'ARG' && ins.cmd !== 'FROM') {
        throw new LineError(line, `no build stage in current context: ${ins.cmd} must come after FROM (only ARG may precede the first FROM)`);
      }
      if (ins.cmd === 'FROM') seenFrom = true;
      instructions.push(ins);
    }
    if (instructions.length === 0) throw new LineError(Math.max(this.lines.length, 1), 'file with no instructions');
    return { file: this.file, directives: this.directives, escape: this.escape, instructions, warnings };
  }

  /** Parser directives: `# name=value` lines before anything else, each name at most once. */
  private directive(line: string, lineNo: number): void {
    if (this.directivesDone) return;
    const m = line.startsWith('#') ? /^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/.exec(line.slice(1).trimStart()) : null;
    const name = m?.[1].toLowerCase();
    if (!m || !name || !DIRECTIVE_NAMES.has(name)) {
      this.directivesDone = true;
      return;
    }
    if (name in this.directives) throw new LineError(lineNo, `only one ${name} parser directive can be used`);
    const value = m[2];
    if (name === 'escape') {
      if (value !== '`' && value !== '\\') throw new LineError(lineNo, `invalid escape token '${value}' does not match \` or \\`);
      this.escape = value;
      const e = escapeRe(value);
      this.continuation = new RegExp(`([^${e}])${e}[ \\t]*$|^${e}[ \\t]*$`);
    }
    this.directives[name] = value;
  }

  /** Removes a trailing escape (plus blanks); returns [text, whether the instruction ends here]. */
  private trimContinuation(line: string): [string, boolean] {
    if (!this.continuation.test(line)) return [line, true];
    return [line.replace(this.continuation, '$1'), false];
  }

  /** Reads the bodies of the heredocs named on an instruction's line. */
  private heredocs(text: string, line: number): Heredoc[] {
    const docs = heredocsFromLine(text, line);
    for (const doc of docs) {
      let terminated = false;
      const body: string[] = [];
      while (this.pos < this.lines.length) {
        const raw = this.lines[this.pos++];
        let candidate = trimNewline(raw);
        if (doc.chomp) candidate = candidate.replace(/^\t+/, '');
        if (candidate === doc.name) {
          terminated = true;
          break;
        }
        body.push((doc.chomp ? raw.replace(/^\t+/, '') : raw) + '\n');
      }
      if (!terminated) throw new LineError(line, `unterminated heredoc ${doc.name}`);
      doc.content = body.join('');
    }
    return docs;
  }

  /** Parses one joined instruction line; heredocOk tells whether `<<WORD` may start heredocs. */
  private instruction(text: string, line: number): { ins: Instruction; heredocOk: boolean } {
    const { cmd: word, flagWords, rest } = splitCommand(text, this.escape);
    const cmd = word.toUpperCase();
    if (!INSTRUCTIONS.has(cmd)) throw new LineError(line, `unknown instruction: ${word}`);
    const fail = (msg: string): never => {
      throw new LineError(line, msg);
    };
    let heredocOk = cmd === 'RUN' || cmd === 'COPY' || cmd === 'ADD';
    const ins: Instruction = {
      cmd, original: text, line, endLine: line, flags: {}, args: [], json: false, heredocs: [],
    };
    // HEALTHCHECK NONE takes no flags at all; docker does not even look at them
    const skipFlags = cmd === 'HEALTHCHECK' && rest.split(/\s/)[0].toUpperCase() === 'NONE';
    if (!skipFlags) ins.flags = parseFlags(cmd, flagWords, fail);

    const maybeJSON = (s: string) => {
      const arr = parseJSONArray(s, fail);
      if (arr) {
        ins.json = true;
        return arr;
      }
      return s === '' ? [] : [s];
    };
    const split = (s: string) => (s === '' ? [] : s.split(/[\t\v\f\r ]+/));
    const atLeastOne = () => ins.args.length === 0 && fail(`${cmd} requires at least one argument`);
    const exactlyOne = () => ins.args.length !== 1 && fail(`${cmd} requires exactly one argument`);

    switch (cmd) {
      case 'RUN':
        ins.args = maybeJSON(rest);
        atLeastOne();
        break;
      case 'CMD':
      case 'ENTRYPOINT':
        ins.args = maybeJSON(rest);
        break;
      case 'SHELL':
        ins.args = maybeJSON(rest);
        atLeastOne();
        if (!ins.json) fail('SHELL requires the arguments to be in JSON form');
        break;
      case 'COPY':
      case 'ADD': {
        const arr = parseJSONArray(rest, fail);
        ins.json = arr !== null;
        ins.args = arr ?? split(rest);
        if (ins.args.length < 2) fail(`${cmd} requires at least two arguments, but only one was provided. Destination could not be determined`);
        if (isHeredocWord(ins.args[ins.args.length - 1])) fail(`${cmd} cannot accept a heredoc as a destination`);
        break;
      }
      case 'VOLUME': {
        const arr = parseJSONArray(rest, fail);
        ins.json = arr !== null;
        ins.args = arr ?? split(rest);
        atLeastOne();
        if (ins.args.some((v) => v.trim() === '')) fail('VOLUME specified can not be an empty string');
        break;
      }
      case 'EXPOSE':
        ins.args = split(rest);
        atLeastOne();
        break;
      case 'FROM':
        ins.args = split(rest);
        atLeastOne();
        if (ins.args.length === 3 && ins.args[1].toUpperCase() === 'AS') {
          if (!STAGE_NAME_RE.test(ins.args[2].toLowerCase())) {
            fail(`invalid name for build stage: "${ins.args[2]}", name can't start with a number or contain symbols`);
          }
        } else if (ins.args.length !== 1) fail('FROM requires either one or three arguments (FROM image [AS name])');
        break;
      case 'MAINTAINER':
      case 'STOPSIGNAL':
      case 'USER':
      case 'WORKDIR':
        ins.args = rest === '' ? [] : [rest];
        exactlyOne();
        break;
      case 'ENV':
      case 'LABEL':
        ins.rawArgs = nameValues(cmd, rest, this.escape, fail);
        ins.args = ins.rawArgs.map((w) => unquote(w, this.escape, fail));
        break;
      case 'ARG':
        ins.rawArgs = words(rest, this.escape);
        ins.args = ins.rawArgs.map((w) => unquote(w, this.escape, fail));
        atLeastOne();
        if (ins.rawArgs.some((w) => w.startsWith('='))) fail('ARG names can not be blank');
        break;
      case 'HEALTHCHECK': {
        const m = /^(\S+)\s*([\s\S]*)$/.exec(rest);
        if (!m) return fail('HEALTHCHECK requires at least one argument');
        const type = m[1].toUpperCase();
        if (type === 'NONE') {
          if (m[2] !== '') fail('HEALTHCHECK NONE takes no arguments');
          ins.args = ['NONE'];
        } else if (type === 'CMD') {
          ins.args = ['CMD', ...maybeJSON(m[2])];
          if (ins.args.length === 1) fail('Missing command after HEALTHCHECK CMD');
          checkHealthFlags(ins.flags, fail);
        } else fail(`Unknown type "${m[1]}" in HEALTHCHECK (try CMD)`);
        break;
      }
      case 'ONBUILD': {
        if (rest === '') fail('ONBUILD requires at least one argument');
        const trigger = rest.split(/\s/)[0].toUpperCase();
        if (trigger === 'ONBUILD') fail('Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
        if (trigger === 'FROM' || trigger === 'MAINTAINER') fail(`${trigger} isn't allowed as an ONBUILD trigger`);
        heredocOk = this.instruction(rest, line).heredocOk; // validates the trigger too
        ins.args = [rest];
        break;
      }
    }
    return { ins, heredocOk: heredocOk && !ins.json };
  }
}

/** Splits `CMD --flag=x ... rest` into the instruction word, its leading --flags (quotes removed) and the rest. */
function splitCommand(text: string, escape: string): { cmd: string; flagWords: string[]; rest: string } {
  const trimmed = text.trim();
  const m = /^([^\t\v\f\r ]+)[\t\v\f\r ]*([\s\S]*)$/.exec(trimmed) as RegExpExecArray;
  const rest = m[2];
  const flagWords: string[] = [];
  const chars = Array.from(rest);
  let i = 0;
  for (;;) {
    while (i < chars.length && /\s/.test(chars[i])) i++;
    if (i >= chars.length) return { cmd: m[1], flagWords, rest: '' };
    if (chars[i] !== '-' || chars[i + 1] !== '-') return { cmd: m[1], flagWords, rest: chars.slice(i).join('').trim() };
    let word = '';
    let quote = '';
    for (; i < chars.length; i++) {
      const ch = chars[i];
      if (!quote && /\s/.test(ch)) break;
      if (!quote && (ch === '"' || ch === "'")) quote = ch;
      else if (quote && ch === quote) quote = '';
      else if (ch === escape) {
        if (i + 1 < chars.length) word += chars[++i];
      } else word += ch;
    }
    if (word === '--') return { cmd: m[1], flagWords, rest: chars.slice(i).join('').trim() };
    flagWords.push(word);
  }
}

/** Checks flags against what the instruction accepts, as docker's BFlags does. */
function parseFlags(cmd: string, flagWords: string[], fail: (msg: string) => never): Record<string, string[]> {
  const spec = FLAGS[cmd] ?? {};
  const flags: Record<string, string[]> = {};
  for (const word of flagWords) {
    const eq = word.indexOf('=');
    const flagName = eq < 0 ? word : word.slice(0, eq);
    const name = flagName.slice(2);
    const value = eq < 0 ? undefined : word.slice(eq + 1);
    const kind = Object.prototype.hasOwnProperty.call(spec, name) ? spec[name] : undefined;
    if (!kind) fail(`unknown flag: ${flagName}`);
    if (name in flags && kind !== 'strings') fail(`duplicate flag specified: ${flagName}`);
    if (kind === 'bool') {
      if (value === '') fail(`missing a value on flag: ${flagName}`);
      const v = (value ?? 'true').toLowerCase();
      if (v !== 'true' && v !== 'false') fail(`expecting boolean value for flag ${flagName}, not: ${value}`);
      flags[name] = [v];
    } else {
      if (value === undefined) fail(`missing a value on flag: ${flagName}`);
      (flags[name] ??= []).push(value as string);
    }
  }
  return flags;
}

const DURATION_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1e3, m: 6e4, h: 3.6e6 };

/** Go duration syntax (5s, 1m30s, 1.5h) in milliseconds, or undefined if malformed. */
function parseDuration(s: string): number | undefined {
  const m = /^([-+]?)(.*)$/.exec(s) as RegExpExecArray;
  if (m[2] === '0') return 0;
  const parts = m[2].match(/(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g);
  if (!parts || parts.join('') !== m[2]) return undefined;
  const ms = parts.reduce((sum, p) => {
    const [, num, unit] = /^([\d.]+)(.*)$/.exec(p) as RegExpExecArray;
    return sum + Number(num) * DURATION_UNITS[unit];
  }, 0);
  return m[1] === '-' ? -ms : ms;
}

function checkHealthFlags(flags: Record<string, string[]>, fail: (msg: string) => never): void {
  for (const name of ['interval', 'timeout', 'start-period', 'start-interval']) {
    const v = flags[name]?.[0];
    if (v === undefined || v === '') continue;
    const ms = parseDuration(v);
    if (ms === undefined) fail(`invalid duration "${v}" for --${name}`);
    if (ms !== 0 && (ms as number) < 1) fail(`Interval "${name}" cannot be less than 1ms`);
  }
  const retries = flags.retries?.[0];
  if (retries !== undefined && retries !== '') {
    if (!/^[-+]?\d+$/.test(retries) || Math.abs(Number(retries)) > 2 ** 31 - 1) fail(`invalid value "${retries}" for --retries: must be an integer`);
    if (Number(retries) < 0) fail(`--retries cannot be negative (${Number(retries)})`);
  }
}

/** The exec form: a JSON array of strings, or null when `s` is not JSON (then docker uses the shell/word form). */
function parseJSONArray(s: string, fail: (msg: string) => never): string[] | null {
  if (!s.startsWith('[')) return null;
  let value: unknown;
  try {
    value = JSON.parse(s);
  } catch {
    return null;
  }
  if (!Array.isArray(value)) return null;
  if (!value.every((v) => typeof v === 'string')) fail('when using JSON array syntax, arrays must be comprised of strings only');
  return value as string[];
}

/** Splits on blanks, keeping quoted blanks, quotes and escapes in the words (docker's parseWords). */
function words(s: string, escape: string): string[] {
  const out: string[] = [];
  const chars = Array.from(s);
  let word = '';
  let quote = '';
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i];
    if (!quote && /\s/.test(ch)) {
      if (word !== '') out.push(word);
      word = '';
      continue;
    }
    if (ch === escape && quote !== "'") {
      if (i + 1 === chars.length) break; // a trailing escape is dropped
      word += ch + chars[++i];
      continue;
    }
    if (!quote && (ch === '"' || ch === "'")) quote = ch;
    else if (ch === quote) quote = '';
    word += ch;
  }
  if (word !== '') out.push(word);
  return out;
}

/** ENV/LABEL: `k=v k2="v 2"` pairs, or the legacy `KEY value with blanks`; returns [k1, v1, k2, v2, ...]. */
function nameValues(cmd: string, rest: string, escape: string, fail: (msg: string) => never): string[] {
  const ws = words(rest, escape);
  if (ws.length === 0) fail(`${cmd} requires at least one argument`);
  let pairs: string[];
  if (!ws[0].includes('=')) {
    const m = /^([^\t\v\f\r ]+)[\t\v\f\r ]+([\s\S]+)$/.exec(rest);
    if (!m) return fail(`${cmd} must have two arguments`);
    pairs = [m[1], m[2]];
  } else {
    pairs = ws.flatMap((w) => {
      const eq = w.indexOf('=');
      if (eq < 0) fail(`Syntax error - can't find = in "${w}". Must be of the form: name=value`);
      return [w.slice(0, eq), w.slice(eq + 1)];
    });
  }
  for (let i = 0; i < pairs.length; i += 2) if (pairs[i] === '') fail(`${cmd} names can not be blank`);
  return pairs;
}

function unquote(word: string, escape: string, fail: (msg: string) => never): string {
  try {
    return removeQuotes(word, escape);
  } catch (e) {
    if (e instanceof ShaleError) fail(e.message);
    throw e;
  }
}

/** Parses a `<<EOF` style word; null if the word is not a heredoc. */
function heredocWord(word: string, line: number): Heredoc | null {
  const m = HEREDOC_RE.exec(word);
  if (!m || m[3] === '') return null;
  let plain: string[];
  let raw: string[];
  try {
    plain = lexWords(m[3], { env: null });
    raw = lexWords(m[3], { env: null, rawQuotes: true });
  } catch (e) {
    if (e instanceof ShaleError) throw new LineError(line, e.message);
    throw e;
  }
  if (plain.length !== 1 || raw.length !== 1) return null;
  // any quoting in the terminator word turns expansion off
  const quotes = (s: string) => (s.match(/["']/g) ?? []).length;
  return { name: plain[0], content: '', expand: quotes(plain[0]) === quotes(raw[0]), chomp: m[2] === '-' };
}

function isHeredocWord(word: string): boolean {
  try {
    return heredocWord(word, 0) !== null;
  } catch {
    return false;
  }
}

function heredocsFromLine(text: string, line: number): Heredoc[] {
  let ws: string[];
  try {
    ws = lexWords(text, { env: null, rawQuotes: true, rawEscapes: true });
  } catch {
    return []; // docker ignores lines it cannot split
  }
  return ws.map((w) => heredocWord(w, line)).filter((h): h is Heredoc => h !== null);
}
