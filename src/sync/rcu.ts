/**
 * RCU and SRCU grace periods.
 *
 * A grace period started at time T ends once every reader that was inside a read-side section at
 * T has left it — and no later: readers that start after T are not waited for. With classic RCU
 * a reader is a context with preemption off (it cannot leave its vCPU), so "every vCPU has passed
 * a quiescent state" and "every pre-existing reader has finished" are the same condition; uniprobe
 * tracks readers by context and reports the vCPU they sit on. A vCPU between a probe trap and the
 * end of its single-step is such a reader.
 *
 * SRCU readers may sleep and are tracked per read_lock token, per domain (one domain's grace
 * period never waits for another's readers).
 */
import type { ExecContext } from './context.js';
import { WaitQueue, type Kthread, type Scheduler } from './scheduler.js';

/** Who a grace period waits for, and what to do when they are gone. */
class GracePeriods<R> {
  /**
   * Readers inside a read-side section now, each once. An array, not a Set: a probe hit enters
   * and leaves at every trap, and add + delete on a long-lived V8 Set (promoted to the old
   * generation, as this one is) cost ~0.7 µs — most of a kprobe hit's bookkeeping — where there
   * are never more than a handful of readers to scan.
   */
  readonly active: R[] = [];
  private readonly waits: Array<{ pending: Set<R>; done: () => void }> = [];
  /** Completed grace periods (counter for tests and benchmarks). */
  completed = 0;

  enter(r: R): void {
    this.active.push(r);
  }

  exit(r: R): void {
    const a = this.active;
    const i = a.indexOf(r);
    if (i >= 0) {
      // Keep the order readers entered in (reports list them so), without allocating; shortened
      // with pop: setting an array's length is a slow runtime call (~0.15 µs a trap here).
      for (let k = i + 1; k < a.length; k++) a[k - 1] = a[k]!;
      a.pop();
    }
    for (let i = 0; i < this.waits.length; ) {
      const w = this.waits[i]!;
      w.pending.delete(r);
      if (w.pending.size === 0) {
        this.waits.splice(i, 1);
        this.completed++;
        w.done();
      } else i++;
    }
  }

  /** Start a grace period now; `done` runs when it ends (immediately when nobody reads). */
  start(done: () => void, except?: R): void {
    const pending = new Set(this.active.filter((r) => r !== except));
    if (pending.size === 0) {
      this.completed++;
      done();
    } else this.waits.push({ pending, done });
  }

  get inFlight(): number {
    return this.waits.length;
  }
}

export class Rcu {
  private readonly gp = new GracePeriods<ExecContext>();
  private readonly wq = new WaitQueue('rcu grace period');
  private callbacksQueued = 0;
  private readonly barrierWq = new WaitQueue('rcu_barrier');

  constructor(private readonly sched: Scheduler) {}

  readLock(ctx: ExecContext): void {
    if (ctx.rcuDepth++ === 0) this.gp.enter(ctx);
  }

  readUnlock(ctx: ExecContext): void {
    if (ctx.rcuDepth <= 0) throw new Error(`rcu_read_unlock by ${ctx.name} without rcu_read_lock`);
    if (--ctx.rcuDepth === 0) this.gp.exit(ctx);
  }

  /** rcu_read_lock_held(): for rcu_dereference_check-style assertions. */
  isReader(ctx: ExecContext): boolean {
    return ctx.rcuDepth > 0;
  }

  /** Contexts inside a read-side section now, with their vCPUs (tests, reports). */
  readers(): Array<{ name: string; cpu: number | undefined }> {
    return [...this.gp.active].map((c) => ({ name: c.name, cpu: c.cpu }));
  }

  /**
   * synchronize_rcu(): sleep until every reader present now has finished. Called from inside a
   * read-side section it can never finish: lockdep reports it (might_sleep in an RCU reader) and
   * the wait excludes the caller so the run can go on to show the report.
   */
  async synchronize(t: Kthread, where = 'synchronize_rcu'): Promise<void> {
    this.sched.lockdep.mightSleep(t, where);
    let finished = false;
    const self = { t };
    this.gp.start(() => {
      finished = true;
      this.sched.wakeThread(this.wq, self.t);
    }, t);
    // A grace period is never instantaneous in Linux: the caller always schedules at least once.
    await this.sched.tick(t);
    while (!finished) await this.sched.block(t, this.wq, where);
  }

  /** call_rcu(): `fn` runs in softirq context after a grace period; never sleeps. */
  call(fn: () => void): void {
    this.callbacksQueued++;
    this.gp.start(() =>
      this.sched.raiseSoftirq(() => {
        this.callbacksQueued--;
        fn();
        if (this.callbacksQueued === 0) this.sched.wake(this.barrierWq, true);
      }),
    );
  }

  /** rcu_barrier(): wait until every callback queued so far has run. */
  async barrier(t: Kthread): Promise<void> {
    while (this.callbacksQueued > 0) await this.sched.block(t, this.barrierWq, 'rcu_barrier');
  }

  get gracePeriods(): number {
    return this.gp.completed;
  }
}

/** One SRCU domain (srcu_struct). */
export class Srcu {
  private readonly gp = new GracePeriods<object>();
  private readonly wq: WaitQueue;
  private readonly holders = new Map<object, ExecContext>();

  constructor(
    private readonly sched: Scheduler,
    readonly name: string,
  ) {
    this.wq = new WaitQueue(`${name} grace period`);
  }

  /** srcu_read_lock: returns the token srcu_read_unlock needs. The reader may sleep. */
  readLock(ctx: ExecContext): object {
    const token = {};
    this.holders.set(token, ctx);
    this.gp.enter(token);
    return token;
  }

  readUnlock(ctx: ExecContext, token: object): void {
    const owner = this.holders.get(token);
    if (owner !== ctx) throw new Error(`srcu_read_unlock(${this.name}) by ${ctx.name} with a token it does not hold`);
    this.holders.delete(token);
    this.gp.exit(token);
  }

  async synchronize(t: Kthread, where = `synchronize_srcu(${this.name})`): Promise<void> {
    this.sched.lockdep.mightSleep(t, where);
    const own = [...this.holders].filter(([, c]) => c === t).map(([tok]) => tok);
    if (own.length) {
      // It would wait for itself forever; report and leave our own read sections out of the wait.
      this.sched.lockdep.warn(t, 'suspicious-rcu', `WARNING: synchronize_srcu(${this.name}) inside its own read-side critical section`, [], where);
    }
    let finished = false;
    this.gp.start(() => {
      finished = true;
      this.sched.wakeThread(this.wq, t);
    }, own[0]);
    await this.sched.tick(t);
    while (!finished) await this.sched.block(t, this.wq, where);
  }

  /** call_srcu(): `fn` after this domain's grace period. */
  call(fn: () => void): void {
    this.gp.start(() => this.sched.raiseSoftirq(fn));
  }

  readers(): string[] {
    return [...this.holders.values()].map((c) => c.name);
  }

  get gracePeriods(): number {
    return this.gp.completed;
  }
}
