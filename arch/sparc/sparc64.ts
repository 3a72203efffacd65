/**
 * sparc64 (SPARC V9, big-endian, Linux ABI) back-end.
 *
 * Unicorn 2.1.1 runs this CPU in a state no real sparc64 kernel would leave it in
 * (reference/unicorn-2.0.1.md re-checked on 2.1.1 in docs/unicorn.md, fixtures/kernel/ABI.md); this file is where the host makes up for
 * it, the way Linux's trap handlers and qemu-user's cpu loop would:
 *
 * - Register windows: CANSAVE = CANRESTORE = 0 and no API to change them, so every
 *   save/restore/return/flushw would trap. The host sets the counters in QEMU's CPU state as
 *   Linux leaves them (window-file.ts): the CPU runs the windows and the host serves only
 *   overflow and underflow, letting the CPU retry (windows.ts). Without that state it runs every
 *   window instruction itself (the fallback, also UNIPROBE_SPARC_HOST_WINDOWS=1).
 * - No NPC register: a PC write sets NPC = PC + 4, and NPC cannot be read through the API. A
 *   software trap (system call, probe breakpoint) reads it from QEMU's CPU state, where the `ta`
 *   stored it (window-file.ts). Elsewhere (a run stopped by its instruction count, the fallback
 *   without that state), where the engine takes
 *   control inside a delay slot, the pending target is reconstructed from the delayed
 *   control-transfer instruction (DCTI) just before it (`pendingNpc`):
 *   `call` → its target (checked: %o7 = its address); `jmpl` → rs1 + op2 (rd must not be an
 *   operand, else the target is gone: refused); `ba` → target; an annulled conditional branch →
 *   its target (its delay slot runs only when taken); a conditional one → the CPU itself decides:
 *   a "resolve" trampoline replays the branch (same condition, same registers, same condition
 *   codes) towards two `ta` words that tell the host which way it went.
 *   `ret; restore` (restore in the delay slot of `jmpl %i7+8, %g0`), the normal epilogue, thus
 *   costs one trap: the host restores the window and jumps to %i7 + 8.
 *   To leave the host towards (PC, NPC) with NPC ≠ PC + 4 (after `return`, whose delay slot runs
 *   in the caller's window) the host uses small trampolines: `[jmpl %o7+8, %g0][delay insn]` (the
 *   CPU recomputes the target in the restored window: no second trap) or `[delay insn][ta RESUME]`.
 *   A run that stops inside a delay slot (instruction count, copy-on-write fault) restarts *at
 *   the DCTI* (`runStart`): re-executing a branch, `call`, or `jmpl` with rd ∉ {rs1, rs2} is
 *   idempotent, since nothing has run since it executed.
 *   Limit, as in any NPC-less reconstruction: an instruction that follows a DCTI and is reached by
 *   a jump (a label on a delay slot) is taken for that DCTI's delay slot; compilers do not emit
 *   such code.
 * - Condition codes (and %y) are not reachable through the API and read as 0: a fresh CPU even
 *   aborts the host process on the first instruction that reads them (its lazy flag state is
 *   uninitialised), so setupEngine writes %ccr once. They move through guest stubs: between runs
 *   (context switch, fork) `rd %ccr/%y` and `wr %ccr/%y` run from engine-private memory; at a
 *   system call the entry trampoline copies the user's %ccr into %g7 (the guest kernel is built
 *   with -ffixed-g7 and never touches it) and HC_SYSRET goes through `[wr %g1, %ccr][ta 0x6e]`
 *   with %g1 = that %ccr and the carry set or cleared, Linux's error convention.
 * - The FPU starts off (Unicorn never resets the CPU: PSTATE = 0) and no API reaches it; the host
 *   sets PSTATE.PEF and, at the first fp_disabled trap, FPRS.FEF in QEMU's CPU state itself, as
 *   Linux's do_fpdis does (cpu-state.ts, cpu-traps.ts); FP registers travel in register snapshots.
 *   Explicit-ASI loads (ASI_PNF) miss in an empty TLB: an identity entry is loaded, as Linux's miss
 *   handler would. User `ta 0x6e` is Linux's getcontext (glibc's setjmp): ucontext.ts.
 * - Addresses are truncated to 41 bits: user memory stays below 2^40, the kernel's regions get
 *   aliases (`addressAlias`) placed at and above TASK_SIZE, the private stub area at 0x180_0000_0000.
 * - 8 KiB pages. `uc_emu_start(until)` does not stop (the generic run loop uses counts).
 *
 * Linux/sparc64 user ABI kept here: `ta 0x6d` with the number in %g1, arguments %o0–%o5, result
 * %o0, error = carry set in icc and xcc with a positive, Solaris-numbered errno; fork/clone leave
 * %o1 = 0 in the parent and %o0 = parent's pid, %o1 = 1 in the child; `ta 3` flushes windows;
 * the initial %sp is biased (STACK_BIAS 2047) with a 128-byte window save area below argc.
 */
