/**
 * struct sigpending: a set of pending signals and the queue of their siginfo. As in Linux, a
 * standard signal (< SIGRTMIN) is queued once — a second one while the first is pending is
 * merged into it — while each real-time signal is queued with its own siginfo.
 */
import { SIGRTMIN, sigbit } from './numbers.js';

/** The siginfo fields this kernel fills in (generic signal number). */
export interface SigInfo {
  signo: number;
  code: number;
  errno?: number;
  /** _kill / _sigchld: the sender / the child, and its uid. */
  pid?: number;
  uid?: number;
  /** _sigchld: exit code or signal, user and system time (clock ticks). */
  status?: number;
  utime?: bigint;
  stime?: bigint;
  /** _sigfault: the faulting address. */
  addr?: bigint;
}

export class SigPending {
  set = 0n;
  readonly queue: SigInfo[] = [];

  /** Queue `info` (a standard signal already pending is merged: nothing more is queued). */
  add(info: SigInfo): void {
    const bit = sigbit(info.signo);
    if (info.signo < SIGRTMIN && this.set & bit) return;
    this.set |= bit;
    this.queue.push(info);
  }

  /** Take the first queued instance of `sig`; the bit stays while more instances are queued. */
  take(sig: number): SigInfo {
    const i = this.queue.findIndex((q) => q.signo === sig);
    const info = i >= 0 ? this.queue.splice(i, 1)[0]! : { signo: sig, code: 0 };
    if (!this.queue.some((q) => q.signo === sig)) this.set &= ~sigbit(sig);
    return info;
  }

  /** Forget every instance of the signals in `mask` (a signal set to be ignored, SIGCONT vs stops). */
  flush(mask: bigint): void {
    this.set &= ~mask;
    for (let i = this.queue.length - 1; i >= 0; i--) if (mask & sigbit(this.queue[i]!.signo)) this.queue.splice(i, 1);
  }

  clear(): void {
    this.set = 0n;
    this.queue.length = 0;
  }
}
