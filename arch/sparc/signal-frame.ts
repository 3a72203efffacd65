/**
 * sparc64's rt signal frame (arch/sparc/kernel/signal_64.c, sigutil_64.c; uapi asm/ptrace.h,
 * sigcontext.h), laid out as Linux lays it out:
 *
 *   sf+0     struct sparc_stackf (192): a copy of the interrupted window's save area (%l0–%l7,
 *            %i0–%i7, 128 bytes) — what a `restore` below the handler fills from — then fp,
 *            callers_pc, structptr, xargs[6], xxargs[1] (not written)
 *   sf+192   siginfo_t (128; without SA_SIGINFO only si_signo and si_code = SI_NOINFO)
 *   sf+320   struct pt_regs (160): u_regs[16] (%g0–%g7, %o0–%o7), tstate, tpc, tnpc, y, magic
 *   sf+480   fpu_save (→ the __siginfo_fpu_t after the frame when FPRS.FEF, else 0)
 *   sf+488   stack_t (24), sf+512 the mask, sf+520 rwin_save (0: the windows were flushed)
 *   sf+528   __siginfo_fpu_t (280): si_float_regs[64], si_fsr, si_gsr, si_fprs
 * sf = (%sp + 2047, or the alternate stack's top) − size, 16-byte aligned; the handler gets
 * %sp = sf − 2047, %o0 = sig, %o1 = %o2 = &sf->info, %o7 = ka_restorer (rt_sigaction's extra
 * argument: glibc passes its stub − 8, the handler's `ret` adds 8), %pc = handler, %npc = +4.
 * Before all that, synchronize_user_stack: every register window goes to the user stack.
 *
 * %ccr and %y are out of the register API's reach and, at a system call's return, the engine is
 * running (no host stub can read them). So the handler is entered through a guest stub that
 * stores them into the frame itself (`rd %ccr` into tstate's CCR byte, `rd %y` into pt_regs.y)
 * and puts %g1 back from the frame; rt_sigreturn likewise leaves through a stub that writes
 * them (`wr %ccr`, `wr %y`) before the host restores the last registers and resumes at
 * (tpc, tnpc). Like the window stubs, these run from the engine-private stub area.
 *
 * tstate is (CCR << 32) | (ASI << 24) | (PSTATE << 8): PSTATE.IE, and PEF once the FPU is on
 * (do_fpdis); CWP is 0 (the emulated CPU has one window). magic = PT_REGS_MAGIC with trap type 0:
 * how the kernel was entered is not recorded. rt_sigreturn takes from the frame what Linux takes:
 * %g1–%g7, %o0–%o7, tpc/tnpc (SIGSEGV if misaligned), %y, CCR and ASI of tstate, the FPU state
 * when fpu_save is set, the mask and the alternate stack.
 */
import type { Engine } from '../../src/emu/unicorn.js';
import type { GuestMemoryAccess, SignalFrameRequest, SigreturnResult, SyscallRequest } from '../types.js';
import { UC_SPARC_REG as R } from './ucregs.js';
import { R32, ST, cpuOf, fetch, u64, type SparcCpu } from './cpu.js';
import { REG, STACK_BIAS, encRdCcr, encRdY, encTa, encWrCcr, encWrY } from './isa.js';
import { LazyRegs, pendingNpc, sparcResumeAt } from './traps.js';
import { writeWindow } from './windows.js';
import { FPRS_FEF, PSTATE_PEF } from './cpu-state.js';

const SA_SIGINFO = 0x200;
const SI_NOINFO = 32767;
const PT_REGS_MAGIC = 0x57ac6c00;
const PSTATE_IE = 0x2n;
const FPRS_DL = 0x1n;
const FPRS_DU = 0x2n;

const INFO = 192;
const REGS = 320;
const TSTATE = REGS + 128;
const TPC = REGS + 136;
const TNPC = REGS + 144;
const Y = REGS + 152;
const MAGIC = REGS + 156;
const FPU_SAVE = 480;
const STACK = 488;
const MASK = 512;
const RWIN_SAVE = 520;
const FRAME_SIZE = 528;
const FPU_SIZE = 280;

