/**
 * struct sighand_struct: a thread group's table of signal actions (struct k_sigaction), shared
 * by CLONE_SIGHAND threads, copied by fork, reset by exec (flush_signal_handlers).
 */
import { NSIG, SIG_DFL, SIG_IGN } from './numbers.js';

export interface KSigaction {
  /** SIG_DFL (0), SIG_IGN (1) or the handler's address. */
  handler: bigint;
  /** Generic SA_* bits (numbers.ts SA). */
  flags: number;
  /** User sa_flags bits this kernel gives no meaning to: kept so oldact reads them back. */
  unknownFlags: number;
  restorer: bigint;
  /** ka_restorer: the restorer rt_sigaction takes as an argument (sparc64), when the target has one. */
  kaRestorer?: bigint;
  /** sa_mask, generic numbering. */
  mask: bigint;
}

const dfl = (): KSigaction => ({ handler: SIG_DFL, flags: 0, unknownFlags: 0, restorer: 0n, mask: 0n });

export class SigHand {
  /** Index = generic signal number (0 unused). */
  readonly action: KSigaction[];

  constructor(from?: SigHand) {
    this.action = Array.from({ length: NSIG + 1 }, (_, i) => (from ? { ...from.action[i]! } : dfl()));
  }

  /** fork without CLONE_SIGHAND: a copy of the parent's table. */
  copy(): SigHand {
    return new SigHand(this);
  }

  /**
   * exec: caught signals go back to their default action; ignored ones stay ignored (the new
   * image cannot have the old handlers, but SIG_IGN carries over, as POSIX asks).
   */
  flushHandlers(): void {
    for (let i = 1; i <= NSIG; i++) {
      const ka = this.action[i]!;
      if (ka.handler !== SIG_IGN) this.action[i] = dfl();
      else this.action[i] = { ...dfl(), handler: SIG_IGN };
    }
  }
}
