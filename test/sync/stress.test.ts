/**
 * Property-based stress of the fixed variants on the engine: fast-check draws the scheduler seed
 * and the vCPU count, and every run of every seed scenario must be clean — no lockdep report, no
 * use-after-free (poisoned slot), no false failure, no lost invalidation, no missed or stray
 * breakpoint. A failure prints the seed and vCPU count; `uniprobe scenario NAME --variant fixed
 * --seed S --cpus N` replays it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SCENARIOS } from '../../src/scenarios/index.js';

const seed = fc.integer({ min: 1, max: 2 ** 31 - 1 });
const RUNS: Record<string, number> = { 'uprobe-mmap': 40, 'hmm-mirror': 150, 'kprobe-unregister': 60, 'notifier-alloc': 150 };

describe('fixed variants under random seeds (fast-check)', () => {
  for (const s of SCENARIOS) {
    it(`${s.name} (seed ${s.seed}): clean on ${RUNS[s.name]} random seeds, 2–6 vCPUs`, async () => {
      let runs = 0;
      await fc.assert(
        fc.asyncProperty(seed, fc.integer({ min: 2, max: 6 }), async (sd, cpus) => {
          const r = await s.run({ seed: sd, variant: 'fixed', cpus });
          runs++;
          expect(r.findings.map((f) => `${f.kind}: ${f.title}`)).toEqual([]);
        }),
        { numRuns: RUNS[s.name] },
      );
      expect(runs).toBe(RUNS[s.name]);
    });
  }
});
