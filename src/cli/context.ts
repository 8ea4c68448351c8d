// What every command gets: the engine for the chosen root, and output helpers.
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
