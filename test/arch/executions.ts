/**
 * How often addresses ran to completion in an unprobed run, for comparison with a probe's hit
 * count (the differential harnesses, the every-instruction and uprobe ground truths).
 *
 * A code hook fires when an instruction starts. On sparc64 a `save`, `restore` or `return` whose
 * window overflows or underflows traps, has its window spilled or filled (arch/sparc/windows.ts)
 * and runs again: the hook fires twice for one execution, where a breakpoint at that address
 * would hit once (Linux's spill/fill handlers `retry` the instruction the same way, and a probed
 * instruction retries in its slot, not at its address). Such a retry is taken back here: a window
 * trap that was served (the spill/fill counters moved) and left the PC where the last counted
 * instruction started.
 */
import type { Engine } from '../../src/emu/unicorn.js';
import type { Arch } from '../../arch/types.js';
import { cpuOf } from '../../arch/sparc/cpu.js';

export function countExecutions(e: Engine, arch: Arch, addrs: readonly bigint[]): Map<bigint, number> {
  const counts = new Map<bigint, number>(addrs.map((a) => [a, 0]));
  const sparc = arch.family === 'sparc';
  const served = (): number => (sparc ? cpuOf(e).windows.spills + cpuOf(e).windows.fills : 0);
  let last: bigint | undefined;
  let at = 0;
  for (const a of addrs) {
    e.hookCode(() => {
      counts.set(a, counts.get(a)! + 1);
      last = a;
      if (sparc) at = served();
    }, a, a);
  }
  // Hooks run in the order they were added: this one after the back-end's trap handler.
  if (sparc) {
    e.hookIntr(() => {
      if (last !== undefined && served() !== at && arch.getPc(e) === last) counts.set(last, counts.get(last)! - 1);
      last = undefined;
    });
  }
  return counts;
}
