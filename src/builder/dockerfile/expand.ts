// Word processing for Dockerfile arguments: the subset of POSIX shell word
// rules that docker (buildkit's shell lexer) applies to the instructions it
// expands itself — quote removal, escapes, $VAR / ${VAR} and the
// ${VAR:-x} ${VAR-x} ${VAR:+x} ${VAR+x} ${VAR:?x} ${VAR?x} ${VAR#p} ${VAR%p}
// ${VAR/p/r} forms. RUN, CMD and ENTRYPOINT are left to the shell.

import { invalidArgument } from '../../errors.js';

export type Env = Record<string, string | undefined>;

/** Instructions whose arguments the builder expands (FROM only with the ARGs declared before the first FROM). */
export const EXPANDING_INSTRUCTIONS: ReadonlySet<string> = new Set([
  'ADD', 'ARG', 'COPY', 'ENV', 'EXPOSE', 'FROM', 'LABEL', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR',
]);

export interface LexOptions {
  /** variables to substitute; null leaves `$` untouched (quote removal only) */
  env: Env | null;
  escape?: string;
  /** keep quote characters in the output (docker's RawQuotes) */
  rawQuotes?: boolean;
  /** keep escape characters in the output (docker's RawEscapes) */
  rawEscapes?: boolean;
}

class LexError extends Error {}

const isSpace = (ch: string) => /\s/.test(ch);
const SPECIAL_PARAMS = '@*#?-$!0';

/** Splits into words the way the shell does after expansion: unquoted blanks separate words. */
class Words {
  private buf = '';
  private inWord = false;
  readonly words: string[] = [];
  addChar(ch: string): void {
    if (!isSpace(ch)) this.addRaw(ch);
    else if (this.inWord && this.buf !== '') {
      this.words.push(this.buf);
      this.buf = '';
      this.inWord = false;
    }
  }
  addString(s: string): void {
    for (const ch of s) this.addChar(ch);
  }
  addRaw(s: string): void {
    this.buf += s;
    this.inWord = true;
  }
  finish(): string[] {
    if (this.buf !== '') this.words.push(this.buf);
    this.buf = '';
    return this.words;
  }
}

class Lexer {
  private readonly chars: string[];
  private pos = 0;
  private readonly escape: string;

  constructor(src: string, private readonly opts: LexOptions) {
    this.chars = Array.from(src);
    this.escape = opts.escape ?? '\\';
  }

  private peek(): string | undefined {
    return this.chars[this.pos];
  }
  private next(): string | undefined {
    return this.chars[this.pos++];
  }

  /** Processes up to `stop` (consumed) or the end; returns the joined text and the split words. */
  run(stop?: string, rawEscapes = this.opts.rawEscapes ?? false): { text: string; words: string[] } {
    let text = '';
    const words = new Words();
    for (let ch = this.peek(); ch !== undefined; ch = this.peek()) {
      if (stop !== undefined && ch === stop) {
        this.next();
        return { text, words: words.finish() };
      }
      if (ch === '$' && this.opts.env) {
        const v = this.dollar();
        text += v;
        words.addString(v);
        continue;
      }
      if (ch === "'" || ch === '"') {
        const v = ch === "'" ? this.singleQuote() : this.doubleQuote();
        text += v;
        words.addRaw(v);
        continue;
      }
      if (ch === '<' && this.chars[this.pos + 1] === '<') {
        // a heredoc marker keeps the blanks after it: `<< EOF` is one word
        this.pos += 2;
        let v = '<<';
        while (this.peek() === ' ' || this.peek() === '\t' || this.peek() === '\r') v += this.next();
        text += v;
        words.addRaw(v);
        continue;
      }
      this.next();
      if (ch === this.escape) {
        if (rawEscapes) {
          text += ch;
          words.addRaw(ch);
        }
        const escaped = this.next();
        if (escaped === undefined) break; // a trailing escape is dropped
        text += escaped;
        words.addRaw(escaped);
        continue;
      }
      text += ch;
      words.addChar(ch);
    }
    if (stop !== undefined) throw new LexError(`unexpected end of statement while looking for matching ${stop}`);
    return { text, words: words.finish() };
  }

  private singleQuote(): string {
    // everything up to the next ' is literal; ' cannot be escaped
    const open = this.next() as string;
    let out = this.opts.rawQuotes ? open : '';
    for (;;) {
      const ch = this.next();
      if (ch === undefined) throw new LexError('unexpected end of statement while looking for matching single-quote');
      if (ch === "'") return this.opts.rawQuotes ? out + ch : out;
      out += ch;
    }
  }

  private doubleQuote(): string {
    // literal except $ and the escape, which only escapes " $ and itself
    const open = this.next() as string;
    let out = this.opts.rawQuotes ? open : '';
    for (;;) {
      const ch = this.peek();
      if (ch === undefined) throw new LexError('unexpected end of statement while looking for matching double-quote');
      if (ch === '"') {
        this.next();
        return this.opts.rawQuotes ? out + ch : out;
      }
      if (ch === '$' && this.opts.env) {
        out += this.dollar();
        continue;
      }
      let c = this.next() as string;
      if (c === this.escape) {
        if (this.opts.rawEscapes) out += c;
        const p = this.peek();
        if (p === undefined) continue; // reported as an unterminated quote
        if (p === '"' || p === '$' || p === this.escape) c = this.next() as string;
      }
      out += c;
    }
  }

  private lookup(name: string): string | undefined {
    const env = this.opts.env as Env;
    return Object.prototype.hasOwnProperty.call(env, name) ? env[name] : undefined;
  }

