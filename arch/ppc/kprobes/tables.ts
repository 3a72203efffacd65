/**
 * PowerPC instruction facts the kprobe back-end needs: the fields of the branch forms it
 * emulates and the classes Linux refuses to probe (reference: linux-uprobes-arch.md §2.2, Power
 * ISA Book I §2.4 for the branch forms). Field numbers follow the ISA's big-endian bit order only
 * in comments; code uses shifts from the least significant bit.
 */
import { E } from '../../../src/kernel/errno.js';

/** Linux errno numbers the refusals use (asm-generic). */
export const ERRNO = { EINVAL: E.EINVAL, EILSEQ: E.EILSEQ } as const;

export const primaryOp = (w: number): number => w >>> 26;
/** Extended opcode of X/XL/XFX forms (ISA bits 21–30). */
export const xo = (w: number): number => (w >>> 1) & 0x3ff;
export const lkBit = (w: number): boolean => (w & 1) === 1;
export const aaBit = (w: number): boolean => (w & 2) === 2;
/** BO (ISA bits 6–10) and BI (11–15) of the conditional branches. */
export const bo = (w: number): number => (w >>> 21) & 0x1f;
export const bi = (w: number): number => (w >>> 16) & 0x1f;

/** Sign-extended byte displacement of `b` (LI, 24 bits · 4) and of `bc` (BD, 14 bits · 4). */
export const liDisp = (w: number): bigint => BigInt(((w & 0x03fffffc) << 6) >> 6);
export const bdDisp = (w: number): bigint => BigInt(((w & 0xfffc) << 16) >> 16);

/** BO bit values (ISA numbering 0–4 from the left: 16 = "ignore CR", 4 = "do not touch CTR"). */
export const BO = { IGNORE_CR: 16, CR_VALUE: 8, NO_CTR: 4, CTR_ZERO: 2 } as const;

export type PpcBranch = 'b' | 'bc' | 'bclr' | 'bcctr';

/** The branch class of `w`, or undefined for everything that is not a branch we emulate. */
export function branchClass(w: number): PpcBranch | undefined {
  switch (primaryOp(w)) {
    case 18:
      return 'b';
    case 16:
      return 'bc';
    case 19:
      if (xo(w) === 16) return 'bclr';
      if (xo(w) === 528) return 'bcctr';
      return undefined;
    default:
      return undefined;
  }
}

/** `addpcis` (ISA 3.0, op 19 XO 2 in DX form): the only non-branch whose result depends on its address. */
export const isAddpcis = (w: number): boolean => primaryOp(w) === 19 && ((w >>> 1) & 0x1f) === 2;
/** Its D field: d0 (ISA 16–25) ‖ d1 (11–15) ‖ d2 (31), signed, shifted left 16. */
export function addpcisImm(w: number): bigint {
  const d = (((w >>> 6) & 0x3ff) << 6) | (((w >>> 16) & 0x1f) << 1) | (w & 1);
  return BigInt((d << 16) >> 16) << 16n;
}

/**
 * What `can_single_step()` says no to (Linux since 2022: arch_prepare_kprobe answers -EINVAL):
 * trap-immediates, system calls, the interrupt-return and power-saving family, trap-word and the
 * MSR writes. Each with the name a user reads in the refusal.
 */
const PRIMARY_REFUSED = new Map<number, string>([
  [2, 'tdi (trap)'],
  [3, 'twi (trap)'],
  [17, 'sc/scv (system call)'],
]);
const OP19_REFUSED = new Map<number, string>([
  [18, 'rfid'],
  [38, 'rfmci'],
  [39, 'rfdi'],
  [50, 'rfi'],
  [51, 'rfci'],
  [82, 'rfscv'],
  [274, 'hrfid'],
  [306, 'urfid'],
  [370, 'stop'],
  [402, 'doze'],
  [434, 'nap'],
  [466, 'sleep'],
  [498, 'rvwinkle'],
]);
const OP31_REFUSED = new Map<number, string>([
  [4, 'tw (trap)'],
  [68, 'td (trap)'],
  [146, 'mtmsr'],
  [178, 'mtmsrd'],
]);

/** The instruction class `can_single_step()` rejects, or undefined when it may be stepped. */
export function cannotSingleStep(w: number): string | undefined {
  const op = primaryOp(w);
  if (op === 19) return OP19_REFUSED.get(xo(w));
  if (op === 31) return OP31_REFUSED.get(xo(w));
  return PRIMARY_REFUSED.get(op);
}

/** ISA 3.1 prefix word (primary opcode 1): the first half of an 8-byte instruction. */
export const isPrefix = (w: number): boolean => primaryOp(w) === 1;
/** `bctar` (op 19 XO 560, ISA 2.07): branches through TAR, which Unicorn's register API lacks. */
export const isBctar = (w: number): boolean => primaryOp(w) === 19 && xo(w) === 560;
