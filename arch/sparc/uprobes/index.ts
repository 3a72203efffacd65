/**
 * The sparc64 uprobe back-end: `sparcUprobeArch(arch)` implements arch/probes.ts's UprobeArch the
 * way arch/sparc/kernel/uprobes.c behaves (reference §3.5), with the fixes listed below.
 *
 * - Breakpoint `ta 0x73` (UPROBE_SWBP_INSN), step end `ta 0x74` (UPROBE_STP_INSN); both reported
 *   at their own address with the architectural next PC (`pcAfter`, Linux's tnpc) by
 *   arch/sparc/sparc64.ts. is_trap_insn is Linux's default: the swbp word itself.
 * - Analysis accepts every instruction, as Linux does. Refused here only: `jmpl` overwriting its
 *   own target register (-EINVAL): Unicorn has no NPC register, and the engine finds the step
 *   trap's next PC by recomputing the target from the jmpl's operands, which it destroyed.
 * - Emulated: `nop` only (arch_uprobe_skip_sstep).
 * - Stepped: slot = [copy][ta 0x74], the annul bit cleared in a copied format-2 branch (BPcc,
 *   Bicc, BPr, FBPfcc, FBfcc) so the trap in its delay slot always runs. preXol saves tnpc;
 *   postXol applies relbranch_fixup (a relative branch's target re-based from the slot to the
 *   probe, NPC after an untaken one = saved tnpc + 4, jmpl/return targets kept) then resumes at
 *   tpc = saved tnpc, then retpc_fixup (call → %o7 = vaddr; jmpl rd → rd = vaddr). So a probed
 *   DCTI's delay slot runs from the original text before its target, and a probed instruction
 *   inside a delay slot resumes at the pending branch target. abortXol: PC = vaddr.
 *
 * Linux's quirks, fixed here (test/arch/sparc-uprobes.test.ts pins each):
 * 1. Linux resumes at saved tnpc even when the original branch annuls its delay slot (an untaken
 *    `b<cc>,a`, or `ba,a`): the delay slot runs although it should not. Here it is skipped.
 * 2. relbranch_fixup's masks miss BPr and the FP branches: a taken `brz` would continue at its
 *    target relative to the slot. Here every relative branch is re-based.
 * 3. handle_swbp sets the IP back to the probe address with instruction_pointer_set, which on
 *    sparc also sets tnpc = tpc + 4: a probe inside a delay slot loses the pending branch (and
 *    skip_sstep's `tpc += 4, tnpc += 4` continues after the delay slot). Here the hit's pcAfter
 *    is kept: the nop and the step resume at the pending target.
 * 4. `rd %pc` stepped from the slot reads the slot's address; postXol writes vaddr instead.
 * How the engine resumes at (PC, NPC ≠ PC + 4) without an NPC register: `sparcResumeAt` in
 * arch/sparc/sparc64.ts (a trampoline for the delay-slot word; a trap word there, such as another
 * uprobe's breakpoint, is left in place and reported with the right next PC when it executes).
 *
 * retpc_fixup for an %l/%i destination writes the trapped window's save area on the user stack
 * after flushw (8-byte slots at fp + 2047, 4-byte ones for a 32-bit frame); the host runs the
 * register windows (windows.ts), where that window is the live one, so it is a register write.
 *
 * Return probes (valid only before the function's `save`): the return address is %o7 + 8 (a
 * call stores its own address; ret/retl jump to %o7 + 8); hijack sets %o7 = trampoline − 8.
 * Linux has no arch_uretprobe_is_alive on sparc: the default says every instance is alive.
 */
import type { Arch } from '../../types.js';
import type { DecodedInsn, PreparedUprobe, ProbeCpu, ProbeRefusal, UprobeArch } from '../../probes.js';
import { poisonFill } from '../../probes.js';
import * as isa from '../isa.js';
import { UC_SPARC_REG as R } from '../ucregs.js';
import { sparcResumeAt } from '../sparc64.js';
import { sparcStepTrap } from '../cpu.js';
import { be32, disasmText, wordText, wordsBytes } from '../../ppc/kprobes/disasm.js';
import { ANNUL, dctiClass } from '../kprobes/tables.js';
import { R32, SPARC_HIT_REGISTERS, applyLink, resumeAfterStep } from '../kprobes/fixup.js';

export const ERRNO = { EINVAL: 22 } as const;

/** `ta 0x73` (UPROBE_SWBP_INSN) and `ta 0x74` (UPROBE_STP_INSN). */
export const UPROBE_SWBP = 0x91d02073;
export const UPROBE_STP = 0x91d02074;
export const SPARC_XOL_SLOT_BYTES = 8;
export const SPARC_UPROBE_STEP_TRAP_OFFSET = 4;

const refuse = (errno: number, reason: string): ProbeRefusal => ({ refused: true, errno, reason });
const u64 = (v: bigint): bigint => BigInt.asUintN(64, v);

