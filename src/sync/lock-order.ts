/**
 * The lock classes of the probe cores and the order they are taken in, as data.
 *
 * uprobes follow mainline's hierarchy (kernel/events/uprobes.c, v5.8 baseline in
 * reference/linux-uprobes-arch.md §1.11), not the 2011 proposal of seed 001
 * (i_mutex > mmap_sem > i_mmap_mutex > uprobes_mmap_mutex > treelock). That proposal had two
 * defects its own thread pointed out and mainline removed: mmap_uprobe() runs with mmap_sem
 * already held and would have needed i_mutex (taken *outside* mmap_sem by register) — an
 * inversion; and registration allocated while holding i_mmap_mutex, which reclaim takes. Mainline
 * drops i_mutex for a per-uprobe register_rwsem, only *reads* the rmap under i_mmap_rwsem to
 * build a preallocated list, and takes mmap_lock per mm after dropping it. The seed 001 scenario
 * (src/scenarios) runs both and shows lockdep's reports for the old one.
 *
 * kprobes follow mainline (reference/linux-kprobes.md §2): kprobe_mutex outermost, then the CPU
 * hotplug lock, jump_label_lock, text_mutex; the insn slot cache's own mutex nests inside
 * kprobe_mutex. The trap path takes none of them: it walks the table under RCU.
 *
 * `primeLockOrder` teaches lockdep these orders up front (Linux learns them by running; we also
 * want a violation reported on the first run that makes it, even if the documented path has not
 * run yet in this machine). Every Machine does it when it is made (src/mm/kernel-locking.ts);
 * a report shows the real acquisition of an order once one has been seen.
 */
import { LockClass, type Lockdep } from './lockdep.js';

/** Address-space and file locks (src/mm/locking.ts creates the instances). */
export const MM_LOCKS = {
  mmapLock: new LockClass('&mm->mmap_lock', 'rwsem'),
  iMmap: new LockClass('&mapping->i_mmap_rwsem', 'rwsem'),
  anonVma: new LockClass('&anon_vma->rwsem', 'rwsem'),
  pageTableLock: new LockClass('&mm->page_table_lock', 'spinlock'),
  allLocks: new LockClass('mm_all_locks_mutex', 'mutex'),
} as const;

export const KPROBE_LOCKS = {
  kprobeMutex: new LockClass('kprobe_mutex', 'mutex'),
  cpuHotplug: new LockClass('cpu_hotplug_lock', 'rwsem'),
  jumpLabel: new LockClass('jump_label_mutex', 'mutex'),
  textMutex: new LockClass('text_mutex', 'mutex'),
  insnSlotCache: new LockClass('&c->mutex (kprobe_insn_cache)', 'mutex'),
} as const;

export const UPROBE_LOCKS = {
  registerRwsem: new LockClass('&uprobe->register_rwsem', 'rwsem'),
  dupMmapSem: new LockClass('dup_mmap_sem', 'rwsem'),
  iMmap: MM_LOCKS.iMmap,
  mmapLock: MM_LOCKS.mmapLock,
  uprobesMmapMutex: new LockClass('uprobes_mmap_mutex', 'mutex'),
  consumerRwsem: new LockClass('&uprobe->consumer_rwsem', 'rwsem'),
  treelock: new LockClass('uprobes_treelock', 'spinlock'),
  pageTableLock: MM_LOCKS.pageTableLock,
} as const;

/** Outermost first; each chain is one path through the code. */
export const LOCK_ORDER: ReadonlyArray<{ path: string; chain: readonly LockClass[] }> = [
  { path: 'register_kprobe > arm_kprobe', chain: [KPROBE_LOCKS.kprobeMutex, KPROBE_LOCKS.cpuHotplug, KPROBE_LOCKS.jumpLabel, KPROBE_LOCKS.textMutex] },
  { path: 'register_kprobe > get_insn_slot', chain: [KPROBE_LOCKS.kprobeMutex, KPROBE_LOCKS.insnSlotCache] },
  {
    path: 'uprobe_register > register_for_each_vma > install_breakpoint',
    chain: [UPROBE_LOCKS.registerRwsem, UPROBE_LOCKS.dupMmapSem, UPROBE_LOCKS.mmapLock, UPROBE_LOCKS.pageTableLock],
  },
  { path: 'uprobe_register > build_map_info', chain: [UPROBE_LOCKS.registerRwsem, UPROBE_LOCKS.dupMmapSem, UPROBE_LOCKS.iMmap] },
  { path: 'uprobe_register > consumer_add', chain: [UPROBE_LOCKS.registerRwsem, UPROBE_LOCKS.consumerRwsem] },
  { path: 'vm_mmap > uprobe_mmap > build_probe_list', chain: [UPROBE_LOCKS.mmapLock, UPROBE_LOCKS.uprobesMmapMutex, UPROBE_LOCKS.treelock] },
  { path: 'uprobe_mmap > filter_chain', chain: [UPROBE_LOCKS.mmapLock, UPROBE_LOCKS.uprobesMmapMutex, UPROBE_LOCKS.consumerRwsem] },
  // Every mapping change links/unlinks file VMAs under the caller's mmap_lock (seed 001's
  // "mmap/munmap are called with mmap_sem held for write").
  { path: 'mmap_region > vma_link', chain: [MM_LOCKS.mmapLock, MM_LOCKS.iMmap] },
  // Seed 002: hmm_get_or_create under mmap_lock (write), mm->hmm under page_table_lock.
  { path: 'hmm_get_or_create', chain: [MM_LOCKS.mmapLock, MM_LOCKS.pageTableLock] },
  // Seed 004: __mmu_notifier_register under mmap_lock (write), then mm_take_all_locks.
  { path: '__mmu_notifier_register > mm_take_all_locks > vm_lock_mapping', chain: [MM_LOCKS.mmapLock, MM_LOCKS.allLocks, MM_LOCKS.iMmap] },
  { path: '__mmu_notifier_register > mm_take_all_locks > vm_lock_anon_vma', chain: [MM_LOCKS.mmapLock, MM_LOCKS.allLocks, MM_LOCKS.anonVma] },
];

/** Record every documented order as lockdep dependencies (no report: the hierarchy is acyclic). */
export function primeLockOrder(lockdep: Lockdep): void {
  for (const { path, chain } of LOCK_ORDER) {
    for (let i = 1; i < chain.length; i++) lockdep.declareOrder(chain[i - 1]!, chain[i]!, path);
  }
}
