/**
 * Timers on the guest's clock (hrtimers for futex and nanosleep timeouts). The clock counts
 * retired instructions (1 ns each) plus the time the machine spent idle: when every task sleeps
 * and a timer is pending, the scheduler jumps the clock to the earliest deadline instead of
 * reporting a deadlock — virtual time, so a run stays deterministic and never waits on the host.
 */
export interface Timer {
  readonly deadline: bigint;
  fire(): void;
}

export class Timers {
  private readonly queue: Timer[] = [];
  /** Nanoseconds added to the instruction clock by idle jumps. */
  idleNs = 0n;

  constructor(private readonly insns: () => number) {}

  now(): bigint {
    return BigInt(this.insns()) + this.idleNs;
  }

  /** Arm a timer; the returned function cancels it (a no-op once fired). */
  add(deadline: bigint, fire: () => void): () => void {
    const t: Timer = { deadline, fire };
    let i = this.queue.length;
    while (i > 0 && this.queue[i - 1]!.deadline > deadline) i--;
    this.queue.splice(i, 0, t);
    return () => {
      const at = this.queue.indexOf(t);
      if (at >= 0) this.queue.splice(at, 1);
    };
  }

  get pending(): boolean {
    return this.queue.length > 0;
  }

  /** Fire every timer whose deadline has passed; true when any fired. */
  expire(): boolean {
    let fired = false;
    const now = this.now();
    while (this.queue.length && this.queue[0]!.deadline <= now) {
      this.queue.shift()!.fire();
      fired = true;
    }
    return fired;
  }

  /** Nothing can run: jump the clock to the earliest deadline and fire what is due. */
  idleUntilNext(): boolean {
    const next = this.queue[0];
    if (!next) return false;
    const now = this.now();
    if (next.deadline > now) this.idleNs += next.deadline - now;
    return this.expire();
  }
}