  private name(): string {
    let name = '';
    for (let ch = this.peek(); ch !== undefined; ch = this.peek()) {
      if (name === '' && /^\d$/.test(ch)) {
        while (this.peek() !== undefined && /^\d$/.test(this.peek() as string)) name += this.next();
        return name;
      }
      if (name === '' && SPECIAL_PARAMS.includes(ch)) return this.next() as string;
      if (!/^[\p{L}\p{Nd}_]$/u.test(ch)) break;
      name += this.next();
    }
    return name;
  }

  /** the text up to the closing `}` of a ${...} form */
  private wordUntilBrace(rawEscapes: boolean): string {
    try {
      return this.run('}', rawEscapes).text;
    } catch (e) {
      if (e instanceof LexError && this.peek() === undefined) throw new LexError("syntax error: missing '}'");
      throw e;
    }
  }

  private dollar(): string {
    this.next(); // $
    if (this.peek() !== '{') {
      const name = this.name();
      return name === '' ? '$' : (this.lookup(name) ?? '');
    }
    this.next(); // {
    const first = this.peek();
    if (first === undefined) throw new LexError("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') throw new LexError('syntax error: bad substitution');
    const name = this.name();
    let op = this.next();
    if (op === undefined) throw new LexError("syntax error: missing '}'");
    if (op === '}') return this.lookup(name) ?? '';

    const value = this.lookup(name);
    const set = value !== undefined;
    let modifier = op;
    let nullIsUnset = false;
    if (op === ':') {
      nullIsUnset = true;
      op = this.next() ?? '';
      modifier += op;
    }
    const unsupported = () => new LexError(`unsupported modifier (${modifier}) in substitution`);

    if (op === '/' && !nullIsUnset) {
      const all = this.peek() === '/';
      if (all) this.next();
      let pattern: string;
      try {
        pattern = this.run('/', true).text;
      } catch (e) {
        if (e instanceof LexError && this.peek() === undefined) throw new LexError("syntax error: missing '/' in ${}");
        throw e;
      }
      const replacement = this.wordUntilBrace(true);
      const re = patternToRegex(pattern, true, false, all);
      return (value ?? '').replace(re, () => replacement);
    }
    if (!'+-?#%'.includes(op) || op === '') {
      this.wordUntilBrace(false);
      throw unsupported();
    }
    const trims = op === '#' || op === '%';
    if (nullIsUnset && trims) throw unsupported();
    let word = this.wordUntilBrace(trims);
    const empty = !set || (nullIsUnset && value === '');
    switch (op) {
      case '-':
        return empty ? word : (value as string);
      case '+':
        return empty ? '' : word;
      case '?':
        if (!set) throw new LexError(`${name}: ${word || 'is not allowed to be unset'}`);
        if (nullIsUnset && value === '') throw new LexError(`${name}: ${word || 'is not allowed to be empty'}`);
        return value as string;
      default: {
        // # and % remove the shortest matching prefix/suffix, ## and %% the longest
        const greedy = word.startsWith(op);
        if (greedy) word = word.slice(1);
        if (op === '#') return trimPrefix(word, value ?? '', greedy);
        const rev = (s: string) => Array.from(s).reverse().join('');
        return rev(trimPrefix(reversePattern(word), rev(value ?? ''), greedy));
      }
    }
  }
}

/** Converts a shell pattern (`*`, `?`, `\` escapes) to a regular expression. */
function patternToRegex(pattern: string, greedy: boolean, anchored: boolean, global = false): RegExp {
  const chars = Array.from(pattern);
  let out = anchored ? '^' : '';
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i];
    if (ch === '*') out += greedy ? '.*' : '.*?';
    else if (ch === '?') out += '.';
    else if (ch === '\\') {
      const n = chars[i + 1];
      if (n === '}' || n === '/') continue; // escaped only for the ${} syntax
      if (n !== '*' && n !== '?' && n !== '\\') throw new LexError(`invalid pattern (${pattern}) in substitution: invalid escape '\\${n ?? ''}'`);
      out += '\\' + n;
      i++;
    } else out += ch.replace(/[[\]{}.+()|^$]/, '\\$&');
  }
  return new RegExp(out, global ? 'g' : '');
}

function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const m = patternToRegex(pattern, greedy, true).exec(value);
  return m ? value.slice(m[0].length) : value;
}

/** reverses a pattern keeping `\x` escapes in front of the character they escape */
function reversePattern(pattern: string): string {
  const tokens: string[] = [];
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i++) {
    if (chars[i] === '\\' && i + 1 < chars.length) tokens.push(chars[i] + chars[++i]);
    else tokens.push(chars[i]);
  }
  return tokens.reverse().join('');
}

function lex(word: string, opts: LexOptions): { text: string; words: string[] } {
  try {
    return new Lexer(word, opts).run();
  } catch (e) {
    if (e instanceof LexError) throw invalidArgument(`failed to process ${JSON.stringify(word)}: ${e.message}`);
    throw e;
  }
}

/** Expands one word as docker does for ENV, COPY, WORKDIR, ...: substitution plus quote removal, blanks kept. */
export function expandWord(word: string, env: Env, escape = '\\'): string {
  return lex(word, { env, escape }).text;
}

/** Expands and splits into words on unquoted blanks (docker's ProcessWords, used for EXPOSE). */
export function expandWords(word: string, env: Env, escape = '\\'): string[] {
  return lex(word, { env, escape }).words;
}

/** Quote and escape removal without substitution (`$` is left as written). */
export function removeQuotes(word: string, escape = '\\'): string {
  return lex(word, { env: null, escape }).text;
}

/** Low-level lexer access, used by the parser to find heredoc words. */
export function lexWords(src: string, opts: LexOptions): string[] {
  return lex(src, opts).words;
}
