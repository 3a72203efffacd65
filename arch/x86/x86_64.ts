/**
 * x86-64 back-end: registers, the syscall ABI, traps, the C ABI of the guest kernel image.
 *
 * Unicorn quirks handled here (reference/unicorn-2.0.1.md, re-checked on 2.1.1 in docs/unicorn.md):
 * - `syscall` is seen by a UC_HOOK_INSN hook with RIP still on the instruction; Unicorn adds 2
 *   after the hook returns, even to a RIP the hook wrote. So a redirect writes target − 2.
 * - `syscall` does not set RCX/R11; Linux's sysret path leaves RCX = return RIP, R11 = RFLAGS, and
 *   so do we.
 * - int3 and `int n` arrive through UC_HOOK_INTR with RIP after the instruction.
 */
import { E, errnoTranslator, GENERIC_ERRNO } from '../../src/kernel/errno.js';
import { singleEntry } from '../entry.js';
import type { Engine } from '../../src/emu/unicorn.js';
import { UC_ARCH, UC_MODE } from '../../src/emu/unicorn.js';
import type { Arch, GuestMemoryAccess, RegSnapshot, TrapSink } from '../types.js';
import { UC_X86_REG as R } from './ucregs.js';
import { SYSCALLS_X86_64 } from './syscalls-x86_64.js';
import { BREAKPOINT_VECTOR, EFLAGS_RESERVED1, HYPERCALL_VECTOR, x86FaultForVector, x86Hypercall, installX86IoHooks } from './common.js';
import { attachX86CpuState, setX86CpuMode, x86ExceptionTaken } from './cpu-state.js';
import { SyscallTable } from '../syscall-table.js';
import { STAT_X86_64 } from './stat.js';
import { GENERIC_OPEN_FLAGS } from '../../src/kernel/abi/open-flags.js';
import { sigactionLayout, X86_MINSIGSTKSZ, X86_SA_FLAGS } from './signal-abi.js';
import { restartSyscall64, rtSigreturn64, setupRtFrame64 } from './signal-frame-x86_64.js';

const UC_X86_INS_SYSCALL = 699;

const GPRS = [R.RAX, R.RBX, R.RCX, R.RDX, R.RSI, R.RDI, R.RBP, R.RSP, R.R8, R.R9, R.R10, R.R11, R.R12, R.R13, R.R14, R.R15] as const;
const SYSCALL_REGS = [...GPRS, R.RIP, R.RFLAGS];
const FULL_REGS = [...SYSCALL_REGS, R.FS_BASE, R.GS_BASE, R.MXCSR, R.FPCW];
const XMM = Array.from({ length: 16 }, (_, i) => R.XMM0 + i);
const ARG_REGS = [R.RDI, R.RSI, R.RDX, R.RCX, R.R8, R.R9];
const SYSCALL_ARG_REGS = [R.RDI, R.RSI, R.RDX, R.R10, R.R8, R.R9];
// Per system call, made once: the number and arguments; sysret's RIP/RFLAGS and its result registers.
const SYSCALL_READ = [R.RAX, ...SYSCALL_ARG_REGS];
const RIP_RFLAGS = [R.RIP, R.RFLAGS];
const SYSRET_REGS = [R.RAX, R.RCX, R.R11];

const ARCH_SET_GS = 0x1001n;
const ARCH_SET_FS = 0x1002n;
const ARCH_GET_FS = 0x1003n;
const ARCH_GET_GS = 0x1004n;
const EINVAL = BigInt(E.EINVAL);
const EFAULT = BigInt(E.EFAULT);

const table = new SyscallTable(SYSCALLS_X86_64);
/** Unicorn 2.1's physical address width on x86-64 (see addressAlias). */
const PHYS_ADDRESS_MASK = (1n << 52n) - 1n;

