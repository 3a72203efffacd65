/**
 * Is dist/ current? The check bin/uniprobe.mjs makes at every start (and scripts/ensure-deps.mjs,
 * test/package before building), kept apart from the build so a start loads nothing more than
 * node:fs. Plain JavaScript, no dependency.
 *
 * A build (scripts/build.mjs) notes the time it started (the stamp's mtime) and, just after, every
 * file and folder it reads from (dist/inputs.txt: the sources, the tsconfigs, the bundler, the
 * folders of bundled packages). dist/ is stale when any of them is newer than the stamp or gone:
 * an edit changes the file's mtime, and a file added, deleted or renamed changes its folder's, so
 * statting the listed paths sees every change without walking the tree (a start's check: ~290
 * stats, no readdir).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
/** The build's stamp, under dist/: its mtime is when the build started (scripts/build.mjs). */
export const STAMP = join('src', 'cli', 'main.js');
/** Under dist/: the inputs of the build, one path (relative to the root) a line. */
export const MANIFEST = 'inputs.txt';
/** What a build reads: a change to any of them (or in them, for folders) makes dist/ stale. */
export const INPUTS = ['src', 'arch', 'tsconfig.json', 'tsconfig.build.json', 'scripts/build.mjs', 'scripts/bundle-cli.mjs'];

/** Every file and folder under INPUTS that exists, relative to root: the manifest's lines. */
export function listInputs(root = ROOT) {
  const found = [];
  const walk = (rel) => {
    found.push(rel);
    if (!statSync(join(root, rel)).isDirectory()) return;
    for (const e of readdirSync(join(root, rel))) walk(`${rel}/${e}`);
  };
  for (const p of INPUTS) if (existsSync(join(root, p))) walk(p);
  return found;
}

/**
 * 'missing', 'stale' (an input is newer than the build, or gone) or 'fresh'. An installed package
 * ships no src/: its dist/ is what was published, and fresh by definition. A dist/ without a
 * manifest (built by an older build script) is stale.
 */
export function distState(root = ROOT) {
  const entry = join(root, 'dist', STAMP);
  if (!existsSync(entry)) return 'missing';
  if (!existsSync(join(root, 'src'))) return 'fresh';
  const built = statSync(entry).mtimeMs;
  let inputs;
  try {
    inputs = readFileSync(join(root, 'dist', MANIFEST), 'utf8').split('\n');
  } catch {
    return 'stale';
  }
  const base = root.endsWith(sep) ? root : root + sep; // plain concatenation: join() costs more than a stat here
  for (const p of inputs) {
    if (p === '') continue;
    const st = statSync(base + p, { throwIfNoEntry: false });
    if (st === undefined || st.mtimeMs > built) return 'stale';
  }
  // An input folder created since (a new arch/<family>) shows as its parent's change; a new
  // top-level input (tsconfig.build.json once absent) is caught here.
  return INPUTS.some((p) => !inputs.includes(p) && existsSync(join(root, p))) ? 'stale' : 'fresh';
}
