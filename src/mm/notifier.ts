/**
 * mmu notifiers: secondary MMUs (device mirrors, KVM, hmm) hear about every change to an
 * address space's mappings — invalidate_range_start/end around unmaps, protection changes, COW
 * copies (a uprobe breakpoint install is one) and fork's write-protect, and release at exit.
 *
 * Registration follows seed 004 (Linux 5.4, "do not speculatively allocate a mmu_notifier_mm"):
 * the caller holds mmap_lock for write, which every writer of the subscription pointer holds, so
 * whether one must be allocated is known without speculation; the allocation happens *before*
 * mm_take_all_locks (GFP_KERNEL may enter reclaim, and reclaim's rmap walk takes the very
 * i_mmap_rwsem / anon_vma locks mm_take_all_locks holds); the publication happens under all locks.
 * `policy.alloc = 'old'` is NOT the code right before that patch (which allocated speculatively
 * before taking any lock: wasteful, not wrong) but the commit it replaced as the real fix, the
 * reverted e0f3c3f78da2 ("mm/mmu_notifier: init notifier if necessary"): the allocation made
 * with GFP_KERNEL under mm_take_all_locks. It stays runnable so lockdep can show why it was
 * reverted (35cfa2b0b491); only the seed 004 scenario sets it.
 *
 * The callback list is walked under SRCU (mmu_notifier_srcu), so a notifier unregistered without
 * release may only be freed after an SRCU grace period (mmu_notifier_call_srcu).
 */
import { RcuHlist, SpinLock, Srcu, LockClass, type ExecContext, type Kthread, type RcuNode, newContext } from '../sync/index.js';
import type { MmLocks } from './locking.js';
import type { InvalidateReason, Mm } from './mm.js';

export interface MmuNotifierOps {
  invalidateRangeStart?(mm: Mm, start: bigint, end: bigint, why: InvalidateReason): void;
  invalidateRangeEnd?(mm: Mm, start: bigint, end: bigint, why: InvalidateReason): void;
  /** The mm is being torn down (exit_mmap). */
  release?(mm: Mm): void;
}

export class MmuNotifier {
  /** Set while subscribed. */
  node: RcuNode<MmuNotifier> | undefined;
  mm: Mm | undefined;
  constructor(
    readonly name: string,
    readonly ops: MmuNotifierOps,
  ) {}
}

/** struct mmu_notifier_subscriptions: allocated per mm on first registration. */
export interface NotifierSubscriptions {
  readonly list: RcuHlist<MmuNotifier>;
  readonly lock: SpinLock;
}

const SUBSCRIPTIONS_LOCK = new LockClass('&subscriptions->lock', 'spinlock');

export class MmuNotifiers {
  readonly srcu: Srcu;
  private readonly subs = new WeakMap<Mm, NotifierSubscriptions>();
  /** Context for invalidations made outside any kernel thread (the guest's own syscalls). */
  private readonly hostCtx: ExecContext = newContext('mm (guest system call)', false);

  /** Where __mmu_notifier_register allocates (see the header): 'fixed' before, 'old' under all locks. */
  policy: { alloc: 'fixed' | 'old' } = { alloc: 'fixed' };

  constructor(private readonly locks: MmLocks) {
    this.srcu = new Srcu(locks.world.sched, 'mmu_notifier_srcu');
  }

  /** Hook this mm's invalidations to its subscribers (once per mm, when it is created). */
  attach(mm: Mm): void {
    mm.invalidateHooks.push({
      rangeStart: (s, e, why) => this.each(mm, (n) => n.ops.invalidateRangeStart?.(mm, s, e, why)),
      rangeEnd: (s, e, why) => this.each(mm, (n) => n.ops.invalidateRangeEnd?.(mm, s, e, why)),
      release: () => {
        this.each(mm, (n) => n.ops.release?.(mm));
        // __mmu_notifier_subscriptions_destroy: the mm is gone, so is its subscription list.
        const subs = this.subs.get(mm);
        if (subs) {
          this.subs.delete(mm);
          this.locks.world.slab.free(this.locks.world.sched.running ?? this.hostCtx, subs, 'mmu_notifier_subscriptions_destroy');
        }
      },
    });
  }

  subscriptions(mm: Mm): NotifierSubscriptions | undefined {
    return this.subs.get(mm);
  }

  /**
   * __mmu_notifier_register. The caller holds `mm`'s mmap_lock for write (checked, as
   * lockdep_assert_held_write does). Returns 0 or -errno.
   */
  async register(t: Kthread, mn: MmuNotifier, mm: Mm): Promise<number> {
    const underAllLocks = this.policy.alloc === 'old';
    const world = this.locks.world;
    if (!this.locks.mmapLock(mm).isWriteHeldBy(t)) {
      world.lockdep.warn(t, 'suspicious-rcu', 'WARNING: __mmu_notifier_register() without mmap_lock held for write', [], 'mmu_notifier_register');
    }
    if (mn.mm) return -16; // -EBUSY: already subscribed somewhere
    let fresh: NotifierSubscriptions | undefined;
    const alloc = (where: string) =>
      world.slab.alloc(t, 'mmu_notifier_subscriptions', 'GFP_KERNEL', where, {
        list: new RcuHlist<MmuNotifier>(),
        lock: new SpinLock(world.sched, SUBSCRIPTIONS_LOCK),
      });
    // Stable while we hold mmap_lock for write: every writer of the pointer holds it too.
    if (!underAllLocks && !this.subs.has(mm)) fresh = alloc('__mmu_notifier_register');
    const taken = await this.locks.takeAllLocks(t, mm);
    if (underAllLocks && !this.subs.has(mm)) fresh = alloc('__mmu_notifier_register (under mm_take_all_locks)');
    if (fresh) this.subs.set(mm, fresh);
    const subs = this.subs.get(mm)!;
    await subs.lock.lock(t, 'mmu_notifier_register');
    mn.node = subs.list.addHead(mn);
    mn.mm = mm;
    subs.lock.unlock(t);
    this.locks.dropAllLocks(t, taken);
    return 0;
  }

  /**
   * mmu_notifier_unregister_no_release: unlink; the caller frees `mn` only after an SRCU grace
   * period (`callSrcu`), since an invalidation may be walking the list right now.
   */
  async unregisterNoRelease(t: Kthread, mn: MmuNotifier): Promise<void> {
    const mm = mn.mm;
    if (!mm || !mn.node) return;
    const subs = this.subs.get(mm)!;
    await subs.lock.lock(t, 'mmu_notifier_unregister_no_release');
    subs.list.del(mn.node);
    subs.lock.unlock(t);
    mn.node = undefined;
    mn.mm = undefined;
  }

  /** mmu_notifier_call_srcu. */
  callSrcu(fn: () => void): void {
    this.srcu.call(fn);
  }

  private each(mm: Mm, fn: (n: MmuNotifier) => void): void {
    const subs = this.subs.get(mm);
    if (!subs) return;
    const ctx = this.locks.world.sched.running ?? this.hostCtx;
    const tok = this.srcu.readLock(ctx);
    try {
      for (const n of subs.list.values()) fn(n);
    } finally {
      this.srcu.readUnlock(ctx, tok);
    }
  }
}
