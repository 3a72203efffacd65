/**
 * Seed 004 ("mm/mmu_notifiers: do not speculatively allocate a mmu_notifier_mm", Linux 5.4) on
 * the engine: drivers subscribe mmu notifiers to a process's mm while another thread maps and
 * unmaps in it; reclaim is lockdep's fs_reclaim (its rmap walk takes i_mmap_rwsem and the
 * anon_vma lock).
 *
 * The 'old' variant models the REVERTED commit e0f3c3f78da2 (allocation with GFP_KERNEL under
 * mm_take_all_locks), not the code right before the seed's patch: that one allocated
 * speculatively before taking any lock, which is wasteful but not a bug (see src/mm/notifier.ts).
 * 'fixed' allocates before mm_take_all_locks, under mmap_lock only, and publishes under all locks.
 *
 * Actors: kernel threads ("driver") registering one notifier each under the mm's mmap_lock
 * (write); a "mapper" thread doing anonymous mmap/munmap in the same mm under mmap_lock. The mm is
 * a real process's (fib-nolibc, loaded, not run): mm_take_all_locks takes its ELF's i_mmap_rwsem.
 * Invariants: no lockdep report; every munmap made after a driver subscribed reaches it exactly
 * once, start and end balanced.
 */
import { MmuNotifier } from '../mm/notifier.js';
import { PROT } from '../mm/vma.js';
import { fixture, scenarioMachine } from './machine.js';
import { deadlockFinding, lockdepFindings, problemFindings, type Finding, type RunOptions, type Scenario, type ScenarioRun } from './scenario.js';

async function run(o: RunOptions): Promise<ScenarioRun> {
  const { m } = scenarioMachine({ seed: o.seed, cpus: o.cpus ?? 3 });
  try {
    const program = fixture('fib-nolibc');
    const mm = m.spawn(program, [program]).mm;
    m.notifiers.policy.alloc = o.variant;
    const world = m.sync;
    const ps = mm.pageSize;
    const n = 2;
    const delivered = new Array<number>(n).fill(0);
    const expected = new Array<number>(n).fill(0);
    const subscribed = new Array<boolean>(n).fill(false);
    let open = 0;
    let unbalanced = 0;
    const mmap = m.mmLocks.mmapLock(mm);
    for (let i = 0; i < n; i++) {
      world.spawn(`driver${i}`, async (t) => {
        const mn = new MmuNotifier(`mirror${i}`, {
          invalidateRangeStart: () => {
            delivered[i]!++;
            open++;
          },
          invalidateRangeEnd: () => {
            if (--open < 0) unbalanced++;
          },
        });
        await mmap.downWrite(t, 'mmu_notifier_register');
        const rc = await m.notifiers.register(t, mn, mm);
        if (rc) throw new Error(`mmu_notifier_register = ${rc}`);
        subscribed[i] = true;
        mmap.upWrite(t, 'mmu_notifier_register');
      });
    }
    const base = 0x40000000n;
    world.spawn('mapper', async (t) => {
      for (let k = 0; k < 4; k++) {
        const addr = base + BigInt(k * ps);
        await mmap.downWrite(t, 'vm_mmap');
        mm.mmap({ addr, len: BigInt(ps), prot: PROT.READ | PROT.WRITE, fixed: true, shared: false });
        mmap.upWrite(t, 'vm_mmap');
        await world.sched.tick(t);
        await mmap.downWrite(t, 'vm_munmap');
        const before = subscribed.slice();
        mm.munmap(addr, BigInt(ps));
        before.forEach((s, i) => s && expected[i]!++);
        mmap.upWrite(t, 'vm_munmap');
        await world.sched.tick(t);
      }
    });
    await world.run();
    if (open !== 0) unbalanced += Math.abs(open);
    const findings: Finding[] = [...lockdepFindings(world.lockdep.reports), ...problemFindings(world.sched.problems), ...deadlockFinding(world.deadlocks.flat())];
    for (let i = 0; i < n; i++) {
      if (delivered[i] !== expected[i]) findings.push({ kind: 'lost-invalidation', title: 'a subscriber did not see every invalidation made after it subscribed', detail: [`mirror${i}: ${delivered[i]} delivered, ${expected[i]} expected`] });
    }
    if (unbalanced) findings.push({ kind: 'lost-invalidation', title: 'invalidate_range_start/end unbalanced', detail: [`${unbalanced} unmatched`] });
    return { seed: o.seed, variant: o.variant, findings, stats: { invalidations: delivered.reduce((a, b) => a + b, 0), subscriptions: n } };
  } finally {
    m.close();
  }
}

export const notifierAlloc: Scenario = {
  name: 'notifier-alloc',
  seed: '004',
  summary: 'mmu_notifier registration allocating under mm_take_all_locks (reclaim deadlock), as the reverted e0f3c3f78da2 did',
  cpus: 3,
  run,
};
