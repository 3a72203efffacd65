/**
 * How often an address ran to completion in a native differential run (kprobe-harness.ts,
 * uprobe-harness.ts), for comparison with a probe's hit count.
 *
 * A code hook fires when an instruction starts. On sparc64 a `save`, `restore` or `return` whose
 * window overflows or underflows traps, has its window spilled or filled (arch/sparc/windows.ts)
 * and runs again: the hook fires twice for one execution, as a breakpoint at that address would
 * not (Linux's spill/fill handlers `retry` the instruction the same way). Such a retry is taken
 * back here: a window trap that was served (the spill/fill counters moved) and left the PC at the
 * address.
 */
import type { Engine } from '../../src/emu/unicorn.js';
import type { Arch } from '../../arch/types.js';
import { cpuOf } from '../../arch/sparc/cpu.js';

export function countExecutions(e: Engine, arch: Arch, addr: bigint): { readonly n: number } {
  const count = { n: 0 };
  const served = (): number => (arch.family === 'sparc' ? cpuOf(e).windows.spills + cpuOf(e).windows.fills : 0);
  let at = -1;
  e.hookCode(() => {
    count.n++;
    at = served();
  }, addr, addr);
  // Hooks run in the order they were added: this one after the back-end's trap handler.
  if (arch.family === 'sparc') e.hookIntr(() => void (at >= 0 && served() !== at && arch.getPc(e) === addr && (count.n--, (at = -1))));
  return count;
}