const B = Number(STACK_BIAS);
/** Format-3 load/store with an immediate offset: op3 0x05 stb, 0x04 stw, 0x0b ldx. */
const mem3 = (op3: number, rd: number, rs1: number, imm: number): number => ((3 << 30) | (rd << 25) | (op3 << 19) | (rs1 << 14) | (1 << 13) | (imm & 0x1fff)) >>> 0;
const STB = 0x05;
const STW = 0x04;
const LDX = 0x0b;
const O6 = REG.O6;
const G1 = REG.G1;

/** The user's %sp + bias as the kernel's get_sigframe sees it, and the frame below it. */
function sigframeAt(sp: bigint, req: SignalFrameRequest, size: number): bigint {
  const top = req.altStackTop ?? u64(sp + STACK_BIAS);
  return (top - BigInt(size)) & ~15n;
}

/**
 * Where the interrupted code continues: (pc, pc + 4), or inside a delay slot (pc, the pending
 * target). A conditional branch whose direction only the CPU knows is replayed instead:
 * (the branch, its delay slot), which re-executes it with the same operands.
 */
function resumePoint(e: Engine, pc: bigint): [bigint, bigint] {
  const npc = pendingNpc(fetch(e, u64(pc - 4n)), pc, new LazyRegs(e));
  return typeof npc === 'bigint' ? [pc, npc] : [u64(pc - 4n), pc];
}

export function setupRtFrame(e: Engine, mem: GuestMemoryAccess, req: SignalFrameRequest): boolean {
  const cpu = cpuOf(e);
  try {
    const r = e.regReadBatch(R32);
    const pc = e.regRead(R.PC);
    // synchronize_user_stack: the caller windows, then the current one, to the user stack.
    cpu.windows.flush(r, mem);
    const sp = r[O6]!;
    writeWindow(mem, sp, r.slice(REG.L0, REG.L0 + 16));
    const fp = cpu.fpu.save();
    const fef = (fp[0]! & FPRS_FEF) !== 0n;
    const size = FRAME_SIZE + (fef ? FPU_SIZE : 0);
    const sf = sigframeAt(sp, req, size);
    const b = new Uint8Array(size);
    const v = new DataView(b.buffer);
    // The window save area: 16 doublewords at %sp + bias (the kernel copies them from the stack).
    r.slice(REG.L0, REG.L0 + 16).forEach((x, k) => v.setBigUint64(8 * k, u64(x)));
    if (req.flags & SA_SIGINFO) b.set(req.info, INFO);
    else {
      v.setInt32(INFO, req.sig);
      v.setInt32(INFO + 8, SI_NOINFO);
    }
    for (let k = 1; k < 16; k++) v.setBigUint64(REGS + 8 * k, u64(r[k]!));
    const [tpc, tnpc] = resumePoint(e, pc);
    // CCR (byte 3) is stored by the entry stub.
    v.setBigUint64(TSTATE, ((fp[3]! & 0xffn) << 24n) | ((PSTATE_IE | (fef ? PSTATE_PEF : 0n)) << 8n));
    v.setBigUint64(TPC, tpc);
    v.setBigUint64(TNPC, tnpc);
    v.setUint32(MAGIC, PT_REGS_MAGIC);
    if (fef) {
      const f = FRAME_SIZE;
      const fprs = fp[0]!;
      for (let k = 0; k < 32; k++) {
        if ((k < 16 && fprs & FPRS_DL) || (k >= 16 && fprs & FPRS_DU)) v.setBigUint64(f + 8 * k, u64(fp[4 + k]!));
      }
      v.setBigUint64(f + 256, u64(fp[1]!));
      v.setBigUint64(f + 264, u64(fp[2]!));
      v.setBigUint64(f + 272, fprs);
      v.setBigUint64(FPU_SAVE, sf + BigInt(FRAME_SIZE));
    }
    v.setBigUint64(STACK, req.ucStack.sp);
    v.setInt32(STACK + 8, req.ucStack.flags);
    v.setBigUint64(STACK + 16, req.ucStack.size);
    v.setBigUint64(MASK, req.savedMask);
    v.setBigUint64(RWIN_SAVE, 0n);
    mem.write(sf, b);
    const info = sf + BigInt(INFO);
    e.regWriteBatch([R.O0, R.O1, R.O2, R.O6, R.O7, R.PC], [BigInt(req.sig), info, info, sf - STACK_BIAS, req.restorer ?? 0n, entryStub(cpu, req.handler)]);
  } catch {
    return false;
  }
  return true;
}

