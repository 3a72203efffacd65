#!/usr/bin/env node
/**
 * The compiled package. tsc (tsconfig.build.json) emits src/ and arch/ as ESM JavaScript with
 * declarations and source maps into dist/, keeping their layout (dist/src, dist/arch) so their
 * relative imports resolve each other. bin/uniprobe.mjs and the package's exports load dist/:
 * nothing transpiles TypeScript at run time.
 *
 * `node scripts/build.mjs` builds (npm run build; npm's `prepare`, so npm ci/install in a
 * checkout builds). distState() is the cheap check bin/uniprobe.mjs and scripts/ensure-deps.mjs
 * make first. Plain JavaScript: the bin imports it, so it runs without any dependency.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, renameSync, rmSync, statSync, utimesSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
/** The build's stamp, under dist/: its mtime is when the build started (see buildDist). */
const STAMP = join('src', 'cli', 'main.js');
const INPUTS = ['src', 'arch', 'tsconfig.json', 'tsconfig.build.json'];
/**
 * Non-TypeScript sources the compiled code reads beside itself: the instruction counter's C
 * source, which the engine compiles on first use (src/emu/insn-counter.ts).
 */
const ASSETS = [join('src', 'emu', 'native')];

function newestMtime(path) {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs; // a deleted source shows as its directory's change
  for (const e of readdirSync(path, { withFileTypes: true })) newest = Math.max(newest, newestMtime(join(path, e.name)));
  return newest;
}

/**
 * 'missing', 'stale' (a source is newer than the build) or 'fresh'. An installed package ships no
 * src/: its dist/ is what was published, and fresh by definition.
 */
export function distState(root = ROOT) {
  const entry = join(root, 'dist', STAMP);
  if (!existsSync(entry)) return 'missing';
  if (!existsSync(join(root, 'src'))) return 'fresh';
  const built = statSync(entry).mtimeMs;
  return INPUTS.some((p) => existsSync(join(root, p)) && newestMtime(join(root, p)) > built) ? 'stale' : 'fresh';
}

/**
 * Build dist/ from scratch (no output of a deleted source survives); returns tsc's exit status.
 * tsc writes into a sibling folder at dist/'s depth (source-map paths stay right) that replaces
 * dist/ by renames, so a CLI started meanwhile (a parallel test) never loads half a build: it
 * sees the old dist/, or none and falls back to tsx.
 */
export function buildDist(root = ROOT, stdio = 'inherit') {
  // An installed package has no sources to build from: its published dist/ must stay.
  if (!existsSync(join(root, 'src'))) return 0;
  const start = new Date();
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
