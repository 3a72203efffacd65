/**
 * arch_prepare_kprobe for x86 (reference/linux-kprobes.md §4.2), in Linux's order:
 * copy the instruction (refusing what cannot be copied: -EINVAL), choose emulation (refusing
 * what cannot be emulated: -EOPNOTSUPP), then build the single-step tail (boost jump or int3;
 * -ENOSPC when the slot has no room). Address checks before this (blacklist, instruction
 * boundary → -EILSEQ, slot allocation → -ENOMEM) belong to the generic core and `isInsnBoundary`.
 */
import type { PreparedInsn, ProbeCpu, ProbeRefusal } from '../../probes.js';
import { decodeX86, hasEmulatePrefix, modrmOf, type X86Insn } from './decode.js';
import { emulatorFor, type X86RegIds } from './emulate.js';
import { buildSlot, slotRefusal } from './fixup.js';
import { EINVAL, ENOSPC, INT3, JMP32_LEN, SLOT_SIZE, canBoost, classify } from './tables.js';

const refuse = (errno: number, reason: string): ProbeRefusal => ({ refused: true, errno, reason });

/** __copy_instruction's refusals: undecodable, emulate prefix, someone's int3, mov ss / pop ss. */
function copyRefusal(insn: X86Insn | undefined, bytes: Uint8Array): ProbeRefusal | undefined {
  if (insn === undefined) return refuse(EINVAL, 'cannot decode the instruction');
  if (hasEmulatePrefix(bytes)) return refuse(EINVAL, 'instruction has the Xen/KVM emulate prefix');
  if (insn.map === 'one' && insn.opcode === INT3) return refuse(EINVAL, 'instruction is already a breakpoint (int3)');
  // insn_masking_exception: these delay interrupts and debug traps by one instruction, so a trap
  // after the copy would be taken one instruction late.
  if (insn.map === 'one' && insn.opcode === 0x17) return refuse(EINVAL, 'pop ss masks exceptions for one instruction');
  if (insn.map === 'one' && insn.opcode === 0x8e && modrmOf(insn).reg === 2) {
    return refuse(EINVAL, 'mov to ss masks exceptions for one instruction');
  }
  if (insn.ripRelative) {
    const { mod, rm } = modrmOf(insn);
    if (mod !== 0 || rm !== 5) return refuse(EINVAL, 'cannot locate the RIP-relative displacement');
  }
  return undefined;
}

export function prepareX86Kprobe(
  addr: bigint,
  bytes: Uint8Array,
  opts: { hasPostHandler: boolean },
  regs: X86RegIds,
): PreparedInsn | ProbeRefusal {
  const long = regs.bits === 64;
  const insn = decodeX86(addr, bytes, long);
  const copy = copyRefusal(insn, bytes);
  if (copy !== undefined || insn === undefined) return copy ?? refuse(EINVAL, 'cannot decode the instruction');

  const cls = classify(insn);
  if (cls.kind === 'refuse') return refuse(cls.errno, cls.reason);

  const room = SLOT_SIZE - insn.length;
  if (room < 1) return refuse(ENOSPC, 'no room in the instruction slot for the single-step trap');
  // Linux checks the boost first at hit time: a boostable instruction (this includes ret, cli,
  // sti, pushf, popf) runs from the slot even when it also has an emulation.
  const boosted = !opts.hasPostHandler && room >= JMP32_LEN && canBoost(insn);
  const len = BigInt(insn.length);

  if (boosted) {
    return {
      insn,
      mode: 'boost',
      slotBytes: (slot) => buildSlot(insn, slot, true),
      slotRefusal: (slot) => slotRefusal(insn, slot, true),
    };
  }
  if (cls.kind === 'emulate') {
    return {
      insn,
      mode: 'emulate',
      slotBytes: () => new Uint8Array(0),
      emulate: emulatorFor(insn, cls.op, regs),
    };
  }
  const resume = BigInt.asUintN(regs.bits, addr + len);
  return {
    insn,
    mode: 'step',
    stepTrapOffset: insn.length,
    slotBytes: (slot) => buildSlot(insn, slot, false),
    slotRefusal: (slot) => slotRefusal(insn, slot, false),
    // resume_singlestep maps the IP after the copy (slot + len) back to addr + len. Only
    // instructions that fall through are ever stepped, so that is where execution continues.
    postStep: (cpu: ProbeCpu) => cpu.engine.regWrite(regs.ip, resume),
    plainStepResume: resume,
  };
}
