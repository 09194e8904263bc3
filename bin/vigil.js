#!/usr/bin/env node
// The `vigil` command runs the compiled code (npm install builds it; `npm run build` rebuilds).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('vigil: dist/ is missing: run `npm install` (or `npm run build`) first\n');
  process.exit(1);
}
await import(entry.href);