/** arch_uprobe_copy_ixol's copy: a format-2 branch loses its annul bit. */
export function uprobeCopyWord(w: number): number {
  return isa.branchKind(w) !== undefined ? (w & ~ANNUL) >>> 0 : w;
}

/** Continue at (pc, npc) in the original text. */
function resume(cpu: ProbeCpu, pc: bigint, npc: bigint): void {
  if (npc === u64(pc + 4n)) cpu.engine.regWrite(R.PC, pc);
  else sparcResumeAt(cpu.engine, pc, npc);
}

export function sparcUprobeArch(arch: Arch): UprobeArch {
  if (arch.family !== 'sparc') throw new Error(`sparcUprobeArch: ${arch.target} is not a SPARC target`);

  function analyzeUprobe(vaddr: bigint, bytes: Uint8Array): PreparedUprobe | ProbeRefusal {
    if ((vaddr & 3n) !== 0n) return refuse(ERRNO.EINVAL, 'unaligned address: SPARC instructions are 4-byte aligned');
    if (bytes.length < 4) return refuse(ERRNO.EINVAL, 'fewer than 4 bytes of text at the probe address');
    const b = bytes.slice(0, 4);
    const w = be32(b);
    if (isa.isJmpl(w) && isa.rd(w) !== 0 && (isa.rd(w) === isa.rs1(w) || (!isa.iBit(w) && isa.rd(w) === isa.rs2(w)))) {
      return refuse(ERRNO.EINVAL, 'jmpl overwriting its own target register: Unicorn 2.1.1 has no NPC register and the target cannot be recomputed after it ran');
    }
    const insn: DecodedInsn = { addr: vaddr, length: 4, bytes: b, text: disasmText('sparc64', vaddr, b) ?? wordText(w) };
    const slot = wordsBytes(uprobeCopyWord(w), UPROBE_STP);
    const isDcti = dctiClass(w) !== undefined;
    const rdPc = isa.isRdPc(w) ? isa.rd(w) : undefined;
    return {
      insn,
      mode: w === isa.NOP ? 'emulate' : 'step',
      ...(w === isa.NOP
        ? {
            // skip_sstep: go where the nop would have gone next (the pending target when it sits
            // in a delay slot), with a plain PC write: NPC = PC + 4 follows.
            emulate(cpu: ProbeCpu, at: bigint = vaddr): boolean {
              cpu.engine.regWrite(R.PC, cpu.pcAfter ?? u64(at + 4n));
              return true;
            },
          }
        : {}),
      slotBytes: () => slot.slice(),
      stepTrapOffset: SPARC_UPROBE_STEP_TRAP_OFFSET,
      // Not a DCTI, not `rd %pc`: postXol only resumes at the saved tnpc, vaddr + 4 for a probe
      // outside a delay slot (the native hook is told to check that: sparcStepTrap).
      ...(!isDcti && rdPc === undefined ? { plainStepNext: 4 } : {}),
      preXol(cpu: ProbeCpu, slotAddr: bigint, v: bigint): bigint {
        const savedTnpc = cpu.pcAfter ?? u64(v + 4n);
        cpu.engine.regWrite(R.PC, slotAddr);
        return savedTnpc;
      },
      postXol(cpu: ProbeCpu, slotAddr: bigint, v: bigint, state: unknown): void {
        const savedTnpc = typeof state === 'bigint' ? state : u64(v + 4n);
        const tnpc = cpu.pcAfter;
        if (tnpc === undefined && isDcti) {
          throw new Error('sparc64 uprobes: postXol of a branch needs the step trap\'s pcAfter (ProbeCpu.pcAfter)');
        }
        const r = resumeAfterStep(w, v, slotAddr, tnpc ?? u64(slotAddr + 8n), savedTnpc);
        applyLink(cpu, r, v);
        if (rdPc !== undefined && rdPc !== 0) cpu.engine.regWrite(R32[rdPc]!, v);
        resume(cpu, r.pc, r.npc);
      },
      abortXol(cpu: ProbeCpu, _slotAddr: bigint, v: bigint): void {
        cpu.engine.regWrite(R.PC, v);
      },
    };
  }

  return {
    swbp: wordsBytes(UPROBE_SWBP),
    maxInsnBytes: 4,
    xolSlotBytes: SPARC_XOL_SLOT_BYTES,
    xolPoison: poisonFill(wordsBytes(UPROBE_SWBP), SPARC_XOL_SLOT_BYTES),
    hitRegisters: SPARC_HIT_REGISTERS,
    isTrapInsn: (bytes) => bytes.length >= 4 && be32(bytes) === UPROBE_SWBP,
    analyzeUprobe,
    hijackUserReturn(cpu, trampoline) {
      const orig = u64(cpu.engine.regRead(R.O7) + 8n);
      cpu.engine.regWrite(R.O7, u64(trampoline - 8n));
      return orig;
    },
    uretprobeIsAlive: () => true,
    userSp: (cpu) => cpu.engine.regRead(R.SP),
    nativeStepTrap: sparcStepTrap(UPROBE_STP & 0x7f),
  };
}
