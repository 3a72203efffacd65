/**
 * Linux/sparc64's setcontext software trap (`ta 0x6f`, ST_SETCONTEXT: sparc64_set_context in
 * arch/sparc/kernel/signal_64.c). glibc's siglongjmp and setcontext end in it: the jmp_buf of
 * sparc64 is a struct ucontext (ucontext.ts) filled by getcontext (`ta 0x6e`).
 *
 * What Linux does, in its order, and so what this does:
 * 1. synchronize_user_stack: every window goes to the user stack — the resident caller windows
 *    and the trapping window itself (the kernel's trap entry made it a caller window).
 * 2. SIGSEGV (force_sig) if %o0 is not 8-aligned, the struct is not user memory, or pc/npc cannot
 *    be read or are not 4-aligned. Nothing has changed then; the trap is not skipped.
 * 3. If %o1 (the trapping one) is non-zero, the blocked mask becomes uc_sigmask
 *    (set_current_blocked: SIGKILL/SIGSTOP stay unblocked). uc_flags plays no part.
 * 4. tpc/tnpc = pc/npc; %y; tstate's CCR and ASI fields (nothing else of tstate);
 *    %g1–%g6 and %o0–%o7. %g7 is skipped: it is the user's thread pointer.
 * 5. mc_fp and mc_i7 are stored as ins[6]/ins[7] of the save area at the restored %sp + 2047;
 *    the return to user mode then fills the current window (%l0–%i7) from that save area.
 * 6. With mcfpu_enab set: the FP registers (the lower half if FPRS.DL, the upper if FPRS.DU),
 *    %fsr and %gsr. (Linux clears TSTATE.PEF so the next FP instruction reloads them; here they
 *    are written straight into the FPU, which the program then sees the same.)
 * A fault in 5 or 6 is also SIGSEGV, with what 3–4 changed left changed.
 *
 * %ccr and %y cannot be written through the register API while the engine runs: like
 * rt_sigreturn (signal-frame.ts), the trap leaves through a stub `wr %g1, %ccr; wr %g2, %y`
 * whose closing trap puts %g1/%g2 back and resumes at (pc, npc).
 */
import { UniprobeError } from '../../src/errors.js';
import { SIG } from '../types.js';
import { UC_SPARC_REG as R } from './ucregs.js';
import { R32, ST, u64, writeWindow as writeRegs, type SparcCpu } from './cpu.js';
import { REG, STACK_BIAS, encTa, encWrCcr, encWrY } from './isa.js';
import { fault, memoryOf, sparcResumeAt } from './traps.js';
import { readWindow, writeWindow, type WindowMemory } from './windows.js';
import { MC, UCONTEXT_READ, readContext, type UserContext } from './ucontext.js';

/** Linux ST_SETCONTEXT. */
export const ST_SETCONTEXT = 0x6f;

const FPRS_DL = 0x1n;
const FPRS_DU = 0x2n;
/** ins[6] and ins[7] of a 64-bit window save area (8 locals, then the ins). */
const SAVE_FP = 8 * 14;

/** What the exit stub's trap finishes with, per CPU (the stub is shared, its trap has no data). */
const pending = new WeakMap<SparcCpu, { g1: bigint; g2: bigint; pc: bigint; npc: bigint; stop: boolean }>();

/** A user-memory fault of the trap (Linux: __get_user/__put_user failing, or access_ok). */
class ContextFault extends Error {}

/**
 * copy_{from,to}_user: through the address space's access_ok when it has one (an Mm), so a
 * kernel address faults like an unmapped one.
 */
function asUser<T>(mem: WindowMemory, fn: () => T): T {
  const m = mem as WindowMemory & { asUser?: <U>(f: () => U) => U };
  try {
    return m.asUser ? m.asUser(fn) : fn();
  } catch (err) {
    if (err instanceof UniprobeError && err.code === 'MM') throw new ContextFault(err.message);
    throw err;
  }
}

