/**
 * The uprobes benchmark, part of `npm run bench`; alone: `npx tsx bench/uprobes.ts [--json PATH]`.
 *
 * Workload: PROCS processes of bench/guest/<target>/calls FIB (fib(FIB) by recursion, so fib runs
 * thousands of times per process and little else does: the per-hit figures stand well above the
 * noise of whole runs). Timing:
 * bench/harness.ts (main-thread CPU time of the guest run, interleaved rounds, each variant's
 * fastest third). Every figure is printed as a ratio of two measurements of the same run and
 * written to the results file.
 *
 * 1. Per-hit cost of a uprobe on fib's entry (emulated on x86: `push`; stepped elsewhere) and on
 *    the first stepped instruction after it, as a multiple of a bare one-address UC_HOOK_CODE hook
 *    with an empty callback on the same instruction; and the emulated probe as a multiple of the
 *    stepped one (emulation skips the out-of-line step and its second trap).
 *    A uretprobe on fib (entry handler + return handler: the entry trap, then the trap at the XOL
 *    trampoline when fib returns), per call of fib, as a multiple of the entry hook.
 * 2. The same stepped probe with 10,000 uprobes registered (the others on a file no process maps,
 *    so they only fill the uprobes tree), as a multiple of its cost with 1.
 * All variants of a target share one machine (see Bench), with an A/A control (the same
 * unprobed run twice) printed beside the whole-run ratio.
 * 3. Code that is not probed: the run time with a uprobe installed on a function the program never
 *    calls (its page is the probed page's private copy) ÷ the unprobed run, both of `calls` with
 *    a larger N (COLD_FIB).
 * 4. Registering one uprobe while 1, 10 and 100 processes map the file (ms, median), and the
 *    ratio 100 ÷ 1.
 *
 * Environment: BENCH_RUNS (default 3; section 1–3 rounds: max(4 × BENCH_RUNS, 12)),
 * BENCH_UPROBES_TARGETS (comma list), BENCH_UPROBES_PROCS (2), BENCH_UPROBES_FIB (22), BENCH_UPROBES_QUICK=1 (section 1
 * and the cold run only: no 10,000-probe machine, no registration costs).
 */
import { realpathSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Machine } from '../src/kernel/machine.js';
import { readElfFileSync, type ElfFile } from '../src/elf/index.js';
import { Uprobes, type UprobeConsumer } from '../src/uprobes/index.js';
import { supportedTargets } from '../arch/index.js';
import { isRefusal } from '../arch/probes.js';
import type { Target } from '../arch/types.js';
import { collectGarbage, cpuMs, fixed, low, median, perHitUs, ratio, ratioValue, recordResults, rounds, type Rig } from './harness.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const ROUNDS = Math.max(4 * RUNS, 12);
const PROCS = Number(process.env.BENCH_UPROBES_PROCS ?? 2);
const FIB = String(Number(process.env.BENCH_UPROBES_FIB ?? 22));
/**
 * The cold-run pair computes longer (fib(27): ~100 ms per process on x86-64), so that what a
 * registered probe costs a process at exec (its page copied, the breakpoint written, the
 * translations of that page dropped) is small beside the unprobed code being compared.
 */
const COLD_FIB = String(Number(FIB) + 5);
const program = (t: Target) => join(root, 'bench', 'guest', t, 'calls');
const COLD = 10_000;
const QUICK = process.env.BENCH_UPROBES_QUICK === '1';
const fixture = (t: Target, name: string) => realpathSync(join(root, 'fixtures', t, name));

interface Site {
  vaddr: bigint;
  off: bigint;
  mode: string;
}

/** fib's entry, the first stepped instruction of fib that runs on every call, and a never-called function. */
function sites(target: Target, elf: ElfFile): { entry: Site; stepped: Site | undefined; cold: Site } {
  const m = new Machine({ target, stdout: () => {} });
  try {
    const arch = new Uprobes(m).arch;
    const analyse = (a: bigint) => arch.analyzeUprobe(a, elf.textBytesAt(a, arch.maxInsnBytes));
    const at = (vaddr: bigint): Site => {
      const p = analyse(vaddr);
      return { vaddr, off: elf.vaddrToOffset(vaddr)!, mode: isRefusal(p) ? 'refused' : p.mode };
    };
    const fib = elf.symbolByName('fib')!;
    const entry = at(fib.localEntry);
    let stepped: Site | undefined;
    let a = fib.localEntry;
    for (let i = 0; i < 4 && !stepped; i++) {
      const p = analyse(a);
      if (isRefusal(p)) break;
      if (p.mode === 'step') stepped = at(a);
      if (p.insn.text.match(/^(j|b|call|ret|bl)/)) break;
      a += BigInt(p.insn.length);
    }
    // nolibc's waitpid: linked in, never called by fib.
    const cold = at(elf.symbolByName('waitpid')!.localEntry);
    return { entry, stepped, cold };
  } finally {
    m.close();
  }
}

