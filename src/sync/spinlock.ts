/**
 * spinlock_t: never sleeps. Taking it disables preemption (the holder stays on its vCPU);
 * contention spins — other vCPUs run meanwhile — and sleeping while holding it is the
 * "sleeping function called from invalid context" bug lockdep reports.
 */
import type { ExecContext } from './context.js';
import type { LockClass } from './lockdep.js';
import type { Kthread, Scheduler } from './scheduler.js';

export class SpinLock {
  owner: ExecContext | undefined;

  constructor(
    private readonly sched: Scheduler,
    readonly cls: LockClass,
  ) {}

  /** spin_lock from a kernel thread: spins (ticks, keeping the vCPU) while another holds it. */
  async lock(t: Kthread, where: string): Promise<void> {
    this.sched.lockdep.acquire(t, this.cls, this, where);
    t.preempt++;
    while (this.owner) await this.sched.tick(t);
    this.owner = t;
  }

  /**
   * spin_trylock: for trap contexts, which run inside a guest run and cannot spin by yielding.
   * False when contended (the caller decides: retry the trap later, or count a miss).
   */
  tryLock(ctx: ExecContext, where: string): boolean {
    if (this.owner) return false;
    this.sched.lockdep.acquire(ctx, this.cls, this, where, { trylock: true });
    ctx.preempt++;
    this.owner = ctx;
    return true;
  }

  unlock(ctx: ExecContext, where = 'spin_unlock'): void {
    if (this.owner !== ctx) throw new Error(`spinlock ${this.cls.name}: unlocked by ${ctx.name}, owner is ${this.owner?.name ?? 'nobody'}`);
    this.owner = undefined;
    ctx.preempt--;
    this.sched.lockdep.release(ctx, this, where);
  }

  isHeldBy(ctx: ExecContext): boolean {
    return this.owner === ctx;
  }
}
