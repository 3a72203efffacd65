/**
 * scripts/dist-state.mjs: when bin/uniprobe.mjs may run dist/ and when it must not (stale: it
 * runs the sources through tsx, or says to build). Checked on a scratch tree laid out like a
 * checkout, with the manifest the build writes (listInputs at the build's start), against what
 * the file system records for each kind of change: an edit in place, a file added, one deleted,
 * one renamed, a bundled package reinstalled.
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers.js';

interface DistStateModule {
  distState(root: string): 'missing' | 'stale' | 'fresh';
  listInputs(root: string): string[];
  MANIFEST: string;
  STAMP: string;
}

let ds: DistStateModule;
let root = '';
const roots: string[] = [];
/** When the scratch build "started": every file is dated before it, every change after. */
const BUILT = new Date('2026-01-01T00:00:00Z');
const BEFORE = new Date('2025-12-31T00:00:00Z');
const AFTER = new Date('2026-01-02T00:00:00Z');

function put(rel: string, text = ''): void {
  mkdirSync(join(root, rel, '..'), { recursive: true });
  writeFileSync(join(root, rel), text);
}

/** Date every path of the scratch tree before the build, as a finished build leaves it. */
function dateAll(paths: string[]): void {
  for (const p of paths) utimesSync(join(root, p), BEFORE, BEFORE);
}

/** A checkout with sources, a bundled package's folder, and a dist/ built from them. */
function scratchCheckout(): void {
  root = mkdtempSync(join(tmpdir(), 'uniprobe-dist-state-'));
  roots.push(root);
  put('package.json', '{}');
  put('tsconfig.json', '{}');
  put('src/cli/main.ts');
  put('src/kernel/machine.ts');
  put('arch/x86/x86_64.ts');
  put('node_modules/commander/lib/command.js');
  const inputs = [...ds.listInputs(root), 'node_modules/commander', 'node_modules/commander/lib'];
  put(join('dist', ds.STAMP));
  put(join('dist', ds.MANIFEST), inputs.join('\n') + '\n');
  dateAll([...inputs, 'node_modules/commander/lib/command.js']);
  utimesSync(join(root, 'dist', ds.STAMP), BUILT, BUILT);
}

beforeAll(async () => {
  ds = (await import(pathToFileURL(join(repoRoot, 'scripts', 'dist-state.mjs')).href)) as DistStateModule;
});

describe('distState', () => {
  beforeEach(() => {
    scratchCheckout();
    return () => {
      for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
    };
  });

  it('lists every source file and folder, and the build scripts that exist', () => {
    expect(ds.listInputs(root).sort()).toEqual(['arch', 'arch/x86', 'arch/x86/x86_64.ts', 'src', 'src/cli', 'src/cli/main.ts', 'src/kernel', 'src/kernel/machine.ts', 'tsconfig.json']);
  });

  it('is fresh when nothing changed since the build', () => {
    expect(ds.distState(root)).toBe('fresh');
  });

  it('is stale after a source is edited in place', () => {
    utimesSync(join(root, 'src/kernel/machine.ts'), AFTER, AFTER);
    expect(ds.distState(root)).toBe('stale');
  });

  it('is stale after a source is added, deleted or renamed (its folder changes)', () => {
    put('src/kernel/new.ts'); // dated now: after BUILT
    expect(ds.distState(root)).toBe('stale');

    scratchCheckout();
    rmSync(join(root, 'arch/x86/x86_64.ts'));
    expect(ds.distState(root)).toBe('stale');

    scratchCheckout();
    renameSync(join(root, 'src/cli/main.ts'), join(root, 'src/cli/main2.ts'));
    expect(ds.distState(root)).toBe('stale');
  });

  it('is stale when a listed input is gone, even if its folder looks untouched', () => {
    rmSync(join(root, 'arch/x86/x86_64.ts'));
    utimesSync(join(root, 'arch/x86'), BEFORE, BEFORE);
    expect(ds.distState(root)).toBe('stale');
  });

  it('is stale after a top-level input appears (tsconfig.build.json)', () => {
    put('tsconfig.build.json');
    utimesSync(join(root, 'tsconfig.build.json'), BEFORE, BEFORE);
    expect(ds.distState(root)).toBe('stale');
  });

  it('is stale after a bundled package is reinstalled (npm extracts files with old dates)', () => {
    rmSync(join(root, 'node_modules/commander/lib'), { recursive: true });
    put('node_modules/commander/lib/command.js');
    utimesSync(join(root, 'node_modules/commander/lib/command.js'), BEFORE, BEFORE);
    expect(ds.distState(root)).toBe('stale');
  });

  it('is stale without a manifest, missing without the stamp, fresh without sources (an installed package)', () => {
    rmSync(join(root, 'dist', ds.MANIFEST));
    expect(ds.distState(root)).toBe('stale');
    rmSync(join(root, 'src'), { recursive: true });
    expect(ds.distState(root)).toBe('fresh');
    rmSync(join(root, 'dist'), { recursive: true });
    expect(ds.distState(root)).toBe('missing');
  });
});
