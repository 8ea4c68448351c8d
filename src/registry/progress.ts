// Progress output like docker's jsonmessage display. On a terminal each layer keeps one line
// that is rewritten in place (status, a 50-column bar, bytes); elsewhere each change of state
// is printed once as a plain line ("<id>: Download complete") and byte counts are left out.
import { humanSize } from '../units/index.js';

export interface Progress {
  /** A line not tied to a layer ("Digest: ..."). */
  line(text: string): void;
  /** A layer's state; `bytes` makes it a progress update (drawn only on a terminal). */
  update(id: string, status: string, bytes?: { current: number; total: number }): void;
}

/** Output that goes nowhere (-q, or callers that print their own). */
export const silent: Progress = { line() {}, update() {} };

export interface Writable {
  write(s: string): unknown;
  isTTY?: boolean;
}

/** docker's progress bar: "[=====>      ]  1.2MB/3.4MB" */
export function bar(current: number, total: number): string {
  if (total <= 0) return `${humanSize(current)}`.padStart(8);
  const pct = Math.min(1, current / total);
  const n = Math.floor(pct * 50);
  const box = `[${'='.repeat(n)}>${' '.repeat(50 - n)}]`;
  return `${box} ${humanSize(current).padStart(8)}/${humanSize(total)}`;
}

class TerminalProgress implements Progress {
  private lines = 0;
  private readonly row = new Map<string, number>();
  private readonly last = new Map<string, number>();
  constructor(private readonly out: Writable) {}

  line(text: string): void {
    this.out.write(`${text}\n`);
    this.lines++;
  }

  update(id: string, status: string, bytes?: { current: number; total: number }): void {
    if (bytes) {
      // at most 10 redraws a second per layer; the first and the last are always drawn
      const now = Date.now();
      const prev = this.last.get(id);
      if (prev !== undefined && bytes.current < bytes.total && now - prev < 100) return;
      this.last.set(id, now);
    } else this.last.delete(id);
    const text = `${id}: ${status}${bytes ? ` ${bar(bytes.current, bytes.total)}` : ''}`;
    const r = this.row.get(id);
    if (r === undefined) {
      this.row.set(id, this.lines);
      this.line(text);
      return;
    }
    const up = this.lines - r;
    this.out.write(`\x1b[${up}A\r\x1b[2K${text}\x1b[${up}B\r`);
  }
}

class PlainProgress implements Progress {
  private readonly state = new Map<string, string>();
  constructor(private readonly out: Writable) {}
  line(text: string): void {
    this.out.write(`${text}\n`);
  }
  update(id: string, status: string, bytes?: { current: number; total: number }): void {
    if (bytes) return;
    if (this.state.get(id) === status) return;
    this.state.set(id, status);
    this.out.write(`${id}: ${status}\n`);
  }
}

/** The progress display for a stream: a redrawn one on a terminal, plain lines otherwise. */
export function progressFor(out: Writable, opts: { quiet?: boolean; tty?: boolean } = {}): Progress {
  if (opts.quiet) return silent;
  return (opts.tty ?? out.isTTY) ? new TerminalProgress(out) : new PlainProgress(out);
}
