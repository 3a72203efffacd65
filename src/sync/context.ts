/**
 * Who is running kernel code: a kernel thread (host async code that may sleep) or a trap context
 * (a probe hit inside a guest run: synchronous, atomic, like Linux's int3 handler with
 * preemption off).
 *
 * The counters here are Linux's preempt_count and rcu_read_lock nesting, kept per context; a
 * context that is atomic cannot leave its vCPU (the scheduler pins it), which is what makes
 * "a vCPU inside a read-side section" and "this context is inside one" the same thing.
 */
import type { HeldLock } from './lockdep.js';

export interface ExecContext {
  /** For reports: "kthread uprobe_register#3", "fib[1] (trap)". */
  readonly name: string;
  /** False for trap contexts: they run inside a hook and can never wait. */
  readonly canSleep: boolean;
  /** preempt_count: spinlocks held + explicit preempt_disable + RCU (classic) read sections. */
  preempt: number;
  /** rcu_read_lock nesting depth. */
  rcuDepth: number;
  /** Locks held, innermost last (lockdep's held_locks). */
  readonly held: HeldLock[];
  /** The vCPU this context runs on right now (undefined while blocked or not started). */
  cpu: number | undefined;
  /** Function names entered with `enter`, innermost last: lockdep reports show them as the code path. */
  readonly frames: string[];
}

export function newContext(name: string, canSleep: boolean, cpu?: number): ExecContext {
  return { name, canSleep, preempt: 0, rcuDepth: 0, held: [], cpu, frames: [] };
}

/** The code path of a context for reports: "register_kprobe > arm_kprobe". */
export function codePath(ctx: ExecContext, where?: string): string {
  const parts = where ? [...ctx.frames, where] : ctx.frames;
  return parts.length ? parts.join(' > ') : '(top level)';
}
