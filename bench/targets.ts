/**
 * `npx tsx bench/targets.ts`: wall time of the same program on ppc64 and sparc64 relative to
 * x86_64, to see what ppc64's MSR/alias set-up and sparc64's register windows (window-file.ts: a trap
 * per overflow or underflow; UNIPROBE_SPARC_HOST_WINDOWS=1 traps every save and restore) cost. Self-contained and quick (well under 30 s):
 * - fixtures/<target>/fib-nolibc, many runs, one Machine each: start-up plus a short program
 *   (177 calls of fib);
 * - bench/guest/<target>/compute once (fib(29) + a sieve: 832,039 calls, compute-bound), when
 *   that binary is present.
 * Medians of wall times measured in this one process; ratios are what matter.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Machine } from '../src/kernel/machine.js';
import type { Target } from '../arch/types.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TARGETS: Target[] = ['x86_64', 'ppc64', 'sparc64'];
const FIB_RUNS = Number(process.env.TARGETS_FIB_RUNS ?? 40);

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Wall time of one run (machine creation, load, run, close), in ms. */
function once(target: Target, path: string): { ms: number; status: number; insns: number } {
  const t0 = performance.now();
  const m = new Machine({ target, stdout: () => {}, report: (l) => process.stderr.write(`${l}\n`) });
  try {
    m.spawn(path);
    const r = m.run();
    return { ms: performance.now() - t0, status: r.status, insns: r.insns };
  } finally {
    m.close();
  }
}

function measure(label: string, pathOf: (t: Target) => string, runs: number): void {
  const ms = new Map<Target, number>();
  console.log(`\n${label}`);
  for (const t of TARGETS) {
    const path = pathOf(t);
    if (!existsSync(path)) {
      console.log(`  ${t.padEnd(8)} ${path} missing`);
      continue;
    }
    once(t, path); // warm-up: module and kernel-image caches, JIT
    const times: number[] = [];
    let last = { ms: 0, status: 0, insns: 0 };
    for (let i = 0; i < runs; i++) times.push((last = once(t, path)).ms);
    ms.set(t, median(times));
    console.log(`  ${t.padEnd(8)} ${median(times).toFixed(2).padStart(9)} ms  (exit ${last.status}, ~${last.insns} guest insns)`);
  }
  const base = ms.get('x86_64');
  if (base === undefined) return;
  for (const t of TARGETS) {
    const v = ms.get(t);
    if (t !== 'x86_64' && v !== undefined) console.log(`  ${t}/x86_64 = ${(v / base).toFixed(2)}`);
  }
}

measure(`fib-nolibc, median of ${FIB_RUNS} runs`, (t) => join(root, 'fixtures', t, 'fib-nolibc'), FIB_RUNS);
measure('bench/guest compute, 1 run', (t) => join(root, 'bench', 'guest', t, 'compute'), 1);
