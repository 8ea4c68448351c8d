// docker's json-file log driver: <root>/containers/<id>/<id>-json.log, one JSON object per
// line of output ({"log":"hi\n","stream":"stdout","time":"…"}), rotated by max-size into
// <file>.1 … <file>.<max-file - 1>. Reading gives the lines of all files, oldest first,
// with --tail and -f (follow until the container stops).
import { closeSync, existsSync, fstatSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync, readSync } from 'node:fs';
import { errno, invalidArgument } from '../errors.js';

export interface LogOptions {
  maxSize?: number; // bytes; undefined = unlimited
  maxFile: number;
}

export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)b?$/i.exec(s.trim());
  if (!m) throw invalidArgument(`invalid size: '${s}'`, 'use forms like 10k, 10m, 1g');
  const mult: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
  return Math.floor(Number(m[1]) * mult[m[2].toLowerCase()]);
}

export function logOptions(cfg: Record<string, string>): LogOptions {
  for (const k of Object.keys(cfg)) if (!['max-size', 'max-file', 'compress', 'labels', 'env', 'tag'].includes(k)) throw invalidArgument(`unknown log opt '${k}' for json-file log driver`);
  const maxSize = cfg['max-size'] !== undefined && cfg['max-size'] !== '-1' ? parseSize(cfg['max-size']) : undefined;
  const maxFile = cfg['max-file'] !== undefined ? Number(cfg['max-file']) : 1;
  if (!Number.isInteger(maxFile) || maxFile < 1) throw invalidArgument(`max-file must be a positive number, got ${cfg['max-file']}`);
  if (cfg['max-file'] !== undefined && maxSize === undefined && maxFile > 1) throw invalidArgument('max-file cannot be set without max-size');
  return { maxSize, maxFile };
}

/** RFC 3339 with nanoseconds, as docker writes log times. */
function nanoTime(): string {
  const d = new Date();
  const ns = String(d.getUTCMilliseconds() * 1e6 + Number(process.hrtime.bigint() % 1000000n)).padStart(9, '0');
  return d.toISOString().replace(/\.\d{3}Z$/, `.${ns}Z`);
}

export class JsonLogWriter {
  private fd: number;
  private size: number;
  /** lines that could not be written (a full disk) */
  dropped = 0;
  private partial: Record<'stdout' | 'stderr', string> = { stdout: '', stderr: '' };

  constructor(readonly path: string, readonly opts: LogOptions) {
    this.fd = openSync(path, 'a', 0o640);
    this.size = fstatSync(this.fd).size;
  }

  /** Raw output from a stream: complete lines are logged now, a trailing partial line waits. */
  write(stream: 'stdout' | 'stderr', chunk: Buffer | string): void {
    const text = this.partial[stream] + chunk.toString();
    const lines = text.split('\n');
    this.partial[stream] = lines.pop() ?? '';
    for (const l of lines) this.line(stream, l + '\n');
    // docker splits very long lines at 16 KiB
    while (this.partial[stream].length >= 16384) {
      this.line(stream, this.partial[stream].slice(0, 16384));
      this.partial[stream] = this.partial[stream].slice(16384);
    }
  }

  private line(stream: string, log: string): void {
    const buf = Buffer.from(JSON.stringify({ log, stream, time: nanoTime() }) + '\n');
    if (this.opts.maxSize !== undefined && this.size > 0 && this.size + buf.length > this.opts.maxSize) this.rotate();
    try {
      writeSync(this.fd, buf);
    } catch (e) {
      // a full disk drops log lines (docker's json-file does the same); the container goes on
      if (errno(e) === 'ENOSPC' || errno(e) === 'EDQUOT') { this.dropped++; return; }
      throw e;
    }
    this.size += buf.length;
  }

  private rotate(): void {
    closeSync(this.fd);
    if (this.opts.maxFile > 1) {
      rmSync(`${this.path}.${this.opts.maxFile - 1}`, { force: true });
      for (let i = this.opts.maxFile - 2; i >= 1; i--) if (existsSync(`${this.path}.${i}`)) renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`);
      renameSync(this.path, `${this.path}.1`);
      this.fd = openSync(this.path, 'a', 0o640);
    } else {
      this.fd = openSync(this.path, 'w', 0o640);
    }
    this.size = 0;
  }

  close(): void {
    for (const s of ['stdout', 'stderr'] as const) if (this.partial[s]) {
      this.line(s, this.partial[s]);
      this.partial[s] = '';
    }
    closeSync(this.fd);
  }
}

export interface LogEntry {
  log: string;
  stream: 'stdout' | 'stderr';
  time: string;
}

function parseLines(text: string): LogEntry[] {
  const out: LogEntry[] = [];
  for (const l of text.split('\n')) {
    if (!l) continue;
    try {
      out.push(JSON.parse(l) as LogEntry);
    } catch {
      // a line cut by a crash: skip it
    }
  }
  return out;
}

/** Every entry logged so far, oldest first, and where the current file ends. */
export function readLogs(path: string, maxFile = 20): { entries: LogEntry[]; offset: number; ino: number } {
  const entries: LogEntry[] = [];
  for (let i = maxFile; i >= 1; i--) {
    if (existsSync(`${path}.${i}`)) entries.push(...parseLines(readFileSync(`${path}.${i}`, 'utf8')));
  }
  if (!existsSync(path)) return { entries, offset: 0, ino: 0 };
  const buf = readFileSync(path);
  const end = buf.lastIndexOf(0x0a) + 1;
  entries.push(...parseLines(buf.subarray(0, end).toString('utf8')));
  return { entries, offset: end, ino: statSync(path).ino };
}

/** New complete entries since offset (restarting from 0 if the file was rotated). */
export function readLogsFrom(path: string, offset: number, ino: number): { entries: LogEntry[]; offset: number; ino: number } {
  let st;
  try {
    st = statSync(path);
  } catch {
    return { entries: [], offset, ino };
  }
  if (st.ino !== ino || st.size < offset) {
    offset = 0;
    ino = st.ino;
  }
  if (st.size === offset) return { entries: [], offset, ino };
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(st.size - offset);
    const n = readSync(fd, buf, 0, buf.length, offset);
    const end = buf.subarray(0, n).lastIndexOf(0x0a) + 1;
    return { entries: parseLines(buf.subarray(0, end).toString('utf8')), offset: offset + end, ino };
  } finally {
    closeSync(fd);
  }
}
