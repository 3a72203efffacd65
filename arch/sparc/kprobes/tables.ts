/**
 * SPARC V9 facts for the kprobe back-end (reference linux-uprobes-arch.md §3; field layout in
 * arch/sparc/isa.ts): the breakpoint and step-trap words, which instructions are delayed control
 * transfers and how, and the few this engine refuses.
 */
import { E } from '../../../src/kernel/errno.js';
import * as isa from '../isa.js';

export const ERRNO = { EINVAL: E.EINVAL, EILSEQ: E.EILSEQ } as const;

/** `ta 0x70` (kprobe breakpoint) and `ta 0x71` (end of the software single-step). */
export const KPROBE_BP = 0x91d02070;
export const KPROBE_STEP = 0x91d02071;

export type SparcDcti = 'call' | 'jmpl' | 'return' | 'branch';

export function dctiClass(w: number): SparcDcti | undefined {
  if (isa.isCall(w)) return 'call';
  if (isa.isJmpl(w)) return 'jmpl';
  if (isa.isReturn(w)) return 'return';
  if (isa.branchKind(w) !== undefined) return 'branch';
  return undefined;
}

/** The annul bit, cleared in the slot copy so that the step trap in its delay slot always runs. */
export const ANNUL = 1 << 29;

/**
 * Is the delay slot of this branch annulled? Bicc/BPcc/FB*: with `,a` when not taken, and always
 * for "branch always"; BPr has no "always" (its rcond 0 and 4 are reserved).
 */
export function annulled(w: number, taken: boolean): boolean {
  if (!isa.annulBit(w)) return false;
  if (!taken) return true;
  return isa.branchKind(w) !== 'bpr' && isa.cond(w) === 8;
}

/**
 * Why this engine cannot probe `w`, or undefined. Linux refuses no instruction on sparc64; these
 * are Unicorn/engine limits (see prepare.ts).
 */
export function engineRefusal(w: number): string | undefined {
  if (isa.isTcc(w)) {
    return 'Tcc (software trap): the engine routes traps by where they sit (the hypercall trap only from kernel text, ta 0x70-0x74 to the probe code), so a copy in the slot would be another trap';
  }
  if (isa.isJmpl(w) && isa.rd(w) !== 0 && (isa.rd(w) === isa.rs1(w) || (!isa.iBit(w) && isa.rd(w) === isa.rs2(w)))) {
    return 'jmpl overwriting its own target register: Unicorn 2.1.1 has no NPC register and the target cannot be recomputed after it ran';
  }
  return undefined;
}
