/** The kernel's synchronisation layer: see each module for the Linux behaviour it reproduces. */
export { newContext, codePath, type ExecContext } from './context.js';
export { Lockdep, LockClass, type LockdepReport, type HeldLock, type Gfp } from './lockdep.js';
export { Scheduler, Kthread, WaitQueue, type GuestWork, type Step, type SwitchRule, type Random } from './scheduler.js';
export { Mutex, RwSem } from './mutex.js';
export { SpinLock } from './spinlock.js';
export { Rcu, Srcu } from './rcu.js';
export { Kref } from './kref.js';
export { Slab, UseAfterFree } from './slab.js';
export { RcuHlist, RcuHashTable, type RcuNode } from './rculist.js';
export { SyncWorld } from './world.js';
export { MM_LOCKS, KPROBE_LOCKS, UPROBE_LOCKS, LOCK_ORDER, primeLockOrder } from './lock-order.js';
