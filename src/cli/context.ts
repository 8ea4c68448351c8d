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
