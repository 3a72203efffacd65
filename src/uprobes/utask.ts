/**
 * Per-task uprobes state (struct uprobe_task) and return instances (struct return_instance).
 *
 * Unlike kprobes' per-CPU control block this belongs to the task: a uprobe's handlers and its
 * out-of-line step run in the task's own context, so the task may be preempted (or migrate)
 * between the breakpoint and the step trap without losing anything.
 */
import type { HitCpu } from '../regs/probe-regs.js';
import type { UprobeRegs } from './regs.js';
import type { Uprobe } from './uprobe.js';
import type { XolArea } from './xol.js';

/** UTASK_RUNNING / UTASK_SSTEP (ACK and TRAPPED are collapsed: the step trap is the ACK). */
export type UtaskState = 'running' | 'sstep';

export interface ReturnInstance {
  /** Holds a reference until the instance is freed. */
  readonly uprobe: Uprobe;
  /** The probed address (ret_handler's `func`). */
  readonly func: bigint;
  /** Stack pointer at entry: arch_uretprobe_is_alive compares against it. */
  readonly stack: bigint;
  /** Where the function really returns. */
  readonly origRetVaddr: bigint;
  /** A tail call: the return address already was the trampoline; one return fires the chain. */
  readonly chained: boolean;
}

export class Utask {
  state: UtaskState = 'running';
  /** The uprobe being stepped (holds a reference) and where it was hit. */
  active: Uprobe | undefined;
  vaddr = 0n;
  /** The XOL slot in use (and its area), its address, and the address of its trailing step trap. */
  xol: XolArea | undefined;
  slot = -1;
  slotAddr = 0n;
  stepTrap = 0n;
  /** Whatever arch pre_xol saved for post_xol/abort_xol. */
  archState: unknown;
  /** Newest last (Linux keeps a list with the newest at the head). */
  returnInstances: ReturnInstance[] = [];
  /**
   * The pt_regs and CPU view of this task's hits, rebound at each one (the hit path allocates
   * neither): valid while the handlers of that hit run. A task is in one hit at a time.
   */
  regs: UprobeRegs | undefined;
  readonly cpu: HitCpu = { engine: undefined!, mem: undefined!, pcAfter: undefined };

  get depth(): number {
    return this.returnInstances.length;
  }
}
