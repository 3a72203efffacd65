/**
 * The kernel side of uniprobe's scheduler: kernel threads, vCPUs, wait queues and the seeded
 * choice of what runs next.
 *
 * Concurrency is simulated, never real: exactly one thing runs at a time — one guest quantum
 * (a synchronous `uc_emu_start`) or one kernel-thread step (host async code, from where it was
 * resumed to its next scheduling point). Which vCPU goes next is drawn from the machine's seeded
 * RNG, so an interleaving replays exactly under the same seed. Kernel threads are ordinary async
 * functions that only ever await this scheduler's points (tick, block); the scheduler resumes one,
 * then waits until it parks again.
 *
 * vCPU binding follows Linux's preemption rules: a context that is atomic (spinlock held,
 * preemption disabled, inside rcu_read_lock) stays on its vCPU at every scheduling point and that
 * vCPU runs nothing else until it is done; a preemptible context may be switched out at a tick,
 * which is a quiescent state for RCU. Blocking (mutex, rwsem, synchronize_rcu) leaves the vCPU.
 */
import { newContext, type ExecContext } from './context.js';
import { Lockdep, type HeldLock } from './lockdep.js';

/** The RNG interface the scheduler draws from (the machine's SplitMix64 stream). */
export interface Random {
  below(n: number): number;
}

export type KthreadState = 'ready' | 'blocked' | 'done';

export class Kthread<T = unknown> implements ExecContext {
  readonly canSleep = true;
  preempt = 0;
  rcuDepth = 0;
  readonly held: HeldLock[] = [];
  readonly frames: string[] = [];
  cpu: number | undefined;
  state: KthreadState = 'ready';
  /** What a blocked thread waits for, for hung-task reports. */
  waitingFor: string | undefined;
  result: T | undefined;
  error: unknown;
  /** Resumes the thread from its current parking point (set by park, consumed by the scheduler). */
  resume: (() => void) | undefined;
  readonly done: Promise<T>;
  private settle!: { ok: (v: unknown) => void; fail: (e: unknown) => void };

  constructor(
    readonly id: number,
    readonly name: string,
    /** A thread created pinned (per-CPU kthread, or a test's "this runs on vCPU 1"). */
    readonly pinnedCpu?: number,
  ) {
    this.done = new Promise<T>((ok, fail) => (this.settle = { ok: (v) => ok(v as T), fail }));
    // Nobody need await `done`; an unhandled failure is reported through the scheduler instead.
    this.done.catch(() => undefined);
  }

  /** @internal */
  finish(ok: boolean, v: unknown): void {
    this.state = 'done';
    if (ok) {
      this.result = v as T;
      this.settle.ok(v);
    } else {
      this.error = v;
      this.settle.fail(v);
    }
  }

  get atomic(): boolean {
    return this.preempt > 0 || this.rcuDepth > 0;
  }
}

/** A FIFO of sleeping threads (wait_queue_head_t). */
export class WaitQueue {
  readonly waiters: Kthread[] = [];
  constructor(readonly name: string) {}
}

/** What the machine contributes: guest quanta on vCPUs. */
export interface GuestWork {
  /** Is there a runnable guest task that could start on a free vCPU? */
  runnable(): boolean;
  /** vCPUs a guest task is bound to because it is atomic (between a probe trap and its step). */
  pinnedCpus(): ReadonlySet<number>;
  /** Run one quantum on `cpu`: its pinned task, or a runnable task the machine chooses. */
  runQuantum(cpu: number): void;
}

export type Step = { kind: 'kthread'; cpu: number; thread: Kthread } | { kind: 'guest'; cpu: number };

/** A rule that forces a switch at a named point (tests: "between the trap and its step"). */
export type SwitchRule = (point: string, ctx: ExecContext) => boolean;

export class Scheduler {
  readonly lockdep: Lockdep;
  readonly threads: Kthread[] = [];
  /** Kernel threads bound to each vCPU (running there, possibly atomic). */
  private readonly bound: Array<Kthread | undefined>;
  private nextId = 1;
  private current: Kthread | undefined;
  private parked: (() => void) | undefined;
  /** Work to run at the next step boundary, outside any thread (RCU callbacks: softirq context). */
  private readonly softirq: Array<() => void> = [];
  readonly softirqContext: ExecContext;
  readonly switchRules: SwitchRule[] = [];
  /** A vCPU that must not be chosen for the next step (a forced switch away from it). */
  private avoid: number | undefined;
  steps = 0;
  /** Failures of kernel threads nobody awaited, and hung-task lines. */
  readonly problems: string[] = [];

