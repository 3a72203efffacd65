/**
 * The PowerPC uprobe back-end (ppc32, ppc64 big-endian): `ppcUprobeArch(arch)` implements
 * arch/probes.ts's UprobeArch the way arch/powerpc/kernel/uprobes.c behaves (reference §2).
 *
 * - Breakpoint: `trap` (0x7FE00008), reported at its own address. is_trap_insn is every trap
 *   variant (tw/twi, and td/tdi on ppc64): such an original cannot be probed, and a trap with no
 *   uprobe behind it is the program's own.
 * - Analysis, in Linux's order: a misaligned address → -EINVAL; on ppc64 (an ISA 3.1 CPU) a
 *   prefixed instruction whose suffix would cross a 64-byte boundary (addr & 0x3f == 60) →
 *   -EINVAL; what can_single_step() rejects (trap forms, sc, the rfi/power-saving family,
 *   mtmsr/mtmsrd) → -ENOTSUPP.
 * - Emulated (arch_uprobe_skip_sstep → emulate_step): every branch (b, bc, bclr, bcctr with their
 *   LK/AA/CTR/CR semantics, shared with the kprobe back-end) and addpcis, which depend on where
 *   they run; and the integer instructions function entries are made of (addi, addis, mr, mflr,
 *   stw/stwu, std/stdu: kprobes/emulate-int.ts), one trap instead of two. Linux's emulate_step does most
 *   other integer, load and store instructions too; those are stepped here instead, with the same
 *   result (only the second trap's cost differs).
 * - Stepped: slot = [copy][trap] (8 bytes = UPROBE_XOL_SLOT_BYTES). Linux steps with MSR_SE; the
 *   engine has no single-step, so the trap after the copy ends the step inside the same run.
 *   post_xol: PC = vaddr + 4; abort_xol: PC = vaddr.
 * - Return probes: the return address is LR until the prologue saves it; hijack swaps LR.
 *   arch_uretprobe_is_alive: r1 ≤ the instance's at a chained call (the tail-calling function
 *   has popped its frame), r1 < it otherwise (x86's pairing is the other way round).
 *
 * What depends on the CPU Unicorn models (measured, pinned by test/arch/ppc-uprobes.test.ts):
 * - ppc32's 32-bit core implements neither bctar (ISA 2.07), addpcis (ISA 3.0) nor the
 *   CTR-decrementing bcctr form: they raise an illegal-instruction exception natively, so they are
 *   stepped and fault from the slot exactly as they would in place.
 * - ppc64 (POWER10) runs all three. bcctr with a decrementing BO tests the old CTR, branches to
 *   it and decrements it (emulated the same way, see bcctrDecrementing); bctar branches through
 *   TAR, which Unicorn 2.1.1's
 *   register API cannot read: refused with -ENOTSUPP, since neither emulating nor stepping it
 *   can work (a taken one would leave the slot without its trap).
 * - ISA 3.1 prefixed instructions are illegal on both (Unicorn 2.1.1 decodes no prefixes): the
 *   prefix word is stepped alone and faults as it does in place.
 */
import type { Arch } from '../../types.js';
import type { DecodedInsn, PreparedUprobe, ProbeCpu, ProbeRefusal, UprobeArch } from '../../probes.js';
import { poisonFill } from '../../probes.js';
import { UC_PPC_REG as R } from '../ucregs.js';
import { PPC_BREAKPOINT, PPC_STEP_TRAP, isPpcTrap } from '../common.js';
import { applyAddpcis, applyBranch, ppcHitRegisters } from '../kprobes/emulate.js';
import { BO, bo, bi, branchClass, cannotSingleStep, isAddpcis, isBctar, isPrefix, lkBit } from '../kprobes/tables.js';
import { be32, disasmText, wordText, wordsBytes } from '../kprobes/disasm.js';
import { intEmulator, intOp } from '../kprobes/emulate-int.js';

/** Linux errno values: EINVAL, and the kernel-internal ENOTSUPP uprobes answer with. */
export const ERRNO = { EINVAL: 22, ENOTSUPP: 524 } as const;

/** UPROBE_XOL_SLOT_BYTES, and where the trap ending a step sits in a slot. */
export const PPC_XOL_SLOT_BYTES = 8;
export const PPC_UPROBE_STEP_TRAP_OFFSET = 4;

const refuse = (errno: number, reason: string): ProbeRefusal => ({ refused: true, errno, reason });

/**
 * The invalid `bcctr` form with a CTR-decrementing BO, as the CPUs that run it do it (Book3S
 * 2.x and later, and Unicorn's POWER10 — measured): CTR is both the target and the counter, the
 * CTR test uses its value *before* the decrement, and CTR is decremented only when that test
 * passes (the CR test comes after). Linux's emulate_step would decrement first, the rule of
 * bc/bclr, and so go the other way when CTR is 1; the emulation here follows the CPU so that a
 * probed program runs as it does unprobed.
 */
function bcctrDecrementing(cpu: ProbeCpu, w: number, addr: bigint, bits: 32 | 64): void {
  const [ctr, cr] = cpu.engine.regReadBatch([R.CTR, R.CR]);
  const o = bo(w);
  const ctrOk = (ctr! !== 0n) === ((o & BO.CTR_ZERO) === 0);
  const crOk = (o & BO.IGNORE_CR) !== 0 || Number((cr! >> BigInt(31 - bi(w))) & 1n) === ((o & BO.CR_VALUE) !== 0 ? 1 : 0);
  const next = BigInt.asUintN(bits, addr + 4n);
  const ids: number[] = [R.PC, R.CTR];
  const vals: bigint[] = [ctrOk && crOk ? ctr! & ~3n : next, ctrOk ? BigInt.asUintN(bits, ctr! - 1n) : ctr!];
  if (lkBit(w)) {
    ids.push(R.LR);
    vals.push(next);
  }
  cpu.engine.regWriteBatch(ids, vals);
}

