/**
 * arch_prepare_kprobe for sparc64 (reference §3): an unaligned address is -EILSEQ; Linux refuses
 * nothing else. The slot is Linux's: the copy, then `ta 0x71` in its delay slot (`slotBytes`); at
 * that trap `postStep` re-bases relative branches, fixes the link register and resumes — the
 * delay slot of a probed DCTI runs from the original text, as on Linux.
 *
 * Where this differs from Linux, and why:
 * - Unicorn has no NPC register. Resuming at (addr + 4, target) goes through the back-end's
 *   trampolines (`sparcResumeAt` in arch/sparc/sparc64.ts); the step trap's NPC comes from the
 *   engine's reconstruction (`ProbeCpu.pcAfter`), and a probe in a delay slot needs the hit's
 *   (`hitPcAfter`): without it the core is assumed to probe outside delay slots.
 * - The annul bit is cleared in the copy and honoured in the fix-up (fixup.ts): Linux's kprobes
 *   let an annulled copy skip the step trap.
 * - BPr and the FP branches are re-based too (Linux's relbranch mask misses them).
 * - Refused with -EINVAL (tables.ts engineRefusal): software traps (trap routing depends on the
 *   trap's address), and jmpl whose rd is one of its sources (the engine recomputes a jmpl target
 *   from its operands).
 * - `rd %pc` is emulated (its value depends on where it runs; Linux would step it and read the
 *   slot's address).
 * Limits: a probed DCTI whose delay slot holds another armed probe cannot resume through a
 * trampoline (that would be a nested hit inside the step): refused at run time with an error; a
 * DCTI inside another DCTI's delay slot (a V9-deprecated "couple") resumes as the engine runs such
 * couples, without the outer pending target.
 */
import type { DecodedInsn, PreparedInsn, ProbeCpu, ProbeRefusal } from '../../probes.js';
import { UniprobeError } from '../../../src/errors.js';
import * as isa from '../isa.js';
import { UC_SPARC_REG as R } from '../ucregs.js';
import { sparcResumeAt } from '../sparc64.js';
import { be32, wordsBytes } from '../../ppc/kprobes/disasm.js';
import { ANNUL, ERRNO, KPROBE_BP, KPROBE_STEP, dctiClass, engineRefusal } from './tables.js';
import { R32, applyLink, resumeAfterStep } from './fixup.js';

export const SPARC_SLOT_SIZE = 8;
export const SPARC_STEP_TRAP_OFFSET = 4;

const refuse = (errno: number, reason: string): ProbeRefusal => ({ refused: true, errno, reason });
const u64 = (v: bigint): bigint => BigInt.asUintN(64, v);

/** Continue at (pc, npc) in the original text. */
function resume(cpu: ProbeCpu, pc: bigint, npc: bigint): void {
  if (npc === u64(pc + 4n)) return cpu.engine.regWrite(R.PC, pc);
  const delay = be32(cpu.mem.read(pc, 4));
  if (delay === KPROBE_BP) {
    throw new UniprobeError('ARCH', `sparc64 kprobes: the delay slot at 0x${pc.toString(16)} of a probed branch holds another probe; without an NPC register it cannot be resumed`);
  }
  sparcResumeAt(cpu.engine, pc, npc);
}

export function prepareSparcKprobe(insn: DecodedInsn): PreparedInsn | ProbeRefusal {
  const addr = insn.addr;
  if ((addr & 3n) !== 0n) return refuse(ERRNO.EILSEQ, 'unaligned address: SPARC instructions are 4-byte aligned');
  const w = be32(insn.bytes);
  const why = engineRefusal(w);
  if (why !== undefined) return refuse(ERRNO.EINVAL, why);
  const noSlot = (): Uint8Array => {
    throw new Error('an emulated instruction has no slot');
  };
  if (isa.isRdPc(w)) {
    return {
      insn,
      mode: 'emulate',
      slotBytes: noSlot,
      emulate(cpu: ProbeCpu) {
        if (isa.rd(w) !== 0) cpu.engine.regWrite(R32[isa.rd(w)]!, addr);
        const npc = cpu.pcAfter ?? u64(addr + 4n);
        cpu.engine.regWrite(R.PC, npc);
      },
    };
  }
  const copy = dctiClass(w) === 'branch' ? (w & ~ANNUL) >>> 0 : w;
  return {
    insn,
    mode: 'step',
    stepTrapOffset: SPARC_STEP_TRAP_OFFSET,
    slotBytes: () => wordsBytes(copy, KPROBE_STEP),
    // Not a DCTI: postStep only resumes at the hit's next PC, addr + 4 outside a delay slot (the
    // native hook is told to check that: sparcStepTrap).
    ...(dctiClass(w) === undefined ? { plainStepResume: u64(addr + 4n) } : {}),
    postStep(cpu: ProbeCpu, slot: bigint, hitPcAfter?: bigint) {
      const tnpc = cpu.pcAfter;
      if (tnpc === undefined && dctiClass(w) !== undefined) {
        throw new UniprobeError('INTERNAL', 'sparc64 kprobes: postStep of a branch needs the step trap\'s pcAfter (ProbeCpu.pcAfter)');
      }
      const r = resumeAfterStep(w, addr, slot, tnpc ?? u64(slot + 8n), hitPcAfter ?? u64(addr + 4n));
      applyLink(cpu, r, addr);
      resume(cpu, r.pc, r.npc);
    },
  };
}
