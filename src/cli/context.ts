// What every command gets: the engine for the chosen root, and output helpers.
import { ShaleError } from '../errors.js';
import { Engine } from '../engine/index.js';

export interface GlobalOptions {
  root?: string;
  storageDriver?: string;
  runtime?: string;
  debug?: boolean;
}

let engine: Engine | undefined;
let globals: GlobalOptions = {};

export function setGlobals(g: GlobalOptions): void {
  globals = g;
}

export function getEngine(): Engine {
  engine ??= Engine.open({ root: globals.root, storageDriver: globals.storageDriver, runtime: globals.runtime });
  return engine;
}

export function closeEngine(): void {
  engine?.close();
  engine = undefined;
}

export function out(s: string): void {
  process.stdout.write(s);
}

export function err(s: string): void {
  process.stderr.write(s);
}

/** commander helper for repeatable flags (-e A -e B). */
export const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/** All of standard input, as text. */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export function exitWith(code: number): void {
  process.exitCode = code;
}

/** Run fn for each reference, printing docker's "Error response from daemon" line per failure; exit 1 if any failed. */
export async function forEach(refs: string[], fn: (ref: string) => Promise<void>): Promise<void> {
  let failed = 0;
  for (const r of refs) {
    try {
      await fn(r);
    } catch (e) {
      failed++;
      err(`Error response from daemon: ${e instanceof ShaleError ? e.describe() : (e as Error).message}\n`);
    }
  }
  if (failed) exitWith(1);
}
