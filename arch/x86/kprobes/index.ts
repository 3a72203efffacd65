/**
 * The x86 kprobes back-end (x86-64 and i386): `x86ProbeArch(arch)` implements arch/probes.ts's
 * ProbeArch the way arch/x86/kernel/kprobes/core.c behaves. i386 differs only in word size and
 * in having no RIP-relative addressing (mod=00 rm=101 is an absolute disp32 there, which runs
 * unchanged from a slot).
 */
import type { ProbeArch, ProbeCpu } from '../../probes.js';
import { poisonFill } from '../../probes.js';
import type { Arch } from '../../types.js';
import { decodeX86, EMULATE_PREFIX_LEN, MAX_INSN_LEN } from './decode.js';
import { REGS_32, REGS_64, x86HitRegisters } from './emulate.js';
import { prepareX86Kprobe } from './prepare.js';
import { INT3, SLOT_SIZE } from './tables.js';
import { x86StepTrap } from '../common.js';
import { x86OptProbeArch } from './optimize.js';

export { decodeX86, type X86Insn } from './decode.js';
export { canBoost, classify, EILSEQ, EINVAL, ENOSPC, EOPNOTSUPP } from './tables.js';

function readSome(read: (addr: bigint, len: number) => Uint8Array, addr: bigint, want: number): Uint8Array | undefined {
  // Near the end of mapped text a full-length read can fail; a shorter one may still hold the insn.
  for (let n = want; n >= 1; n--) {
    try {
      return read(addr, n);
    } catch {
      /* try fewer bytes */
    }
  }
  return undefined;
}

export function x86ProbeArch(arch: Arch): ProbeArch {
  if (arch.family !== 'x86') throw new Error(`x86ProbeArch: ${arch.target} is not x86`);
  const regs = arch.wordSize === 8 ? REGS_64 : REGS_32;
  const long = regs.bits === 64;
  const wordBytes = regs.bits / 8;

  // Little-endian words through one scratch DataView (kretprobes hijack and repair a return
  // address at every hit): no byte arrays, no BigInt byte loops. Mm.write copies the bytes.
  const view = new DataView(new ArrayBuffer(8));
  const word = new Uint8Array(view.buffer, 0, wordBytes);
  const readWord = (cpu: ProbeCpu, at: bigint): bigint => {
    word.set(cpu.mem.read(at, wordBytes));
    return long ? view.getBigUint64(0, true) : BigInt(view.getUint32(0, true));
  };
  const writeWord = (cpu: ProbeCpu, at: bigint, value: bigint): void => {
    view.setBigUint64(0, BigInt.asUintN(64, value), true);
    cpu.mem.write(at, word);
  };

  return {
    arch,
    // reenter_kprobe: a hit while reentering cannot be recovered (BUG).
    reentry: (state) => (state === 'reenter' ? 'unrecoverable' : 'reenter'),
    breakpoint: Uint8Array.of(INT3),
    maxInsnLength: MAX_INSN_LEN,
    slotSize: SLOT_SIZE,
    // The breakpoint again and again: a CPU stepping a freed slot traps wherever it is.
    slotPoison: poisonFill(Uint8Array.of(INT3), SLOT_SIZE),
    hitRegisters: x86HitRegisters(regs),
    nativeStepTrap: x86StepTrap(regs.ip),
    decode: (addr, bytes) => decodeX86(addr, bytes, long),
    isInsnBoundary(read, funcStart, addr) {
      // can_probe: decode from the symbol's start; the walk must land exactly on addr.
      let pc = funcStart;
      while (pc < addr) {
        const bytes = readSome(read, pc, MAX_INSN_LEN + EMULATE_PREFIX_LEN);
        if (bytes === undefined) return false;
        const insn = decodeX86(pc, bytes, long);
        if (insn === undefined) return false;
        pc += BigInt(insn.length);
      }
      return pc === addr;
    },
    prepareKprobe: (addr, bytes, opts) => prepareX86Kprobe(addr, bytes, opts, regs),
    hijackReturn(cpu, trampoline) {
      // At function entry the return address is the word on top of the stack.
      const sp = cpu.engine.regRead(regs.sp);
      const orig = readWord(cpu, sp);
      writeWord(cpu, sp, trampoline);
      return orig;
    },
    frameSp: (cpu) => cpu.engine.regRead(regs.sp),
    returnedFrameSp: (cpu) => cpu.engine.regRead(regs.sp) - BigInt(arch.wordSize),
    fixupKretprobeReturn: (cpu, frame, real) => writeWord(cpu, frame, real),
    // arch_populate_kprobe_blacklist: the entry code runs before the kernel is in a state where
    // a trap is safe; kretprobe_blacklist: a return hijacked across a task switch goes astray.
    blacklistRanges: [['__entry_text_start', '__entry_text_end']],
    kretprobeBlacklist: ['__switch_to'],
    optimize: x86OptProbeArch(long),
  };
}
