/**
 * The state the parts of a machine share beyond Machine's public API: which task runs on which
 * vCPU right now, the address spaces and whose registers each engine holds, and work deferred
 * until the engine stops. Machine (src/kernel/machine.ts) owns one; the trap dispatcher, the
 * kernel-call machinery and the process table read and write it.
 *
 * Invariant: `current`/`currentCpu` are set only while a quantum runs (inside `uc_emu_start` or
 * the work done right after it); everything that patches text or changes mappings checks them.
 * There is no host concurrency — the "lock" is that one quantum runs at a time.
 */
import type { Mm } from '../mm/mm.js';
import type { Task } from './task.js';

export class Vcpu {
  readonly id: number;
  current: Task | undefined;
  constructor(id: number) {
    this.id = id;
  }
}

/** A mapping system call's host half, which runs once the engine has stopped. */
export interface DeferredSyscall {
  task: Task;
  name: string;
  args: bigint[];
}

export interface MachineState {
  /** The task whose quantum is running and its vCPU (undefined between quanta). */
  current: Task | undefined;
  currentCpu: Vcpu | undefined;
  /** The running quantum is a lone task's long slice (Machine.runQuantum). */
  loneQuantum: boolean;
  /** A hypercall whose host half must run once the engine has stopped. */
  deferred: DeferredSyscall | undefined;
  /** The last unmapped/protected access the memory hook saw in this run. */
  lastMemFault: { type: number; addr: bigint } | undefined;
  /** Every live address space. */
  readonly mms: Set<Mm>;
  /** The task whose registers each mm's engine holds right now. */
  readonly loaded: Map<Mm, Task>;
  /** Work a trap handler asked for that needs the engine stopped (Machine.runAfterStop). */
  readonly afterStopWork: Array<() => void>;
  /** A new address space, hooked up to the traps and the mm hooks. */
  newMm(): Mm;
  /** Hook an address space (a new one, or a fork's copy) up to the traps and the mm hooks. */
  attachMm(mm: Mm): void;
  /** One runnable guest task and no kernel thread (no preemption needed). */
  runsAlone(): boolean;
  /** Run one quantum of `task` on vCPU `cpu`. */
  runQuantum(task: Task, cpu: number): void;
  /** vCPUs whose task is pinned mid-probe. */
  pinnedCpus(): Set<number>;
  /** One line to the user (guest faults, budget stops). */
  report(line: string): void;
}