import { singleEntry } from '../entry.js';
import type { Engine } from '../../src/emu/unicorn.js';
import { UC_ARCH, UC_MODE } from '../../src/emu/unicorn.js';
import { UniprobeError } from '../../src/errors.js';
import { type Arch, type RegSnapshot, type TrapSink } from '../types.js';
import { UC_SPARC_REG as R } from './ucregs.js';
import { SPARC_ERRNO, sparcErrno } from './errno.js';
import { sparcRlimitResource } from './resource.js';
import * as isa from './isa.js';
import { STAT64_SPARC64, STAT_SPARC64 } from './stat.js';
import { SPARC_OPEN_FLAGS } from './fcntl.js';
import { table, R32, R31_PC, R32_PC, SYSCALL_ARG_REGS, SYSCALL_READ, ST, CCR_CARRY, FORK_LIKE, ADDRESS_MASK, STUB_AREA, STUB_AREA_SIZE, STUB_READ_STATE, STUB_WRITE_STATE, STUB_SYSRET, STUB_FPU_PROBE, STUB_END, runStub, SparcCpu, cpus, cpuOf, be32, u64, fetch, readCcrY, writeCcrY } from './cpu.js';
import { LazyRegs, onTrap, pendingNpc, returnStubFor } from './traps.js';
import { GENERIC_POLL } from '../../src/kernel/sys/poll.js';
import { FPRS_FEF, FRESH_FP_STATE, FP_STATE_WORDS, sparcCpuOutsideContext } from './cpu-state.js';
import { SPARC64_SIGNALS } from './signal.js';

// Bound once: the trap handlers call these millions of times, and a bundler's ESM-to-CJS output
// (tsx, vitest) would otherwise go through an export getter on every call.
const {
  REG,
  STACK_BIAS,
  encRdCcr,
  encRdY,
  encTa,
  encWrCcr,
  encWrY,
} = isa;

export { FPU_DISABLED_REASON, STUB_AREA } from './cpu.js';
export { sparcResumeAt } from './traps.js';

// --- the Arch --------------------------------------------------------------------------------------

function sparcRegisterNames(): Map<string, { id: number; size: number }> {
  const m = new Map<string, { id: number; size: number }>();
  const groups = ['g', 'o', 'l', 'i'];
  R32.forEach((id, n) => m.set(`${groups[n >> 3]}${n & 7}`, { id, size: 8 }));
  m.set('sp', { id: R.SP, size: 8 });
  m.set('fp', { id: R.FP, size: 8 });
  m.set('pc', { id: R.PC, size: 8 });
  m.set('tpc', { id: R.PC, size: 8 });
  return m;
}

// HWCAP_SPARC_FLUSH | STBAR | SWAP | MULDIV | V9: no VIS (the FPU is off).
const SPARC64_HWCAP = 0x1fn;

