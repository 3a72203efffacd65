/**
 * Locking as Linux does it, in every run of a Machine (one call from its constructor):
 *
 * - lockdep is primed with the documented hierarchy (src/sync/lock-order.ts: kprobes, uprobes,
 *   mmap_lock → i_mmap_rwsem, and the orders the four seeds are about), so the first run that
 *   takes two locks the other way round is reported, even if the documented path has not run
 *   in this machine yet;
 * - every link and unlink of a file VMA (mmap, munmap, mprotect splits, fork, exit) takes the
 *   file's i_mmap_rwsem for write, in the context of the system call that does it (under its
 *   mmap_lock: lockdep learns mmap_lock → i_mmap_rwsem from real runs);
 * - a guest mapping system call does not start while a kernel thread holds or waits for an
 *   i_mmap_rwsem: in Linux it would sleep on it inside vma_link; here the call sleeps before it
 *   starts and is retried (the machine's mapping-lock hooks), which is the same wait without
 *   undoing half a mapping. exit_mmap cannot be retried: its unlinks wait (deferred) until the
 *   lock is free, the dead mm's VMAs staying in the rmap meanwhile — walkers skip dead mms.
 */
import { UniprobeError } from '../errors.js';
import { newContext, primeLockOrder, type ExecContext, type Lockdep, type LockdepReport, type RwSem, type SyncWorld } from '../sync/index.js';
import type { Inode } from './inode.js';
import type { MmLocks } from './locking.js';
import type { Mm } from './mm.js';
import type { RmapLock } from './rmap-lock.js';

/** What of the Machine this needs (structural: mm/ does not import kernel/). */
export interface LockingMachine {
  readonly sync: SyncWorld;
  readonly mmLocks: MmLocks;
  readonly mmAttachHooks: Array<(mm: Mm) => void>;
  readonly mappingLockHooks: Array<{ tryLock(ctx: ExecContext, syscall: string, mm: Mm): boolean; unlock(ctx: ExecContext, syscall: string, mm: Mm): void }>;
  readonly mappingContext: ExecContext | undefined;
}

export class KernelLocking implements RmapLock {
  /** Context of rmap changes made by host code outside any system call (exit, teardown). */
  private readonly hostCtx: ExecContext = newContext('mm (host)', true);
  /** Unlinks waiting for their i_mmap_rwsem (exit_mmap asleep on it). */
  private readonly pending: Array<{ sem: RwSem; where: string; change: () => void }> = [];

  constructor(private readonly m: LockingMachine) {
    primeLockOrder(m.sync.lockdep);
    if (watch.on) watch.lockdeps.push(m.sync.lockdep);
    m.mmAttachHooks.push((mm) => this.adopt(mm));
    m.mappingLockHooks.push({
      tryLock: (ctx) => this.pending.length === 0 && !m.mmLocks.rmapBusyFor(ctx),
      unlock: () => undefined,
    });
    m.sync.sched.betweenSteps.push(() => this.flush());
  }

  /** Put an mm's rmap changes under i_mmap_rwsem (every mm the machine attaches; scenarios' own). */
  adopt(mm: Mm): void {
    mm.rmapLock = this;
  }

  link(inode: Inode, where: string, change: () => void): void {
    const ctx = this.m.mappingContext ?? this.hostCtx;
    const sem = this.m.mmLocks.iMmap(inode);
    if (sem.isWriteHeldBy(ctx)) return change(); // the caller (a kernel thread) took it
    if (!sem.tryDownWrite(ctx, where, { blocking: true })) {
      throw new UniprobeError('INTERNAL', `${where}: i_mmap_rwsem of ${inode.path} is busy in a path that cannot sleep`);
    }
    try {
      change();
    } finally {
      sem.upWrite(ctx, where);
    }
  }

  unlink(inode: Inode, where: string, change: () => void): void {
    const ctx = this.m.mappingContext ?? this.hostCtx;
    const sem = this.m.mmLocks.iMmap(inode);
    if (sem.isWriteHeldBy(ctx)) return change();
    if (this.pending.length > 0 || !sem.tryDownWrite(ctx, where, { blocking: true })) {
      // exit_mmap would sleep here; keep the order of unlinks.
      this.pending.push({ sem, where, change });
      return;
    }
    try {
      change();
    } finally {
      sem.upWrite(ctx, where);
    }
  }

  /** Between scheduler steps: run the waiting unlinks whose lock is free now, in order. */
  private flush(): void {
    while (this.pending.length > 0) {
      const p = this.pending[0]!;
      if (!p.sem.tryDownWrite(this.hostCtx, p.where, { blocking: true })) return;
      this.pending.shift();
      try {
        p.change();
      } finally {
        p.sem.upWrite(this.hostCtx, p.where);
      }
    }
  }
}

/** One call from Machine's constructor. */
export function setupKernelLocking(m: LockingMachine): KernelLocking {
  return new KernelLocking(m);
}

/**
 * Machines' lockdep reports, watched (the test suite's setup turns this on around every test, so
 * any report a Machine makes fails the test unless the test said it provokes them).
 */
const watch: { on: boolean; lockdeps: Lockdep[]; expected: WeakSet<Lockdep> } = { on: false, lockdeps: [], expected: new WeakSet() };

export function startLockdepWatch(): void {
  watch.on = true;
  watch.lockdeps = [];
}

/** A scenario or test that provokes reports on purpose (a seed's old variant). */
export function expectLockdepReports(l: Lockdep): void {
  watch.expected.add(l);
}

/** Stop watching; the reports made by Machines that did not expect any. */
export function stopLockdepWatch(): LockdepReport[] {
  watch.on = false;
  const out = watch.lockdeps.filter((l) => !watch.expected.has(l)).flatMap((l) => l.reports);
  watch.lockdeps = [];
  return out;
}

/** `uniprobe run --lockdep`: each report on stderr as it is made, kernel-style lines. */
export function formatLockdepReport(r: LockdepReport): string[] {
  return r.text.split('\n').map((l) => `uniprobe: lockdep: ${l}`);
}
