/**
 * A device mirror of an address space (the `struct hmm` of seed 002): at most one per mm, found
 * or created by `getOrCreate`, reference counted, subscribed to the mm's notifiers, freed after
 * an SRCU grace period once the last reference goes.
 *
 * `pattern: 'fixed'` is Linux 5.3's "Simplify hmm_get_or_create and make it reliable": the caller
 * holds mmap_lock for write, so no second creator can race; the lookup runs under
 * page_table_lock with kref_get_unless_zero, which skips an object whose last reference is gone
 * but whose release has not yet unpublished it; the pointer is cleared in the release itself.
 *
 * `policy.getOrCreate = 'old'` is the code that patch replaced (5.2): a lockless lookup
 * (mm_get_hmm), an allocation, then a compare-and-publish under page_table_lock that gives up
 * ("returns NULL") when the slot is taken, and a release that unsubscribes before it clears the
 * pointer. Its caller already held mmap_lock for write, as the old comment required ("We should
 * only get here if hold the mmap_sem in write mode"), and it called __mmu_notifier_register under
 * it — so two creators never raced; what still took the slot was a *dying* mirror, whose last
 * reference was gone but which the release had not unpublished yet. That false failure is
 * the seed's bug, and the only one modelled (no race between creators is invented).
 */
import { Kref, type Kthread } from '../sync/index.js';
import type { MmLocks } from './locking.js';
import type { Mm } from './mm.js';
import { MmuNotifier, type MmuNotifiers } from './notifier.js';

export class Mirror {
  readonly kref = new Kref('hmm');
  readonly notifier: MmuNotifier;
  invalidations = 0;
  dead = false;
  constructor(readonly mm: Mm) {
    this.notifier = new MmuNotifier('hmm', { invalidateRangeStart: () => void this.invalidations++ });
  }
}

export type MirrorPattern = 'fixed' | 'old';

export class Mirrors {
  /** Which hmm_get_or_create / hmm_free (see the header). */
  policy: { getOrCreate: MirrorPattern } = { getOrCreate: 'fixed' };
  /** mm->hmm, protected by the mm's page_table_lock. */
  private readonly slot = new WeakMap<Mm, Mirror>();

  constructor(
    private readonly locks: MmLocks,
    private readonly notifiers: MmuNotifiers,
  ) {}

  current(mm: Mm): Mirror | undefined {
    return this.slot.get(mm);
  }

  /** hmm_get_or_create: a referenced mirror, or undefined on failure. */
  async getOrCreate(t: Kthread, mm: Mm): Promise<Mirror | undefined> {
    // lockdep_assert_held_exclusive(&mm->mmap_sem): both variants' callers hold it.
    if (!this.locks.mmapLock(mm).isWriteHeldBy(t)) {
      this.locks.world.lockdep.warn(t, 'suspicious-rcu', 'WARNING: hmm_get_or_create() without mmap_lock held for write', [], 'hmm_get_or_create');
    }
    return this.policy.getOrCreate === 'fixed' ? this.getOrCreateFixed(t, mm) : this.getOrCreateOld(t, mm);
  }

  /** hmm_put. */
  async put(t: Kthread, m: Mirror): Promise<void> {
    let released = false;
    m.kref.put(() => (released = true));
    if (released) await (this.policy.getOrCreate === 'fixed' ? this.releaseFixed(t, m) : this.releaseOld(t, m));
  }

  private async getOrCreateFixed(t: Kthread, mm: Mm): Promise<Mirror | undefined> {
    const w = this.locks.world;
    const ptl = this.locks.pageTableLock(mm);
    await ptl.lock(t, 'hmm_get_or_create');
    const cur = this.slot.get(mm);
    if (cur && cur.kref.getUnlessZero()) {
      ptl.unlock(t);
      return cur;
    }
    ptl.unlock(t);
    await w.sched.point(t, 'hmm:before-alloc');
    const m = w.slab.alloc(t, 'hmm', 'GFP_KERNEL', 'hmm_get_or_create', new Mirror(mm));
    if ((await this.notifiers.register(t, m.notifier, mm)) !== 0) {
      w.slab.free(t, m, 'hmm_get_or_create');
      return undefined;
    }
    // mmap_lock (write) guarantees no other creator published meanwhile: the slot is empty or
    // holds a dying mirror whose release will see it is no longer current.
    await ptl.lock(t, 'hmm_get_or_create');
    this.slot.set(mm, m);
    ptl.unlock(t);
    return m;
  }

  private async releaseFixed(t: Kthread, m: Mirror): Promise<void> {
    const mm = m.mm;
    const ptl = this.locks.pageTableLock(mm);
    await ptl.lock(t, 'hmm_free');
    if (this.slot.get(mm) === m) this.slot.delete(mm);
    ptl.unlock(t);
    await this.locks.world.sched.point(t, 'hmm:release');
    await this.notifiers.unregisterNoRelease(t, m.notifier);
    m.dead = true;
    this.notifiers.callSrcu(() => this.locks.world.slab.free(this.locks.world.softirqCtx, m, 'hmm_free_rcu'));
  }

  private async getOrCreateOld(t: Kthread, mm: Mm): Promise<Mirror | undefined> {
    const w = this.locks.world;
    // mm_get_hmm: READ_ONCE(mm->hmm) and kref_get_unless_zero, no lock.
    const seen = this.slot.get(mm);
    if (seen && seen.kref.getUnlessZero()) return seen;
    await w.sched.point(t, 'hmm:before-alloc');
    const m = w.slab.alloc(t, 'hmm', 'GFP_KERNEL', 'hmm_get_or_create', new Mirror(mm));
    const ptl = this.locks.pageTableLock(mm);
    await ptl.lock(t, 'hmm_get_or_create');
    let cleanup = false;
    if (!this.slot.has(mm)) this.slot.set(mm, m);
    else cleanup = true;
    ptl.unlock(t);
    if (cleanup) {
      // The false failure: somebody else's mirror (live or dying) occupied the slot.
      w.slab.free(t, m, 'hmm_get_or_create');
      return undefined;
    }
    // __mmu_notifier_register under the caller's mmap_lock (write).
    const rc = await this.notifiers.register(t, m.notifier, mm);
    if (rc !== 0) {
      await ptl.lock(t, 'hmm_get_or_create');
      if (this.slot.get(mm) === m) this.slot.delete(mm);
      ptl.unlock(t);
      w.slab.free(t, m, 'hmm_get_or_create');
      return undefined;
    }
    return m;
  }

  private async releaseOld(t: Kthread, m: Mirror): Promise<void> {
    const mm = m.mm;
    // Unsubscribe first, unpublish after: in between, the dead mirror still occupies mm->hmm.
    await this.notifiers.unregisterNoRelease(t, m.notifier);
    await this.locks.world.sched.point(t, 'hmm:release');
    const ptl = this.locks.pageTableLock(mm);
    await ptl.lock(t, 'hmm_free');
    if (this.slot.get(mm) === m) this.slot.delete(mm);
    ptl.unlock(t);
    m.dead = true;
    this.notifiers.callSrcu(() => this.locks.world.slab.free(this.locks.world.softirqCtx, m, 'hmm_free_rcu'));
  }
}
