#!/usr/bin/env node
/**
 * The compiled package. tsc (tsconfig.build.json) emits src/ and arch/ as ESM JavaScript with
 * declarations and source maps into dist/, keeping their layout (dist/src, dist/arch) so their
 * relative imports resolve each other; the package's exports load them. Then esbuild bundles the
 * command line from that output into dist/cli (scripts/bundle-cli.mjs), which bin/uniprobe.mjs
 * loads: nothing transpiles TypeScript at run time, and a start reads a few files, not ~150.
 *
 * `node scripts/build.mjs` builds (npm run build; npm's `prepare`, so npm ci/install in a
 * checkout builds). distState() (scripts/dist-state.mjs) is the cheap check bin/uniprobe.mjs and
 * scripts/ensure-deps.mjs make first. Plain JavaScript: it runs before any dependency exists.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listInputs, MANIFEST, ROOT, STAMP } from './dist-state.mjs';

export { distState, ROOT } from './dist-state.mjs';
/**
 * Non-TypeScript sources the compiled code reads beside itself: the instruction counter's C
 * source, which the engine compiles on first use (src/emu/insn-counter.ts).
 */
const ASSETS = [join('src', 'emu', 'native')];

/**
 * Build dist/ from scratch (no output of a deleted source survives); returns tsc's exit status
 * (or the bundler's).
 * tsc writes into a sibling folder at dist/'s depth (source-map paths stay right) that replaces
 * dist/ by renames, so a CLI started meanwhile (a parallel test) never loads half a build: it
 * sees the old dist/, or none and falls back to tsx.
 */
export function buildDist(root = ROOT, stdio = 'inherit') {
  // An installed package has no sources to build from: its published dist/ must stay.
  if (!existsSync(join(root, 'src'))) return 0;
  // The kernel dates a write by a coarse clock, up to a tick behind the one Date reads: a source
  // saved just after this line could carry an earlier mtime. Dating the build a little earlier
  // calls such a file stale (the cost: at most one needless rebuild).
  const start = new Date(Date.now() - 100);
  // Listed after `start`: a file added after the listing changes a listed folder's mtime.
  const inputs = listInputs(root);
  const out = join(root, `.dist-new-${process.pid}`);
  const old = join(root, `.dist-old-${process.pid}`);
  rmSync(out, { recursive: true, force: true });
  // typescript's exports hide bin/tsc from require.resolve; in a checkout it is always here.
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', out], { cwd: root, stdio });
  if (r.status !== 0) {
    rmSync(out, { recursive: true, force: true });
    return r.status ?? 1;
  }
  for (const a of ASSETS) cpSync(join(root, a), join(out, a), { recursive: true });
  // The command line's one-file fast path (scripts/bundle-cli.mjs), bundled from tsc's output just
  // written. esbuild is a devDependency: without it dist/ is complete but for the fast path, and
  // bin/uniprobe.mjs runs dist/src/cli/main.js.
  if (existsSync(join(root, 'node_modules', 'esbuild', 'package.json'))) {
    const b = spawnSync(process.execPath, [join(root, 'scripts', 'bundle-cli.mjs'), out], { cwd: root, stdio });
    if (b.status !== 0) {
      rmSync(out, { recursive: true, force: true });
      return b.status ?? 1;
    }
    // The bundle holds commander's code: reinstalling it makes dist/ stale too.
    inputs.push(...JSON.parse(readFileSync(join(out, 'cli', 'modules.json'), 'utf8')).dependencyDirs);
  }
  writeFileSync(join(out, MANIFEST), inputs.join('\n') + '\n');
  // A source saved while tsc ran may not be in its output: date the stamp to the start, so the
  // next distState() calls it stale.
  utimesSync(join(out, STAMP), start, start);
  if (existsSync(join(root, 'dist'))) renameSync(join(root, 'dist'), old);
  try {
    renameSync(out, join(root, 'dist'));
  } catch {
    // A concurrent build put its dist/ in place first: it is as fresh as ours.
  }
  rmSync(out, { recursive: true, force: true });
  rmSync(old, { recursive: true, force: true });
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) process.exit(buildDist());
