/**
 * The x86 uprobe back-end (x86-64 and i386 tasks): `x86UprobeArch(arch)` implements
 * arch/probes.ts's UprobeArch the way arch/x86/kernel/uprobes.c behaves (analysis and xol ops in
 * prepare.ts, tables in tables.ts).
 *
 * - Breakpoint: int3 (0xCC), reported one byte past itself; the core sets the IP back to it.
 * - Slots: 128 bytes (UPROBE_XOL_SLOT_BYTES); a copy is at most 15 bytes plus the int3.
 * - Return probes: the return address is the word on top of the stack at function entry (8
 *   bytes, 4 in a 32-bit task). A return address that already is the trampoline is given back
 *   untouched, so the core chains the new instance (a tail call).
 * - arch_uretprobe_is_alive: right after a call the new frame's sp is strictly below a live
 *   instance's (RP_CHECK_CALL); at a chained call or at the trampoline it may be equal.
 */
import type { ProbeCpu, UprobeArch, UretprobeCheck } from '../../probes.js';
import { poisonFill } from '../../probes.js';
import type { Arch } from '../../types.js';
import { REGS_32, REGS_64, x86HitRegisters } from '../kprobes/emulate.js';
import { analyzeX86Uprobe } from './prepare.js';
import { INT3, MAX_UINSN_BYTES, XOL_SLOT_BYTES } from './tables.js';
import { x86StepTrap } from '../common.js';

export { ERRNO } from './tables.js';

export function x86UprobeArch(arch: Arch): UprobeArch {
  if (arch.family !== 'x86') throw new Error(`x86UprobeArch: ${arch.target} is not x86`);
  const base = arch.wordSize === 8 ? REGS_64 : REGS_32;
  const regs = { ...base, word: arch.wordSize };
  const word = arch.wordSize;

  // Words through one scratch DataView (little-endian): no BigInt byte loops at a hit.
  const view = new DataView(new ArrayBuffer(8));
  const wordBytes = new Uint8Array(view.buffer, 0, word);
  const readWord = (cpu: ProbeCpu, at: bigint): bigint => {
    wordBytes.set(cpu.mem.read(at, word));
    return word === 8 ? view.getBigUint64(0, true) : BigInt(view.getUint32(0, true));
  };

  return {
    swbp: Uint8Array.of(INT3),
    maxInsnBytes: MAX_UINSN_BYTES,
    xolSlotBytes: XOL_SLOT_BYTES,
    xolPoison: poisonFill(Uint8Array.of(INT3), XOL_SLOT_BYTES),
    hitRegisters: x86HitRegisters(base),
    isTrapInsn: (bytes) => bytes[0] === INT3,
    nativeStepTrap: x86StepTrap(base.ip),
    analyzeUprobe: (vaddr, bytes) => analyzeX86Uprobe(vaddr, bytes, regs),
    hijackUserReturn(cpu, trampoline) {
      const sp = cpu.engine.regRead(regs.sp);
      let orig: bigint;
      try {
        orig = readWord(cpu, sp);
      } catch {
        return undefined;
      }
      if (orig === trampoline) return orig;
      view.setBigUint64(0, BigInt.asUintN(64, trampoline), true);
      try {
        cpu.mem.write(sp, wordBytes);
      } catch {
        return undefined;
      }
      return orig;
    },
    uretprobeIsAlive(cpu, riStack, ctx: UretprobeCheck) {
      const sp = cpu.engine.regRead(regs.sp);
      return ctx === 'call' ? sp < riStack : sp <= riStack;
    },
    userSp: (cpu) => cpu.engine.regRead(regs.sp),
  };
}
