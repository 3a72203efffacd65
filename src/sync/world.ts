/**
 * One machine's kernel synchronisation state: the scheduler, lockdep, RCU, the slab — and the
 * loop that drives kernel threads (and, through `GuestWork`, guest quanta) step by step.
 */
import { Lockdep } from './lockdep.js';
import { Rcu } from './rcu.js';
import { Scheduler, type GuestWork, type Kthread, type Random } from './scheduler.js';
import { Slab } from './slab.js';

export type RunOutcome = 'idle' | 'until' | 'deadlock' | 'limit';

export class SyncWorld {
  readonly sched: Scheduler;
  readonly lockdep: Lockdep;
  readonly rcu: Rcu;
  readonly slab: Slab;
  /** The context RCU callbacks run in. */
  get softirqCtx() {
    return this.sched.softirqContext;
  }
  /** Deadlock reports (hung tasks) of past runs. */
  readonly deadlocks: string[][] = [];

  constructor(ncpus: number, rng: Random) {
    this.lockdep = new Lockdep();
    this.sched = new Scheduler(ncpus, rng, this.lockdep);
    this.rcu = new Rcu(this.sched);
    this.slab = new Slab(this.sched);
  }

  spawn<T>(name: string, fn: (self: Kthread<T>) => Promise<T>, opts: { cpu?: number } = {}): Kthread<T> {
    return this.sched.spawn(name, fn, opts);
  }

  /**
   * Run steps until `until()` holds, nothing can run ('idle'), every remaining thread sleeps
   * forever ('deadlock', reported), or `maxSteps` steps ran ('limit').
   */
  async run(opts: { guest?: GuestWork; until?: () => boolean; maxSteps?: number } = {}): Promise<RunOutcome> {
    const max = opts.maxSteps ?? 10_000_000;
    for (let n = 0; ; n++) {
      if (opts.until?.()) return 'until';
      if (n >= max) return 'limit';
      const step = this.sched.chooseStep(opts.guest);
      if (!step) {
        const hung = this.sched.hungTasks();
        if (hung.length) {
          this.deadlocks.push(hung);
          return 'deadlock';
        }
        return 'idle';
      }
      if (step.kind === 'kthread') await this.sched.runThread(step);
      else opts.guest!.runQuantum(step.cpu);
    }
  }

  /** Run until these threads are done (or nothing can run any more). */
  async join(...threads: Kthread[]): Promise<RunOutcome> {
    return this.run({ until: () => threads.every((t) => t.state === 'done') });
  }
}
