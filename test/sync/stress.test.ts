/**
 * Property-based stress of the fixed patterns: fast-check draws the seed (and the shape of the
 * run) and every run must be clean — no lockdep report, no use-after-free, no false failure, no
 * lost invalidation, no missed or stray breakpoint. 1,700 seeds per `npm test` across the four
 * seed scenarios; a failure prints the seed (and shape) to replay.
 */
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { runMirrorScenario } from '../../src/scenarios/hmm-mirror.js';
import { runNotifierScenario } from '../../src/scenarios/notifier-alloc.js';
import { kprobeBugKinds, runKprobeUnregisterScenario } from '../../src/scenarios/kprobe-unregister.js';
import { runUprobeMmapScenario, uprobeBugKinds } from '../../src/scenarios/uprobe-mmap.js';

const seed = fc.integer({ min: 1, max: 2 ** 31 - 1 });

describe('fixed patterns under random seeds (fast-check)', () => {
  it('seed 002 mirror get-or-create: clean on 600 seeds, 2–6 vCPUs, 2–6 threads', async () => {
    await fc.assert(
      fc.asyncProperty(seed, fc.integer({ min: 2, max: 6 }), fc.integer({ min: 2, max: 6 }), async (s, cpus, threads) => {
        const r = await runMirrorScenario({ seed: s, pattern: 'fixed', cpus, threads, rounds: 2 });
        return r.falseFailures === 0 && r.deadHandedOut === 0 && r.leaked === 0 && r.lockdep.length === 0 && r.kasan.length === 0 && r.outcome === 'idle';
      }),
      { numRuns: 600 },
    );
  });

  it('seed 004 notifier registration: clean on 500 seeds, 2–6 vCPUs, 1–4 subscribers', async () => {
    await fc.assert(
      fc.asyncProperty(seed, fc.integer({ min: 2, max: 6 }), fc.integer({ min: 1, max: 4 }), async (s, cpus, subscribers) => {
        const r = await runNotifierScenario({ seed: s, pattern: 'fixed', cpus, subscribers });
        return r.lockdep.length === 0 && r.unbalanced === 0 && r.outcome === 'idle' && r.delivered.every((d, i) => d === r.expected[i]);
      }),
      { numRuns: 500 },
    );
  });

  it('seed 001 uprobe register vs mmap/munmap: clean on 300 seeds, 2–6 vCPUs, 1–4 processes', async () => {
    await fc.assert(
      fc.asyncProperty(seed, fc.integer({ min: 2, max: 6 }), fc.integer({ min: 1, max: 4 }), async (s, cpus, processes) => {
        const r = await runUprobeMmapScenario({ seed: s, pattern: 'fixed', cpus, processes, mapRounds: 3, cycles: 1 });
        return r.outcome === 'idle' && uprobeBugKinds(r).length === 0 && r.violations.length === 0;
      }),
      { numRuns: 300 },
    );
  });

  it('seed 003 kprobe unregister vs a vCPU mid-step: clean on 300 seeds, 2–6 vCPUs', async () => {
    await fc.assert(
      fc.asyncProperty(seed, fc.integer({ min: 2, max: 6 }), fc.constantFrom('race' as const, 'mid-step' as const), async (s, cpus, mode) => {
        const r = await runKprobeUnregisterScenario({ seed: s, pattern: 'fixed', cpus, hitters: Math.min(3, cpus - 1), mode });
        return r.outcome === 'idle' && kprobeBugKinds(r).length === 0 && r.violations.length === 0 && r.kasan.length === 0;
      }),
      { numRuns: 300 },
    );
  });
});