  constructor(
    readonly ncpus: number,
    readonly rng: Random,
    lockdep?: Lockdep,
  ) {
    this.lockdep = lockdep ?? new Lockdep();
    this.bound = Array.from({ length: ncpus }, () => undefined);
    this.softirqContext = newContext('softirq (rcu callbacks)', false);
  }

  /** The kernel thread whose step is running, if any. */
  get running(): Kthread | undefined {
    return this.current;
  }

  spawn<T>(name: string, fn: (self: Kthread<T>) => Promise<T>, opts: { cpu?: number } = {}): Kthread<T> {
    if (opts.cpu !== undefined && (opts.cpu < 0 || opts.cpu >= this.ncpus)) throw new RangeError(`vCPU ${opts.cpu} does not exist (${this.ncpus} vCPUs)`);
    const t = new Kthread<T>(this.nextId++, `${name}#${this.nextId - 1}`, opts.cpu);
    t.resume = () => {
      fn(t).then(
        (v) => this.exit(t, true, v),
        (e) => this.exit(t, false, e),
      );
    };
    this.threads.push(t as unknown as Kthread);
    return t;
  }

  // --- scheduling points, called by the running thread -----------------------------------------

  /**
   * Time passes: other vCPUs may run before this thread goes on. An atomic thread keeps its
   * vCPU; a preemptible one may be switched out (and come back on any vCPU).
   */
  tick(t: Kthread): Promise<void> {
    this.assertRunning(t);
    if (!t.atomic && t.pinnedCpu === undefined) this.unbind(t);
    return this.park(t, 'ready');
  }

  /** A named point: like tick, and a switch away from this vCPU is forced when a rule asks. */
  point(t: Kthread, name: string): Promise<void> {
    if (this.switchRules.some((r) => r(name, t)) && t.cpu !== undefined) this.avoid = t.cpu;
    return this.tick(t);
  }

  /** Sleep on `wq` until woken (schedule()): might_sleep first, then leave the vCPU. */
  block(t: Kthread, wq: WaitQueue, where: string): Promise<void> {
    this.assertRunning(t);
    this.lockdep.mightSleep(t, where);
    wq.waiters.push(t);
    t.waitingFor = `${wq.name} (at ${where})`;
    this.unbind(t);
    return this.park(t, 'blocked');
  }

  /** Wake the first sleeper (or all): they become runnable, in FIFO order. */
  wake(wq: WaitQueue, all = false): void {
    const n = all ? wq.waiters.length : Math.min(1, wq.waiters.length);
    for (const t of wq.waiters.splice(0, n)) {
      t.state = 'ready';
      t.waitingFor = undefined;
    }
  }

  /** Wake one particular sleeper (a lock handed over to it). */
  wakeThread(wq: WaitQueue, t: Kthread): void {
    const i = wq.waiters.indexOf(t);
    if (i < 0) return;
    wq.waiters.splice(i, 1);
    t.state = 'ready';
    t.waitingFor = undefined;
  }

  /** Queue work for the next step boundary (RCU callbacks run there, in softirq context). */
  raiseSoftirq(fn: () => void): void {
    this.softirq.push(fn);
  }

  /** Does a forced-switch rule fire at this point for a trap context (ends its guest run)? */
  forcedSwitch(point: string, ctx: ExecContext): boolean {
    // A loop, not `some` with a closure: every stepped kprobe hit asks, and almost never a rule.
    const rules = this.switchRules;
    for (let i = 0; i < rules.length; i++) {
      if (!rules[i]!(point, ctx)) continue;
      if (ctx.cpu !== undefined) this.avoid = ctx.cpu;
      return true;
    }
    return false;
  }

  // --- choosing and running steps ------------------------------------------------------------

  /**
   * The next step, drawn from the seeded RNG among: each vCPU that has a bound thread ready or a
   * pinned guest task (it must go on there), and one "free vCPU" choice when a free vCPU exists
   * and something unbound wants to run. Undefined when nothing can run.
   */
  /**
   * Called before each scheduling decision, i.e. between any two steps (kernel-thread step or
   * guest quantum): deferred work that needs every thread parked, and the seed scenarios'
   * invariant checks, run here.
   */
  readonly betweenSteps: Array<() => void> = [];

