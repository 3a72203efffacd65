/**
 * uprobes benchmark (issue 6): per-hit cost of a uprobe — emulated (x86 `push`, ppc/sparc: none
 * at fib's entry, so the entry is stepped there) and stepped out of line — against a bare
 * one-address UC_HOOK_CODE hook on the same instruction and against the unprobed run; and the
 * cost of registering one uprobe when 1, 10 and 100 processes map the file.
 *
 * Workload: ten processes of fixtures/<target>/fib-nolibc (fib runs 1,177 times in each). Per-hit cost =
 * (run time with the probe − run time without) / hits, medians of RUNS runs in one process, so
 * the ratios between rows are meaningful; absolute figures depend on the machine.
 *
 * Run alone: `npx tsx bench/uprobes.ts`; `npm run bench` runs it after the other benchmarks.
 */
import { realpathSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Machine } from '../src/kernel/machine.js';
import { readElfFileSync } from '../src/elf/index.js';
import { Uprobes } from '../src/uprobes/index.js';
import { supportedTargets } from '../arch/index.js';
import type { Target } from '../arch/types.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PROCS = 10;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Probe {
  vaddr: bigint;
  off: bigint;
}

function fibProbes(path: string, m: Machine, up: Uprobes): { entry: Probe; stepped: Probe | undefined; entryMode: string } {
  const elf = readElfFileSync(path);
  const fib = elf.symbolByName('fib')!;
  const at = (vaddr: bigint): Probe => ({ vaddr, off: elf.vaddrToOffset(vaddr)! });
  const analyse = (a: bigint) => up.arch.analyzeUprobe(a, elf.textBytesAt(a, up.arch.maxInsnBytes));
  const entry = at(fib.localEntry);
  const e = analyse(entry.vaddr);
  const entryMode = 'refused' in e ? 'refused' : e.mode;
  // The first stepped instruction of fib that runs on every call (before any branch).
  let stepped: Probe | undefined;
  let a = fib.localEntry;
  for (let i = 0; i < 4 && !stepped; i++) {
    const p = analyse(a);
    if ('refused' in p) break;
    if (p.mode === 'step') stepped = at(a);
    if (p.insn.text.match(/^(j|b|call|ret|bl)/)) break;
    a += BigInt(p.insn.length);
  }
  void m;
  return { entry, stepped, entryMode };
}

type Variant = 'plain' | 'code-hook' | 'uprobe';

async function timeRun(target: Target, path: string, variant: Variant, probe?: Probe): Promise<{ ms: number; hits: number }> {
  const m = new Machine({ target, stdout: () => {}, report: () => {} });
  try {
    const up = variant === 'uprobe' ? new Uprobes(m) : undefined;
    // PROCS copies of the program: thousands of hits per run, so the per-hit figure is stable.
    const ps = Array.from({ length: PROCS }, () => m.spawn(path, [path]));
    let hits = 0;
    if (variant === 'code-hook') for (const p of ps) p.mm.engine.hookCode(() => void hits++, probe!.vaddr, probe!.vaddr);
    if (up) {
      const inode = m.inodeFor(realpathSync(path));
      const rc = await m.kernelCall('reg', (t) => up.register(t, inode, probe!.off, { handler: () => (hits++, 0) }));
      if (rc) throw new Error(`register: ${rc}`);
    }
    const t0 = performance.now();
    await m.runAsync();
    return { ms: performance.now() - t0, hits };
  } finally {
    m.close();
  }
}

async function registerCost(target: Target, path: string, procs: number, off: bigint, runs: number): Promise<number> {
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const m = new Machine({ target, stdout: () => {}, report: () => {} });
    try {
      const up = new Uprobes(m);
      for (let i = 0; i < procs; i++) m.spawn(path, [path]);
      const inode = m.inodeFor(realpathSync(path));
      const uc = { handler: () => 0 };
      const t0 = performance.now();
      await m.kernelCall('reg', (t) => up.register(t, inode, off, uc));
      times.push(performance.now() - t0);
      await m.kernelCall('unreg', (t) => up.unregister(t, inode, off, uc));
    } finally {
      m.close();
    }
  }
  return median(times);
}

export async function benchUprobes(runs: number, targets: Target[] = supportedTargets()): Promise<void> {
  console.log(`\nuprobes: per-hit cost on ${PROCS} × fib-nolibc (fib's entry and a stepped instruction), median of ${runs} runs`);
  console.log('target   probe            mode      hits   run ms   µs/hit   vs code hook');
  const reg: string[] = [];
  for (const target of targets) {
    const path = realpathSync(join(root, 'fixtures', target, 'fib-nolibc'));
    const probeM = new Machine({ target, stdout: () => {} });
    const { entry, stepped, entryMode } = fibProbes(path, probeM, new Uprobes(probeM));
    probeM.close();
    const med = async (v: Variant, p?: Probe) => {
      const rs = [];
      for (let i = 0; i < runs; i++) rs.push(await timeRun(target, path, v, p));
      return { ms: median(rs.map((r) => r.ms)), hits: rs[0]!.hits };
    };
    const plain = await med('plain');
    const rows: Array<[string, string, Probe]> = [['fib entry', entryMode, entry]];
    if (stepped && stepped.vaddr !== entry.vaddr) rows.push([`fib+0x${(stepped.vaddr - entry.vaddr).toString(16)}`, 'step', stepped]);
    for (const [name, mode, p] of rows) {
      const hook = await med('code-hook', p);
      const probe = await med('uprobe', p);
      const hookUs = ((hook.ms - plain.ms) * 1000) / hook.hits;
      const probeUs = ((probe.ms - plain.ms) * 1000) / probe.hits;
      console.log(
        `${target.padEnd(8)} ${name.padEnd(16)} ${mode.padEnd(8)} ${String(probe.hits).padStart(6)} ${probe.ms.toFixed(1).padStart(8)} ${probeUs.toFixed(2).padStart(8)}   ${hookUs > 0.05 ? `${(probeUs / hookUs).toFixed(1)}x` : 'n/a'} (hook ${hookUs.toFixed(2)} µs${hookUs > 0.05 ? '' : ': below the noise of one run'})`,
      );
    }
    const costs = [];
    for (const n of [1, 10, 100]) costs.push(await registerCost(target, path, n, entry.off, runs));
    reg.push(`${target.padEnd(8)} ${costs.map((c) => c.toFixed(2).padStart(9)).join('')}   ${(costs[2]! / costs[0]!).toFixed(1)}x`);
  }
  console.log('\nuprobes: register one probe while N processes map the file (ms, median)');
  console.log('target       N=1     N=10    N=100   100 vs 1');
  for (const l of reg) console.log(l);
}

if (import.meta.url === `file://${process.argv[1]}`) await benchUprobes(Number(process.env.BENCH_RUNS ?? 3));
