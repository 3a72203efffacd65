/**
 * The optprobes benchmark, part of `npm run bench`; alone: `npx tsx bench/optprobes.ts [--json PATH]`.
 *
 * Workload: bench/guest/<target>/writes (N one-byte write(2)s: ksys_write runs N + 1 times).
 * One machine per target, one kprobe on ksys_write's entry, switched between runs (untimed):
 * - stepped: pre + post handler (the copy in the slot, a second trap),
 * - boosted: pre handler only, optimization off (x86: the slot jumps back; ppc64 has no boosting,
 *   the row is the stepped path again),
 * - optimized: pre handler only, optimization on, the optimizer run before the timed run (the jump
 *   to the detour, handlers from the code hook at its entry, no trap);
 * and the unprobed run as the baseline. Per-hit cost = (variant − unprobed) / hits, from
 * interleaved rounds (bench/harness.ts); printed side by side per target with the ratios
 * optimized / boosted and optimized / stepped of the same rounds.
 *
 * Environment: BENCH_OPT_RUNS (rounds, default 12), BENCH_OPT_WRITES (3,000), BENCH_OPT_TARGETS
 * (comma list; default x86_64, i386, ppc64: the targets with optprobes).
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { Machine } from '../src/kernel/machine.js';
import { Kprobes } from '../src/kprobes/kprobes.js';
import { Kprobe } from '../src/kprobes/kprobe.js';
import { supportedTargets } from '../arch/index.js';
import type { Target } from '../arch/types.js';
import { collectGarbage, cpuMs, fixed, perHitUs, ratio, ratioValue, recordResults, rounds, type Rig } from './harness.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RUNS = Number(process.env.BENCH_OPT_RUNS ?? 12);
const WRITES = Number(process.env.BENCH_OPT_WRITES ?? 3000);
const TARGETS = (process.env.BENCH_OPT_TARGETS ? (process.env.BENCH_OPT_TARGETS.split(',') as Target[]) : (['x86_64', 'i386', 'ppc64'] as Target[])).filter((t) => supportedTargets().includes(t));

type Kind = 'unprobed' | 'stepped' | 'boosted' | 'optimized';

interface TargetRow {
  target: Target;
  hits: number;
  us: Record<Exclude<Kind, 'unprobed'>, number>;
  modes: Record<Exclude<Kind, 'unprobed'>, string>;
}

async function benchTarget(target: Target): Promise<TargetRow> {
  const m = new Machine({ target, cpus: 1, seed: 1, stdout: () => {}, report: (l) => process.stderr.write(`${l}\n`) });
  try {
    const kprobes = new Kprobes(m, { optimization: false });
    let hits = 0;
    const modes: Record<string, string> = {};
    const rig = (kind: Kind): Rig => ({
      label: kind,
      run: async () => {
        let kp: Kprobe | undefined;
        if (kind !== 'unprobed') {
          kp = new Kprobe({ symbolName: 'ksys_write', preHandler: () => (hits++, 0), ...(kind === 'stepped' ? { postHandler: () => undefined } : {}) });
          await m.kernelCall('bench-opt', async (t) => {
            await kprobes.setOptimization(t, kind === 'optimized');
            const rc = await kprobes.register(t, kp!);
            if (rc !== 0) throw new Error(`bench/optprobes: ${target}: register failed with ${rc}`);
            await kprobes.optimizer.flush(t);
          });
          const optimized = kprobes.optimizer.isOptimized(kp.addr!);
          if (kind === 'optimized' && !optimized) throw new Error(`bench/optprobes: ${target}: ksys_write was not optimized (${kprobes.optimizer.refusals.get(kp.addr!)?.reason})`);
          // ppc's emulate-first (try_to_emulate) runs its "step" mode without a step: named apart.
          modes[kind] = optimized ? 'optimized' : kp.ainsn?.tryEmulate ? 'emulate-first' : (kp.ainsn?.prep.mode ?? '?');
        }
        m.spawn(join(root, 'bench', 'guest', target, 'writes'), ['writes', String(WRITES)]);
        const before = hits;
        collectGarbage();
        const t0 = cpuMs();
        const r = await m.runAsync();
        const ms = cpuMs() - t0;
        if (r.status !== 0) throw new Error(`bench/optprobes: ${target} ${kind}: writes exited ${r.status}`);
        const n = hits - before;
        if (kp) await m.kernelCall('bench-unreg', (t) => kprobes.unregister(t, kp!));
        return { ms, hits: n };
      },
      close: () => undefined,
    });
    const kinds: Kind[] = ['unprobed', 'stepped', 'boosted', 'optimized'];
    const samples = await rounds(kinds.map(rig), RUNS);
    const base = samples[0]!;
    const us = Object.fromEntries(samples.slice(1).map((s) => [s.label, perHitUs(s, base)])) as TargetRow['us'];
    return { target, hits: samples[3]!.hits / RUNS, us, modes: modes as TargetRow['modes'] };
  } finally {
    m.close();
  }
}

export async function benchOptprobes(opts: { record?: boolean } = {}): Promise<Record<string, unknown>> {
  console.log(`\noptprobes: per-hit cost of one kprobe on ksys_write (${WRITES} write(2)s, ${RUNS} rounds; µs = CPU time over the unprobed run / hits)`);
  console.log(`${'target'.padEnd(8)} ${'stepped'.padStart(9)} ${'boosted'.padStart(9)} ${'optimized'.padStart(10)}  ${'opt/boost'.padStart(9)} ${'opt/step'.padStart(9)} ${'boost/step'.padStart(10)}  modes`);
  const out: Record<string, unknown> = {};
  for (const target of TARGETS) {
    const r = await benchTarget(target);
    const { stepped, boosted, optimized } = r.us;
    console.log(
      `${target.padEnd(8)} ${fixed(stepped, 9)} ${fixed(boosted, 9)} ${fixed(optimized, 10)}  ${ratio(optimized, boosted, 2).padStart(9)} ${ratio(optimized, stepped, 2).padStart(9)} ${ratio(boosted, stepped, 2).padStart(10)}  ${r.modes.stepped}/${r.modes.boosted}/${r.modes.optimized}`,
    );
    out[target] = {
      hitsPerRun: r.hits,
      usPerHit: { stepped: +stepped.toFixed(3), boosted: +boosted.toFixed(3), optimized: +optimized.toFixed(3) },
      optimizedOverBoosted: ratioValue(optimized, boosted),
      optimizedOverStepped: ratioValue(optimized, stepped),
      boostedOverStepped: ratioValue(boosted, stepped),
      modes: r.modes,
    };
  }
  if (opts.record !== false) console.log(`optprobes: figures written to ${recordResults('optprobes', out)}`);
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await benchOptprobes();
