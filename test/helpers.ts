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
