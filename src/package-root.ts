/**
 * The package's root folder (package.json, fixtures/, scripts/). Found by walking up rather than
 * by a fixed number of `..`: this file runs as src/package-root.ts under tsx and vitest, and as
 * dist/src/package-root.js once built, one level deeper.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`uniprobe: no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
  return dir;
}

export const PACKAGE_ROOT = findRoot();
