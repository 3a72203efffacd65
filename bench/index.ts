/**
 * `npm run bench`: guest instructions per second for a compute-bound guest (bench/guest/compute.c)
 * on every supported target, and the same binary under qemu-user as the reference when qemu-user
 * is installed (skipped cleanly when it is not). Figures are medians of several runs measured in
 * one process, so ratios between rows are meaningful; absolute numbers depend on the machine.
 * Then whole-program throughput against qemu-user and a bare Unicorn floor (bench/throughput.ts),
 * the cost of one system call against qemu-user (bench/syscalls.ts),
 * the command line's start-up against `node -e 0` (bench/startup.ts), the sync layer's costs (bench/sync.ts), the kprobes and uprobes benchmarks
 * (bench/kprobes.ts, bench/uprobes.ts) and uprobe registration at scale (bench/uprobes-scale.ts).
 * Every figure also goes to a JSON file for tracking:
 * bench/results/latest.json (git-ignored), or the path given with `--json PATH` or BENCH_JSON.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Machine } from '../src/kernel/machine.js';
import { benchSync } from './sync.js';
import { benchKprobes } from './kprobes.js';
import { benchOptprobes } from './optprobes.js';
import { benchUprobes } from './uprobes.js';
import { benchUprobesScale } from './uprobes-scale.js';
import { benchStartup } from './startup.js';
import { benchThroughput } from './throughput.js';
import { benchSyscalls } from './syscalls.js';
import { recordResults } from './harness.js';
import { supportedTargets } from '../arch/index.js';
import type { Target } from '../arch/types.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
/**
 * Runs of the compute program per target: never fewer than 3. Each is a fresh machine, so a lone
 * run includes the JIT's warm-up of that target's trap code: sparc64 ÷ x86_64 read 3.06x from one
 * run each where five interleaved runs read 1.65x (medians).
 */
const COMPUTE_RUNS = Math.max(RUNS, 3);
const QEMU: Record<Target, string> = { x86_64: 'qemu-x86_64', i386: 'qemu-i386', ppc32: 'qemu-ppc', ppc64: 'qemu-ppc64', sparc64: 'qemu-sparc64' };

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

interface Row {
  target: Target;
  insns: number;
  ms: number;
  qemuMs?: number;
  status: number;
}

function benchTarget(target: Target, path: string): Row {
  const times: number[] = [];
  let insns = 0;
  let status = 0;
  for (let i = 0; i < COMPUTE_RUNS; i++) {
    const m = new Machine({ target, stdout: () => {}, report: (l) => process.stderr.write(`${l}\n`) });
    try {
      m.spawn(path);
      const t0 = performance.now();
      const r = m.run();
      times.push(performance.now() - t0);
      insns = r.insns;
      status = r.status;
    } finally {
      m.close();
    }
  }
  const row: Row = { target, insns, ms: median(times), status };
  const qemu = QEMU[target];
  if (hasCommand(qemu)) {
    const qt: number[] = [];
    for (let i = 0; i < COMPUTE_RUNS; i++) {
      const t0 = performance.now();
      const r = spawnSync(qemu, [path], { stdio: 'ignore' });
      qt.push(performance.now() - t0);
      if (r.status !== status) process.stderr.write(`bench: ${qemu} exited ${r.status}, uniprobe ${status}\n`);
    }
    row.qemuMs = median(qt);
  }
  return row;
}

async function main(): Promise<void> {
  console.log(`uniprobe bench: bench/guest/<target>/compute (fib(29) + a 2,000,000 sieve), median of ${COMPUTE_RUNS} runs\n`);
  const rows: Row[] = [];
  for (const target of supportedTargets()) {
    const path = join(root, 'bench', 'guest', target, 'compute');
    if (!existsSync(path)) {
      console.log(`${target}: ${path} missing (make -C bench/guest)`);
      continue;
    }
    rows.push(benchTarget(target, path));
  }
  const qemuNote = rows.some((r) => r.qemuMs !== undefined) ? '' : ' (qemu-user not installed: reference skipped)';
  console.log(`target    guest insns   uniprobe ms   Minsn/s   qemu-user ms   uniprobe/qemu${qemuNote}`);
  for (const r of rows) {
    const mips = r.insns / r.ms / 1000;
    const q = r.qemuMs !== undefined ? r.qemuMs.toFixed(1).padStart(12) : '           -';
    const ratio = r.qemuMs !== undefined ? `${(r.ms / r.qemuMs).toFixed(1)}x`.padStart(13) : '            -';
    console.log(`${r.target.padEnd(8)} ${String(r.insns).padStart(12)} ${r.ms.toFixed(1).padStart(13)} ${mips.toFixed(1).padStart(9)} ${q}   ${ratio}`);
  }
  const x86 = rows.find((r) => r.target === 'x86_64');
  if (x86) {
    console.log('\nwall time relative to x86_64 on the same program:');
    for (const r of rows) console.log(`  ${r.target.padEnd(8)} ${(r.ms / x86.ms).toFixed(2)}x`);
  }
  console.log('\nguest insns: counted by the scheduler in quanta (exact for full quanta; see README).');
  const x86ms = x86?.ms;
  recordResults(
    'compute',
    Object.fromEntries(
      rows.map((r) => [
        r.target,
        {
          insns: r.insns,
          ms: +r.ms.toFixed(2),
          mips: +(r.insns / r.ms / 1000).toFixed(2),
          qemuMs: r.qemuMs !== undefined ? +r.qemuMs.toFixed(2) : null,
          vsQemu: r.qemuMs !== undefined ? +(r.ms / r.qemuMs).toFixed(3) : null,
          vsX86_64: x86ms !== undefined ? +(r.ms / x86ms).toFixed(3) : null,
        },
      ]),
    ),
    true,
  );
  recordResults('throughput', benchThroughput(undefined, { record: false }));
  recordResults('syscalls', benchSyscalls(undefined, { record: false }));
  recordResults('startup', benchStartup(undefined, { record: false }));
  recordResults('sync', await benchSync(RUNS));
  recordResults('kprobes', await benchKprobes({ record: false }));
  recordResults('optprobes', await benchOptprobes({ record: false }));
  recordResults('uprobes', await benchUprobes(RUNS, supportedTargets(), { record: false }));
  const path = recordResults('uprobesScale', await benchUprobesScale(RUNS, ['x86_64'], { record: false }));
  console.log(`\nbench: every figure written to ${path}`);
}

await main();
