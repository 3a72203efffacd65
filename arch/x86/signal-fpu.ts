/**
 * The FPU/SSE state of an x86 signal frame in FXSAVE's 512-byte layout (struct fxregs_state):
 * what Linux writes when the CPU has FXSR but no XSAVE, which is the CPU model Unicorn gives
 * here (no XSAVE: uc_flags has no UC_FP_XSTATE and sw_reserved stays zero). fop, fip and fdp
 * (the last x87 instruction and operand) are not tracked by the emulator and are written as 0.
 */
import type { Engine } from '../../src/emu/unicorn.js';
import { UC_X86_REG as R } from './ucregs.js';

export const FXSAVE_SIZE = 512;
const MXCSR_MASK = 0xffff;

/** FXSAVE's abridged tag byte from the full tag word (2 bits per register, 3 = empty). */
const abridge = (tag: number): number => {
  let t = 0;
  for (let i = 0; i < 8; i++) if (((tag >> (2 * i)) & 3) !== 3) t |= 1 << i;
  return t;
};

const unabridge = (t: number): number => {
  let tag = 0;
  for (let i = 0; i < 8; i++) if (!(t & (1 << i))) tag |= 3 << (2 * i);
  return tag;
};

export function saveFxsave(e: Engine, nXmm: 8 | 16): Uint8Array {
  const b = new Uint8Array(FXSAVE_SIZE);
  const v = new DataView(b.buffer);
  const [fcw, fsw, ftw, mxcsr] = e.regReadBatch([R.FPCW, R.FPSW, R.FPTAG, R.MXCSR]);
  v.setUint16(0, Number(fcw!) & 0xffff, true);
  v.setUint16(2, Number(fsw!) & 0xffff, true);
  v.setUint8(4, abridge(Number(ftw!)));
  v.setUint32(24, Number(mxcsr!) >>> 0, true);
  v.setUint32(28, MXCSR_MASK, true);
  for (let i = 0; i < 8; i++) b.set(e.regReadBytes(R.ST0 + i, 10), 32 + 16 * i);
  for (let i = 0; i < nXmm; i++) b.set(e.regReadBytes(R.XMM0 + i, 16), 160 + 16 * i);
  return b;
}

export function restoreFxsave(e: Engine, b: Uint8Array, nXmm: 8 | 16): void {
  const v = new DataView(b.buffer, b.byteOffset, FXSAVE_SIZE);
  // A reserved MXCSR bit set would #GP in FXRSTOR: Linux masks it with mxcsr_feature_mask.
  e.regWriteBatch([R.FPCW, R.FPSW, R.FPTAG, R.MXCSR], [BigInt(v.getUint16(0, true)), BigInt(v.getUint16(2, true)), BigInt(unabridge(v.getUint8(4))), BigInt(v.getUint32(24, true) & MXCSR_MASK)]);
  for (let i = 0; i < 8; i++) e.regWriteBytes(R.ST0 + i, b.slice(32 + 16 * i, 42 + 16 * i));
  for (let i = 0; i < nXmm; i++) e.regWriteBytes(R.XMM0 + i, b.slice(160 + 16 * i, 176 + 16 * i));
}

/**
 * EFLAGS bits rt_sigreturn takes from the frame (FIX_EFLAGS: AC, OF, DF, TF, SF, ZF, AF, PF, CF,
 * RF); the others (IF, IOPL, VM…) stay as the kernel has them.
 */
export const FIX_EFLAGS = 0x40000n | 0x800n | 0x400n | 0x100n | 0x80n | 0x40n | 0x10n | 0x4n | 0x1n | 0x10000n;
/** Cleared for the handler (DF, TF, RF), as setup_rt_frame does. */
export const HANDLER_CLEARS = 0x400n | 0x100n | 0x10000n;
