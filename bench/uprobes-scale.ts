/**
 * Registration at scale, part of `npm run bench`; alone: `npx tsx bench/uprobes-scale.ts [--json PATH]`.
 *
 * Workload: one process of fixtures/<target>/fib (static glibc: ~115,000 instructions on x86-64)
 * is spawned, then N uprobes are registered on its file — one per instruction the placement walk
 * finds, in address order, as `uniprobe verify --probes all` and perf probe on many lines do — and
 * unregistered again. Each registration walks the tree, copies and analyses the instruction and
 * writes the breakpoint into the process's private copy of the page (one copy per page).
 * Linux's registration is O(log n) per probe (an rb-tree keyed by inode and offset), so the cost
 * per probe should not grow with N: the figure printed is each N's per-probe cost as a multiple of
 * the N = 1,000 one (1.00x = flat), for registering and for unregistering.
 *
 * Timing: main-thread CPU time (bench/harness.ts's cpuMs) of the whole loop after a full GC, in a
 * fresh Machine per run; a discarded warm-up run of 10k first; each N the mean of its fastest third of
 * runs, rounds interleaved so load from other jobs falls on every N alike. A refused probe (an
 * instruction the arch cannot probe: ~2%) counts as one probe too; it costs its analysis.
 *
 * Environment: BENCH_RUNS (default 3; runs per N: max(2 × BENCH_RUNS, 6)), BENCH_UPSCALE_TARGETS (comma list; default x86_64),
 * BENCH_UPSCALE_COUNTS (default 1000,10000,100000: capped at the instructions the program has).
 */
import { realpathSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Machine } from '../src/kernel/machine.js';
import { readElfFileSync } from '../src/elf/index.js';
import { Uprobes, type UprobeConsumer } from '../src/uprobes/index.js';
import { UprobePlacer } from '../src/placement/placement.js';
import { archFor, supportedTargets } from '../arch/index.js';
import type { Target } from '../arch/types.js';
import { collectGarbage, cpuMs, fixed, low, ratio, ratioValue, recordResults } from './harness.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
/** Runs per N: with one (the fastest third of 3) the 1k figure, a 40 ms run, moved by ±20% between runs. */
const runsFor = (runs: number): number => Math.max(2 * runs, 6);
const COUNTS = (process.env.BENCH_UPSCALE_COUNTS ?? '1000,10000,100000').split(',').map(Number);

/** File offsets of every instruction the placement walk finds in the program, in address order. */
function offsets(target: Target, path: string): bigint[] {
  const elf = readElfFileSync(path);
  const placer = new UprobePlacer(archFor(target)!, elf);
  const out: bigint[] = [];
  for (const f of placer.functions) {
    for (const w of placer.walk(f)) {
      const off = elf.vaddrToOffset(w.addr);
      if (!w.data && off !== undefined) out.push(off);
    }
  }
  return [...new Set(out)];
}

interface Run {
  regMs: number;
  unregMs: number;
  registered: number;
}

async function once(target: Target, path: string, offs: readonly bigint[]): Promise<Run> {
  const m = new Machine({ target, stdout: () => {}, report: () => {} });
  try {
    const up = new Uprobes(m);
    m.spawn(path, [path]);
    const inode = m.inodeFor(path);
    const uc: UprobeConsumer = { handler: () => 0 };
    let registered = 0;
    collectGarbage();
    let t0 = cpuMs();
    await m.kernelCall('bench: register', async (t) => {
      for (const off of offs) if ((await up.register(t, inode, off, uc)) === 0) registered++;
    });
    const regMs = cpuMs() - t0;
    collectGarbage();
    t0 = cpuMs();
    await m.kernelCall('bench: unregister', async (t) => {
      for (const off of offs) await up.unregister(t, inode, off, uc);
    });
    const unregMs = cpuMs() - t0;
    if (up.list().length) throw new Error(`bench/uprobes-scale: ${target}: ${up.list().length} uprobes left after unregistering`);
    return { regMs, unregMs, registered };
  } finally {
    m.close();
  }
}

export async function benchUprobesScale(runs = RUNS, targets: Target[] = ['x86_64'], opts: { record?: boolean } = {}): Promise<Record<string, unknown>> {
  const wanted = process.env.BENCH_UPSCALE_TARGETS?.split(',') as Target[] | undefined;
  const list = (wanted ?? targets).filter((t) => supportedTargets().includes(t));
  const json: Record<string, unknown> = { runs: runsFor(runs) };
  console.log(`\nuprobes at scale: N uprobes on fixtures/<target>/fib (one process maps it), registered then unregistered;`);
  console.log(`  main-thread CPU time, fastest third of ${runsFor(runs)} interleaved runs; µs/probe and the ratio to N=${COUNTS[0]} (1.00x = flat)`);
  console.log('  target        N  registered   reg µs/probe    vs first   unreg µs/probe    vs first');
  for (const target of list) {
    const path = realpathSync(join(root, 'fixtures', target, 'fib'));
    const all = offsets(target, path);
    const counts = [...new Set(COUNTS.map((n) => Math.min(n, all.length)))];
    // Warm-up (discarded): the JIT needs some thousands of registrations before a run's cost settles;
    // with only a 1k warm-up the 1k runs came out ~1.5x the others.
    await once(target, path, all.slice(0, Math.min(all.length, 10_000)));
    const samples = counts.map(() => [] as Run[]);
    for (let r = 0; r < runsFor(runs); r++) {
      for (let j = 0; j < counts.length; j++) {
        const i = (j + r) % counts.length;
        samples[i]!.push(await once(target, path, all.slice(0, counts[i])));
      }
    }
    const per = counts.map((n, i) => ({
      n,
      registered: samples[i]![0]!.registered,
      reg: (low(samples[i]!.map((s) => s.regMs)) * 1000) / n,
      unreg: (low(samples[i]!.map((s) => s.unregMs)) * 1000) / n,
    }));
    const first = per[0]!;
    for (const p of per) {
      console.log(
        `  ${target.padEnd(8)} ${String(p.n).padStart(7)} ${String(p.registered).padStart(11)} ${fixed(p.reg, 14, 1)} ${ratio(p.reg, first.reg, 2).padStart(11)} ${fixed(p.unreg, 16, 1)} ${ratio(p.unreg, first.unreg, 2).padStart(11)}`,
      );
    }
    json[target] = Object.fromEntries(
      per.map((p) => [
        p.n,
        { registered: p.registered, regUsPerProbe: +p.reg.toFixed(2), unregUsPerProbe: +p.unreg.toFixed(2), regVsFirst: ratioValue(p.reg, first.reg), unregVsFirst: ratioValue(p.unreg, first.unreg) },
      ]),
    );
  }
  if (opts.record !== false) console.log(`\nuprobes at scale: figures written to ${recordResults('uprobesScale', json)}`);
  return json;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await benchUprobesScale();
