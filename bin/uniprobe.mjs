#!/usr/bin/env node
// uniprobe's command line. It runs the compiled JavaScript in dist/ (scripts/build.mjs): the
// bundle dist/cli/main.mjs (a few files to load instead of ~150 modules), or dist/src/cli/main.js
// when the build had no bundler, so a start costs no TypeScript transpiling. In a checkout whose dist/ is missing or older than a
// source, it runs the sources through tsx (a devDependency) instead, so an edit is never run
// stale; without tsx either it says how to build.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { distState, ROOT } from '../scripts/dist-state.mjs';

// A reader that went away (`uniprobe --help | head`) ends our output quietly, as for any
// well-behaved Unix tool: no stack trace for EPIPE on stdout or stderr.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}

async function loadMain() {
  const state = distState();
  if (state === 'fresh') return existsSync(join(ROOT, 'dist', 'cli', 'main.mjs')) ? import('../dist/cli/main.mjs') : import('../dist/src/cli/main.js');
  const tsx = existsSync(join(ROOT, 'src', 'cli', 'main.ts')) ? await import('tsx/esm/api').catch(() => undefined) : undefined;
  if (!tsx) {
    const why = state === 'missing' ? 'is missing' : 'is older than the sources';
    process.stderr.write(`uniprobe: dist/ ${why}; run \`npm run build\` in ${ROOT}\n`);
    process.exit(1);
  }
  tsx.register();
  return import('../src/cli/main.ts');
}

const { main } = await loadMain();
process.exitCode = await main(process.argv.slice(2));
