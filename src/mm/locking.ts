/**
 * The locks of address spaces and files, for one machine, and mm_take_all_locks.
 *
 * Lock classes are Linux's (one class per kind of lock, whatever the instance):
 *   &mm->mmap_lock (rwsem)            mmap/munmap/mprotect, breakpoint installs, notifier registration
 *   &mapping->i_mmap_rwsem (rwsem)    the file's reverse map of VMAs (Inode.mappings)
 *   &anon_vma->rwsem (rwsem)          anonymous reverse map (one per mm here)
 *   &mm->page_table_lock (spinlock)   PTEs; seed 002 also uses it to protect mm->hmm
 *   mm_all_locks_mutex (mutex)        serialises mm_take_all_locks callers
 * Reclaim's rmap walk takes i_mmap_rwsem and anon_vma locks: declared to lockdep, so a
 * GFP_KERNEL allocation under either is reported (seeds 001 and 004).
 *
 * The Mm itself stays lock-free for the guest's own system calls, which the machine runs
 * between quanta; kernel threads that work on an mm (registration, notifier setup, the seed
 * scenarios) take these locks in the kernel's order.
 */
import { Mutex, RwSem, SpinLock, type ExecContext, type Kthread, type SyncWorld } from '../sync/index.js';
import { MM_LOCKS } from '../sync/lock-order.js';
import type { Inode } from './inode.js';
import type { Mm } from './mm.js';

/** Linux's lock classes for these locks (defined with the rest of the order in sync/lock-order.ts). */
export const MM_LOCK_CLASSES = MM_LOCKS;

export class MmLocks {
  private readonly mmap = new WeakMap<Mm, RwSem>();
  private readonly anon = new WeakMap<Mm, RwSem>();
  private readonly ptl = new WeakMap<Mm, SpinLock>();
  private readonly iMmapOf = new WeakMap<Inode, RwSem>();
  readonly allLocksMutex: Mutex;

  constructor(readonly world: SyncWorld) {
    this.allLocksMutex = new Mutex(world.sched, MM_LOCK_CLASSES.allLocks);
    world.lockdep.reclaimTakes(MM_LOCK_CLASSES.iMmap);
    world.lockdep.reclaimTakes(MM_LOCK_CLASSES.anonVma);
  }

  mmapLock(mm: Mm): RwSem {
    return get(this.mmap, mm, () => new RwSem(this.world.sched, MM_LOCK_CLASSES.mmapLock));
  }

  anonVmaLock(mm: Mm): RwSem {
    return get(this.anon, mm, () => new RwSem(this.world.sched, MM_LOCK_CLASSES.anonVma));
  }

  pageTableLock(mm: Mm): SpinLock {
    return get(this.ptl, mm, () => new SpinLock(this.world.sched, MM_LOCK_CLASSES.pageTableLock));
  }

  iMmap(inode: Inode): RwSem {
    return get(this.iMmapOf, inode, () => {
      const sem = new RwSem(this.world.sched, MM_LOCK_CLASSES.iMmap);
      this.allIMmap.push(sem);
      return sem;
    });
  }

  /** Every i_mmap_rwsem made so far (one per file that was mapped or walked). */
  private readonly allIMmap: RwSem[] = [];

  /** Does anyone but `ctx` hold or wait for some file's i_mmap_rwsem? */
  rmapBusyFor(ctx: ExecContext): boolean {
    return this.allIMmap.some((s) => s.busyFor(ctx));
  }

  /**
   * mm_take_all_locks(): with mmap_lock held for write, take every lock an rmap walk could take
   * for this mm — the i_mmap_rwsem of each mapped file (once per file) and the anon_vma lock —
   * so no notifier method or rmap walk can run concurrently. Returns what to drop.
   */
  async takeAllLocks(t: Kthread, mm: Mm): Promise<RwSem[]> {
    if (!this.mmapLock(mm).isWriteHeldBy(t)) {
      this.world.lockdep.warn(t, 'suspicious-rcu', 'WARNING: mm_take_all_locks() without mmap_lock held for write', [], 'mm_take_all_locks');
    }
    await this.allLocksMutex.lock(t, 'mm_take_all_locks');
    const taken: RwSem[] = [];
    const files = new Set<Inode>();
    for (const v of mm.vmas) if (v.file) files.add(v.file);
    for (const inode of files) {
      const sem = this.iMmap(inode);
      await sem.downWrite(t, 'vm_lock_mapping', { nestLock: this.allLocksMutex });
      taken.push(sem);
    }
    const anon = this.anonVmaLock(mm);
    await anon.downWrite(t, 'vm_lock_anon_vma', { nestLock: this.allLocksMutex });
    taken.push(anon);
    return taken;
  }

  dropAllLocks(t: Kthread, taken: RwSem[]): void {
    for (const sem of taken.reverse()) sem.upWrite(t, 'mm_drop_all_locks');
    this.allLocksMutex.unlock(t, 'mm_drop_all_locks');
  }
}

function get<K extends object, V>(m: WeakMap<K, V>, k: K, make: () => V): V {
  let v = m.get(k);
  if (!v) m.set(k, (v = make()));
  return v;
}