/**
 * The machine of one target, shared by its variants: between two machines built alike, whole runs
 * differed by up to 15% (JIT and heap placement), more than a probe's cost; within one machine a
 * probe is registered before its runs and unregistered after them (untimed).
 */
class Bench {
  readonly m: Machine;
  readonly up: Uprobes;
  hits = 0;

  constructor(
    readonly target: Target,
    readonly path: string,
  ) {
    this.m = new Machine({ target, stdout: () => {}, report: () => {} });
    this.up = new Uprobes(this.m);
  }

  /** `n` uprobes on a file no process maps (the libc build of fib): in the tree, never installed. */
  async registerCold(n: number): Promise<this> {
    const m = this.m;
    const up = this.up;
    const other = m.inodeFor(fixture(this.target, 'fib'));
    const step = BigInt(up.arch.swbp.length);
    await m.kernelCall('cold', async (t) => {
      for (let i = 0; i < n; i++) {
        const rc = await up.register(t, other, BigInt(i) * step, { handler: () => 0 });
        if (rc) throw new Error(`bench/uprobes: cold uprobe ${i}: ${rc}`);
      }
    });
    return this;
  }

  /** A variant: `probe` registered around each run, or a code hook on `hook` in every process. */
  rig(label: string, opts: { probe?: Site; hook?: Site; ret?: boolean; fib?: string }): Rig {
    const m = this.m;
    const up = this.up;
    // A uretprobe counts calls (its entry handler); its return handler does nothing more.
    const consumer: UprobeConsumer = opts.ret ? { handler: () => (this.hits++, 0), retHandler: () => 0 } : { handler: () => (this.hits++, 0) };
    return {
      label,
      run: async () => {
        if (opts.probe) {
          const rc = await m.kernelCall('reg', (t) => up.register(t, m.inodeFor(this.path), opts.probe!.off, consumer));
          if (rc) throw new Error(`bench/uprobes: ${this.target}: uprobe_register failed with ${rc}`);
        }
        const ps = Array.from({ length: PROCS }, () => m.spawn(this.path, [this.path, opts.fib ?? FIB]));
        if (opts.hook) for (const p of ps) p.mm.engine.hookCode(() => void this.hits++, opts.hook.vaddr, opts.hook.vaddr);
        const before = this.hits;
        collectGarbage();
        const t0 = cpuMs();
        await m.runAsync();
        const ms = cpuMs() - t0;
        const hits = this.hits - before;
        if (opts.probe) await m.kernelCall('unreg', (t) => up.unregister(t, m.inodeFor(this.path), opts.probe!.off, consumer));
        return { ms, hits };
      },
      close: () => undefined,
    };
  }

  close(): void {
    this.m.close();
  }
}