/** `rd %ccr/%y` into the frame at %sp + bias, %g1 back from it, then the handler. */
function entryStub(cpu: SparcCpu, handler: bigint): bigint {
  const words = [
    encRdCcr(G1),
    mem3(STB, G1, O6, B + TSTATE + 3),
    encRdY(G1),
    mem3(STW, G1, O6, B + Y),
    mem3(LDX, G1, O6, B + REGS + 8),
    encTa(ST.RESUME),
  ];
  return cpu.stub(words, [[5, { kind: 'resume', to: handler }]]);
}

/** `wr %ccr/%y` from %g1/%g2, then the host finishes rt_sigreturn from the frame at %sp + bias. */
function exitStub(cpu: SparcCpu): bigint {
  return cpu.stub([encWrCcr(G1), encWrY(REG.G2), encTa(ST.RESUME)], [[2, { kind: 'call', run: finishSigreturn }]]);
}

/** The exit stub's trap: %g1, %g2 and %sp from the frame, then on at (tpc, tnpc). */
function finishSigreturn(cpu: SparcCpu): void {
  const e = cpu.engine;
  const sf = u64(e.regRead(R.SP) + STACK_BIAS);
  const b = cpu.sink!.memory().read(sf + BigInt(REGS), TNPC - REGS + 8);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const at = (off: number): bigint => v.getBigUint64(off - REGS);
  e.regWriteBatch([R.G1, R.G2, R.O6], [at(REGS + 8), at(REGS + 16), at(REGS + 8 * 14)]);
  sparcResumeAt(e, at(TPC), at(TNPC));
}

export function rtSigreturn(e: Engine, mem: GuestMemoryAccess): SigreturnResult | undefined {
  const cpu = cpuOf(e);
  try {
    const r = e.regReadBatch(R32);
    cpu.windows.flush(r, mem);
    const sp = r[O6]!;
    const sf = u64(sp + STACK_BIAS);
    if (sf & 15n) return undefined;
    const b = mem.read(sf, FRAME_SIZE);
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const reg = (k: number): bigint => v.getBigUint64(REGS + 8 * k);
    if ((reg(14) + STACK_BIAS) & 7n) return undefined;
    const tpc = v.getBigUint64(TPC);
    const tnpc = v.getBigUint64(TNPC);
    if ((tpc | tnpc) & 3n) return undefined;
    const tstate = v.getBigUint64(TSTATE);
    const fpuSave = v.getBigUint64(FPU_SAVE);
    const fp = [...cpu.fpu.save()];
    fp[3] = (tstate >> 24n) & 0xffn; // %asi
    if (fpuSave !== 0n) {
      if (fpuSave & 7n) return undefined;
      const f = mem.read(fpuSave, FPU_SIZE);
      const fv = new DataView(f.buffer, f.byteOffset, f.byteLength);
      const fprs = fv.getBigUint64(272);
      for (let k = 0; k < 32; k++) {
        if ((k < 16 && fprs & FPRS_DL) || (k >= 16 && fprs & FPRS_DU)) fp[4 + k] = fv.getBigUint64(8 * k);
      }
      fp[1] = fv.getBigUint64(256);
      fp[2] = fv.getBigUint64(264);
      fp[0] = fp[0]! | fprs;
    }
    const result: SigreturnResult = {
      mask: v.getBigUint64(MASK),
      stack: { sp: v.getBigUint64(STACK), flags: v.getInt32(STACK + 8), size: v.getBigUint64(STACK + 16) },
    };
    cpu.fpu.restore(fp);
    // %g1/%g2 carry %ccr/%y through the exit stub; %sp stays on the frame until it has run.
    const ccr = (tstate >> 32n) & 0xffn;
    const y = BigInt(v.getUint32(Y));
    const ids = [...R32.slice(1, 16), R.PC];
    const vals = [ccr, y, ...Array.from({ length: 13 }, (_, i) => reg(i + 3)), exitStub(cpu)];
    vals[REG.O6 - 1] = sp;
    e.regWriteBatch(ids, vals);
    return result;
  } catch {
    return undefined;
  }
}

/** -ERESTART*: back onto the `ta` with %o0 = orig_i0, which Linux also leaves in %g6. */
export function restartSyscall(e: Engine, resumePc: bigint, call: SyscallRequest): void {
  const orig = call.args[0] ?? 0n;
  e.regWriteBatch([R.PC, R.O0, R.G6], [u64(resumePc - 4n), orig, orig]);
}
