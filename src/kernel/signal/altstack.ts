/**
 * The alternate signal stack (task->sas_ss_*): sigaltstack(2), on_sig_stack, and what uc_stack
 * records in a frame.
 */
import type { SignalStack } from '../../../arch/types.js';
import { E } from '../errno.js';
import { SS_AUTODISARM, SS_DISABLE, SS_ONSTACK } from './numbers.js';

export class AltStack {
  sp = 0n;
  size = 0n;
  /** SS_AUTODISARM as given (the stack is disarmed while a handler runs on it). */
  flags = 0;

  copy(): AltStack {
    const a = new AltStack();
    a.sp = this.sp;
    a.size = this.size;
    a.flags = this.flags;
    return a;
  }

  reset(): void {
    this.sp = 0n;
    this.size = 0n;
    this.flags = 0;
  }

  /** on_sig_stack: `sp` lies inside the alternate stack (it grows down: the top is excluded). */
  onStack(sp: bigint): boolean {
    return this.size !== 0n && sp > this.sp && sp - this.sp <= this.size;
  }

  /** sas_ss_flags: what sigaltstack's old value and uc_stack report. */
  ssFlags(sp: bigint): number {
    if (this.size === 0n) return SS_DISABLE;
    return (this.onStack(sp) ? SS_ONSTACK : 0) | this.flags;
  }

  /** The stack_t as uc_stack records it. */
  record(sp: bigint): SignalStack {
    return { sp: this.sp, flags: this.ssFlags(sp), size: this.size };
  }

  /**
   * do_sigaltstack's checks and update: EPERM while running on the stack, EINVAL for unknown
   * flags, ENOMEM below MINSIGSTKSZ. Returns 0 or an errno.
   */
  set(ss: SignalStack, sp: bigint, minSize: number): number {
    if (this.onStack(sp)) return E.EPERM;
    const mode = ss.flags & ~SS_AUTODISARM;
    if (mode !== SS_DISABLE && mode !== SS_ONSTACK && mode !== 0) return E.EINVAL;
    if (mode === SS_DISABLE) {
      this.reset();
      return 0;
    }
    if (ss.size < BigInt(minSize)) return E.ENOMEM;
    this.sp = ss.sp;
    this.size = ss.size;
    this.flags = ss.flags & SS_AUTODISARM;
    return 0;
  }
}
