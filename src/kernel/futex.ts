/**
 * Futexes (kernel/futex/): wait queues keyed by a user address, with Linux's value check under
 * the hash-bucket lock (here: nothing runs between the check and the queueing, the host half of
 * a system call is atomic), FUTEX_WAKE/REQUEUE/CMP_REQUEUE/WAKE_OP/WAIT_BITSET/WAKE_BITSET, and
 * timeouts on the guest's clock.
 *
 * Keys: (address space, address) for private futexes and, as an approximation, for shared ones
 * too — a shared futex in memory mapped by two processes at different addresses is not matched
 * (Linux keys those by the page). Documented in README "The guest's filesystem" / differences.
 */
import type { Mm } from '../mm/mm.js';
import type { Task } from './task.js';

export interface FutexWaiter {
  task: Task;
  mm: Mm;
  addr: bigint;
  bitset: number;
  /** Set by a wake; the sleeping call then returns 0. */
  woken: boolean;
  timedOut: boolean;
  /** The scheduler's wake-up for the sleeping task (set while it sleeps). */
  wake: (() => void) | undefined;
  cancelTimer: (() => void) | undefined;
}

export class FutexTable {
  private readonly queues = new Map<Mm, Map<bigint, FutexWaiter[]>>();

  private queue(mm: Mm, addr: bigint, create: boolean): FutexWaiter[] | undefined {
    let byAddr = this.queues.get(mm);
    if (!byAddr) {
      if (!create) return undefined;
      byAddr = new Map();
      this.queues.set(mm, byAddr);
    }
    let q = byAddr.get(addr);
    if (!q && create) {
      q = [];
      byAddr.set(addr, q);
    }
    return q;
  }

  enqueue(w: FutexWaiter): void {
    this.queue(w.mm, w.addr, true)!.push(w);
  }

  remove(w: FutexWaiter): void {
    const q = this.queue(w.mm, w.addr, false);
    if (!q) return;
    const i = q.indexOf(w);
    if (i >= 0) q.splice(i, 1);
    if (q.length === 0) this.queues.get(w.mm)?.delete(w.addr);
  }

  /** Wake up to `n` waiters on (mm, addr) whose bitset meets `bitset`, in queue order; how many. */
  wake(mm: Mm, addr: bigint, n: number, bitset = 0xffffffff): number {
    const q = this.queue(mm, addr, false);
    if (!q) return 0;
    let woken = 0;
    for (const w of [...q]) {
      if (woken >= n) break;
      if (w.task.state === 'dead') {
        this.remove(w); // its task was killed while it waited
        continue;
      }
      if ((w.bitset & bitset) === 0) continue;
      this.remove(w);
      w.woken = true;
      w.cancelTimer?.();
      w.wake?.();
      woken++;
    }
    return woken;
  }

  /** Move up to `n` waiters from addr to addr2 (FUTEX_REQUEUE); how many moved. */
  requeue(mm: Mm, addr: bigint, addr2: bigint, n: number): number {
    const q = this.queue(mm, addr, false);
    if (!q) return 0;
    let moved = 0;
    for (const w of [...q]) {
      if (moved >= n) break;
      this.remove(w);
      w.addr = addr2;
      this.enqueue(w);
      moved++;
    }
    return moved;
  }

  /** An address space went away: its waiters are gone with their tasks. */
  dropMm(mm: Mm): void {
    this.queues.delete(mm);
  }
}
