/**
 * Seed 004: where the mmu_notifier subscription is allocated. Under mm_take_all_locks (every
 * i_mmap_rwsem held) a GFP_KERNEL allocation can recurse into reclaim, whose rmap walk takes the
 * same locks: lockdep reports it on every seed. Allocated before, under mmap_lock only: clean,
 * and every invalidation still reaches every subscriber.
 */
import { describe, expect, it } from 'vitest';
import { runNotifierScenario } from '../../src/scenarios/notifier-alloc.js';

const SEEDS = Array.from({ length: 100 }, (_, i) => i + 1);

describe('seed 004: mmu notifier subscription allocation', () => {
  it('fixed: no lockdep report on any seed, and every invalidation delivered exactly once', async () => {
    for (const seed of SEEDS) {
      const r = await runNotifierScenario({ seed, pattern: 'fixed' });
      expect({ seed, lockdep: r.lockdep.map((x) => x.text), outcome: r.outcome, unbalanced: r.unbalanced }).toEqual({ seed, lockdep: [], outcome: 'idle', unbalanced: 0 });
      expect(r.delivered).toEqual(r.expected);
    }
  });

  it('allocation under mm_take_all_locks: lockdep reports the fs_reclaim deadlock on every seed', async () => {
    for (const seed of SEEDS.slice(0, 40)) {
      const r = await runNotifierScenario({ seed, pattern: 'alloc-under-all-locks' });
      // One report per lock reclaim shares with mm_take_all_locks: i_mmap_rwsem and anon_vma.
      const circ = r.lockdep.filter((x) => x.kind === 'circular');
      expect(circ.map((x) => x.locks.slice(0, 2).sort().join(' '))).toEqual(['&mapping->i_mmap_rwsem fs_reclaim', '&anon_vma->rwsem fs_reclaim']);
      expect(circ[0]!.text).toMatch(/mm_take_all_locks/);
      expect(circ[0]!.text).toMatch(/kswapd/);
      expect(r.delivered).toEqual(r.expected);
    }
  });
});
