/**
 * ppc64 (big-endian) back-end: user programs in either ABI (static glibc is ELFv1, the
 * freestanding fixtures ELFv2), the guest kernel image in ELFv2.
 *
 * Unicorn 2.1.1 quirks handled here (reference/unicorn-2.0.1.md re-checked on 2.1.1 in docs/unicorn.md, fixtures/kernel/ABI.md):
 * - The default CPU (POWER10) starts without MSR[HV], which the register API cannot set (the
 *   MSR write mask excludes it), so the first instruction fetch raises intno 70. The CPU state
 *   is reachable as raw bytes through uc_context_save/restore: `enableHypervisorMode` finds the
 *   MSR inside that blob by a marker value, sets HV there and restores the blob. The marker is
 *   every MSR bit the register API lets through (a value found nowhere else in the blob; a
 *   plain value such as 0x8000000000002000 also matches an unrelated field); if it is not found
 *   exactly once the engine refuses to start rather than guess.
 * - In that hypervisor real mode the top 4 bits of every effective address are dropped when
 *   memory is accessed, so kernel regions (0xc000…) are also mapped at their alias
 *   (`addressAlias`). The layout keeps the aliases clear of user memory: the kernel image's
 *   alias is at 0 (below the lowest user mapping), the kernel-stack arena's at TASK_SIZE.
 * - `dcbz` clears Unicorn's POWER10 cache block (128 bytes); glibc's memset uses dcbz with the
 *   block size from AT_DCACHEBSIZE, so the auxv must say 128 (32 would make memset clear 4× the
 *   bytes it meant to). Measured; test/arch/ppc64.test.ts pins it.
 * - There is no user/supervisor split (the CPU stays in HV real mode): the guest kernel image and
 *   the program run at the same privilege, as on ppc32.
 *
 * Process entry (Linux start_thread / qemu-user init_thread): ELFv1 — PC = the entry
 * descriptor's code address, r2 = its TOC; ELFv2 — PC = e_entry and r12 = e_entry (the global
 * entry point derives r2 from r12). System calls: `sc`, r0 = number, r3–r8 arguments, error =
 * CR0.SO with a positive errno in r3 (arch/ppc/common.ts). Thread pointer: r13.
 */
import type { ElfFile } from '../../src/elf/index.js';
import { elfv2Entry } from '../entry.js';
import type { Engine } from '../../src/emu/unicorn.js';
import { UC_ARCH, UC_MODE } from '../../src/emu/unicorn.js';
import { UniprobeError } from '../../src/errors.js';
import type { Arch, TrapSink } from '../types.js';
import { UC_PPC_REG as R } from './ucregs.js';
import { SYSCALLS_PPC64 } from './syscalls-ppc64.js';
import { SyscallTable } from '../syscall-table.js';
import { STAT_PPC64 } from './stat.js';
import { PPC_OPEN_FLAGS } from './fcntl.js';
import { PPC64_SIGNALS } from './signal.js';
import { elfAbiOf, setElfAbi } from './signal-frame-ppc64.js';
import { installSigtramp, SIGTRAMP_PPC64 } from './sigtramp.js';
import { dropReservation, installDropReservation } from './reservation.js';
import {
  MSR_FP,
  PPC_ARG_REGS,
  PPC_FULL_REGS,
  PPC_SYSCALL_READ,
  installPpcTrapHooks,
  ppcAuxv,
  ppcRegisterNames,
  ppcSharedMembers,
  ppcStartRegisters,
  writeSyscallResultPpc,
} from './common.js';

const table = new SyscallTable(SYSCALLS_PPC64);

/** MSR[SF] (64-bit mode) and MSR[HV] (hypervisor state). */
export const MSR_SF = 1n << 63n;
export const MSR_HV = 1n << 60n;

/** Unicorn drops the top 4 bits of an effective address in real mode. */
const REAL_ADDRESS_MASK = (1n << 60n) - 1n;

// AT_* ids for the cache geometry glibc's memset/memcpy consult on PowerPC.
/** The block `dcbz` clears on Unicorn's POWER10 core (measured). */
export const PPC64_CACHE_BLOCK = 128n;
// PPC_FEATURE_32 | PPC_FEATURE_64 | PPC_FEATURE_HAS_FPU | PPC_FEATURE_HAS_MMU: no AltiVec/VSX (their
// MSR enables stay off), so glibc's ifuncs pick the plain 64-bit routines.
const PPC64_HWCAP = 0x80000000n | 0x40000000n | 0x08000000n | 0x04000000n;