  chooseStep(guest?: GuestWork): Step | undefined {
    for (const f of this.betweenSteps) f();
    this.runSoftirq();
    const pinned = guest?.pinnedCpus() ?? new Set<number>();
    const options: Array<Step | 'free'> = [];
    const free: number[] = [];
    for (let c = 0; c < this.ncpus; c++) {
      const t = this.bound[c];
      if (t) {
        if (t.state === 'ready') options.push({ kind: 'kthread', cpu: c, thread: t });
      } else if (pinned.has(c)) options.push({ kind: 'guest', cpu: c });
      else free.push(c);
    }
    const unbound = this.threads.filter((t) => t.state === 'ready' && t.cpu === undefined && (t.pinnedCpu === undefined || free.includes(t.pinnedCpu)));
    const guestReady = guest?.runnable() ?? false;
    if (free.length && (unbound.length || guestReady)) options.push('free');
    let pool = options;
    if (this.avoid !== undefined) {
      const avoided = this.avoid;
      const others = options.filter((o) => o === 'free' || o.cpu !== avoided);
      if (others.length) pool = others;
      this.avoid = undefined;
    }
    if (!pool.length) return undefined;
    const pick = pool[this.rng.below(pool.length)]!;
    if (pick !== 'free') return pick;
    const choices: Array<Kthread | 'guest'> = [...unbound];
    if (guestReady) choices.push('guest');
    const what = choices[this.rng.below(choices.length)]!;
    if (what === 'guest') return { kind: 'guest', cpu: free[this.rng.below(free.length)]! };
    const cpu = what.pinnedCpu ?? free[this.rng.below(free.length)]!;
    return { kind: 'kthread', cpu, thread: what };
  }

  /** Run one kernel-thread step on `cpu`: resume it and wait until it parks or ends. */
  async runThread(step: { cpu: number; thread: Kthread }): Promise<void> {
    const t = step.thread;
    if (this.current) throw new Error(`scheduler: ${t.name} resumed while ${this.current.name} runs`);
    this.bound[step.cpu] = t;
    t.cpu = step.cpu;
    const resume = t.resume;
    t.resume = undefined;
    if (!resume) throw new Error(`scheduler: ${t.name} has nothing to resume`);
    this.current = t;
    this.steps++;
    const parked = new Promise<void>((r) => (this.parked = r));
    resume();
    await parked;
    this.current = undefined;
  }

  /** Threads not done. */
  live(): Kthread[] {
    return this.threads.filter((t) => t.state !== 'done');
  }

  /** Hung-task style lines for every blocked thread (deadlock reports). */
  hungTasks(): string[] {
    return this.live()
      .filter((t) => t.state === 'blocked')
      .map((t) => {
        const held = t.held.length ? `; holding ${t.held.map((h) => `${h.cls.name} (at ${h.where})`).join(', ')}` : '';
        return `INFO: task ${t.name} blocked on ${t.waitingFor ?? '?'}${held}`;
      });
  }

  /** Drop finished threads (keeps long runs from growing the list). */
  reap(): void {
    for (let i = this.threads.length - 1; i >= 0; i--) if (this.threads[i]!.state === 'done') this.threads.splice(i, 1);
  }

  // --- internals -------------------------------------------------------------------------------

  private runSoftirq(): void {
    while (this.softirq.length) this.softirq.shift()!();
  }

  private park(t: Kthread, state: KthreadState): Promise<void> {
    t.state = state;
    const p = new Promise<void>((r) => (t.resume = r));
    this.yieldToScheduler();
    return p;
  }

  private exit(t: Kthread, ok: boolean, v: unknown): void {
    if (t.held.length) {
      this.problems.push(`${t.name} exited holding ${t.held.map((h) => h.cls.name).join(', ')}`);
    }
    if (!ok) this.problems.push(`${t.name} failed: ${v instanceof Error ? v.message : String(v)}`);
    this.unbind(t);
    t.finish(ok, v);
    this.yieldToScheduler();
  }

  private unbind(t: Kthread): void {
    if (t.cpu !== undefined && this.bound[t.cpu] === t) this.bound[t.cpu] = undefined;
    t.cpu = undefined;
  }

  private yieldToScheduler(): void {
    const p = this.parked;
    this.parked = undefined;
    p?.();
  }

  private assertRunning(t: Kthread): void {
    if (this.current !== t) throw new Error(`scheduler: ${t.name} reached a scheduling point while not running (it awaited something other than the scheduler)`);
  }
}
