#!/usr/bin/env node
// The CLI is compiled by `npm install` (the `prepare` script runs `tsc`) into dist/.
import { existsSync } from 'node:fs';
const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  console.error('protofed: dist/ is missing. Run `npm install` (or `npm run build`) in the protofed folder first.');
  process.exit(1);
}
await import(entry.href);
