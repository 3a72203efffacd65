/**
 * Property-based stress of the fixed patterns: fast-check draws the seed (and the shape of the
 * run) and every run must be clean — no lockdep report, no use-after-free, no false failure, no
 * lost invalidation. More than 1,000 seeds per `npm test`; a failure prints the seed to replay.
 */
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { runMirrorScenario } from '../../src/scenarios/hmm-mirror.js';
import { runNotifierScenario } from '../../src/scenarios/notifier-alloc.js';

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
});
