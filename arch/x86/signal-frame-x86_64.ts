/**
 * x86-64's rt signal frame (arch/x86/kernel/signal_64.c, struct rt_sigframe), laid out as Linux
 * lays it out:
 *
 *   frame+0    pretcode  (sa_restorer: x86-64 requires SA_RESTORER, there is no other way back)
 *   frame+8    struct ucontext: uc_flags, uc_link, uc_stack (24), uc_mcontext (struct
 *              sigcontext, 256), uc_sigmask (8)                                    = 304 bytes
 *   frame+312  struct siginfo (128; written only for SA_SIGINFO, as Linux does)
 *   above it   the FXSAVE image, 64-byte aligned, that sigcontext.fpstate points to
 *
 * Placement (get_sigframe): below the 128-byte red zone of the interrupted stack, or at the top
 * of the alternate stack; then the FPU state; then the frame with (rsp + 8) 16-byte aligned, as
 * after a call. The handler starts with rdi = sig, rsi = &info, rdx = &uc, rax = 0.
 */
import type { Engine } from '../../src/emu/unicorn.js';
import type { GuestMemoryAccess, SignalFrameRequest, SigreturnResult, SyscallRequest } from '../types.js';
import { UC_X86_REG as R } from './ucregs.js';
import { FIX_EFLAGS, FXSAVE_SIZE, HANDLER_CLEARS, restoreFxsave, saveFxsave } from './signal-fpu.js';
import { X86_SA_FLAGS } from './signal-abi.js';

/** struct sigcontext's register slots, in order (r8 … rip, eflags). */
const SC_REGS = [R.R8, R.R9, R.R10, R.R11, R.R12, R.R13, R.R14, R.R15, R.RDI, R.RSI, R.RBP, R.RBX, R.RDX, R.RAX, R.RCX, R.RSP, R.RIP, R.RFLAGS];
const UC = 8;
const MCONTEXT = UC + 40;
const SIGMASK = UC + 296;
const INFO = 312;
const FRAME_SIZE = INFO + 128;
const REDZONE = 128n;
const UC_SIGCONTEXT_SS = 2n;
const UC_STRICT_RESTORE_SS = 4n;
const USER_CS = 0x33;
const USER_DS = 0x2b;

export function setupRtFrame64(e: Engine, mem: GuestMemoryAccess, req: SignalFrameRequest): boolean {
  if (req.restorer === undefined) return false; // no SA_RESTORER: Linux fails the frame (-EFAULT)
  const regs = e.regReadBatch(SC_REGS);
  const rsp = regs[15]!;
  let sp = req.altStackTop ?? rsp - REDZONE;
  sp = (sp - BigInt(FXSAVE_SIZE)) & ~63n;
  const fpstate = sp;
  const frame = ((sp - BigInt(FRAME_SIZE)) & ~15n) - 8n;
  const b = new Uint8Array(INFO);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, req.restorer, true);
  v.setBigUint64(UC, UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS, true);
  v.setBigUint64(UC + 16, req.ucStack.sp, true);
  v.setInt32(UC + 24, req.ucStack.flags, true);
  v.setBigUint64(UC + 32, req.ucStack.size, true);
  regs.forEach((r, i) => v.setBigUint64(MCONTEXT + 8 * i, r, true));
  v.setUint16(MCONTEXT + 144, USER_CS, true); // cs; gs, fs = 0
  v.setUint16(MCONTEXT + 150, USER_DS, true); // ss (UC_SIGCONTEXT_SS)
  // err and trapno (MCONTEXT+152, +160) are left 0: the emulator does not report them.
  v.setBigUint64(MCONTEXT + 168, req.savedMask & 0xffffffffn, true); // oldmask
  v.setBigUint64(MCONTEXT + 176, req.faultAddr ?? 0n, true); // cr2
  v.setBigUint64(MCONTEXT + 184, fpstate, true);
  v.setBigUint64(SIGMASK, req.savedMask, true);
  try {
    mem.write(fpstate, saveFxsave(e, 16));
    mem.write(frame, b);
    if (req.flags & X86_SA_FLAGS.SIGINFO) mem.write(frame + BigInt(INFO), req.info);
  } catch {
    return false;
  }
  const flags = regs[17]! & ~HANDLER_CLEARS;
  e.regWriteBatch([R.RDI, R.RSI, R.RDX, R.RAX, R.RSP, R.RIP, R.RFLAGS], [BigInt(req.sig), frame + BigInt(INFO), frame + BigInt(UC), 0n, frame, req.handler, flags]);
  return true;
}

export function rtSigreturn64(e: Engine, mem: GuestMemoryAccess): SigreturnResult | undefined {
  // The handler's `ret` popped pretcode: the frame starts one word below the stack pointer.
  const frame = e.regRead(R.RSP) - 8n;
  let b: Uint8Array;
  let fx: Uint8Array | undefined;
  try {
    b = mem.read(frame, INFO);
    const fp = new DataView(b.buffer, b.byteOffset).getBigUint64(MCONTEXT + 184, true);
    if (fp !== 0n) fx = mem.read(fp, FXSAVE_SIZE);
  } catch {
    return undefined;
  }
  const v = new DataView(b.buffer, b.byteOffset, INFO);
  const vals = SC_REGS.map((_, i) => v.getBigUint64(MCONTEXT + 8 * i, true));
  const cur = e.regRead(R.RFLAGS);
  vals[17] = (cur & ~FIX_EFLAGS) | (vals[17]! & FIX_EFLAGS);
  e.regWriteBatch(SC_REGS, vals);
  if (fx) restoreFxsave(e, fx, 16);
  return {
    mask: v.getBigUint64(SIGMASK, true),
    stack: { sp: v.getBigUint64(UC + 16, true), flags: v.getInt32(UC + 24, true), size: v.getBigUint64(UC + 32, true) },
  };
}

/** The syscall instruction (0f 05) is 2 bytes; rax gets the call number back (orig_ax). */
export function restartSyscall64(e: Engine, resumePc: bigint, call: SyscallRequest): void {
  e.regWriteBatch([R.RIP, R.RAX], [resumePc - 2n, BigInt.asUintN(64, BigInt(call.nr))]);
}
