/**
 * ppc32's signal frames (arch/powerpc/kernel/signal_32.c; uapi asm/ucontext.h, sigcontext.h),
 * laid out as a kernel without CONFIG_PPC_TRANSACTIONAL_MEM lays them out (no second ucontext:
 * what qemu-user builds too), with a vdso: LR points at the vdso's sigtramp (sigtramp.ts says why
 * the frame's own trampoline is not used), and mc_pad is left as it was.
 *
 * With SA_SIGINFO, handle_rt_signal32's struct rt_sigframe:
 *   frame+0     struct siginfo (128)
 *   frame+128   struct ucontext: uc_flags, uc_link, uc_stack (12), uc_pad[7], uc_regs (→ the
 *               mcontext), uc_sigmask (two words, low first), uc_maskext[30], uc_pad2[3], then
 *               struct mcontext at +192: mc_gregs (48 words), mc_fregs (33 doublewords),
 *               mc_pad[2] (the no-vdso trampoline's place), mc_vregs (33 quadwords, VRSAVE in
 *               the first word of the last)                               = 1184 bytes
 *   frame+1312  abigap[56] (the rs6000/xcoff ABI's save area below the stack pointer)
 * The handler's r1 is 80 bytes (__SIGNAL_FRAMESIZE + 16) below it, holding the back chain.
 *
 * Without SA_SIGINFO, handle_signal32's older struct sigframe: struct sigcontext (32: _unused[4]
 * with the mask's high word in _unused[3], signal, handler, oldmask, regs → the mcontext), the
 * mcontext at +32, abigap[56]; r1 64 bytes below it and the return through the vdso's
 * __kernel_sigtramp32, sigreturn(119), which restores no sigaltstack.
 *
 * Linux writes fields, not whole frames: whatever else was on the stack stays (uc_pad, the vector
 * registers of a CPU without AltiVec, the ABI gap). The handler starts with FPSCR = 0.
 */
import type { Engine } from '../../src/emu/unicorn.js';
import type { GuestMemoryAccess, SignalFrameRequest, SigreturnResult, SyscallRequest } from '../types.js';
import { UC_PPC_REG as R } from './ucregs.js';
import { FPREGS_BYTES, MSR, frameBytes, putFpregs, putGregs, readUserRegs, restoreImage, userMsr } from './signal-regs.js';
import { SIGNAL_FRAMESIZE32 as SIGNAL_FRAMESIZE, SIGTRAMP_PPC32, TRAMP_RT32, TRAMP_SIG32 } from './sigtramp.js';


/** struct mcontext (32-bit): where its parts sit. */
const MC_GREGS = 0;
const MC_FREGS = 192;
const MC_PAD = MC_FREGS + FPREGS_BYTES; // 456
const MC_VREGS = MC_PAD + 8; // 464, 16-byte aligned
const MC_VRSAVE = MC_VREGS + 32 * 16;
const MCONTEXT_SIZE = MC_VREGS + 33 * 16; // 992

const RT_INFO = 0;
const RT_UC = 128;
const UC_STACK = 8;
const UC_REGS = 48;
const UC_SIGMASK = 52;
const UC_MCONTEXT = 192;
const RT_MCTX = RT_UC + UC_MCONTEXT;
const RT_FRAME_SIZE = RT_UC + UC_MCONTEXT + MCONTEXT_SIZE + 56 * 4; // 1536

const SC_SIZE = 32;
const SF_MCTX = SC_SIZE;
const SF_FRAME_SIZE = SC_SIZE + MCONTEXT_SIZE + 56 * 4; // 1248

const u32 = (x: bigint): number => Number(BigInt.asUintN(32, x));

/** The mcontext of the interrupted code and VRSAVE (0: no AltiVec). */
function putMcontext(e: Engine, v: DataView, at: number, req: SignalFrameRequest): void {
  const r = readUserRegs(e);
  putGregs(v, at + MC_GREGS, 4, r, userMsr(r.msr, false), req.faultAddr);
  putFpregs(v, at + MC_FREGS, r);
  v.setUint32(at + MC_VRSAVE, 0);
}

/** The handler's entry: r1 on a dummy caller frame holding the back chain, LR on the trampoline. */
function enterHandler(e: Engine, mem: GuestMemoryAccess, req: SignalFrameRequest, newsp: bigint, oldSp: bigint, args: bigint[], tramp: bigint): void {
  const chain = new Uint8Array(4);
  new DataView(chain.buffer).setUint32(0, u32(oldSp));
  mem.write(newsp, chain);
  const msr = e.regRead(R.MSR) & ~MSR.LE; // handlers run in the kernel's (big) endianness
  const ids = [R.R1, R.R3, ...[R.R4, R.R5, R.R6].slice(0, args.length), R.PC, R.LR, R.FPSCR, R.MSR];
  e.regWriteBatch(ids, [newsp, BigInt(req.sig), ...args, req.handler, tramp, 0n, msr]);
}

