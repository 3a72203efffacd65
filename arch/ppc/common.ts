/**
 * PowerPC facts shared by ppc32 and ppc64: exception numbers as Unicorn reports them, trap
 * recognition, the Linux system-call convention (r0 = number, r3–r8 = arguments, error = CR0.SO
 * with a positive errno in r3).
 */
import { errnoTranslator } from '../../src/kernel/errno.js';
import { PPC_ERRNO } from './errno.js';
import type { Engine } from '../../src/emu/unicorn.js';
import type { NativeStepTrapSpec } from '../probes.js';
import { SIG, type Arch, type AuxvContext, type GuestFault, type TrapAction, type TrapSink } from '../types.js';
import { UC_PPC_REG as R } from './ucregs.js';
import { emulatePrivileged } from './emulate.js';

/**
 * QEMU's POWERPC_EXCP_* numbers as delivered to UC_HOOK_INTR. HV_EMU (96, "HV emulation
 * assistance") is what Unicorn 2.1.1 raises for an invalid or privileged instruction (QEMU's
 * gen_inval_exception; measured with the words 0x00000000 and 0x04000000): QEMU would turn it into
 * a program check on a CPU without a hypervisor, but the hook sees the raw number.
 */
export const PPC_EXCP = { DSI: 2, ISI: 3, ALIGN: 5, PROGRAM: 6, FPU: 7, SYSCALL: 8, HV_EMU: 96 } as const;

/**
 * The step trap behind a probe's slot copy (kprobes and uprobes alike) as the engine's native trap
 * hook sees it: a `trap` word, a program check, with the PC 4 bytes past it (installPpcTrapHooks).
 */
export const PPC_STEP_TRAP: NativeStepTrapSpec = { intno: PPC_EXCP.PROGRAM, pcReg: R.PC, pcAfterTrap: 4 };

/** `tw 31,0,0`: the kprobe/uprobe breakpoint (BREAKPOINT_INSTRUCTION). */
export const PPC_BREAKPOINT = 0x7fe00008;

/** is_trap(): tw/twi (and td/tdi on 64-bit), from arch/powerpc/include/asm/probes.h. */
export function isPpcTrap(insn: number, is64: boolean): boolean {
  const tw = (insn & 0xfc0007fe) === 0x7c000008;
  const twi = (insn & 0xfc000000) === 0x0c000000;
  const td = (insn & 0xfc0007fe) === 0x7c000088;
  const tdi = (insn & 0xfc000000) === 0x08000000;
  return tw || twi || (is64 && (td || tdi));
}

export const PPC_GPRS: readonly number[] = Array.from({ length: 32 }, (_, i) => R.R0 + i);
export const PPC_FPRS: readonly number[] = Array.from({ length: 32 }, (_, i) => R.FPR0 + i);
export const PPC_SYSCALL_REGS: readonly number[] = [...PPC_GPRS, R.PC, R.LR, R.CTR, R.XER, R.CR];
export const PPC_FULL_REGS: readonly number[] = [...PPC_SYSCALL_REGS, ...PPC_FPRS, R.FPSCR];
export const PPC_ARG_REGS: readonly number[] = [R.R3, R.R4, R.R5, R.R6, R.R7, R.R8, R.R9, R.R10];
export const PPC_SYSCALL_ARG_REGS: readonly number[] = [R.R3, R.R4, R.R5, R.R6, R.R7, R.R8];
/** r0 (the number) and the arguments: what every system call entry reads, made once. */
export const PPC_SYSCALL_READ: readonly number[] = [R.R0, ...PPC_SYSCALL_ARG_REGS];

/** MSR bits a user process runs with (FP available; PR is not modelled: see the README). */
export const MSR_FP = 1n << 13n;

