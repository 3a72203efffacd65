/**
 * How often addresses ran to completion in an unprobed run, for comparison with a probe's hit
 * count (the differential harnesses, the every-instruction and uprobe ground truths).
 *
 * A code hook fires when an instruction starts. On sparc64 a `save`, `restore` or `return` whose
 * window overflows or underflows traps, has its window spilled or filled (arch/sparc/windows.ts)
 * and runs again, as after Linux's spill/fill handlers' `retry`: the hook fires twice for one
 * execution, where a breakpoint at that address hits once (a probed instruction retries in its
 * slot). The engine reports such retries (Engine.retryHooks); each takes one start back.
 */
import type { Engine } from '../../src/emu/unicorn.js';

export function countExecutions(e: Engine, addrs: readonly bigint[]): Map<bigint, number> {
  const counts = new Map<bigint, number>(addrs.map((a) => [a, 0]));
  for (const a of addrs) e.hookCode(() => void counts.set(a, counts.get(a)! + 1), a, a);
  e.retryHooks.push((pc) => {
    const n = counts.get(pc);
    if (n !== undefined) counts.set(pc, n - 1);
  });
  return counts;
}
