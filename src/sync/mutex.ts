/**
 * Sleeping locks: mutex and rw-semaphore. Both are async because waiting for them sleeps
 * (the thread leaves its vCPU); lockdep sees the acquisition before any wait, as in Linux, so an
 * inversion is reported even when this interleaving happened not to deadlock.
 */
import type { ExecContext } from './context.js';
import type { LockClass } from './lockdep.js';
import { WaitQueue, type Kthread, type Scheduler } from './scheduler.js';

export class Mutex {
  owner: ExecContext | undefined;
  private readonly wq: WaitQueue;

  constructor(
    private readonly sched: Scheduler,
    readonly cls: LockClass,
  ) {
    this.wq = new WaitQueue(cls.name);
  }

  async lock(t: Kthread, where: string): Promise<void> {
    this.sched.lockdep.mightSleep(t, where);
    this.sched.lockdep.acquire(t, this.cls, this, where);
    while (this.owner) await this.sched.block(t, this.wq, where);
    this.owner = t;
  }

  /** mutex_trylock: never waits; true when taken. Allowed from any context that may hold a mutex. */
  tryLock(ctx: ExecContext, where: string): boolean {
    if (this.owner) return false;
    this.sched.lockdep.acquire(ctx, this.cls, this, where, { trylock: true });
    this.owner = ctx;
    return true;
  }

  unlock(ctx: ExecContext, where = 'mutex_unlock'): void {
    if (this.owner !== ctx) throw new Error(`mutex ${this.cls.name}: unlocked by ${ctx.name}, owner is ${this.owner?.name ?? 'nobody'}`);
    this.owner = undefined;
    this.sched.lockdep.release(ctx, this, where);
    this.sched.wake(this.wq);
  }

  isHeldBy(ctx: ExecContext): boolean {
    return this.owner === ctx;
  }
}

/**
 * rw_semaphore: many readers or one writer. A waiting writer holds back new readers (Linux does
 * this to keep writers from starving), which is why read-side recursion can deadlock.
 */
export class RwSem {
  writer: ExecContext | undefined;
  readonly readers = new Set<ExecContext>();
  private writersWaiting = 0;
  private readonly wq: WaitQueue;

  constructor(
    private readonly sched: Scheduler,
    readonly cls: LockClass,
  ) {
    this.wq = new WaitQueue(cls.name);
  }

  async downRead(t: Kthread, where: string): Promise<void> {
    this.sched.lockdep.mightSleep(t, where);
    this.sched.lockdep.acquire(t, this.cls, this, where, { read: true });
    while (this.writer || this.writersWaiting > 0) await this.sched.block(t, this.wq, where);
    this.readers.add(t);
  }

  async downWrite(t: Kthread, where: string, opts: { nestLock?: object } = {}): Promise<void> {
    this.sched.lockdep.mightSleep(t, where);
    this.sched.lockdep.acquire(t, this.cls, this, where, opts);
    this.writersWaiting++;
    while (this.writer || this.readers.size > 0) await this.sched.block(t, this.wq, where);
    this.writersWaiting--;
    this.writer = t;
  }

  /**
   * `blocking`: the caller stands for a path that sleeps on this lock in Linux and backs off and
   * retries only because it cannot sleep here (the machine's synchronous mapping paths): lockdep
   * then checks the acquisition like a blocking one, so the order it implies is recorded.
   */
  tryDownRead(ctx: ExecContext, where: string, opts: { blocking?: boolean } = {}): boolean {
    if (this.writer || this.writersWaiting > 0) return false;
    this.sched.lockdep.acquire(ctx, this.cls, this, where, { read: true, trylock: !opts.blocking });
    this.readers.add(ctx);
    return true;
  }

  tryDownWrite(ctx: ExecContext, where: string, opts: { blocking?: boolean } = {}): boolean {
    if (this.writer || this.readers.size > 0) return false;
    this.sched.lockdep.acquire(ctx, this.cls, this, where, { trylock: !opts.blocking });
    this.writer = ctx;
    return true;
  }

  upRead(ctx: ExecContext, where = 'up_read'): void {
    if (!this.readers.delete(ctx)) throw new Error(`rwsem ${this.cls.name}: up_read by ${ctx.name}, which does not hold it for reading`);
    this.sched.lockdep.release(ctx, this, where);
    if (this.readers.size === 0) this.sched.wake(this.wq, true);
  }

  upWrite(ctx: ExecContext, where = 'up_write'): void {
    if (this.writer !== ctx) throw new Error(`rwsem ${this.cls.name}: up_write by ${ctx.name}, writer is ${this.writer?.name ?? 'nobody'}`);
    this.writer = undefined;
    this.sched.lockdep.release(ctx, this, where);
    this.sched.wake(this.wq, true);
  }

  /** lockdep_assert_held_write / mmap_assert_write_locked. */
  isWriteHeldBy(ctx: ExecContext): boolean {
    return this.writer === ctx;
  }

  isHeldBy(ctx: ExecContext): boolean {
    return this.writer === ctx || this.readers.has(ctx);
  }

  /** Held (either mode) or waited for by anyone but `ctx`. */
  busyFor(ctx: ExecContext): boolean {
    if (this.writersWaiting > 0) return true;
    if (this.writer && this.writer !== ctx) return true;
    for (const r of this.readers) if (r !== ctx) return true;
    return false;
  }
}