/** Offsets at which `needle` (8 bytes, host order = little-endian) occurs in `blob`. */
function findWord(blob: Uint8Array, needle: bigint): number[] {
  const n = new Uint8Array(8);
  new DataView(n.buffer).setBigUint64(0, needle, true);
  const hits: number[] = [];
  outer: for (let i = 0; i + 8 <= blob.length; i++) {
    for (let j = 0; j < 8; j++) if (blob[i + j] !== n[j]) continue outer;
    hits.push(i);
  }
  return hits;
}

/**
 * Where the MSR lives in a uc_context_save blob: the one offset holding `marker`. Throws when the
 * marker occurs zero or several times (the blob layout is not what this code was measured on).
 */
export function locateMsrInContext(blob: Uint8Array, marker: bigint): number {
  const hits = findWord(blob, marker);
  if (hits.length !== 1) {
    throw new UniprobeError(
      'ARCH',
      `ppc64: cannot set MSR[HV]: the MSR marker 0x${marker.toString(16)} occurs ${hits.length} times in Unicorn's ` +
        `${blob.length}-byte CPU context (expected exactly once; is this Unicorn 2.1?)`,
    );
  }
  return hits[0]!;
}

/**
 * Give the CPU MSR[HV] (and the bits in `msr`) through the context blob; see the module comment.
 * Returns the MSR offset found in the blob (tests check it).
 */
export function enableHypervisorMode(e: Engine, msr: bigint): number {
  // The marker is every bit the register API accepts: writing all ones leaves exactly those.
  e.regWrite(R.MSR, (1n << 64n) - 1n);
  const marker = e.regRead(R.MSR);
  const off = locateMsrInContext(e.contextSaveBytes(), marker);
  e.regWrite(R.MSR, msr);
  const blob = e.contextSaveBytes();
  const v = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  v.setBigUint64(off, v.getBigUint64(off, true) | MSR_HV, true);
  e.contextRestoreBytes(blob);
  // A register-API write keeps HV (mtmsr may not change it) and recomputes the hidden flags the
  // translator uses, which the raw restore left as they were.
  e.regWrite(R.MSR, e.regRead(R.MSR));
  const now = e.regRead(R.MSR);
  if ((now & MSR_HV) === 0n || (now & msr) !== msr) {
    throw new UniprobeError('ARCH', `ppc64: MSR[HV] did not stick (MSR reads 0x${now.toString(16)} after the context restore)`);
  }
  return off;
}

/** The guest kernel's TOC pointer (its `.TOC.` symbol), looked up once per image. */
const tocs = new WeakMap<ElfFile, bigint | undefined>();
function kernelToc(kernel: ElfFile): bigint | undefined {
  if (!tocs.has(kernel)) tocs.set(kernel, kernel.symbolByName('.TOC.')?.value);
  return tocs.get(kernel);
}

