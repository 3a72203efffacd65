/**
 * SPARC V9 instruction fields the sparc64 back-end needs: the window instructions it emulates
 * (save, restore, return, flushw), the delayed control-transfer instructions (DCTIs) whose pending
 * target it must reconstruct (Unicorn has no NPC register), and encoders for the few words it
 * writes into its trampolines. Field layout: SPARC Architecture Manual V9, appendix A.
 */

/** Architectural register numbers r0..r31 = %g0–%g7, %o0–%o7, %l0–%l7, %i0–%i7. */
export const REG = { G0: 0, G1: 1, G2: 2, G7: 7, O0: 8, O1: 9, O6: 14, O7: 15, L0: 16, I0: 24, I6: 30, I7: 31 } as const;

export const NOP = 0x01000000; // sethi 0, %g0
export const STACK_BIAS = 2047n;

export const op = (w: number): number => w >>> 30;
export const rd = (w: number): number => (w >>> 25) & 0x1f;
export const op3 = (w: number): number => (w >>> 19) & 0x3f;
export const rs1 = (w: number): number => (w >>> 14) & 0x1f;
export const iBit = (w: number): boolean => ((w >>> 13) & 1) === 1;
export const rs2 = (w: number): number => w & 0x1f;
export const simm13 = (w: number): bigint => BigInt(((w & 0x1fff) << 19) >> 19);

const OP3 = { JMPL: 0x38, RETURN: 0x39, TCC: 0x3a, FLUSHW: 0x2b, SAVE: 0x3c, RESTORE: 0x3d, RD: 0x28 } as const;

const isFmt3 = (w: number, o3: number): boolean => op(w) === 2 && op3(w) === o3;
export const isSave = (w: number): boolean => isFmt3(w, OP3.SAVE);
export const isRestore = (w: number): boolean => isFmt3(w, OP3.RESTORE);
export const isReturn = (w: number): boolean => isFmt3(w, OP3.RETURN);
export const isFlushw = (w: number): boolean => isFmt3(w, OP3.FLUSHW) && !iBit(w);
export const isJmpl = (w: number): boolean => isFmt3(w, OP3.JMPL);
export const isTcc = (w: number): boolean => isFmt3(w, OP3.TCC);
export const isCall = (w: number): boolean => op(w) === 1;
/** `rd %pc, rd`: the one non-DCTI instruction whose result depends on where it executes. */
export const isRdPc = (w: number): boolean => isFmt3(w, OP3.RD) && rs1(w) === 5;

/** Format-2 branches: BPcc (1), Bicc (2), BPr (3), FBPfcc (5), FBfcc (6). */
export function branchKind(w: number): 'bpcc' | 'bicc' | 'bpr' | 'fbpfcc' | 'fbfcc' | undefined {
  if (op(w) !== 0) return undefined;
  switch ((w >>> 22) & 7) {
    case 1:
      return 'bpcc';
    case 2:
      return 'bicc';
    case 3:
      return (w >>> 28) & 1 ? undefined : 'bpr'; // bit 28 set: not BPr
    case 5:
      return 'fbpfcc';
    case 6:
      return 'fbfcc';
    default:
      return undefined;
  }
}

export const annulBit = (w: number): boolean => ((w >>> 29) & 1) === 1;
/** Condition field of Bicc/BPcc/FB*: 8 = always, 0 = never. (BPr: rcond, never "always".) */
export const cond = (w: number): number => (w >>> 25) & 0xf;

/** Byte displacement of a format-2 branch. */
export function branchDisp(w: number): bigint {
  switch (branchKind(w)) {
    case 'bicc':
    case 'fbfcc':
      return BigInt(((w & 0x3fffff) << 10) >> 10) * 4n;
    case 'bpcc':
    case 'fbpfcc':
      return BigInt(((w & 0x7ffff) << 13) >> 13) * 4n;
    case 'bpr': {
      const d16 = (((w >>> 20) & 3) << 14) | (w & 0x3fff);
      return BigInt((d16 << 16) >> 16) * 4n;
    }
    default:
      return 0n;
  }
}