async function registerCost(target: Target, path: string, procs: number, off: bigint, runs: number): Promise<number> {
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const m = new Machine({ target, stdout: () => {}, report: () => {} });
    try {
      const up = new Uprobes(m);
      for (let i = 0; i < procs; i++) m.spawn(path, [path, FIB]);
      const inode = m.inodeFor(path);
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

export async function benchUprobes(runs = RUNS, targets: Target[] = supportedTargets(), opts: { record?: boolean } = {}): Promise<Record<string, unknown>> {
  const wanted = process.env.BENCH_UPROBES_TARGETS?.split(',') as Target[] | undefined;
  const list = wanted ? targets.filter((t) => wanted.includes(t)) : targets;
  const json: Record<string, unknown> = { program: 'bench/guest/<target>/calls', fib: Number(FIB), procs: PROCS, rounds: ROUNDS };
  const perTarget: Record<string, unknown> = {};
  console.log(`\nuprobes (1–3): ${PROCS} × calls ${FIB}; main-thread CPU time, ${ROUNDS} interleaved rounds, each variant the mean of its fastest third`);
  console.log('  µs/hit = (run with the probe − unprobed run) / hits; vs hook = ÷ the bare UC_HOOK_CODE hook on the same instruction;');
  console.log(`  emul/step = fib-entry uprobe ÷ stepped uprobe; N=${COLD}/1 = stepped uprobe with ${COLD} registered ÷ with 1;`);
  console.log(`  cold run = run of calls ${COLD_FIB} with a uprobe on never-called waitpid ÷ the same run unprobed`);
  console.log('  A/A = the same unprobed run twice in one machine: the noise of whole-run ratios in this run');
  console.log('  target   probe        mode      hits   µs/hit  hook µs  vs hook | emul/step  N=10000/1  cold run      A/A');
  const reg: string[] = [];
  for (const target of list) {
    const path = program(target);
    const elf = readElfFileSync(path);
    const { entry, stepped, cold } = sites(target, elf);
    const hot = stepped ?? entry;
    const b = new Bench(target, path);
    // The scaling pair lives in a machine of its own, whose tree holds COLD − 1 more uprobes.
    const big = QUICK ? undefined : await new Bench(target, path).registerCold(COLD - 1);
    const scaledLabel = `uprobe ${hot === stepped ? 'stepped' : 'entry'}, ${COLD} registered`;
    const rigs = [
      b.rig('plain', {}),
      // An A/A control: the same unprobed run again. Its ratio to the first is the noise of the run.
      b.rig('plain again', {}),
      b.rig('hook entry', { hook: entry }),
      b.rig('uprobe entry', { probe: entry }),
      ...(stepped && stepped.vaddr !== entry.vaddr ? [b.rig('hook stepped', { hook: stepped }), b.rig('uprobe stepped', { probe: stepped })] : []),
      b.rig('uretprobe entry', { probe: entry, ret: true }),
      b.rig('plain, long', { fib: COLD_FIB }),
      b.rig('cold uprobe, long', { probe: cold, fib: COLD_FIB }),
      ...(big ? [big.rig(`plain, ${COLD} registered`, {}), big.rig(scaledLabel, { probe: hot })] : []),
    ];
    let samples;
    try {
      samples = await rounds(rigs, ROUNDS);
    } finally {
      b.close();
      big?.close();
    }
    const by = (l: string) => samples.find((s) => s.label === l);
    const base = by('plain')!;
    const us = (l: string) => {
      const s = by(l);
      return s ? perHitUs(s, base) : NaN;
    };
    const rows: Array<[string, Site, string, string]> = [['fib entry', entry, 'uprobe entry', 'hook entry']];
    if (by('uprobe stepped')) rows.push([`fib+0x${(stepped!.vaddr - entry.vaddr).toString(16)}`, stepped!, 'uprobe stepped', 'hook stepped']);
    rows.push(['fib (ret)', { ...entry, mode: 'return' }, 'uretprobe entry', 'hook entry']);
    const hotLabel = hot === stepped && by('uprobe stepped') ? 'uprobe stepped' : 'uprobe entry';
    const scaled = big ? perHitUs(by(scaledLabel)!, by(`plain, ${COLD} registered`)!) : NaN;
    const coldRun = low(by('cold uprobe, long')!.ms) / low(by('plain, long')!.ms);
    const control = low(by('plain again')!.ms) / low(base.ms);
    const emulVsStep = entry.mode === 'emulate' && by('uprobe stepped') ? us('uprobe entry') / us('uprobe stepped') : NaN;
    for (const [i, [name, site, probe, hook]] of rows.entries()) {
      const tail = i === 0 ? `${ratio(emulVsStep, 1, 2).padStart(10)} ${ratio(scaled, us(hotLabel), 2).padStart(10)} ${ratio(coldRun, 1, 3).padStart(9)} ${ratio(control, 1, 3).padStart(8)}` : '';
      console.log(
        `  ${target.padEnd(8)} ${name.padEnd(12)} ${site.mode.padEnd(8)} ${String(by(probe)!.hits).padStart(6)} ${fixed(us(probe), 8)} ${fixed(us(hook), 8)} ${ratio(us(probe), us(hook)).padStart(8)} | ${tail}`,
      );
    }
    const num = (x: number) => (Number.isFinite(x) ? +x.toFixed(3) : null);
    perTarget[target] = {
      sites: Object.fromEntries(rows.map(([name, site]) => [name, { mode: site.mode, vaddr: `0x${site.vaddr.toString(16)}` }])),
      us: Object.fromEntries(rows.flatMap(([name, , probe, hook]) => [[`uprobe ${name}`, num(us(probe))], [`hook ${name}`, num(us(hook))]])),
      vsHook: Object.fromEntries(rows.map(([name, , probe, hook]) => [name, ratioValue(us(probe), us(hook))])),
      emulatedVsStepped: Number.isFinite(emulVsStep) ? +emulVsStep.toFixed(3) : null,
      registeredScaling: { probe: hotLabel, us1: num(us(hotLabel)), [`us${COLD}`]: num(scaled), ratio: ratioValue(scaled, us(hotLabel)) },
      coldRunVsUnprobed: +coldRun.toFixed(4),
      controlRatio: +control.toFixed(4),
    };
    if (QUICK) continue;
    const costs = [];
    for (const n of [1, 10, 100]) costs.push(await registerCost(target, path, n, entry.off, runs));
    reg.push(`  ${target.padEnd(8)} ${costs.map((c) => c.toFixed(2).padStart(9)).join('')}   ${ratio(costs[2]!, costs[0]!)}`);
    (perTarget[target] as Record<string, unknown>).registerMs = { 1: +costs[0]!.toFixed(3), 10: +costs[1]!.toFixed(3), 100: +costs[2]!.toFixed(3), ratio100vs1: ratioValue(costs[2]!, costs[0]!) };
  }
  json.perTarget = perTarget;
  if (!QUICK) {
    console.log('\nuprobes (4): register one probe while N processes map the file (ms, median)');
    console.log('  target       N=1     N=10    N=100   100 vs 1');
    for (const l of reg) console.log(l);
  }
  if (opts.record !== false) console.log(`\nuprobes: figures written to ${recordResults('uprobes', json)}`);
  return json;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await benchUprobes();