export const sparc64: Arch = {
  target: 'sparc64',
  family: 'sparc',
  wordSize: 8,
  endian: 'big',
  ucArch: UC_ARCH.SPARC,
  ucMode: UC_MODE.SPARC64 | UC_MODE.BIG_ENDIAN,
  elfMachine: 43,
  // A 128-byte register window save area below argc, and the 2047 stack bias.
  stackBias: 128 + Number(STACK_BIAS),
  fixedInsnBytes: 4,
  cpuOutsideContext: sparcCpuOutsideContext, // cpu-state.ts: uc_context_save stores no sparc64 CPU
  unameMachine: 'sparc64',
  fsAbi: { stat: STAT_SPARC64, stat64: STAT64_SPARC64, openFlags: SPARC_OPEN_FLAGS },
  signals: SPARC64_SIGNALS,
  // arch/sparc/include/uapi/asm/poll.h: POLLWRNORM is POLLOUT.
  pollBits: { ...GENERIC_POLL, POLLWRNORM: 0x4 },
  layout: {
    pageSize: 0x2000,
    taskSize: 0x100_0000_0000n,
    stackTop: 0x0ff_ff80_0000n,
    stackMax: 8 << 20,
    mmapBase: 0x0ff_f780_0000n,
    kernelBase: 0xffff_f800_0000_0000n,
    // Its alias 0x100_0000_0000 is TASK_SIZE: no user mapping can overlap it.
    kernelStackArena: 0xffff_f900_0000_0000n,
  },
  registers: { byName: sparcRegisterNames() },

  addressAlias(addr: bigint): bigint | undefined {
    const a = addr & ADDRESS_MASK;
    return a === addr ? undefined : a;
  },

  setupEngine(e, support): void {
    const cpu = new SparcCpu(e);
    cpus.set(e, cpu);
    support.mapPrivate(STUB_AREA, STUB_AREA_SIZE, true);
    e.memWrite(STUB_READ_STATE, be32([encRdCcr(REG.G1), encRdY(REG.G2), ...STUB_END]));
    e.memWrite(STUB_WRITE_STATE, be32([encWrCcr(REG.G1), encWrY(REG.G2), ...STUB_END]));
    e.memWrite(STUB_SYSRET, be32([encWrCcr(REG.G1), encTa(ST.HYPERCALL)]));
    e.memWrite(STUB_FPU_PROBE, be32([0x87802082, 0x8d802000 | Number(FPRS_FEF), ...STUB_END]));
    // Give the lazy condition-code state a defined value before any guest instruction reads it.
    writeCcrY(e, 0n, 0n);
    cpu.fpu.locate(() => void runStub(e, STUB_FPU_PROBE, 2, 0n, 0n));
    // Trap hooks move the PC in QEMU's state itself (NPC = PC + 4, as Unicorn's write does).
    const pcAt = cpu.fpu.pcCells();
    if (pcAt) e.keepPcAt({ reg: R.PC, ...pcAt, bytes: 8 });
    // The CPU keeps the register windows itself when its file is reachable (windows.ts).
    const file = process.env.UNIPROBE_SPARC_HOST_WINDOWS === '1' ? 'disabled' : cpu.fpu.windowFile();
    if (typeof file !== 'string') cpu.windows.attach(file);
  },

  // The trap level picks QEMU's MMU index, so each mode keeps its own TLB (cpu-state.ts).
  setCpuMode: (e, user) => cpuOf(e).fpu.setCpuMode(user),

  installTrapHooks(engine: Engine, sink: TrapSink): void {
    const cpu = cpuOf(engine);
    cpu.sink = sink;
    engine.hookIntr((intno) => onTrap(cpu, intno));
  },

  runStart(e: Engine): { pc: bigint; replay: number } {
    // Restart at the DCTI when the last run stopped in its delay slot (see the module comment).
    const pc = e.regRead(R.PC);
    const prev = fetch(e, u64(pc - 4n));
    const npc = pendingNpc(prev, pc, new LazyRegs(e));
    if (npc === u64(pc + 4n)) return { pc, replay: 0 };
    if (typeof npc === 'object' && 'lost' in npc) {
      throw new UniprobeError('ARCH', `sparc64: cannot resume at 0x${pc.toString(16)}: ${npc.lost}`);
    }
    // A `return` the CPU ran (windows.ts) cannot run again, its window is gone: its jump is
    // replayed on the restored window's registers instead, or the target is handed to the trap
    // the delay-slot word raises; failing both, the delay-slot word runs from a trampoline.
    if (typeof npc === 'bigint' && prev !== undefined && isa.isReturn(prev)) {
      const cpu = cpuOf(e);
      const w = fetch(e, pc);
      if (w === undefined) return { pc, replay: 0 };
      const viaJmpl = returnStubFor(cpu, prev, w);
      if (viaJmpl !== undefined) return { pc: viaJmpl, replay: 1 };
      if (isa.isTcc(w)) {
        cpu.deferredNpc = { at: pc, npc };
        return { pc, replay: 0 };
      }
      return { pc: cpu.stub([w, encTa(ST.RESUME)], [[1, { kind: 'resume', to: npc }]]), replay: 1 };
    }
    return { pc: u64(pc - 4n), replay: 1 };
  },

  getPc: (e) => e.regRead(R.PC),
  setPc: (e, pc) => e.regWrite(R.PC, pc),
  getSp: (e) => e.regRead(R.SP),
  setSp: (e, sp) => e.regWrite(R.SP, sp),

  // values: r0..r31, PC, %ccr, %y (-1: unknown, taken during a run), resident windows, FPU state and %asi (36;
  // a snapshot without it, made by hand, restores a fresh FPU).
  snapshot(e): RegSnapshot {
    const st = readCcrY(e) ?? [-1n, -1n];
    const cpu = cpuOf(e);
    return { values: [...e.regReadBatch(R32_PC), ...st, ...cpu.windows.serialize(), ...cpu.fpu.save()] };
  },
  restore(e, s): void {
    const v = s.values;
    if (v[33]! >= 0n) writeCcrY(e, v[33]!, v[34]!);
    e.regWriteBatch(R31_PC, v.slice(1, 33));
    const fp = cpuOf(e).windows.deserialize(v, 35);
    cpuOf(e).fpu.restore(v.length >= fp + FP_STATE_WORDS ? v.slice(fp, fp + FP_STATE_WORDS) : FRESH_FP_STATE);
    cpuOf(e).deferredNpc = undefined;
  },
  // values: r0..r31, PC, resident windows (the user's, which the kernel's own windows sit on).
  saveSyscallRegs: (e) => ({ values: [...e.regReadBatch(R32_PC), ...cpuOf(e).windows.serialize()] }),
  restoreSyscallRegs(e, s): void {
    const cpu = cpuOf(e);
    cpu.ccrAtEntry = e.regRead(R.G7);
    e.regWriteBatch(R31_PC, s.values.slice(1, 33));
    cpu.windows.deserialize(s.values, 33);
  },

  auxv: () => ({ hwcap: SPARC64_HWCAP, hwcap2: 0n, extra: [] }),

  startRegisters(e, { entry, sp }): void {
    e.regWriteBatch(R31_PC, [...R32.slice(1).map(() => 0n), entry]);
    e.regWrite(R.SP, sp);
    cpuOf(e).windows.resident = [];
    cpuOf(e).fpu.restore(FRESH_FP_STATE); // Linux's flush_thread at exec
    cpuOf(e).deferredNpc = undefined;
  },

  syscallName: (nr) => table.name(nr),
  syscallNumber: (name) => table.number(name),
  readSyscall(e) {
    const v = e.regReadBatch(SYSCALL_READ);
    return { nr: Number(BigInt.asIntN(64, v[0]!)), args: v.slice(1) };
  },
  writeSyscallResult(e, value) {
    // The carry was set by the HC_SYSRET stub (softwareTrap); here the registers.
    if (value < 0n && value >= -4095n) {
      e.regWrite(R.O0, BigInt(sparcErrno(Number(-value))));
      return;
    }
    e.regWrite(R.O0, u64(value));
    // Linux's copy_thread: the parent of fork/clone sees %o1 = 0.
    if (FORK_LIKE.has(e.regRead(R.G1))) e.regWrite(R.O1, 0n);
  },
  setThreadPointer: (e, tls) => e.regWrite(R.G7, tls),
  archSyscall: () => undefined,
  functionEntry: singleEntry,
  errno: SPARC_ERRNO,
  userErrno: sparcErrno,
  rlimitResource: sparcRlimitResource,
  // sparc_clone: (flags, newsp, parent_tid, tls, child_tid), like CLONE_BACKWARDS.
  cloneArgs: (a) => ({ flags: a[0]!, stack: a[1]!, parentTid: a[2]!, tls: a[3]!, childTid: a[4]! }),
  setupCloneChild(e, childStack, parentTid) {
    const cpu = cpuOf(e);
    // Linux's copy_thread: %o0 = the parent's pid, %o1 = 1, carry clear (success).
    writeCcrY(e, cpu.ccrAtEntry & ~CCR_CARRY, undefined);
    e.regWriteBatch([R.O0, R.O1], [BigInt(parentTid), 1n]);
    if (childStack !== 0n) {
      // A new stack: none of the parent's windows belongs to it; a restore fills from it.
      e.regWrite(R.SP, childStack);
      cpu.windows.resident = [];
    }
  },

  readCallArg(e, mem, i) {
    if (i < 6) return e.regRead(SYSCALL_ARG_REGS[i]!);
    return mem.readWord(e.regRead(R.SP) + STACK_BIAS + 176n + BigInt(8 * (i - 6)));
  },
  readReturnValue: (e) => e.regRead(R.O0),
  writeReturnValue: (e, v) => e.regWrite(R.O0, u64(v)),
  enterKernelFunction(e, mem, { pc, stackTop, args, returnTo }) {
    // A biased %sp with the 176-byte save area (16 window words + 6 argument words) above it and
    // the arguments beyond the sixth after that; a sparc return goes to %o7 + 8.
    const extra = args.slice(6);
    const real = (stackTop - 176n - BigInt(8 * extra.length)) & ~0xfn;
    extra.forEach((v, k) => mem.writeWord(real + 176n + BigInt(8 * k), v));
    const regs = SYSCALL_ARG_REGS.slice(0, Math.min(6, args.length));
    e.regWriteBatch([...regs, R.SP, R.O7, R.PC], [...args.slice(0, 6), real - STACK_BIAS, u64(returnTo - 8n), pc]);
  },
};