export function ppcRegisterNames(width: number): Map<string, { id: number; size: number }> {
  const m = new Map<string, { id: number; size: number }>();
  for (let i = 0; i < 32; i++) m.set(`gpr${i}`, { id: R.R0 + i, size: width });
  m.set('nip', { id: R.PC, size: width });
  m.set('link', { id: R.LR, size: width });
  m.set('ctr', { id: R.CTR, size: width });
  m.set('xer', { id: R.XER, size: width });
  m.set('ccr', { id: R.CR, size: 4 });
  m.set('msr', { id: R.MSR, size: width });
  return m;
}

export function ppcFault(excp: number): GuestFault {
  switch (excp) {
    case PPC_EXCP.DSI:
    case PPC_EXCP.ISI:
      return { signal: SIG.SIGSEGV, reason: excp === PPC_EXCP.DSI ? 'data storage interrupt' : 'instruction storage interrupt' };
    case PPC_EXCP.ALIGN:
      return { signal: SIG.SIGBUS, reason: 'alignment interrupt' };
    case PPC_EXCP.PROGRAM:
      return { signal: SIG.SIGILL, reason: 'illegal or privileged instruction' };
    case PPC_EXCP.HV_EMU:
      // Linux: a program check for an illegal instruction is SIGILL (ILL_ILLOPC).
      return { signal: SIG.SIGILL, reason: 'illegal instruction' };
    case PPC_EXCP.FPU:
      return { signal: SIG.SIGILL, reason: 'floating-point unavailable' };
    default:
      return { signal: SIG.SIGSEGV, reason: `exception ${excp}` };
  }
}

/**
 * The word that raised a program check (a probe's trap at every hit): read from the task's memory
 * on the host side, which holds the same bytes the CPU fetched; uc_mem_read costs ~1 µs more per
 * hit here (it translates through the engine). An address the task's mm does not describe is
 * read from the engine.
 */
function insnBytes(engine: Engine, sink: TrapSink, at: bigint, into: Uint8Array): Uint8Array | undefined {
  try {
    const mem = sink.memory();
    return mem.readInto ? mem.readInto(at, into) : mem.read(at, 4);
  } catch {
    return engine.tryMemRead(at, 4);
  }
}

/**
 * One INTR hook for every ppc exception. Unicorn adds 4 to the PC for every ppc exception
 * (reference: "trap + 4", "after sc"), so the instruction that raised it is at PC − 4.
 * A `sc` in guest kernel text is a hypercall, anywhere else a user system call.
 */
export function installPpcTrapHooks(engine: Engine, sink: TrapSink, is64: boolean): void {
  const word4 = new Uint8Array(4); // the trapping word, read at every program check
  engine.hookIntr((excp) => {
    const after = engine.regRead(R.PC);
    const at = after - 4n;
    let action: TrapAction | undefined;
    if (excp === PPC_EXCP.SYSCALL) {
      action = sink.isKernelText(at) ? sink.hypercall(after) : sink.syscall(after);
    } else if (excp === PPC_EXCP.PROGRAM) {
      // A kprobe's trap (kernel code) is read where every address space shares it; the rest
      // (uprobes, the program's own traps, privileged instructions) from the task's mm.
      const word = sink.readKernelWord?.(at, word4) ? word4 : insnBytes(engine, sink, at, word4);
      const insn = word ? ((word[0]! << 24) | (word[1]! << 16) | (word[2]! << 8) | word[3]!) >>> 0 : 0;
      const resume = word && !isPpcTrap(insn, is64) ? emulatePrivileged(engine, insn, at) : undefined;
      if (word && isPpcTrap(insn, is64)) action = sink.breakpoint(at, after);
      else if (resume !== undefined) action = { pc: resume };
      else action = sink.fault(ppcFault(excp), at);
    } else {
      action = sink.fault(ppcFault(excp), at);
    }
    // An exception with no redirect resumes after the faulting instruction only for sc; for the
    // others the generic code decides (it kills the task or redirects).
    const pc = action?.pc;
    // Redirect and stop: the PC is written after the run (a PC write here would cancel the stop).
    if (pc !== undefined && action?.stop) engine.stopThen(() => engine.regWrite(R.PC, pc));
    else if (pc !== undefined) engine.regWrite(R.PC, pc);
    else if (action?.stop) engine.stop();
  });
}