/** `ta 0x6f` at `a` from user code. */
export function setContext(cpu: SparcCpu, a: bigint): void {
  const e = cpu.engine;
  const sink = cpu.sink!;
  const mem = memoryOf(cpu);
  const r = e.regReadBatch(R32);
  const segv = (why: string): void => fault(cpu, { signal: SIG.SIGSEGV, reason: `setcontext: ${why}` }, a);
  let uc: UserContext;
  try {
    asUser(mem, () => {
      cpu.windows.flush(r, mem);
      writeWindow(mem, r[REG.O6]!, r.slice(REG.L0, REG.L0 + 16));
    });
  } catch (err) {
    if (err instanceof ContextFault) return segv('register windows to an unusable stack');
    throw err;
  }
  // The trapping window is on the stack now: the one the return to user mode fills replaces it.
  const ucp = r[REG.O0]!;
  if (ucp & 7n) return segv(`misaligned ucontext 0x${ucp.toString(16)}`);
  try {
    // The kernel reads the fields up to mcfpu_enab, all in user space (access_ok).
    asUser(mem, () => {
      uc = readContext(mem.read(ucp, UCONTEXT_READ));
    });
  } catch (err) {
    if (err instanceof ContextFault) return segv(`unreadable ucontext 0x${ucp.toString(16)}`);
    throw err;
  }
  const g = uc!.gregs;
  const pc = g[MC.PC]!;
  const npc = g[MC.NPC]!;
  if ((pc | npc) & 3n) return segv(`misaligned pc 0x${pc.toString(16)} / npc 0x${npc.toString(16)}`);
  let deliverable = false;
  if (r[REG.O1] !== 0n && sink.signalMask) deliverable = sink.signalMask.set(uc!.sigmask);
  const tstate = g[MC.TSTATE]!;
  const out = [...r];
  for (let k = 1; k <= 6; k++) out[k] = g[MC.G1 + k - 1]!;
  for (let k = 0; k < 8; k++) out[REG.O0 + k] = g[MC.O0 + k]!;
  const sp = out[REG.O6]!;
  const fp = cpu.fpu.save().slice();
  fp[3] = (tstate >> 24n) & 0xffn; // TSTATE.ASI
  try {
    asUser(mem, () => {
      const save = u64(sp + STACK_BIAS);
      const b = new Uint8Array(16);
      const v = new DataView(b.buffer);
      v.setBigUint64(0, uc!.fp);
      v.setBigUint64(8, uc!.i7);
      mem.write(save + BigInt(SAVE_FP), b);
      // rtrap's fill of the user window from the restored %sp (ins[6]/[7] as just stored: a
      // copy-on-write store may not be readable back until the run stops).
      const win = readWindow(mem, sp);
      if (sp & 1n) {
        win[14] = uc!.fp;
        win[15] = uc!.i7;
      }
      for (let k = 0; k < 16; k++) out[REG.L0 + k] = win[k]!;
    });
  } catch (err) {
    if (err instanceof ContextFault) {
      writeRegs(e, out, a);
      e.regWriteBatch(R32.slice(1, 8), out.slice(1, 8));
      cpu.fpu.restore(fp);
      return segv(`restored %sp 0x${sp.toString(16)} has no usable save area`);
    }
    throw err;
  }
  if (uc!.fpuEnab) {
    const f = uc!;
    for (let k = 0; k < 32; k++) {
      if ((k < 16 && f.fprs & FPRS_DL) || (k >= 16 && f.fprs & FPRS_DU)) fp[4 + k] = f.fregs[k]!;
    }
    fp[1] = f.fsr;
    fp[2] = f.gsr;
  }
  cpu.fpu.restore(fp);
  // %g1/%g2 carry %ccr/%y through the exit stub and get their values back after it.
  pending.set(cpu, { g1: out[1]!, g2: out[2]!, pc, npc, stop: deliverable || mem.unsettled });
  out[1] = (tstate >> 32n) & 0xffn;
  out[2] = g[MC.Y]! & 0xffffffffn;
  e.regWriteBatch(R32.slice(1, 8), out.slice(1, 8));
  writeRegs(e, out, exitStub(cpu));
}

function exitStub(cpu: SparcCpu): bigint {
  return cpu.stub([encWrCcr(REG.G1), encWrY(REG.G2), encTa(ST.RESUME)], [[2, { kind: 'call', run: finishSetcontext }]]);
}

/**
 * The exit stub's trap: %g1/%g2 back, on at (pc, npc). The run ends when a signal the new mask
 * unblocked is pending (delivered on the way back to user mode, as after Linux's rtrap) or a
 * store of the trap awaits its copy-on-write.
 */
function finishSetcontext(cpu: SparcCpu): void {
  const e = cpu.engine;
  const p = pending.get(cpu);
  pending.delete(cpu);
  if (!p) return fault(cpu, { signal: SIG.SIGILL, reason: 'setcontext exit stub without a setcontext' }, e.regRead(R.PC));
  e.regWriteBatch([R.G1, R.G2], [p.g1, p.g2]);
  sparcResumeAt(e, p.pc, p.npc);
  if (p.stop) e.stop();
}
