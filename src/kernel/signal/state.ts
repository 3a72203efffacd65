/**
 * The per-task and per-thread-group signal state Linux keeps in task_struct (blocked,
 * pending, sas_ss_*, saved_sigmask) and in signal_struct/sighand_struct (shared_pending, the
 * action table).
 */
import { AltStack } from './altstack.js';
import { SigPending } from './pending.js';
import { SigHand } from './sighand.js';
import { GSIG } from './numbers.js';

export class TaskSignals {
  /** The blocked mask (generic numbering). */
  blocked = 0n;
  /** Signals sent to this thread (tkill, tgkill, faults). */
  readonly pending = new SigPending();
  altstack = new AltStack();
  /**
   * rt_sigsuspend's mask to put back (TIF_RESTORE_SIGMASK): what the handler's frame saves and
   * what the mask becomes again when no handler runs. undefined = none.
   */
  savedMask: bigint | undefined;
  /** rt_sigsuspend is sleeping (its retry must not save the mask again). */
  suspended = false;
  /** rt_sigtimedwait sleeping: the set it waits for, and the mask to put back afterwards. */
  waitSet: bigint | undefined;
  waitBlocked = 0n;
  /** Signals sent while delivery was held (uprobe_deny_signal): delivered once the hold ends. */
  held = false;
}

export class ProcessSignals {
  sighand = new SigHand();
  /** Signals sent to the whole thread group (kill). */
  readonly shared = new SigPending();
  /** The signal the parent gets when this process exits (clone's low byte; fork: SIGCHLD). */
  exitSignal: number = GSIG.SIGCHLD;
}

/** signal_pending(): a signal `task` does not block waits for it (thread-directed or group-wide). */
export function signalPending(task: { signal: TaskSignals; process: { signal: ProcessSignals } }): boolean {
  return ((task.signal.pending.set | task.process.signal.shared.set) & ~task.signal.blocked) !== 0n;
}
