/**
 * The deterministic clock while a run is on. `Machine.insns` grows when a run ends, and a task
 * alone on the machine runs 16 M instructions per run: a trace hit, a `clock_gettime` or a timer
 * check inside the run would all read the same instant (every trace line of a short program said
 * 0.000000). Inside a run the clock adds what the engine's native counter has retired since the
 * run began, up to the start of the translated block now running: block-granular, never ahead of
 * the exact count the run ends with, non-decreasing, and the same on every replay of the same
 * seed (the counter counts a block when it is entered, so the block holding the trap is left out).
 */
import type { Engine } from '../emu/unicorn.js';

export class RunClock {
  private engine: Engine | undefined;
  private base = 0;

  /** A run of `engine` begins; `replay` instructions it re-executes first do not count (sparc64). */
  begin(engine: Engine, replay: number): void {
    this.engine = engine;
    this.base = engine.retired + replay;
  }

  end(): void {
    this.engine = undefined;
  }

  /** Instructions retired: `settled` (Machine.insns) plus the part of the current run before its block. */
  insns(settled: number): number {
    const e = this.engine;
    if (e === undefined || e.closed) return settled;
    return settled + Math.max(0, e.retiredBeforeBlock - this.base);
  }
}