/** CR0 is a 4-bit field in Unicorn (LT GT EQ SO); SO is its bit 0. */
export function writeSyscallResultPpc(engine: Engine, value: bigint, width: 32 | 64): void {
  if (value < 0n && value >= -4095n) {
    engine.regWrite(R.R3, -value);
    engine.regWrite(R.CR0, engine.regRead(R.CR0) | 1n);
  } else {
    engine.regWrite(R.R3, BigInt.asUintN(width, value));
    engine.regWrite(R.CR0, engine.regRead(R.CR0) & ~1n);
  }
}

/**
 * Arch members ppc32 and ppc64 share exactly: PC/SP access, register snapshots, and the clone
 * argument order (Linux/powerpc clone is CLONE_BACKWARDS: flags, newsp, parent_tid, tls,
 * child_tid). Each back-end spreads these into its Arch object.
 */
/** MSR[PR]: problem state (user mode). */
export const MSR_PR = 1n << 14n;

export const ppcSharedMembers = {
  /**
   * User code runs with MSR[PR] set, as under Linux: mfmsr, mtmsr, rfi, privileged SPRs trap.
   * QEMU's ppc MMU index includes MSR[PR] (hreg_compute_mem_idx): each mode has its own TLB.
   */
  setCpuMode(e: Engine, user: boolean): boolean {
    const msr = e.regRead(R.MSR);
    const want = user ? msr | MSR_PR : msr & ~MSR_PR;
    if (want !== msr) e.regWrite(R.MSR, want);
    return true;
  },
  getPc: (e: Engine): bigint => e.regRead(R.PC),
  setPc: (e: Engine, pc: bigint): void => e.regWrite(R.PC, pc),
  getSp: (e: Engine): bigint => e.regRead(R.R1),
  setSp: (e: Engine, sp: bigint): void => e.regWrite(R.R1, sp),
  snapshot: (e: Engine) => ({ values: e.regReadBatch(PPC_FULL_REGS) }),
  restore: (e: Engine, s: { values: bigint[] }): void => e.regWriteBatch(PPC_FULL_REGS, s.values),
  saveSyscallRegs: (e: Engine) => ({ values: e.regReadBatch(PPC_SYSCALL_REGS) }),
  restoreSyscallRegs: (e: Engine, s: { values: bigint[] }): void => e.regWriteBatch(PPC_SYSCALL_REGS, s.values),
  archSyscall: (): undefined => undefined,
  errno: PPC_ERRNO,
  userErrno: errnoTranslator(PPC_ERRNO),
  cloneArgs: (a: bigint[]) => ({ flags: a[0]!, stack: a[1]!, parentTid: a[2]!, tls: a[3]!, childTid: a[4]! }),
} satisfies Partial<Arch>;

// AT_* ids for the cache geometry glibc's memset/memcpy consult on PowerPC.
const AT_DCACHEBSIZE = 19;
const AT_ICACHEBSIZE = 20;
const AT_UCACHEBSIZE = 21;

/** auxv of a PowerPC process: hwcap and the cache block size (what `dcbz` clears). */
export function ppcAuxv(hwcap: bigint, cacheBlock: bigint): AuxvContext {
  return {
    hwcap,
    hwcap2: 0n,
    extra: [
      [AT_DCACHEBSIZE, cacheBlock],
      [AT_ICACHEBSIZE, cacheBlock],
      [AT_UCACHEBSIZE, 0n],
    ],
  };
}

/** Registers at exec common to both: GPRs zero, PC = entry, LR = CTR = 0, r1 = stack. */
export function ppcStartRegisters(e: Engine, entry: bigint, sp: bigint): void {
  e.regWriteBatch([...PPC_GPRS, R.PC, R.LR, R.CTR], [...PPC_GPRS.map(() => 0n), entry, 0n, 0n]);
  e.regWrite(R.R1, sp);
}
