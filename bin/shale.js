#!/usr/bin/env node
// shale CLI entry point: runs the compiled TypeScript (npm run build) from dist/.
import { main } from '../dist/cli/main.js';
await main(process.argv.slice(2));
