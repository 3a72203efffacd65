/**
 * Seed 001 (2011 uprobes locking proposal) as a runnable scenario: uprobe register/unregister
 * racing mmap/munmap of the probed file, under many seeds.
 *
 * Expected values come from the seed and from mainline's rules (reference linux-uprobes-arch.md
 * §1.3–1.5, §1.11, §5(a)): every private executable mapping has the breakpoint iff the probe is
 * registered, the page cache is never written, and nothing allocates or takes an mm's lock under
 * i_mmap_rwsem. The old pattern must show the seed's problems; mainline's must be clean.
 */
import { describe, expect, it } from 'vitest';
import { runUprobeMmapScenario, uprobeBugKinds, type UprobeMmapResult } from '../../src/scenarios/uprobe-mmap.js';

const N = 300;
const seeds = Array.from({ length: N }, (_, i) => i + 1);

/** How many seeds show each bug kind. */
function tally(results: UprobeMmapResult[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of results) for (const k of uprobeBugKinds(r)) m.set(k, (m.get(k) ?? 0) + 1);
  return m;
}

describe('seed 001: uprobe register/unregister vs mmap/munmap', () => {
  it(`mainline pattern: no report and no violation on any of ${N} seeds`, async () => {
    let installs = 0;
    let retries = 0;
    let checks = 0;
    for (const seed of seeds) {
      const r = await runUprobeMmapScenario({ seed, pattern: 'fixed' });
      expect({ seed, outcome: r.outcome, kinds: uprobeBugKinds(r), violations: r.violations }).toEqual({ seed, outcome: 'idle', kinds: [], violations: [] });
      expect(r.lockdep).toEqual([]);
      expect(r.kasan).toEqual([]);
      expect(r.problems).toEqual([]);
      installs += r.stats.installs;
      retries += r.stats.mapInfoRetries;
      checks += r.stats.checks;
    }
    // The runs really did something: breakpoints went in, GFP_NOWAIT came up short and the walk
    // was retried, and the invariant was checked between steps.
    expect(installs).toBeGreaterThan(N);
    expect(retries).toBeGreaterThan(0);
    expect(checks).toBeGreaterThan(N * 20);
  });

  it('old pattern (install under i_mmap_rwsem): fs_reclaim and mmap_lock/i_mmap_rwsem inversion reported, real deadlocks, missed breakpoints', async () => {
    const results: UprobeMmapResult[] = [];
    for (const seed of seeds) results.push(await runUprobeMmapScenario({ seed, pattern: 'old' }));
    const t = tally(results);
    const inversion = 'lockdep:circular(&mapping->i_mmap_rwsem,&mm->mmap_lock)';
    // "Lock ordering issues since mmap/munmap are called with mmap_sem held for write unlike
    // register/unregister": lockdep sees it whatever the interleaving.
    expect(t.get(inversion)).toBe(N);
    // "Cannot allocate when i_mmap_mutex is held": a GFP_KERNEL allocation under it (when the
    // walk found a mapping to install into).
    expect(t.get('lockdep:fs_reclaim') ?? 0).toBeGreaterThan(N / 3);
    // The inversion is not only theoretical: hung tasks.
    expect(t.get('deadlock') ?? 0).toBeGreaterThan(N / 2);
    // The late publication against the lockless uprobes_count bail-out.
    expect(t.get('missed-breakpoint') ?? 0).toBeGreaterThan(0);
    // Whatever else happened, the page cache was never written.
    expect(t.get('page-cache-modified')).toBeUndefined();
    const fs = results.flatMap((r) => r.lockdep).find((l) => l.locks.includes('fs_reclaim'))!;
    expect(fs.text).toMatch(/uprobe_write_opcode/);
    expect(fs.text).toMatch(/kswapd/);
    const hung = results.find((r) => r.deadlock.length)!;
    expect(hung.deadlock.join('\n')).toMatch(/blocked on &mm->mmap_lock \(at install_breakpoint\)/);
  });

  it('old pattern with the seed\'s temporary list: no inversion, but mmaps racing a registration miss the breakpoint', async () => {
    const results: UprobeMmapResult[] = [];
    for (const seed of seeds.slice(0, 100)) results.push(await runUprobeMmapScenario({ seed, pattern: 'old', oldWalk: 'temp-list' }));
    const t = tally(results);
    expect(t.get('missed-breakpoint') ?? 0).toBeGreaterThan(20);
    expect([...t.keys()].filter((k) => k.startsWith('lockdep') || k === 'deadlock')).toEqual([]);
    const v = results.flatMap((r) => r.violations).find((x) => x.kind === 'missed-breakpoint')!;
    expect(v.detail).toMatch(/registered, no breakpoint/);
  });

  it('replays: the same seed gives the same result', async () => {
    for (const pattern of ['old', 'fixed'] as const) {
      for (const seed of [3, 26, 77]) {
        const a = await runUprobeMmapScenario({ seed, pattern });
        const b = await runUprobeMmapScenario({ seed, pattern });
        expect(b).toEqual(a);
      }
    }
  });
});
