/**
 * Seed 003 (2005 "kprobes: changed from using spinlock to mutex") as a runnable scenario:
 * unregistering a kprobe while another vCPU is between its trap and the end of its single-step.
 *
 * Expected values come from the seed and reference linux-kprobes.md §2, §3.6, §4.9: nothing a
 * trapped CPU may still use (kprobe, slot) is freed or reused before a grace period; a batch
 * unregister waits for one grace period. The old code (slot freed before synchronize_sched) must
 * show a use-after-free; mainline's must be clean.
 */
import { describe, expect, it } from 'vitest';
import { kprobeBugKinds, runKprobeUnregisterScenario, type KprobeUnregisterResult } from '../../src/scenarios/kprobe-unregister.js';

const N = 300;
const seeds = Array.from({ length: N }, (_, i) => i + 1);

function tally(results: KprobeUnregisterResult[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of results) for (const k of kprobeBugKinds(r)) m.set(k, (m.get(k) ?? 0) + 1);
  return m;
}

describe('seed 003: kprobe unregister vs a vCPU between trap and single-step', () => {
  it(`mainline pattern: no KASAN report, no slot reuse, one grace period per batch, no leak, on ${N} seeds`, async () => {
    let hits = 0;
    let gcRuns = 0;
    for (const seed of seeds) {
      const r = await runKprobeUnregisterScenario({ seed, pattern: 'fixed' });
      expect({ seed, outcome: r.outcome, kinds: kprobeBugKinds(r), violations: r.violations }).toEqual({ seed, outcome: 'idle', kinds: [], violations: [] });
      expect(r.kasan).toEqual([]);
      expect(r.lockdep).toEqual([]);
      // Loader 0 unregisters its 3 probes as a batch in each of 3 cycles: one wait each.
      expect(r.stats.batchGraceWaits).toEqual([1, 1, 1]);
      expect(r.stats.registrations).toBe(r.stats.unregistrations);
      hits += r.stats.hits;
      gcRuns += r.stats.slotGcRuns;
    }
    expect(hits).toBeGreaterThan(N);
    // Dirty (boostable) slots went back to the cache through a garbage collection's grace period.
    expect(gcRuns).toBeGreaterThan(0);
  });

  it('old pattern: the slot freed before synchronize_sched is used by a stepping vCPU, and handed out again', async () => {
    const results: KprobeUnregisterResult[] = [];
    for (const seed of seeds) results.push(await runKprobeUnregisterScenario({ seed, pattern: 'old' }));
    const t = tally(results);
    expect(t.get('use-after-free') ?? 0).toBeGreaterThan(N / 2);
    expect(t.get('slot-reused-while-stepping') ?? 0).toBeGreaterThan(0);
    // No batch API in 2005: N probes, N grace periods.
    for (const r of results) expect(r.stats.batchGraceWaits).toEqual([3, 3, 3]);
    const uaf = results.flatMap((r) => r.kasan)[0]!;
    expect(uaf).toMatch(/use-after-free: read of kprobe_insn_slot/);
    expect(uaf).toMatch(/kprobe_int3_handler/);
    expect(uaf).toMatch(/freed by .*unregister_kprobe > arch_remove_kprobe > free_insn_slot/);
  });

  it('forced switch at kprobe:before-step: mainline frees the slot only after the stepping vCPU\'s rcu_read_unlock; the old code before it', async () => {
    let oldUaf = 0;
    let oldReuse = 0;
    let checked = 0;
    for (const seed of seeds.slice(0, 40)) {
      for (const pattern of ['fixed', 'old'] as const) {
        const r = await runKprobeUnregisterScenario({ seed, pattern, mode: 'mid-step' });
        const ev = r.events;
        const unlink = ev.findIndex((e) => e.includes(' unlink 0x'));
        expect(unlink).toBeGreaterThan(0);
        // The hit that was in its step when the probe was unlinked.
        const step = ev.slice(0, unlink).map((e, i) => [e, i] as const).filter(([e]) => e.startsWith('cpu0#1 step slot')).pop();
        if (!step) continue; // this seed's hitter was not mid-step (it had finished its hits)
        const lastUnlock = ev.slice(0, unlink).lastIndexOf('cpu0#1 rcu_read_unlock');
        if (lastUnlock > step[1]) continue;
        const unlock = ev.indexOf('cpu0#1 rcu_read_unlock', unlink);
        const slot = step[0].split(' ').pop();
        const free = ev.findIndex((e) => e.endsWith(` free slot ${slot}`));
        expect(unlock).toBeGreaterThan(unlink);
        expect(free).toBeGreaterThan(0);
        if (pattern === 'fixed') {
          checked++;
          expect(free).toBeGreaterThan(unlock);
          expect(r.kasan).toEqual([]);
          expect(r.violations).toEqual([]);
          // The grace period ended after the reader left, and before the free.
          const gpEnd = ev.findIndex((e, i) => i > unlink && e.endsWith('synchronize_rcu end'));
          expect(gpEnd).toBeGreaterThan(unlock);
          expect(gpEnd).toBeLessThan(free);
        } else {
          expect(free).toBeLessThan(unlock);
          if (r.kasan.length) oldUaf++;
          if (r.violations.some((v) => v.kind === 'slot-reused-while-stepping')) oldReuse++;
        }
      }
    }
    expect(checked).toBeGreaterThan(30);
    expect(oldUaf).toBeGreaterThan(30);
    expect(oldReuse).toBeGreaterThan(0);
  });

  it('replays: the same seed gives the same result and event log', async () => {
    for (const pattern of ['old', 'fixed'] as const) {
      for (const mode of ['race', 'mid-step'] as const) {
        for (const seed of [5, 42]) {
          const a = await runKprobeUnregisterScenario({ seed, pattern, mode });
          const b = await runKprobeUnregisterScenario({ seed, pattern, mode });
          expect(b).toEqual(a);
        }
      }
    }
  });
});
