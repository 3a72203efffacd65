/**
 * After the step trap: Linux's relbranch_fixup and retpc_fixup (reference §3.2), with the NPC this
 * engine has instead of tnpc (the step trap's `pcAfter`, which arch/sparc/sparc64.ts computes from
 * the copied branch in the slot, replaying a conditional one on the CPU).
 *
 * resume(addr, slot, tnpc, hitNpc) decides where execution continues in the original text:
 * - not a DCTI: at the probe's own next PC (`hitNpc`: addr + 4, or a pending branch target when
 *   the probe sits in a delay slot — Linux resumes there too, as tpc = orig_tnpc);
 * - relative DCTI (call, Bicc, BPcc and — unlike Linux, whose mask misses them — BPr, FBfcc,
 *   FBPfcc): taken when tnpc ≠ slot + 8, target re-based to addr + (tnpc − slot);
 * - jmpl/return: tnpc is already absolute.
 * Then the delay slot (addr + 4) runs before the target unless the branch annuls it. Linux's
 * kprobes ignore the annul bit (an annulled copy skips the step trap); here it is cleared in the
 * copy and applied here, as sparc uprobes do in their copy.
 * retpc_fixup: `call` → %o7 = addr; `jmpl` with rd ≠ %g0 → rd = addr. Linux patches %l/%i
 * destinations in the stack save area after flushw; here the trapped code's window is the live one
 * (windows.ts), so every rd is a register write.
 */
import type { HitRegisters, ProbeCpu } from '../../probes.js';
import * as isa from '../isa.js';
import { UC_SPARC_REG as R } from '../ucregs.js';
import { annulled, dctiClass } from './tables.js';

/** Unicorn ids of r0..r31. */
export const R32: readonly number[] = [
  ...Array.from({ length: 8 }, (_, k) => R.G0 + k),
  ...Array.from({ length: 8 }, (_, k) => R.O0 + k),
  ...Array.from({ length: 8 }, (_, k) => R.L0 + k),
  ...Array.from({ length: 8 }, (_, k) => R.I0 + k),
];

const u64 = (v: bigint): bigint => BigInt.asUintN(64, v);

/**
 * The hit registers (arch/probes.ts HitRegisters): PC and r0–r31 of the live window, the only
 * window Unicorn has (windows.ts keeps the others, so CWP never changes under a cached copy). All
 * of r0–r31, so the window traps' whole-file reads and writes are served by the cache as well.
 * Unicorn's PC write also sets NPC = PC + 4: it is written back even when the value is unchanged.
 */
export const SPARC_HIT_REGISTERS: HitRegisters = [R.PC, ...R32].map((id) => ({ id, bits: 64 as const, writeAlways: id === R.PC }));

/** Where to continue after the step: PC, and NPC when it is not PC + 4. */
export interface Resume {
  pc: bigint;
  npc: bigint;
  /** Register to point at the probed address (retpc_fixup), if any. */
  link?: number;
}

export function resumeAfterStep(w: number, addr: bigint, slot: bigint, tnpc: bigint, hitNpc: bigint): Resume {
  const cls = dctiClass(w);
  const delay = u64(addr + 4n);
  if (cls === undefined) return { pc: hitNpc, npc: u64(hitNpc + 4n) };
  if (cls === 'jmpl') {
    const rd = isa.rd(w);
    return { pc: delay, npc: tnpc, ...(rd !== 0 ? { link: rd } : {}) };
  }
  if (cls === 'return') return { pc: delay, npc: tnpc };
  const taken = tnpc !== u64(slot + 8n);
  const target = taken ? u64(addr + (tnpc - slot)) : u64(addr + 8n);
  if (cls === 'call') return { pc: delay, npc: target, link: isa.REG.O7 };
  if (annulled(w, taken)) return { pc: target, npc: u64(target + 4n) };
  return { pc: delay, npc: target };
}

/** Write the link register (if any); the caller resumes at (pc, npc). */
export function applyLink(cpu: ProbeCpu, r: Resume, addr: bigint): void {
  if (r.link !== undefined) cpu.engine.regWrite(R32[r.link]!, addr);
}
