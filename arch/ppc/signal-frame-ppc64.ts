/**
 * ppc64's rt signal frame (arch/powerpc/kernel/signal_64.c; uapi asm/ucontext.h, sigcontext.h),
 * laid out as a kernel without CONFIG_PPC_TRANSACTIONAL_MEM (no uc_transact: what qemu-user builds
 * too), with CONFIG_ALTIVEC (v_regs always points into vmx_reserve, VRSAVE written as 0 on a CPU
 * without AltiVec) and with a vdso (sigtramp.ts says why), so tramp[] is left as it was:
 *
 *   frame+0     struct ucontext: uc_flags, uc_link, uc_stack (24), uc_sigmask, __unused[15], then
 *               struct sigcontext at +168: _unused[4], signal, handler, oldmask (not written for
 *               rt frames), regs (→ gp_regs), gp_regs[48], fp_regs[33], v_regs, vmx_reserve[101]
 *                                                                             = 1696 bytes
 *   frame+1696  _unused[2]
 *   frame+1712  tramp[7] (the no-vdso trampoline's place)
 *   frame+1744  pinfo, puc
 *   frame+1760  struct siginfo (128)
 *   frame+1888  abigap[USER_REDZONE_SIZE = 512]: the red zone below the interrupted r1
 *
 * Linux enters the trampoline, not the handler: NIP = the vdso's __kernel_start_sigtramp_rt64
 * (`bctrl; addi r1,r1,128; li r0,__NR_rt_sigreturn; sc`), CTR = the handler; the `bctrl` leaves
 * LR on the `addi` for the handler's return. ELFv2 handlers get r12 = their address; ELFv1
 * sa_handler is a function descriptor: CTR = its entry, r2 = its TOC (is_elf2_task, from e_flags
 * at exec). r1 = frame − 128 holding the back chain; r3 = sig, then r4 = &info, r5 = &uc, r6 =
 * frame with SA_SIGINFO, else r4 = &uc.uc_mcontext. Fields Linux does not write keep whatever the
 * stack held. FPSCR = 0 for the handler.
 */
import type { Engine } from '../../src/emu/unicorn.js';
import type { Ppc64Abi } from '../../src/elf/ppc64.js';
import type { GuestMemoryAccess, SignalFrameRequest, SigreturnResult } from '../types.js';
import { UC_PPC_REG as R } from './ucregs.js';
import { MSR, frameBytes, putFpregs, putGregs, readUserRegs, restoreImage, userMsr } from './signal-regs.js';
import { SIGNAL_FRAMESIZE64 as SIGNAL_FRAMESIZE, SIGTRAMP_PPC64, TRAMP_RT64 } from './sigtramp.js';

const SA_SIGINFO = 0x4;

const UC_STACK = 16;
const UC_SIGMASK = 40;
const SC = 168;
const SC_SIGNAL = SC + 32;
const SC_HANDLER = SC + 40;
const SC_REGS = SC + 56;
const SC_GP = SC + 64;
const SC_FP = SC + 448;
const SC_VREGS_PTR = SC + 712;
const SC_VMX = SC + 720;
const UC_SIZE = SC + 1528; // 1696
const TRAMP = UC_SIZE + 16; // tramp[7]
const PINFO = TRAMP + 32; // tramp[7] is 28 bytes, then 8-byte alignment
const PUC = PINFO + 8;
const INFO = PUC + 8;
const FRAME_SIZE = INFO + 128 + 512; // 2400, a multiple of 16

/**
 * is_elf2_task(): the ABI of the program the engine's process runs, recorded at exec and carried
 * across fork in the register snapshot (ppc64.ts), as Linux keeps TIF_ELF2ABI in the thread flags.
 */
const elfAbi = new WeakMap<Engine, Ppc64Abi>();
export const setElfAbi = (e: Engine, abi: Ppc64Abi | undefined): void => void elfAbi.set(e, abi ?? 'elfv2');
export const elfAbiOf = (e: Engine): Ppc64Abi => elfAbi.get(e) ?? 'elfv2';

export function setupRtFrame64(e: Engine, mem: GuestMemoryAccess, req: SignalFrameRequest): boolean {
  const sp = e.regRead(R.R1);
  const frame = ((req.altStackTop ?? sp) - BigInt(FRAME_SIZE)) & ~0xfn;
  const at = (off: number): bigint => frame + BigInt(off);
  try {
    let entry = req.handler;
    let toc: bigint | undefined;
    if (elfAbiOf(e) === 'elfv1') {
      entry = mem.readWord(req.handler);
      toc = mem.readWord(req.handler + 8n);
    }
    const b = frameBytes(mem, frame, FRAME_SIZE);
    const v = new DataView(b.buffer);
    const r = readUserRegs(e);
    v.setBigUint64(PINFO, at(INFO));
    v.setBigUint64(PUC, at(0));
    b.set(req.info, INFO);
    v.setBigUint64(0, 0n); // uc_flags
    v.setBigUint64(8, 0n); // uc_link
    v.setBigUint64(UC_STACK, req.ucStack.sp);
    v.setInt32(UC_STACK + 8, req.ucStack.flags);
    v.setBigUint64(UC_STACK + 16, req.ucStack.size);
    const vregs = (at(SC_VMX) + 15n) & ~15n;
    v.setBigUint64(SC_VREGS_PTR, vregs);
    v.setUint32(Number(vregs - frame) + 33 * 16, 0); // VRSAVE
    putFpregs(v, SC_FP, r);
    v.setBigUint64(SC_REGS, at(SC_GP));
    putGregs(v, SC_GP, 8, r, userMsr(r.msr, true), req.faultAddr);
    v.setInt32(SC_SIGNAL, req.sig);
    v.setBigUint64(SC_HANDLER, req.handler);
    v.setBigUint64(UC_SIGMASK, req.savedMask);
    mem.write(frame, b);
    const newsp = frame - SIGNAL_FRAMESIZE;
    mem.writeWord(newsp, sp);
    const ids: number[] = [R.PC, R.CTR, R.R1, R.R3, R.FPSCR, R.MSR];
    const vals = [SIGTRAMP_PPC64 + TRAMP_RT64, entry, newsp, BigInt(req.sig), 0n, e.regRead(R.MSR) & ~MSR.LE];
    if (toc !== undefined) ids.push(R.R2), vals.push(toc);
    else ids.push(R.R12), vals.push(entry);
    if (req.flags & SA_SIGINFO) ids.push(R.R4, R.R5, R.R6), vals.push(at(INFO), at(0), frame);
    else ids.push(R.R4), vals.push(at(SC));
    e.regWriteBatch(ids, vals);
  } catch {
    return false;
  }
  return true;
}

/** sys_rt_sigreturn: the trampoline popped the dummy frame, so r1 is the ucontext. */
export function rtSigreturn64(e: Engine, mem: GuestMemoryAccess): SigreturnResult | undefined {
  const uc = e.regRead(R.R1);
  try {
    const b = mem.read(uc, UC_SIZE);
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    restoreImage(e, v, SC_GP, 8, SC_FP);
    return {
      mask: v.getBigUint64(UC_SIGMASK),
      stack: { sp: v.getBigUint64(UC_STACK), flags: v.getInt32(UC_STACK + 8), size: v.getBigUint64(UC_STACK + 16) },
    };
  } catch {
    return undefined;
  }
}
