/**
 * The PowerPC (ppc32, ppc64 big-endian) kprobe back-end: `ppcProbeArch(arch)` implements
 * arch/probes.ts for either target.
 *
 * - Breakpoint: `trap` (tw 31,0,0 = 0x7fe00008), reported at its own address.
 * - Boundaries: every 4-byte-aligned address (fixed width; the ISA 3.1 prefixes are refused in
 *   prepare, see prepare.ts).
 * - Return probes: the return address is LR until the prologue saves it (`mflr r0`), so the hook
 *   is valid at the function's entry (ppc64 ELFv2: the local entry, after the TOC setup).
 * - Frame identity: r1, the stack pointer (it is also the back-chain word's address).
 */
import { isPpcTrap } from '../common.js';
import type { Arch } from '../../types.js';
import { optprobesNotSupported, type DecodedInsn, type PreparedInsn, type ProbeArch, type ProbeCpu, type ProbeRefusal } from '../../probes.js';
import { poisonFill } from '../../probes.js';
import { UC_PPC_REG as R } from '../ucregs.js';
import { PPC_BREAKPOINT, PPC_STEP_TRAP } from '../common.js';
import { disasmText, wordText, be32, wordsBytes } from './disasm.js';
import { PPC_SLOT_SIZE, preparePpcKprobe } from './prepare.js';
import { ppcHitRegisters } from './emulate.js';
import { ppcOptProbeArch } from './optimize.js';

export { loadDisassembler } from './disasm.js';
export { PPC_SLOT_SIZE, PPC_STEP_TRAP_OFFSET } from './prepare.js';

export function ppcProbeArch(arch: Arch): ProbeArch {
  if (arch.family !== 'ppc') throw new Error(`ppcProbeArch: ${arch.target} is not a PowerPC target`);
  const bits: 32 | 64 = arch.wordSize === 8 ? 64 : 32;
  const kind = arch.target === 'ppc64' ? 'ppc64' : 'ppc32';

  function decode(addr: bigint, bytes: Uint8Array): DecodedInsn | undefined {
    if (bytes.length < 4) return undefined;
    const b = bytes.slice(0, 4);
    return { addr, length: 4, bytes: b, text: disasmText(kind, addr, b) ?? wordText(be32(b)) };
  }

  return {
    arch,
    // kprobe_handler: a hit while single-stepping a trap instruction is that trap's, not a reentry.
    reentry: (state, opcode) => (state === 'ss' && opcode.length >= 4 && isPpcTrap(be32(opcode), bits === 64) ? 'not-ours' : 'reenter'),
    breakpoint: wordsBytes(PPC_BREAKPOINT),
    maxInsnLength: 4,
    slotSize: PPC_SLOT_SIZE,
    // The breakpoint again and again: a CPU stepping a freed slot traps wherever it is.
    slotPoison: poisonFill(wordsBytes(PPC_BREAKPOINT), PPC_SLOT_SIZE),
    hitRegisters: ppcHitRegisters(bits),
    nativeStepTrap: PPC_STEP_TRAP,
    decode,
    // powerpc has no can_probe(): every address passes here and arch_prepare_kprobe refuses a
    // misaligned one with -EINVAL (not x86's -EILSEQ).
    isInsnBoundary: () => true,
    prepareKprobe(addr: bigint, bytes: Uint8Array): PreparedInsn | ProbeRefusal {
      const insn = decode(addr, bytes);
      if (!insn) return { refused: true, errno: 84, reason: 'fewer than 4 bytes of text at the probe address' };
      return preparePpcKprobe(insn, bits, arch.layout.pageSize);
    },
    hijackReturn(cpu: ProbeCpu, trampoline: bigint): bigint {
      const orig = cpu.engine.regRead(R.LR);
      cpu.engine.regWrite(R.LR, trampoline);
      return orig;
    },
    frameSp: (cpu: ProbeCpu) => cpu.engine.regRead(R.R1),
    returnedFrameSp: (cpu: ProbeCpu) => cpu.engine.regRead(R.R1),
    // The trampoline's LR still holds the trampoline: give it the real return address.
    fixupKretprobeReturn: (cpu: ProbeCpu, _frame: bigint, real: bigint) => cpu.engine.regWrite(R.LR, real),
    // Linux selects HAVE_OPTPROBES for PPC64 only.
    optimize: kind === 'ppc64' ? ppcOptProbeArch(bits) : optprobesNotSupported('Linux builds powerpc optprobes for 64-bit kernels only (HAVE_OPTPROBES if PPC64)'),
  };
}
