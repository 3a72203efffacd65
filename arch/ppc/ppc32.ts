/**
 * ppc32 (big-endian, SysV ABI) back-end.
 */
import { singleEntry } from '../entry.js';
import type { Engine } from '../../src/emu/unicorn.js';
import { UC_ARCH, UC_MODE } from '../../src/emu/unicorn.js';
import type { Arch, TrapSink } from '../types.js';
import { UC_PPC_REG as R } from './ucregs.js';
import { SYSCALLS_PPC32 } from './syscalls-ppc32.js';
import { SyscallTable } from '../syscall-table.js';
import { STAT64_PPC32, STAT_PPC32 } from './stat.js';
import { PPC_OPEN_FLAGS } from './fcntl.js';
import { PPC32_SIGNALS } from './signal.js';
import { installSigtramp, SIGTRAMP_PPC32 } from './sigtramp.js';
import { dropReservation, installDropReservation } from './reservation.js';
import {
  MSR_FP,
  PPC_ARG_REGS,
  PPC_SYSCALL_READ,
  installPpcTrapHooks,
  ppcAuxv,
  ppcRegisterNames,
  ppcSharedMembers,
  ppcStartRegisters,
  writeSyscallResultPpc,
} from './common.js';

const table = new SyscallTable(SYSCALLS_PPC32);
const mask32 = (v: bigint): bigint => BigInt.asUintN(32, v);

// PPC_FEATURE_32 | PPC_FEATURE_HAS_FPU | PPC_FEATURE_HAS_MMU: no AltiVec (Unicorn's default core
// has none), so glibc picks its scalar string routines.
const PPC32_HWCAP = 0x80000000n | 0x08000000n | 0x04000000n;

export const ppc32: Arch = {
  target: 'ppc32',
  family: 'ppc',
  wordSize: 4,
  endian: 'big',
  ucArch: UC_ARCH.PPC,
  ucMode: UC_MODE.PPC32 | UC_MODE.BIG_ENDIAN,
  elfMachine: 20,
  stackBias: 0,
  fixedInsnBytes: 4,
  functionEntry: singleEntry,
  unameMachine: 'ppc',
  fsAbi: { stat: STAT_PPC32, stat64: STAT64_PPC32, openFlags: PPC_OPEN_FLAGS },
  signals: PPC32_SIGNALS,
  // ppc32 passes 64-bit values in an aligned register pair (r3+2k, r4+2k), high word first.
  fileOffsetArg: (args, at) => {
    const i = at + (at & 1);
    return BigInt.asIntN(64, ((args[i]! & 0xffffffffn) << 32n) | (args[i + 1]! & 0xffffffffn));
  },
  layout: {
    pageSize: 0x1000,
    taskSize: 0xc0000000n,
    stackTop: 0xbffff000n,
    stackMax: 8 << 20,
    mmapBase: 0xb7fff000n,
    kernelBase: 0xc0000000n,
    kernelStackArena: 0xd0000000n,
  },
  registers: { byName: ppcRegisterNames(4) },

  setupEngine(e: Engine, support): void {
    e.regWrite(R.MSR, e.regRead(R.MSR) | MSR_FP);
    installSigtramp(e, support, false);
    installDropReservation(e, SIGTRAMP_PPC32);
  },
  interruptReturn: (e) => dropReservation(e, SIGTRAMP_PPC32),

  installTrapHooks(engine: Engine, sink: TrapSink): void {
    installPpcTrapHooks(engine, sink, false);
  },

  ...ppcSharedMembers,

  auxv: () => ppcAuxv(PPC32_HWCAP, 32n),

  startRegisters(e, { entry, sp }): void {
    ppcStartRegisters(e, entry, sp);
  },

  syscallName: (nr) => table.name(nr),
  syscallNumber: (name) => table.number(name),
  readSyscall(e) {
    const v = e.regReadBatch(PPC_SYSCALL_READ);
    return { nr: Number(v[0]! & 0xffffffffn), args: v.slice(1).map(mask32) };
  },
  writeSyscallResult: (e, value) => writeSyscallResultPpc(e, BigInt.asIntN(32, value), 32),
  setThreadPointer: (e, tls) => e.regWrite(R.R2, tls),
  setupCloneChild(e, childStack) {
    writeSyscallResultPpc(e, 0n, 32);
    if (childStack !== 0n) e.regWrite(R.R1, childStack);
  },

  readCallArg(e, mem, i) {
    if (i < 8) return e.regRead(PPC_ARG_REGS[i]!);
    return mem.readWord(e.regRead(R.R1) + 8n + BigInt(4 * (i - 8)));
  },
  readReturnValue: (e) => e.regRead(R.R3),
  writeReturnValue: (e, v) => e.regWrite(R.R3, mask32(v)),
  enterKernelFunction(e, mem, { pc, stackTop, args, returnTo }) {
    // A minimal frame: back chain 0 at 0(r1), the callee may store LR at 4(r1).
    const sp = (stackTop & ~0xfn) - 16n;
    mem.writeWord(sp, 0n);
    const regs = PPC_ARG_REGS.slice(0, Math.min(8, args.length));
    e.regWriteBatch([...regs, R.R1, R.LR, R.PC], [...args.slice(0, 8).map(mask32), sp, returnTo, pc]);
  },
};

