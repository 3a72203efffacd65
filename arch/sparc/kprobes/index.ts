/**
 * The sparc64 kprobe back-end: `sparcProbeArch(arch)` implements arch/probes.ts.
 *
 * - Breakpoint `ta 0x70`, step end `ta 0x71` in the copy's delay slot (prepare.ts, fixup.ts).
 * - Boundaries: 4-byte alignment (misaligned: -EILSEQ, as Linux).
 * - Return probes (arch_prepare_kretprobe): valid before the function's `save`, while the return
 *   address is still in %o7. SPARC returns to %o7 + 8 (past the call's delay slot), so the
 *   original return address handed back is %o7 + 8 and %o7 becomes trampoline − 8.
 * - Frame identity: %sp. The 64-bit ABI's %sp is biased by 2047; the real frame address
 *   (%sp + 2047) is what identifies the frame, so it is given unbiased (a 32-bit frame's even
 *   %sp is taken as is).
 */
import type { Arch } from '../../types.js';
import { optprobesNotSupported, type DecodedInsn, type PreparedInsn, type ProbeArch, type ProbeCpu, type ProbeRefusal } from '../../probes.js';
import { poisonFill } from '../../probes.js';
import { STACK_BIAS } from '../isa.js';
import { UC_SPARC_REG as R } from '../ucregs.js';
import { be32, disasmText, wordText, wordsBytes } from '../../ppc/kprobes/disasm.js';
import { KPROBE_BP, KPROBE_STEP } from './tables.js';
import { sparcStepTrap } from '../cpu.js';
import { SPARC_SLOT_SIZE, prepareSparcKprobe } from './prepare.js';
import { SPARC_HIT_REGISTERS } from './fixup.js';

export { loadDisassembler } from '../../ppc/kprobes/disasm.js';
export { SPARC_SLOT_SIZE, SPARC_STEP_TRAP_OFFSET } from './prepare.js';
export { KPROBE_BP, KPROBE_STEP } from './tables.js';

export function sparcProbeArch(arch: Arch): ProbeArch {
  if (arch.family !== 'sparc') throw new Error(`sparcProbeArch: ${arch.target} is not a SPARC target`);

  function decode(addr: bigint, bytes: Uint8Array): DecodedInsn | undefined {
    if (bytes.length < 4) return undefined;
    const b = bytes.slice(0, 4);
    return { addr, length: 4, bytes: b, text: disasmText('sparc64', addr, b) ?? wordText(be32(b)) };
  }

  return {
    arch,
    // kprobe_handler: a hit while single-stepping goes to no_kprobe (the trap is not handled here).
    reentry: (state) => (state === 'ss' ? 'not-ours' : 'reenter'),
    breakpoint: wordsBytes(KPROBE_BP),
    maxInsnLength: 4,
    slotSize: SPARC_SLOT_SIZE,
    // The breakpoint again and again: a CPU stepping a freed slot traps wherever it is.
    slotPoison: poisonFill(wordsBytes(KPROBE_BP), SPARC_SLOT_SIZE),
    hitRegisters: SPARC_HIT_REGISTERS,
    nativeStepTrap: sparcStepTrap(KPROBE_STEP & 0x7f),
    decode,
    isInsnBoundary: (_read, _funcStart, addr) => (addr & 3n) === 0n,
    prepareKprobe(addr: bigint, bytes: Uint8Array): PreparedInsn | ProbeRefusal {
      const insn = decode(addr, bytes);
      if (!insn) return { refused: true, errno: 84, reason: 'fewer than 4 bytes of text at the probe address' };
      return prepareSparcKprobe(insn);
    },
    hijackReturn(cpu: ProbeCpu, trampoline: bigint): bigint {
      const orig = BigInt.asUintN(64, cpu.engine.regRead(R.O7) + 8n);
      cpu.engine.regWrite(R.O7, BigInt.asUintN(64, trampoline - 8n));
      return orig;
    },
    frameSp(cpu: ProbeCpu): bigint {
      const sp = cpu.engine.regRead(R.SP);
      return (sp & 1n) === 1n ? BigInt.asUintN(64, sp + STACK_BIAS) : sp;
    },
    returnedFrameSp(cpu: ProbeCpu): bigint {
      return this.frameSp(cpu);
    },
    // %o7 was consumed by the return itself: nothing holds the trampoline address any more.
    fixupKretprobeReturn: () => undefined,
    // Linux's sparc selects no HAVE_OPTPROBES: every sparc64 kprobe stays a trap.
    optimize: optprobesNotSupported('Linux has no sparc optprobes (sparc does not select HAVE_OPTPROBES)'),
  };
}
