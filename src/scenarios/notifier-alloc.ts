/**
 * Seed 004 ("mm/mmu_notifiers: do not speculatively allocate a mmu_notifier_mm", Linux 5.4) as a
 * runnable scenario: notifiers subscribe to an mm that maps files while other threads mmap,
 * munmap and write (COW) in it, and reclaim is modelled by lockdep's fs_reclaim (reclaim's rmap
 * walk takes i_mmap_rwsem and anon_vma locks).
 *
 * 'alloc-under-all-locks' is the reverted e0f3c3f78da2: the subscription allocated with
 * GFP_KERNEL while mm_take_all_locks holds every i_mmap_rwsem — lockdep reports the reclaim
 * deadlock. 'fixed' allocates before, under mmap_lock only, and publishes under all locks.
 * Both must deliver every invalidation to every subscriber registered before it.
 */
import { archFor } from '../../arch/index.js';
import { Rng } from '../kernel/rng.js';
import { Inode } from '../mm/inode.js';
import { MmLocks } from '../mm/locking.js';
import { Mm } from '../mm/mm.js';
import { MmuNotifier, MmuNotifiers } from '../mm/notifier.js';
import { PROT } from '../mm/vma.js';
import { SyncWorld, type LockdepReport } from '../sync/index.js';

export interface NotifierScenarioResult {
  lockdep: LockdepReport[];
  /** Invalidations (start/end pairs) each subscriber saw, and how many it should have. */
  delivered: number[];
  expected: number[];
  /** A start without its end, or an end without a start. */
  unbalanced: number;
  outcome: string;
}

export async function runNotifierScenario(opts: { seed: number; pattern: 'fixed' | 'alloc-under-all-locks'; cpus?: number; subscribers?: number }): Promise<NotifierScenarioResult> {
  const arch = archFor('x86_64')!;
  const world = new SyncWorld(opts.cpus ?? 3, new Rng(opts.seed));
  const locks = new MmLocks(world);
  const notifiers = new MmuNotifiers(locks);
  const mm = new Mm(arch, []);
  notifiers.attach(mm);
  const ps = arch.layout.pageSize;
  const file = new Inode('/lib/libdevice.so', new Uint8Array(4 * ps).fill(0x90), ps);
  const base = 0x40000000n;
  const n = opts.subscribers ?? 2;
  const delivered = new Array<number>(n).fill(0);
  const expected = new Array<number>(n).fill(0);
  const subscribed = new Array<boolean>(n).fill(false);
  let open = 0;
  let unbalanced = 0;
  try {
    // A mapping of the file exists before anyone subscribes: mm_take_all_locks has i_mmap_rwsem to take.
    mm.mmap({ addr: base, len: BigInt(4 * ps), prot: PROT.READ | PROT.EXEC, fixed: true, shared: false, file: { inode: file, pgoff: 0 } });
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
        const mmap = locks.mmapLock(mm);
        await mmap.downWrite(t, 'mmu_notifier_register');
        await notifiers.register(t, mn, mm, opts.pattern);
        subscribed[i] = true;
        mmap.upWrite(t);
      });
    }
    world.spawn('mapper', async (t) => {
      const mmap = locks.mmapLock(mm);
      for (let k = 0; k < 4; k++) {
        await mmap.downWrite(t, 'vm_mmap');
        const addr = base + BigInt((8 + k) * ps);
        mm.mmap({ addr, len: BigInt(ps), prot: PROT.READ | PROT.WRITE, fixed: true, shared: false });
        mmap.upWrite(t);
        await world.sched.tick(t);
        await mmap.downWrite(t, 'vm_munmap');
        const before = subscribed.slice();
        mm.munmap(addr, BigInt(ps));
        before.forEach((s, i) => s && expected[i]!++);
        mmap.upWrite(t);
        await world.sched.tick(t);
      }
    });
    const outcome = await world.run();
    if (open !== 0) unbalanced += Math.abs(open);
    return { lockdep: world.lockdep.reports, delivered, expected, unbalanced, outcome: [outcome, ...world.sched.problems].join('; ') };
  } finally {
    mm.destroy();
  }
}
