/**
 * The machine a seed scenario runs on: the real engine (x86-64 guest, the bundled programs),
 * its reports collected instead of printed, its lockdep reports expected (they are the
 * scenario's findings, not a failure of the run).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { UniprobeError } from '../errors.js';
import { Machine } from '../kernel/machine.js';
import { expectLockdepReports } from '../mm/kernel-locking.js';
import { PACKAGE_ROOT } from '../package-root.js';

/** A bundled x86-64 fixture (fib-nolibc, mmapexec-nolibc, blob.bin). */
export function fixture(name: string): string {
  const p = join(PACKAGE_ROOT, 'fixtures', 'x86_64', name);
  if (!existsSync(p)) throw new UniprobeError('USAGE', `${p}: the scenario's program is missing from this installation`);
  return p;
}

export interface ScenarioMachine {
  readonly m: Machine;
  /** The machine's report lines (signals, deadlocks). */
  readonly reports: string[];
}

export function scenarioMachine(o: { seed: number; cpus: number; quantum?: number; allowFiles?: string[] }): ScenarioMachine {
  const reports: string[] = [];
  const m = new Machine({
    target: 'x86_64',
    seed: o.seed,
    cpus: o.cpus,
    quantum: o.quantum ?? 400,
    allowFiles: o.allowFiles,
    stdout: () => undefined,
    stderr: () => undefined,
    report: (l) => reports.push(l),
  });
  expectLockdepReports(m.sync.lockdep);
  return { m, reports };
}
