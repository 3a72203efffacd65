/**
 * Shared test helpers: the fixture manifest recorded from qemu-user, and a way to run one
 * fixture on a fresh machine collecting its output.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Machine, type MachineOptions, type RunResult } from '../src/kernel/machine.js';
import { supportedTargets } from '../arch/index.js';
import type { Target } from '../arch/types.js';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface ManifestEntry {
  target: Target;
  name: string;
  path: string;
  args: string[];
  stdout: string;
  exit: number;
}

export const manifest: ManifestEntry[] = JSON.parse(readFileSync(join(repoRoot, 'fixtures', 'manifest.json'), 'utf8'));

export function fixturePath(target: string, name: string): string {
  return join(repoRoot, 'fixtures', target, name);
}

export const supported = new Set<Target>(supportedTargets());

export interface RunOutput extends RunResult {
  stdout: string;
  stderr: string;
  reports: string[];
}

/** Run a program to completion on a new machine and collect everything it printed. */
export function runProgram(target: Target, path: string, args: string[] = [], opts: Partial<MachineOptions> = {}): RunOutput {
  const out: Buffer[] = [];
  const errs: Buffer[] = [];
  const reports: string[] = [];
  const m = new Machine({
    target,
    stdout: (b) => out.push(Buffer.from(b)),
    stderr: (b) => errs.push(Buffer.from(b)),
    report: (l) => reports.push(l),
    ...opts,
  });
  try {
    m.spawn(path, [path, ...args]);
    const r = m.run();
    return { ...r, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(errs).toString('utf8'), reports };
  } finally {
    m.close();
  }
}

/**
 * Tests that need an outside reference tool (gdb-multiarch, qemu-user, chromium) run when it is
 * installed; `npm test` installs them (scripts/ensure-deps.mjs --test-tools). Without it they are
 * skipped on a developer's machine, but under CI a missing tool fails the run instead of hiding
 * the comparison: this returns true ("skip") only outside CI, and throws under CI.
 */
export function skipWithout(tool: string, present: boolean): boolean {
  if (present) return false;
  if (process.env.CI) throw new Error(`${tool} is not installed, and CI must run the tests that need it (npm test installs it as root: apt-get install ${tool})`);
  return true;
}

/**
 * `npm run test:full` (UNIPROBE_FULL=1) runs the longest corpora whole. By default the arch
 * back-ends' instruction corpora take the distinct encodings of the -O2 freestanding fixtures
 * only; the -O1 builds add a few hundred more per target (and the package test installs the
 * tarball into a new project), which would take `npm test` past its six minutes on two cores.
 */
export const FULL = process.env.UNIPROBE_FULL === '1';

/**
 * The freestanding programs the back-end corpora were built from (fixtures/README.md's tables).
 * Programs added for the kernel's own tests (signals, boundary, sysfuzz, gpf, hostile, writes)
 * bring ~1,000 more distinct encodings per target, mostly new displacements and immediates of
 * the same instructions: they join under FULL only, with the -O1 builds.
 */
const CORPUS_PROGRAMS = new Set(['args', 'fib', 'fnptr', 'fork', 'jumptable', 'mmapexec', 'riprel', 'usdt', 'syscalls', 'spin', 'segv', 'sigill']);

/** A freestanding fixture whose instructions the back-end corpora walk (-O1 builds and the kernel tests' programs under FULL only). */
export function corpusFixture(file: string): boolean {
  if (file.endsWith('-nolibc')) return FULL || CORPUS_PROGRAMS.has(file.slice(0, -'-nolibc'.length));
  return FULL && file.endsWith('-nolibc-O1');
}

/**
 * `fn` with environment variable `name` set to `value` (read by what `fn` opens, e.g. an engine's
 * UNIPROBE_NATIVE_STEP), put back as it was afterwards, also when `fn` throws.
 */
export async function withEnv<T>(name: string, value: string, fn: () => Promise<T>): Promise<T> {
  const saved = process.env[name];
  process.env[name] = value;
  try {
    return await fn();
  } finally {
    if (saved === undefined) delete process.env[name];
    else process.env[name] = saved;
  }
}