/** The same branch with another displacement (in bytes, small) and the annul bit cleared. */
export function retargetBranch(w: number, disp: number): number {
  const words = disp >> 2;
  switch (branchKind(w)) {
    case 'bicc':
    case 'fbfcc':
      return ((w & ~0x3fffff & ~(1 << 29)) | (words & 0x3fffff)) >>> 0;
    case 'bpcc':
    case 'fbpfcc':
      return ((w & ~0x7ffff & ~(1 << 29)) | (words & 0x7ffff)) >>> 0;
    case 'bpr':
      return ((w & ~0x303fff & ~(1 << 29)) | (((words >> 14) & 3) << 20) | (words & 0x3fff)) >>> 0;
    default:
      throw new Error(`not a branch: 0x${w.toString(16)}`);
  }
}

/** Target of the `call` at `at`: at + disp30 · 4 (signed; `w << 2` drops the op bits). */
export function callTarget(at: bigint, w: number): bigint {
  return BigInt.asUintN(64, at + BigInt(w << 2));
}

/** Is `w` a delayed control-transfer instruction (one with a delay slot)? */
export function isDcti(w: number): boolean {
  return isCall(w) || isJmpl(w) || isReturn(w) || branchKind(w) !== undefined;
}

// --- encoders (for trampolines) -------------------------------------------------------------

const fmt3i = (o3: number, d: number, s1: number, imm: number): number =>
  ((2 << 30) | (d << 25) | (o3 << 19) | (s1 << 14) | (1 << 13) | (imm & 0x1fff)) >>> 0;
const fmt3r = (o3: number, d: number, s1: number, s2: number): number => ((2 << 30) | (d << 25) | (o3 << 19) | (s1 << 14) | s2) >>> 0;

/** `ta n` (Tcc, cond always, %icc, rs1 %g0, immediate). */
export const encTa = (n: number): number => (0x91d02000 | (n & 0x7f)) >>> 0;
/** `rd %ccr, rd` / `rd %y, rd` / `rd %asi, rd`. */
export const encRdCcr = (d: number): number => fmt3r(0x28, d, 2, 0);
export const encRdY = (d: number): number => fmt3r(0x28, d, 0, 0);
export const encRdAsi = (d: number): number => fmt3r(0x28, d, 3, 0);
/** `wr rs1, 0, %ccr` / `%y` / `%asi` (the value written is rs1 xor 0). */
export const encWrCcr = (s: number): number => fmt3i(0x30, 2, s, 0);
export const encWrY = (s: number): number => fmt3i(0x30, 0, s, 0);
export const encWrAsi = (s: number): number => fmt3i(0x30, 3, s, 0);
/** `jmpl rs1 + simm13, rd` and `jmpl rs1 + rs2, rd`. */
export const encJmplImm = (s1: number, imm: number, d: number): number => fmt3i(OP3.JMPL, d, s1, imm);
export const encJmplReg = (s1: number, s2: number, d: number): number => fmt3r(OP3.JMPL, d, s1, s2);
/** `sethi %hi(imm22 << 10), rd`. */
export const encSethi = (d: number, imm22: number): number => ((d << 25) | (4 << 22) | (imm22 & 0x3fffff)) >>> 0;
/** `or rs1, simm13, rd`, `sllx rs1, cnt, rd`, `or rs1, rs2, rd`. */
export const encOrImm = (s1: number, imm: number, d: number): number => fmt3i(0x02, d, s1, imm);
export const encOrReg = (s1: number, s2: number, d: number): number => fmt3r(0x02, d, s1, s2);
export const encSllx = (s1: number, cnt: number, d: number): number => fmt3i(0x25, d, s1, (1 << 12) | (cnt & 0x3f));

/** Load a 64-bit constant into `d` using `tmp` as well (6 words). */
export function encSetx(value: bigint, d: number, tmp: number): number[] {
  const v = BigInt.asUintN(64, value);
  const hi = Number(v >> 32n);
  const lo = Number(v & 0xffffffffn);
  return [
    encSethi(d, hi >>> 10),
    encOrImm(d, hi & 0x3ff, d),
    encSllx(d, 32, d),
    encSethi(tmp, lo >>> 10),
    encOrImm(tmp, lo & 0x3ff, tmp),
    encOrReg(d, tmp, d),
  ];
}