export const ppc64: Arch = {
  target: 'ppc64',
  family: 'ppc',
  wordSize: 8,
  endian: 'big',
  ucArch: UC_ARCH.PPC,
  ucMode: UC_MODE.PPC64 | UC_MODE.BIG_ENDIAN,
  elfMachine: 21,
  stackBias: 0,
  fixedInsnBytes: 4,
  functionEntry: elfv2Entry,
  unameMachine: 'ppc64',
  fsAbi: { stat: STAT_PPC64, openFlags: PPC_OPEN_FLAGS },
  signals: PPC64_SIGNALS,
  layout: {
    pageSize: 0x1000,
    taskSize: 0x1000_0000_0000n,
    stackTop: 0x0fff_ffff_f000n,
    stackMax: 8 << 20,
    mmapBase: 0x0fff_f7ff_f000n,
    kernelBase: 0xc000_0000_0000_0000n,
    // Its alias 0x1000_0000_0000 is TASK_SIZE: no user mapping can overlap it.
    kernelStackArena: 0xc000_1000_0000_0000n,
  },
  registers: { byName: ppcRegisterNames(8) },

  addressAlias(addr: bigint): bigint | undefined {
    const a = addr & REAL_ADDRESS_MASK;
    return a === addr ? undefined : a;
  },

  setupEngine(e: Engine, support): void {
    enableHypervisorMode(e, e.regRead(R.MSR) | MSR_SF | MSR_FP);
    installSigtramp(e, support, true);
    installDropReservation(e, SIGTRAMP_PPC64);
  },
  interruptReturn: (e) => dropReservation(e, SIGTRAMP_PPC64),

  installTrapHooks(engine: Engine, sink: TrapSink): void {
    installPpcTrapHooks(engine, sink, true);
  },

  ...ppcSharedMembers,
  // The snapshot carries the program's ELF ABI after the registers (TIF_ELF2ABI: a fork's child
  // keeps it, the signal frame needs it to call an ELFv1 handler through its descriptor).
  snapshot: (e) => ({ values: [...e.regReadBatch(PPC_FULL_REGS), elfAbiOf(e) === 'elfv1' ? 1n : 2n] }),
  restore(e, s): void {
    e.regWriteBatch(PPC_FULL_REGS, s.values.slice(0, PPC_FULL_REGS.length));
    const abi = s.values[PPC_FULL_REGS.length];
    if (abi !== undefined) setElfAbi(e, abi === 1n ? 'elfv1' : 'elfv2');
  },

  auxv: () => ppcAuxv(PPC64_HWCAP, PPC64_CACHE_BLOCK),

  startRegisters(e, { entry, sp, elf }): void {
    ppcStartRegisters(e, entry, sp);
    setElfAbi(e, elf.ppc64Abi);
    // ELFv2: the global entry computes r2 from r12; ELFv1: r2 comes from the entry descriptor.
    if (elf.ppc64Abi === 'elfv2') e.regWrite(R.R12, entry);
    else if (elf.entryToc !== undefined) e.regWrite(R.R2, elf.entryToc);
  },

  syscallName: (nr) => table.name(nr),
  syscallNumber: (name) => table.number(name),
  readSyscall(e) {
    const v = e.regReadBatch(PPC_SYSCALL_READ);
    return { nr: Number(BigInt.asIntN(64, v[0]!)), args: v.slice(1) };
  },
  writeSyscallResult: (e, value) => writeSyscallResultPpc(e, BigInt.asIntN(64, value), 64),
  setThreadPointer: (e, tls) => e.regWrite(R.R13, tls),
  setupCloneChild(e, childStack) {
    writeSyscallResultPpc(e, 0n, 64);
    if (childStack !== 0n) e.regWrite(R.R1, childStack);
  },

  readCallArg(e, mem, i) {
    if (i < 8) return e.regRead(PPC_ARG_REGS[i]!);
    // The guest kernel is ELFv2: the parameter save area starts at 32(r1), one doubleword per
    // argument including those passed in registers.
    return mem.readWord(e.regRead(R.R1) + 32n + BigInt(8 * i));
  },
  readReturnValue: (e) => e.regRead(R.R3),
  writeReturnValue: (e, v) => e.regWrite(R.R3, BigInt.asUintN(64, v)),
  enterKernelFunction(e, mem, { pc, stackTop, args, returnTo, kernel }) {
    const toc = kernelToc(kernel);
    // An ELFv2 caller's frame: back chain 0 at 0(r1), LR save doubleword at 16(r1), and a
    // parameter save area (32(r1) + 8·i) for arguments beyond the eighth.
    const stackArgs = args.slice(8);
    const frame = 32n + BigInt(8 * Math.max(8, args.length));
    const sp = (stackTop - frame) & ~0xfn;
    mem.writeWord(sp, 0n);
    stackArgs.forEach((v, i) => mem.writeWord(sp + 32n + BigInt(8 * (8 + i)), v));
    const regs = PPC_ARG_REGS.slice(0, Math.min(8, args.length));
    // r12 = PC: the global entry point computes r2 from it; r2 = .TOC. as well, so the local
    // entry works too.
    const ids = [...regs, R.R1, R.LR, R.PC, R.R12];
    const vals = [...args.slice(0, 8), sp, returnTo, pc, pc];
    if (toc !== undefined) {
      ids.push(R.R2);
      vals.push(toc);
    }
    e.regWriteBatch(ids, vals);
  },
};
