/**
 * arch_prepare_kprobe for PowerPC: refuse what Linux refuses (in its order), emulate what must not
 * run from the slot (every branch, and `addpcis`), step the rest from a slot holding the copy and a
 * `trap`.
 *
 * Order and errnos (reference §2.2): unaligned address → -EINVAL; `can_single_step()` false (traps,
 * sc, rfi family, power-saving, mtmsr/mtmsrd) → -EINVAL. Then two refusals that are this engine's,
 * not Linux's, because Unicorn 2.1.1 cannot carry them out:
 * - an ISA 3.1 prefixed instruction (primary opcode 1): Linux steps it in an 8-byte slot, but
 *   Unicorn 2.1.1's POWER10 model decodes no prefixes (it would be an illegal instruction anyway);
 * - `bctar` (the TAR register is not reachable through Unicorn's register API, so the branch can
 *   be neither emulated nor stepped: a taken one would leave the slot without its trap);
 * - `bcctr` with a CTR-decrementing BO: an invalid form the CPU rejects (Linux would emulate a
 *   decrement the hardware never does).
 * Every other instruction has a slot, and Linux's emulate-first (kprobe_handler → try_to_emulate)
 * runs before the step: the integer instructions of function entries (emulate-int.ts: addi,
 * addis, mr, mflr, stw/stwu, std/stdu) are carried out at the hit, one trap instead of two; the
 * step remains for a store that would fault and for the rest. Linux's emulate_step covers most
 * other integer, load and store instructions too; those are stepped here, with the same registers
 * afterwards (only the second trap's cost differs).
 */
import type { DecodedInsn, PreparedInsn, ProbeCpu, ProbeRefusal } from '../../probes.js';
import { UC_PPC_REG as R } from '../ucregs.js';
import { PPC_BREAKPOINT } from '../common.js';
import { applyAddpcis, branchEmulator } from './emulate.js';
import { intEmulator, intOp } from './emulate-int.js';
import { BO, ERRNO, bo, branchClass, cannotSingleStep, isAddpcis, isBctar, isPrefix } from './tables.js';
import { be32, wordsBytes } from './disasm.js';

export const PPC_SLOT_SIZE = 8;
/** Where the `trap` ending a step sits in the slot. */
export const PPC_STEP_TRAP_OFFSET = 4;

const refuse = (errno: number, reason: string): ProbeRefusal => ({ refused: true, errno, reason });

export function preparePpcKprobe(insn: DecodedInsn, bits: 32 | 64, pageSize: number): PreparedInsn | ProbeRefusal {
  const addr = insn.addr;
  if ((addr & 3n) !== 0n) return refuse(ERRNO.EINVAL, 'unaligned address: PowerPC instructions are 4-byte aligned');
  const w = be32(insn.bytes);
  const never = cannotSingleStep(w);
  if (never !== undefined) return refuse(ERRNO.EINVAL, `cannot single-step ${never}`);
  if (isPrefix(w)) {
    return refuse(ERRNO.EINVAL, 'prefixed instruction (ISA 3.1): Unicorn 2.1.1 does not implement prefixes');
  }
  if (isBctar(w)) return refuse(ERRNO.EINVAL, 'bctar: Unicorn 2.1.1 exposes no TAR register to emulate it with');
  const cls = branchClass(w);
  if (cls === 'bcctr' && (bo(w) & BO.NO_CTR) === 0) {
    return refuse(ERRNO.EINVAL, 'bcctr with a CTR-decrementing BO is an invalid form');
  }
  const noSlot = (): Uint8Array => {
    throw new Error('an emulated instruction has no slot');
  };
  if (cls !== undefined) {
    return { insn, mode: 'emulate', slotBytes: noSlot, emulate: branchEmulator(w, addr, bits) };
  }
  if (isAddpcis(w)) {
    return { insn, mode: 'emulate', slotBytes: noSlot, emulate: (cpu: ProbeCpu) => applyAddpcis(cpu, w, addr, bits) };
  }
  const next = BigInt.asUintN(bits, addr + 4n);
  const op = intOp(w, bits === 64);
  const emulate = op ? intEmulator(op, bits, pageSize) : undefined;
  return {
    insn,
    mode: 'step',
    ...(emulate ? { tryEmulate: (cpu: ProbeCpu) => emulate(cpu, addr) } : {}),
    stepTrapOffset: PPC_STEP_TRAP_OFFSET,
    // The copy, then the trap that ends the step (Linux steps with MSR[SE]; here the trap keeps
    // the step inside the same emulation run).
    slotBytes: () => wordsBytes(w, PPC_BREAKPOINT),
    // Nothing the copy did depends on where it ran (branches and addpcis were emulated): only the
    // PC goes back, to the instruction after the probe.
    postStep: (cpu: ProbeCpu) => cpu.engine.regWrite(R.PC, next),
    plainStepResume: next,
  };
}