export function ppcUprobeArch(arch: Arch): UprobeArch {
  if (arch.family !== 'ppc') throw new Error(`ppcUprobeArch: ${arch.target} is not a PowerPC target`);
  const is64 = arch.wordSize === 8;
  const bits: 32 | 64 = is64 ? 64 : 32;
  const kind = is64 ? 'ppc64' : 'ppc32';
  const pageSize = arch.layout.pageSize;

  /** How `w` runs here: emulated, stepped, or refused (see the module comment). */
  function classify(w: number): 'emulate' | 'step' | ProbeRefusal {
    const cls = branchClass(w);
    if (isBctar(w)) {
      return is64 ? refuse(ERRNO.ENOTSUPP, 'bctar: Unicorn 2.1.1 exposes no TAR register to emulate it with, and a step would leave the slot') : 'step';
    }
    if (cls === 'bcctr' && (bo(w) & BO.NO_CTR) === 0) return is64 ? 'emulate' : 'step';
    if (cls !== undefined) return 'emulate';
    if (isAddpcis(w)) return is64 ? 'emulate' : 'step';
    return intOp(w, is64) ? 'emulate' : 'step';
  }

  function analyzeUprobe(vaddr: bigint, bytes: Uint8Array): PreparedUprobe | ProbeRefusal {
    if ((vaddr & 3n) !== 0n) return refuse(ERRNO.EINVAL, 'unaligned address: PowerPC instructions are 4-byte aligned');
    if (bytes.length < 4) return refuse(ERRNO.EINVAL, 'fewer than 4 bytes of text at the probe address');
    const b = bytes.slice(0, 4);
    const w = be32(b);
    if (is64 && isPrefix(w) && (vaddr & 0x3fn) === 60n) {
      return refuse(ERRNO.EINVAL, 'prefixed instruction whose suffix would cross a 64-byte boundary');
    }
    const never = cannotSingleStep(w);
    if (never !== undefined) return refuse(ERRNO.ENOTSUPP, `cannot single-step ${never}`);
    const how = classify(w);
    if (typeof how !== 'string') return how;
    const insn: DecodedInsn = { addr: vaddr, length: 4, bytes: b, text: disasmText(kind, vaddr, b) ?? wordText(w) };
    const slot = wordsBytes(w, PPC_BREAKPOINT);
    const lk = branchClass(w) !== undefined && lkBit(w);
    const testThenDecrement = branchClass(w) === 'bcctr' && (bo(w) & BO.NO_CTR) === 0;
    const intOpOf = branchClass(w) === undefined && !isAddpcis(w) ? intOp(w, is64) : undefined;
    const int = intOpOf ? intEmulator(intOpOf, bits, pageSize) : undefined;
    const emulate =
      how === 'emulate'
        ? (cpu: ProbeCpu, at: bigint = vaddr): boolean => {
            if (int) return int(cpu, at);
            if (testThenDecrement) bcctrDecrementing(cpu, w, at, bits);
            else if (branchClass(w) !== undefined) applyBranch(cpu, w, at, bits);
            else applyAddpcis(cpu, w, at, bits);
            return true;
          }
        : undefined;
    return {
      insn,
      mode: how,
      ...(emulate ? { emulate } : {}),
      slotBytes: () => slot.slice(),
      stepTrapOffset: PPC_UPROBE_STEP_TRAP_OFFSET,
      plainStepNext: 4,
      preXol(cpu: ProbeCpu, slotAddr: bigint): undefined {
        cpu.engine.regWrite(R.PC, slotAddr);
        return undefined;
      },
      // Nothing the copy did depends on where it ran (branches and addpcis are emulated): the PC
      // goes to the next instruction (ppc_inst_next: 4 bytes, prefixed ones never run here).
      postXol(cpu: ProbeCpu, _slotAddr: bigint, v: bigint): void {
        cpu.engine.regWrite(R.PC, BigInt.asUintN(bits, v + 4n));
      },
      abortXol(cpu: ProbeCpu, slotAddr: bigint, v: bigint): void {
        // Unicorn's ppc32 core sets LR for a branch form it then rejects as illegal (the
        // decrementing bcctrl): the copy left the slot's address there, in place it is vaddr's.
        if (lk && cpu.engine.regRead(R.LR) === BigInt.asUintN(bits, slotAddr + 4n)) cpu.engine.regWrite(R.LR, BigInt.asUintN(bits, v + 4n));
        cpu.engine.regWrite(R.PC, v);
      },
    };
  }

  return {
    swbp: wordsBytes(PPC_BREAKPOINT),
    maxInsnBytes: 4,
    xolSlotBytes: PPC_XOL_SLOT_BYTES,
    xolPoison: poisonFill(wordsBytes(PPC_BREAKPOINT), PPC_XOL_SLOT_BYTES),
    hitRegisters: ppcHitRegisters(bits),
    isTrapInsn: (bytes) => bytes.length >= 4 && isPpcTrap(be32(bytes), is64),
    nativeStepTrap: PPC_STEP_TRAP,
    analyzeUprobe,
    hijackUserReturn(cpu, trampoline) {
      const orig = cpu.engine.regRead(R.LR);
      cpu.engine.regWrite(R.LR, trampoline);
      return orig;
    },
    uretprobeIsAlive(cpu, riStack, ctx) {
      const r1 = cpu.engine.regRead(R.R1);
      return ctx === 'chain-call' ? r1 <= riStack : r1 < riStack;
    },
    userSp: (cpu) => cpu.engine.regRead(R.R1),
  };
}
