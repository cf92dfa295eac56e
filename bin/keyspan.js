#!/usr/bin/env node
// The `keyspan` command. The TypeScript sources compile to dist/ (`npm run build`).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  console.error('keyspan: dist/ is missing; run `npm run build` (or `npm start`) first');
  process.exit(1);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
