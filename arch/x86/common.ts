/**
 * Facts shared by x86-64 and i386: exception vectors and how Linux turns them into signals.
 */
import type { Engine } from '../../src/emu/unicorn.js';
import type { NativeStepTrapSpec } from '../probes.js';
import { SIG, type GuestFault, type TrapAction, type TrapSink } from '../types.js';

/** Vector used by the guest kernel image's hypercall stub (`int $0x81`, fixtures/kernel/ABI.md). */
export const HYPERCALL_VECTOR = 0x81;
export const BREAKPOINT_VECTOR = 3; // int3

/**
 * The step trap behind a probe's slot copy (kprobes and uprobes alike) as the engine's native trap
 * hook sees it: the slot's trailing int3, vector 3, the IP (register `ip`) one byte past it.
 */
export const x86StepTrap = (ip: number): NativeStepTrapSpec => ({ intno: BREAKPOINT_VECTOR, pcReg: ip, pcAfterTrap: 1 });
export const INT80_VECTOR = 0x80;

/**
 * Exception vector → signal, as arch/x86/kernel/traps.c delivers them to user space.
 * (#DE → SIGFPE, #UD → SIGILL, #GP → SIGSEGV, #BR/#OF → SIGSEGV, #DB → SIGTRAP, #AC → SIGBUS,
 * x87/SIMD errors → SIGFPE.)
 */
export function x86FaultForVector(vector: number): GuestFault {
  switch (vector) {
    case 0:
      // do_error_trap(X86_TRAP_DE, SIGFPE, FPE_INTDIV, ip): si_addr is the faulting PC.
      return { signal: SIG.SIGFPE, reason: 'divide error', code: FPE_INTDIV };
    case 1:
      return { signal: SIG.SIGTRAP, reason: 'debug trap' };
    case 3:
      return { signal: SIG.SIGTRAP, reason: 'breakpoint (int3)' };
    case 4:
      return { signal: SIG.SIGSEGV, reason: 'overflow (into)' };
    case 5:
      return { signal: SIG.SIGSEGV, reason: 'bound range exceeded' };
    case 6:
      return { signal: SIG.SIGILL, reason: 'invalid opcode' };
    case 7:
      return { signal: SIG.SIGFPE, reason: 'device not available' };
    case 13:
      return { signal: SIG.SIGSEGV, reason: 'general protection fault' };
    case 16:
    case 19:
      return { signal: SIG.SIGFPE, reason: 'floating-point exception' };
    case 17:
      return { signal: SIG.SIGBUS, reason: 'alignment check' };
    default:
      // A software interrupt with no handler behind it: Linux raises #GP for an IDT entry user
      // mode may not use, hence SIGSEGV.
      return { signal: SIG.SIGSEGV, reason: `interrupt 0x${vector.toString(16)} not allowed from user mode` };
  }
}

/** si_code of a divide error (uapi asm-generic/siginfo.h). */
const FPE_INTDIV = 1;

/** EFLAGS bits the generic code never needs but the arch sets up. */
export const EFLAGS_IF = 1n << 9n;
export const EFLAGS_RESERVED1 = 1n << 1n;

/** `int $0x81` is two bytes (CD 81). */
const HYPERCALL_INSN_BYTES = 2n;

/**
 * `int $HYPERCALL_VECTOR` ending at `after`: a hypercall from the guest kernel's code; from a user
 * program it is what Linux makes of an `int n` whose IDT gate user mode may not use: #GP, with
 * the PC on the instruction (a fault, not a trap), hence SIGSEGV.
 */
export function x86Hypercall(sink: TrapSink, after: bigint): TrapAction | undefined {
  const at = after - HYPERCALL_INSN_BYTES;
  if (sink.isKernelCode ? sink.isKernelCode(at) : sink.isKernelText(at)) return sink.hypercall(after);
  return sink.fault({ signal: SIG.SIGSEGV, reason: `general protection fault (int 0x${HYPERCALL_VECTOR.toString(16)} from user mode)` }, at);
}

/** Unicorn's x86 instruction ids for UC_HOOK_INSN (unicorn/x86.h). */
const UC_X86_INS_IN = 218;
const UC_X86_INS_OUT = 500;

/**
 * `in`/`out` from user code: #GP (no I/O permission: IOPL 0, no I/O bitmap) → SIGSEGV, as Linux
 * delivers it. Unicorn skips the IOPL check (docs/unicorn.md), so the port access is refused here;
 * the guest kernel itself does no port I/O. Unicorn may not have synced the PC to the instruction
 * before an I/O hook, so the reported PC can be the start of its translated block.
 */
export function installX86IoHooks(engine: Engine, sink: TrapSink, pcReg: number): void {
  for (const insn of [UC_X86_INS_IN, UC_X86_INS_OUT]) {
    engine.hookInsn(insn, () => {
      const pc = engine.regRead(pcReg);
      if (sink.isKernelCode ? sink.isKernelCode(pc) : sink.isKernelText(pc)) return;
      const action = sink.fault({ signal: SIG.SIGSEGV, reason: 'general protection fault (port I/O from user mode)' }, pc);
      if (action?.stop) engine.stop();
    });
  }
}