/** handle_rt_signal32 (a handler with SA_SIGINFO). */
export const setupRtFrame32 = (e: Engine, mem: GuestMemoryAccess, req: SignalFrameRequest): boolean => setupFrame32(e, mem, req, true);
/** handle_signal32 (a handler without SA_SIGINFO). */
export const setupSigFrame32 = (e: Engine, mem: GuestMemoryAccess, req: SignalFrameRequest): boolean => setupFrame32(e, mem, req, false);

function setupFrame32(e: Engine, mem: GuestMemoryAccess, req: SignalFrameRequest, rt: boolean): boolean {
  const sp = BigInt.asUintN(32, e.regRead(R.R1));
  const top = req.altStackTop ?? sp;
  const size = rt ? RT_FRAME_SIZE : SF_FRAME_SIZE;
  const frame = (top - BigInt(size)) & ~0xfn;
  try {
    const b = frameBytes(mem, frame, size);
    const v = new DataView(b.buffer);
    if (rt) {
      b.set(req.info, RT_INFO);
      v.setUint32(RT_UC, 0); // uc_flags
      v.setUint32(RT_UC + 4, 0); // uc_link
      v.setUint32(RT_UC + UC_STACK, u32(req.ucStack.sp));
      v.setInt32(RT_UC + UC_STACK + 4, req.ucStack.flags);
      v.setUint32(RT_UC + UC_STACK + 8, u32(req.ucStack.size));
      v.setUint32(RT_UC + UC_REGS, u32(frame + BigInt(RT_MCTX)));
      putMcontext(e, v, RT_MCTX, req);
      v.setUint32(RT_UC + UC_SIGMASK, u32(req.savedMask));
      v.setUint32(RT_UC + UC_SIGMASK + 4, u32(req.savedMask >> 32n));
      mem.write(frame, b);
      const newsp = frame - (SIGNAL_FRAMESIZE + 16n);
      enterHandler(e, mem, req, newsp, sp, [frame + BigInt(RT_INFO), frame + BigInt(RT_UC), frame], SIGTRAMP_PPC32 + TRAMP_RT32);
    } else {
      v.setUint32(12, u32(req.savedMask >> 32n)); // _unused[3]: the mask's high word
      v.setInt32(16, req.sig);
      v.setUint32(20, u32(req.handler));
      v.setUint32(24, u32(req.savedMask));
      v.setUint32(28, u32(frame + BigInt(SF_MCTX)));
      putMcontext(e, v, SF_MCTX, req);
      mem.write(frame, b);
      enterHandler(e, mem, req, frame - SIGNAL_FRAMESIZE, sp, [frame], SIGTRAMP_PPC32 + TRAMP_SIG32);
    }
  } catch {
    return false;
  }
  return true;
}

/** restore_user_regs from the mcontext at `mctx` (a user pointer the frame holds). */
function restoreMcontext(e: Engine, mem: GuestMemoryAccess, mctx: bigint): void {
  const b = mem.read(mctx, MC_VREGS);
  restoreImage(e, new DataView(b.buffer, b.byteOffset, b.byteLength), MC_GREGS, 4, MC_FREGS);
}

/** sys_rt_sigreturn: the frame 80 bytes above r1; registers through uc_regs, then mask and uc_stack. */
export function rtSigreturn32(e: Engine, mem: GuestMemoryAccess): SigreturnResult | undefined {
  const uc = BigInt.asUintN(32, e.regRead(R.R1) + SIGNAL_FRAMESIZE + 16n) + BigInt(RT_UC);
  try {
    const b = mem.read(uc, UC_MCONTEXT);
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const mask = BigInt(v.getUint32(UC_SIGMASK)) | (BigInt(v.getUint32(UC_SIGMASK + 4)) << 32n);
    const stack = { sp: BigInt(v.getUint32(UC_STACK)), flags: v.getInt32(UC_STACK + 4), size: BigInt(v.getUint32(UC_STACK + 8)) };
    restoreMcontext(e, mem, BigInt(v.getUint32(UC_REGS)));
    return { mask, stack };
  } catch {
    return undefined;
  }
}

/** sys_sigreturn: the sigcontext 64 bytes above r1; its regs pointer leads to the mcontext. */
export function sigreturn32(e: Engine, mem: GuestMemoryAccess): { mask: bigint } | undefined {
  const sc = BigInt.asUintN(32, e.regRead(R.R1) + SIGNAL_FRAMESIZE);
  try {
    const b = mem.read(sc, SC_SIZE);
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const mask = BigInt(v.getUint32(24)) | (BigInt(v.getUint32(12)) << 32n);
    restoreMcontext(e, mem, BigInt(v.getUint32(28)));
    return { mask };
  } catch {
    return undefined;
  }
}

/** -ERESTART*: back onto the `sc` (4 bytes) with r3 = orig_gpr3, the call's first argument. */
export function restartSyscallPpc(e: Engine, resumePc: bigint, call: SyscallRequest): void {
  e.regWriteBatch([R.PC, R.R3], [resumePc - 4n, call.args[0] ?? 0n]);
}