/** Kernel register names (as in tracefs fetch args: %ax, %di, …) → Unicorn ids. */
function x86_64Registers(): Map<string, { id: number; size: number }> {
  const m = new Map<string, { id: number; size: number }>();
  const long: Array<[string, number]> = [
    ['ax', R.RAX], ['bx', R.RBX], ['cx', R.RCX], ['dx', R.RDX], ['si', R.RSI], ['di', R.RDI],
    ['bp', R.RBP], ['sp', R.RSP], ['ip', R.RIP], ['flags', R.RFLAGS],
    ['r8', R.R8], ['r9', R.R9], ['r10', R.R10], ['r11', R.R11], ['r12', R.R12], ['r13', R.R13], ['r14', R.R14], ['r15', R.R15],
  ];
  for (const [n, id] of long) m.set(n, { id, size: 8 });
  return m;
}

export const x86_64: Arch = {
  target: 'x86_64',
  family: 'x86',
  wordSize: 8,
  endian: 'little',
  ucArch: UC_ARCH.X86,
  ucMode: UC_MODE.MODE_64,
  elfMachine: 62,
  stackBias: 0,
  unameMachine: 'x86_64',
  fsAbi: { stat: STAT_X86_64, openFlags: GENERIC_OPEN_FLAGS },
  signals: { saFlags: X86_SA_FLAGS, sigaction: sigactionLayout(8), minSigStkSz: X86_MINSIGSTKSZ, setupRtFrame: setupRtFrame64, rtSigreturn: rtSigreturn64, restartSyscall: restartSyscall64 },
  layout: {
    pageSize: 0x1000,
    taskSize: 0x7ffffffff000n,
    stackTop: 0x7ffffffff000n,
    stackMax: 8 << 20,
    mmapBase: 0x7ffff7fff000n,
    kernelBase: 0xffffffff81000000n,
    kernelStackArena: 0xffffc90000000000n,
  },
  registers: { byName: x86_64Registers() },

  /**
   * Unicorn 2.1 (QEMU's x86 MMU code with paging off) turns a virtual address into a physical one
   * by keeping the low 52 bits (PG_ADDRESS_MASK, TARGET_PHYS_ADDR_SPACE_BITS = 52), so a fetch at
   * the kernel's 0xffffffff81000000 looks for memory at 0x000fffff81000000. Kernel regions are
   * therefore mapped a second time there, from the same host memory. User addresses (< 2^47)
   * need no alias; the aliases (>= 2^52 - 2^47) never collide with them.
   */
  addressAlias(addr: bigint): bigint | undefined {
    const a = addr & PHYS_ADDRESS_MASK;
    return a === addr ? undefined : a;
  },

  setupEngine(e): void {
    // Unicorn's 64-bit mode starts flat, with SSE usable; only the CPL needs the CPU state.
    attachX86CpuState(e, true);
  },
  setCpuMode: setX86CpuMode,

  installTrapHooks(engine: Engine, sink: TrapSink): void {
    installX86IoHooks(engine, sink, R.RIP);
    // Unicorn's syscall hook is uc_cb_insn_syscall_t, (uc, user_data): a plain trap hook.
    engine.hookInsn(UC_X86_INS_SYSCALL, () => {
      const at = engine.regRead(R.RIP);
      const action = sink.syscall(at + 2n);
      if (action?.pc !== undefined) engine.regWrite(R.RIP, action.pc - 2n);
      if (action?.stop) engine.stop();
    }, true);
    engine.hookIntr((vector) => {
      x86ExceptionTaken(engine, vector);
      const after = engine.regRead(R.RIP);
      let action;
      if (vector === HYPERCALL_VECTOR) action = x86Hypercall(sink, after);
      else if (vector === BREAKPOINT_VECTOR) action = sink.breakpoint(after - 1n, after);
      else action = sink.fault(x86FaultForVector(vector), vector === BREAKPOINT_VECTOR ? after - 1n : after);
      const pc = action?.pc;
      // Redirect and stop: the PC is written after the run (a PC write here would cancel the stop).
      if (pc !== undefined && action?.stop) engine.stopThen(() => engine.regWrite(R.RIP, pc));
      else if (pc !== undefined) engine.regWrite(R.RIP, pc);
      else if (action?.stop) engine.stop();
    });
  },

  getPc: (e) => e.regRead(R.RIP),
  setPc: (e, pc) => e.regWrite(R.RIP, pc),
  getSp: (e) => e.regRead(R.RSP),
  setSp: (e, sp) => e.regWrite(R.RSP, sp),

  snapshot(e: Engine): RegSnapshot {
    return { values: e.regReadBatch(FULL_REGS), wide: XMM.map((id) => e.regReadBytes(id, 16)) };
  },
  restore(e: Engine, s: RegSnapshot): void {
    e.regWriteBatch(FULL_REGS, s.values);
    s.wide?.forEach((b, i) => e.regWriteBytes(XMM[i]!, b));
  },
  saveSyscallRegs: (e) => ({ values: e.regReadBatch(SYSCALL_REGS) }),
  restoreSyscallRegs: (e, s) => e.regWriteBatch(SYSCALL_REGS, s.values),

  auxv: () => ({ hwcap: 0x178bfbffn, hwcap2: 0n, extra: [], platform: 'x86_64' }),

  startRegisters(e, { entry, sp }): void {
    e.regWriteBatch([...GPRS, R.RIP, R.RFLAGS], [...GPRS.map(() => 0n), entry, EFLAGS_RESERVED1]);
    e.regWrite(R.RSP, sp);
  },

  syscallName: (nr) => table.name(nr),
  syscallNumber: (name) => table.number(name),
  readSyscall(e) {
    const v = e.regReadBatch(SYSCALL_READ);
    return { nr: Number(BigInt.asIntN(64, v[0]!)), args: v.slice(1) };
  },
  writeSyscallResult(e, value) {
    // sysret: RCX = return RIP, R11 = RFLAGS (what Linux leaves there).
    const [rip, flags] = e.regReadBatch(RIP_RFLAGS);
    e.regWriteBatch(SYSRET_REGS, [value, rip!, flags!]); // the batch store wraps the value
  },
  setThreadPointer(e, tls) {
    e.regWrite(R.FS_BASE, tls);
  },
  archSyscall(name, e, args, mem) {
    if (name !== 'arch_prctl') return undefined;
    const [code, addr] = [args[0]!, args[1]!];
    switch (code) {
      case ARCH_SET_FS:
        e.regWrite(R.FS_BASE, addr);
        return 0n;
      case ARCH_SET_GS:
        e.regWrite(R.GS_BASE, addr);
        return 0n;
      case ARCH_GET_FS:
      case ARCH_GET_GS: {
        const v = e.regRead(code === ARCH_GET_FS ? R.FS_BASE : R.GS_BASE);
        try {
          mem.writeWord(addr, v);
        } catch {
          return -EFAULT;
        }
        return 0n;
      }
      default:
        return -EINVAL;
    }
  },
  functionEntry: singleEntry,
  errno: GENERIC_ERRNO,
  userErrno: errnoTranslator(GENERIC_ERRNO),
  cloneArgs: (a) => ({ flags: a[0]!, stack: a[1]!, parentTid: a[2]!, childTid: a[3]!, tls: a[4]! }),
  setupCloneChild(e, childStack) {
    e.regWrite(R.RAX, 0n);
    if (childStack !== 0n) e.regWrite(R.RSP, childStack);
  },

  readCallArg(e, mem, i) {
    if (i < 6) return e.regRead(ARG_REGS[i]!);
    return mem.readWord(e.regRead(R.RSP) + 8n + BigInt(8 * (i - 6)));
  },
  readReturnValue: (e) => e.regRead(R.RAX),
  writeReturnValue: (e, v) => e.regWrite(R.RAX, BigInt.asUintN(64, v)),
  enterKernelFunction(e, mem, { pc, stackTop, args, returnTo }) {
    // As after a `call`: the return address on top of a 16-byte aligned stack.
    let sp = (stackTop & ~0xfn) - 8n;
    const stackArgs = args.slice(6);
    if (stackArgs.length) {
      sp -= BigInt(8 * stackArgs.length + ((stackArgs.length & 1) ? 8 : 0));
      stackArgs.forEach((v, i) => mem.writeWord(sp + 8n + BigInt(8 * i), v));
    }
    mem.writeWord(sp, returnTo);
    const regs = ARG_REGS.slice(0, Math.min(6, args.length));
    e.regWriteBatch([...regs, R.RSP, R.RIP, R.RFLAGS], [...args.slice(0, 6), sp, pc, EFLAGS_RESERVED1]);
  },
};

export const X86_64_REGS = { GPRS, R };
