/**
 * sparc64 (SPARC V9, big-endian, Linux ABI) back-end.
 *
 * Unicorn 2.1.1 runs this CPU in a state no real sparc64 kernel would leave it in
 * (reference/unicorn-2.0.1.md re-checked on 2.1.1 in docs/unicorn.md, fixtures/kernel/ABI.md); this file is where the host makes up for
 * it, the way Linux's trap handlers and qemu-user's cpu loop would:
 *
 * - Register windows: every save/restore/return/flushw traps (CANSAVE = CANRESTORE = 0 and no
 *   API to change them). The host runs the windows itself (windows.ts) and emulates the
 *   instruction: one trap per `save`, one per `restore`/`return`.
 * - No NPC register: a PC write sets NPC = PC + 4, and NPC cannot be read. Where the engine takes
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
import type { Engine } from '../../src/emu/unicorn.js';
import { UC_ARCH, UC_MODE } from '../../src/emu/unicorn.js';
import { UniprobeError } from '../../src/errors.js';
import { SIG, type Arch, type GuestFault, type RegSnapshot, type TrapAction, type TrapSink } from '../types.js';
import { SyscallTable } from '../syscall-table.js';
import { UC_SPARC_REG as R } from './ucregs.js';
import { SYSCALLS_SPARC64 } from './syscalls-sparc64.js';
import { sparcErrno } from './errno.js';
import { sparcRlimitResource } from './resource.js';
import * as isa from './isa.js';
import { RegisterWindows, type WindowMemory } from './windows.js';
import { getContextWrites } from './ucontext.js';
import { FPRS_FEF, FRESH_FP_STATE, FP_STATE_WORDS } from './cpu-state.js';
import { CpuTraps } from './cpu-traps.js';

// Bound once: the trap handlers call these millions of times, and a bundler's ESM-to-CJS output
// (tsx, vitest) would otherwise go through an export getter on every call.
const {
  NOP,
  REG,
  STACK_BIAS,
  annulBit,
  branchDisp,
  branchKind,
  callTarget,
  cond,
  encJmplImm,
  encJmplReg,
  encRdCcr,
  encRdY,
  encSetx,
  encTa,
  encWrCcr,
  encWrY,
  iBit,
  isCall,
  isDcti,
  isFlushw,
  isJmpl,
  isRdPc,
  isRestore,
  isReturn,
  isSave,
  isTcc,
  rd,
  retargetBranch,
  rs1,
  rs2,
  simm13,
} = isa;

const table = new SyscallTable(SYSCALLS_SPARC64);

/** Unicorn ids of r0..r31 (%g0–%g7, %o0–%o7, %l0–%l7, %i0–%i7). */
const R32: readonly number[] = [
  ...Array.from({ length: 8 }, (_, k) => R.G0 + k),
  ...Array.from({ length: 8 }, (_, k) => R.O0 + k),
  ...Array.from({ length: 8 }, (_, k) => R.L0 + k),
  ...Array.from({ length: 8 }, (_, k) => R.I0 + k),
];
/** r1..r31 and the PC: what the host writes back after emulating an instruction. */
const R31_PC: readonly number[] = [...R32.slice(1), R.PC];
const R32_PC: readonly number[] = [...R32, R.PC];
/** The window registers %o, %l, %i and the PC: what a save/restore/return changes. */
const WINDOW_PC: readonly number[] = [...R32.slice(8), R.PC];
const SYSCALL_ARG_REGS = [R.O0, R.O1, R.O2, R.O3, R.O4, R.O5];

/** Trap types as QEMU delivers them to UC_HOOK_INTR (intno). */
const TT = {
  INSN_ACCESS: 0x08,
  CODE_ACCESS: 0x0a,
  ILLEGAL: 0x10,
  PRIVILEGED: 0x11,
  FP_DISABLED: 0x20,
  FP_EXCEPTION: 0x21,
  TAG_OVERFLOW: 0x23,
  DIV_ZERO: 0x28,
  DATA_ACCESS: 0x30,
  DATA_ACCESS_ERROR: 0x32,
  DATA_MISS: 0x68, // fast_data_access_MMU_miss: an explicit-ASI load (cpu-state.ts)
  UNALIGNED: 0x34,
  SPILL: 0x80, // spill_n_normal with WSTATE = 0: save, flushw
  FILL: 0xc0, // fill_n_normal: restore, return
  TRAP: 0x100, // + software trap number (Tcc)
} as const;

/** Software trap numbers (`ta N`). */
const ST = {
  BREAKPOINT: 0x01, // Linux ST_BREAKPOINT (gdb)
  FLUSH_WINDOWS: 0x03, // Linux ST_FLUSH_WINDOWS
  SYSCALL: 0x6d, // Linux 64-bit system call
  HYPERCALL: 0x6e, // guest kernel → host (fixtures/kernel/ABI.md)
  KPROBE_BP: 0x70, // 0x70/0x71 kprobes, 0x73/0x74 uprobes (arch/sparc)
  KPROBE_LAST: 0x74,
  RESOLVE: 0x7d, // ours, only inside the stub area: a replayed branch went this way
  RESUME: 0x7e, // ours, only inside the stub area: continue at the recorded target
} as const;

/** HC_SYSRET's number (fixtures/kernel/ABI.md): the return to user mode. */
const HC_SYSRET = 0n;
/** icc.C | xcc.C: Linux/sparc's system-call error flag. */
const CCR_CARRY = 0x11n;
const FORK_LIKE = new Set([SYSCALLS_SPARC64.fork!, SYSCALLS_SPARC64.vfork!, SYSCALLS_SPARC64.clone!].map((n) => BigInt(n)));

/** What the host says when a program reaches a floating-point instruction and the FPU could not be reached. */
export const FPU_DISABLED_REASON =
  "floating-point instruction: the sparc64 CPU's FPU is disabled and this Unicorn build's CPU state could not be reached to enable it";

/** Unicorn keeps 41 address bits with the MMU off. */
const ADDRESS_MASK = (1n << 41n) - 1n;

/** Engine-private executable memory for stubs and trampolines (below 2^41, above every user and alias range). */
export const STUB_AREA = 0x180_0000_0000n;
const STUB_AREA_SIZE = 1 << 20;
const STUB_READ_STATE = STUB_AREA; // rd %ccr,%g1 ; rd %y,%g2
const STUB_WRITE_STATE = STUB_AREA + 0x10n; // wr %g1,%ccr ; wr %g2,%y
const STUB_SYSRET = STUB_AREA + 0x20n; // wr %g1,%ccr ; ta 0x6e
const STUB_FPU_PROBE = STUB_AREA + 0x30n; // wr %g0,0x82,%asi ; wr %g0,FEF,%fprs (cpu-state.ts)
const STUB_DYNAMIC = STUB_AREA + 0x40n;

/** What a `ta` inside the stub area means. */
type StubTrap = { kind: 'resume'; to: bigint } | { kind: 'resolve'; at: bigint; npc: bigint };

/** Per-engine state the host adds to the CPU. */
class SparcCpu {
  readonly windows = new RegisterWindows();
  sink: TrapSink | undefined;
  /** The FPU, the data TLB and the FP registers, through QEMU's CPU state (cpu-traps.ts). */
  readonly fpu: CpuTraps;
  private next = STUB_DYNAMIC;
  private readonly slots = new Map<string, bigint>();
  readonly stubTraps = new Map<bigint, StubTrap>();
  /** %g7 just before restoreSyscallRegs replaced it: the user's %ccr captured at entry. */
  ccrAtEntry = 0n;
  /**
   * A trap word the host resumed at with NPC ≠ PC + 4 (sparcResumeAt): when it traps, its next PC
   * is this, not what the word before it suggests. One-shot; any other trap or a register restore
   * drops it.
   */
  deferredNpc: { at: bigint; npc: bigint } | undefined;

  /** The deferred next PC if the trap at `a` is the one it was recorded for; clears it either way. */
  takeDeferredNpc(a: bigint): bigint | undefined {
    const d = this.deferredNpc;
    this.deferredNpc = undefined;
    return d !== undefined && d.at === a ? d.npc : undefined;
  }

  constructor(readonly engine: Engine) {
    this.fpu = new CpuTraps(engine);
  }

  /**
   * A stub with these words, written once into the engine's stub area (content-addressed: a stub
   * is never rewritten, so no translated block can go stale) and its traps registered.
   */
  stub(words: number[], traps: Array<[number, StubTrap]> = []): bigint {
    const key = words.join(',') + '|' + traps.map(([i, t]) => `${i}:${t.kind}:${'to' in t ? t.to : `${t.at}:${t.npc}`}`).join(',');
    const have = this.slots.get(key);
    if (have !== undefined) return have;
    const at = this.next;
    const size = BigInt(((words.length * 4 + 15) >> 4) << 4);
    if (at + size > STUB_AREA + BigInt(STUB_AREA_SIZE)) {
      throw new UniprobeError('ARCH', 'sparc64: the engine-private trampoline area is full');
    }
    this.engine.memWrite(at, be32(words));
    this.next = at + size;
    this.slots.set(key, at);
    for (const [i, t] of traps) this.stubTraps.set(at + BigInt(4 * i), t);
    return at;
  }

  private readonly returnStubs = new Map<number, Map<number, bigint>>();

  /** `[jmpl][delay insn]` (see resumeAt), memoised without building a key string: one per `return`. */
  returnStub(jmpl: number, delay: number): bigint {
    let byDelay = this.returnStubs.get(jmpl);
    if (!byDelay) this.returnStubs.set(jmpl, (byDelay = new Map()));
    let at = byDelay.get(delay);
    if (at === undefined) byDelay.set(delay, (at = this.stub([jmpl, delay])));
    return at;
  }

  inStubArea(pc: bigint): boolean {
    return pc >= STUB_AREA && pc < STUB_AREA + BigInt(STUB_AREA_SIZE);
  }
}

const cpus = new WeakMap<Engine, SparcCpu>();

function cpuOf(e: Engine): SparcCpu {
  const c = cpus.get(e);
  if (!c) throw new UniprobeError('INTERNAL', 'sparc64: engine was not set up by this back-end');
  return c;
}

function be32(words: number[]): Uint8Array {
  const b = new Uint8Array(words.length * 4);
  const v = new DataView(b.buffer);
  words.forEach((w, i) => v.setUint32(i * 4, w >>> 0));
  return b;
}

const u64 = (v: bigint): bigint => BigInt.asUintN(64, v);

/** The instruction word at `addr` through the engine, or undefined when it is not mapped. */
function fetch(e: Engine, addr: bigint): number | undefined {
  const b = e.tryMemRead(addr, 4);
  return b ? ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0 : undefined;
}

const word32 = (b: Uint8Array, at: number): number => ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;

/**
 * The words at `a − 4` and `a` (the possible DCTI and the trapping instruction), from the task's
 * memory on the host side (no FFI call: this runs on every window trap); the stub area and a
 * missing previous page go through the engine.
 */
function fetchPair(cpu: SparcCpu, a: bigint): { prev: number | undefined; w: number | undefined } {
  if (cpu.sink && !cpu.inStubArea(a) && !cpu.inStubArea(a - 4n)) {
    try {
      const b = cpu.sink.memory().read(u64(a - 4n), 8);
      return { prev: word32(b, 0), w: word32(b, 4) };
    } catch {
      /* a page boundary with nothing before it: word by word below */
    }
  }
  return { prev: fetch(cpu.engine, u64(a - 4n)), w: fetch(cpu.engine, a) };
}

function fetchOne(cpu: SparcCpu, a: bigint): number | undefined {
  if (cpu.sink && !cpu.inStubArea(a)) {
    try {
      return word32(cpu.sink.memory().read(a, 4), 0);
    } catch {
      /* not in the task's memory: ask the engine */
    }
  }
  return fetch(cpu.engine, a);
}

/** Write the current window (%o, %l, %i of `r`) and the PC in one call. */
function writeWindow(e: Engine, r: bigint[], pc: bigint): void {
  const v = r.slice(8);
  v.push(pc);
  e.regWriteBatch(WINDOW_PC, v);
}

/** Operand 2 of a format-3 instruction: simm13 or rs2. */
const op2 = (w: number, r: readonly bigint[]): bigint => (iBit(w) ? simm13(w) : r[rs2(w)]!);

/**
 * Run a stub between runs (engine idle): %g1/%g2 in, %g1/%g2 out; the PC and both registers are
 * put back. Only used where no emulation run is in progress.
 */
function runStub(e: Engine, at: bigint, count: number, g1: bigint, g2: bigint): [bigint, bigint] {
  const saved = e.regReadBatch([R.G1, R.G2, R.PC]);
  e.regWriteBatch([R.G1, R.G2], [g1, g2]);
  const r = e.start(at, 0n, count);
  if (r.err !== 0) throw new UniprobeError('UNICORN', `sparc64: state stub at 0x${at.toString(16)} failed: ${e.strerror(r.err)}`);
  const out = e.regReadBatch([R.G1, R.G2]);
  e.regWriteBatch([R.G1, R.G2, R.PC], saved);
  return [out[0]!, out[1]!];
}

/** %ccr and %y, read through a stub (undefined while the engine runs: no stub can run then). */
function readCcrY(e: Engine): [bigint, bigint] | undefined {
  return e.isRunning ? undefined : runStub(e, STUB_READ_STATE, 2, 0n, 0n);
}

function writeCcrY(e: Engine, ccr: bigint, y: bigint | undefined): void {
  if (e.isRunning) return;
  runStub(e, STUB_WRITE_STATE, y === undefined ? 1 : 2, ccr & 0xffn, y ?? 0n);
}

// --- the trap handler ------------------------------------------------------------------------------

/** Where the CPU would go after the instruction at `a`: see the module comment. */
type Npc = bigint | { resolve: number } | { lost: string };

/** The current window's registers, read from the engine on first use (one batch call). */
class LazyRegs {
  private r: bigint[] | undefined;
  constructor(private readonly e: Engine) {}
  get(): bigint[] {
    return (this.r ??= this.e.regReadBatch(R32));
  }
  get read(): bigint[] | undefined {
    return this.r;
  }
}

function pendingNpc(w: number | undefined, a: bigint, lazy: LazyRegs): Npc {
  const next = u64(a + 4n);
  const at = u64(a - 4n);
  if (w === undefined || !isDcti(w)) return next;
  if (isCall(w)) return lazy.get()[REG.O7] === at ? callTarget(at, w) : next;
  if (isJmpl(w)) {
    const r = lazy.get();
    const d = rd(w);
    if (d !== 0 && r[d] !== at) return next; // the link register does not point here: not its delay slot
    if (d !== 0 && (d === rs1(w) || (!iBit(w) && d === rs2(w)))) {
      return { lost: `jmpl at 0x${at.toString(16)} overwrote its own target register` };
    }
    return u64(r[rs1(w)]! + op2(w, r));
  }
  if (isReturn(w)) return next; // `return` always traps and is emulated: never pending in the CPU
  const target = u64(at + branchDisp(w));
  if (branchKind(w) === 'bpr') return annulBit(w) ? target : { resolve: w };
  const c = cond(w);
  if (c === 8) return annulBit(w) ? next : target; // ba,a annuls its delay slot: `a` is not one
  if (c === 0) return next; // bn: falls through; bn,a annuls
  return annulBit(w) ? target : { resolve: w }; // an annulled delay slot runs only when taken
}

function memoryOf(cpu: SparcCpu): WindowMemory & { readonly unsettled: boolean } {
  return cpu.sink!.memory();
}

function fault(cpu: SparcCpu, f: GuestFault, pc: bigint): void {
  const action = cpu.sink!.fault(f, pc);
  finish(cpu, action, pc);
}

/** Apply a generic trap action: PC (default: leave it) and stop. */
function finish(cpu: SparcCpu, action: TrapAction | undefined, pc: bigint | undefined): void {
  const e = cpu.engine;
  const to = action?.pc ?? pc;
  if (to !== undefined) e.regWrite(R.PC, to);
  if (action?.stop) e.stop();
}

function faultForTrap(tt: number): GuestFault {
  switch (tt) {
    case TT.FP_DISABLED:
      return { signal: SIG.SIGILL, reason: FPU_DISABLED_REASON };
    case TT.ILLEGAL:
      return { signal: SIG.SIGILL, reason: 'illegal instruction' };
    case TT.PRIVILEGED:
      return { signal: SIG.SIGILL, reason: 'privileged instruction' };
    case TT.FP_EXCEPTION:
      return { signal: SIG.SIGFPE, reason: 'floating-point exception' };
    case TT.TAG_OVERFLOW:
      return { signal: SIG.SIGILL, reason: 'tag overflow' };
    case TT.DIV_ZERO:
      return { signal: SIG.SIGFPE, reason: 'integer division by zero' };
    case TT.UNALIGNED:
    case TT.UNALIGNED + 1:
    case TT.UNALIGNED + 2:
    case TT.UNALIGNED + 3:
      return { signal: SIG.SIGBUS, reason: 'unaligned access' };
    case TT.INSN_ACCESS:
    case TT.CODE_ACCESS:
    case TT.DATA_ACCESS:
    case TT.DATA_ACCESS_ERROR:
      return { signal: SIG.SIGSEGV, reason: 'access exception' };
    default:
      return { signal: SIG.SIGILL, reason: `trap type 0x${tt.toString(16)}` };
  }
}

function onTrap(cpu: SparcCpu, intno: number): void {
  const e = cpu.engine;
  const pc = e.regRead(R.PC);
  if (intno >= TT.TRAP) {
    const n = intno - TT.TRAP;
    if (cpu.inStubArea(pc)) {
      const t = cpu.stubTraps.get(pc);
      if (t?.kind === 'resume' && n === ST.RESUME) return void e.regWrite(R.PC, t.to);
      if (t?.kind === 'resolve' && n === ST.RESOLVE) {
        const w = fetch(e, t.at)!;
        return perform(cpu, t.at, w, t.npc);
      }
      if (pc === STUB_SYSRET + 4n && n === ST.HYPERCALL) return softwareTrap(cpu, n, pc, pc + 4n);
      // Anything else in the stub area is a copied instruction trapping: handled as usual below.
    }
    return atInstruction(cpu, pc, n);
  }
  if (intno === TT.SPILL || intno === TT.FILL) return atInstruction(cpu, pc);
  if (intno === TT.FP_DISABLED) {
    if (cpu.fpu.fpDisabled(pc)) return;
    const why = cpu.fpu.unreachable;
    if (why === undefined) return fault(cpu, { signal: SIG.SIGILL, reason: 'fp_disabled with the FPU enabled' }, pc);
    return fault(cpu, { signal: SIG.SIGILL, reason: `${FPU_DISABLED_REASON} (${why})` }, pc);
  }
  if (intno === TT.DATA_MISS && cpu.fpu.dataMiss(pc)) return;
  fault(cpu, faultForTrap(intno), pc);
}

/** Linux's sparc64_get_context (ucontext.ts): windows flushed first, as synchronize_user_stack does. */
function getContext(cpu: SparcCpu, a: bigint, npc: bigint): void {
  const e = cpu.engine;
  const r = e.regReadBatch(R32);
  const mem = memoryOf(cpu);
  const fpuOn = cpu.fpu.enabled;
  try {
    cpu.windows.flush(r, mem);
    for (const w of getContextWrites(r, npc, fpuOn)) mem.write(w.at, w.bytes);
  } catch (err) {
    if (err instanceof UniprobeError && err.code === 'MM') {
      return fault(cpu, { signal: SIG.SIGSEGV, reason: 'getcontext to an unusable address' }, a);
    }
    throw err;
  }
  e.regWrite(R.PC, npc);
  if (mem.unsettled) e.stop();
}

/** A trap at `a` the host must carry out: find the NPC (maybe through a resolve trampoline), then do it. */
function atInstruction(cpu: SparcCpu, a: bigint, trapNo?: number): void {
  const e = cpu.engine;
  const { prev, w } = fetchPair(cpu, a);
  if (w === undefined) return fault(cpu, { signal: SIG.SIGSEGV, reason: 'instruction fetch' }, a);
  const lazy = new LazyRegs(e);
  const npc = cpu.takeDeferredNpc(a) ?? pendingNpc(prev, a, lazy);
  if (typeof npc === 'bigint') return perform(cpu, a, w, npc, lazy.read, trapNo);
  if ('lost' in npc) return fault(cpu, { signal: SIG.SIGILL, reason: `cannot resume a delay slot: ${npc.lost}` }, a);
  // A conditional branch before `a`: let the CPU replay it and tell us which way it goes.
  const branchAt = u64(a - 4n);
  const s = cpu.stub(
    [retargetBranch(npc.resolve, 16), NOP, encTa(ST.RESOLVE), NOP, encTa(ST.RESOLVE)],
    [
      [2, { kind: 'resolve', at: a, npc: u64(a + 4n) }],
      [4, { kind: 'resolve', at: a, npc: u64(branchAt + branchDisp(npc.resolve)) }],
    ],
  );
  e.regWrite(R.PC, s);
}

/** Carry out the trapping instruction `w` at `a`, then continue at `npc`. */
function perform(cpu: SparcCpu, a: bigint, w: number, npc: bigint, regsIn?: bigint[], trapNo?: number): void {
  const e = cpu.engine;
  // The host carries out `w`: the rest of the block it trapped in is not run from here.
  e.blockLeftAt(a + 4n);
  if (isTcc(w)) {
    if (trapNo !== undefined) return softwareTrap(cpu, trapNo, a, npc);
    const r = regsIn ?? e.regReadBatch(R32);
    const n = Number((r[rs1(w)]! + (iBit(w) ? BigInt(w & 0x7f) : r[rs2(w)]!)) & 0x7fn);
    return softwareTrap(cpu, n, a, npc);
  }
  if (!(isSave(w) || isRestore(w) || isReturn(w) || isFlushw(w))) {
    return fault(cpu, { signal: SIG.SIGILL, reason: `unexpected trap at 0x${w.toString(16).padStart(8, '0')}` }, a);
  }
  const r = regsIn ?? e.regReadBatch(R32);
  const mem = memoryOf(cpu);
  const win = cpu.windows;
  try {
    if (isFlushw(w)) {
      win.flush(r, mem);
      e.regWrite(R.PC, npc);
    } else if (isSave(w) || isRestore(w)) {
      const d = rd(w);
      const value = u64(r[rs1(w)]! + op2(w, r));
      if (isSave(w)) win.save(r, value, d, mem);
      else win.restore(r, value, d, mem);
      writeWindow(e, r, npc);
      if (d > 0 && d < 8) e.regWrite(R32[d]!, value);
    } else {
      // return: restore + jump to rs1 + op2 (computed in the window being left); its delay slot
      // runs in the restored window.
      const target = u64(r[rs1(w)]! + op2(w, r));
      if ((target & 3n) !== 0n) return fault(cpu, { signal: SIG.SIGBUS, reason: 'unaligned return target' }, a);
      win.restore(r, 0n, 0, mem);
      writeWindow(e, r, a);
      resumeAt(cpu, u64(a + 4n), target, w);
    }
  } catch (err) {
    if (err instanceof UniprobeError && err.code === 'MM') {
      return fault(cpu, { signal: SIG.SIGSEGV, reason: 'register window spill/fill to an unusable stack' }, a);
    }
    throw err;
  }
  if (mem.unsettled) e.stop();
}

/**
 * Continue at `a` with NPC = `npc` (the delay slot of an emulated `return`). `ret` is the
 * `return` word when there is one (its operands may be replayed by a trampoline).
 */
function resumeAt(cpu: SparcCpu, a: bigint, npc: bigint, ret?: number): void {
  const e = cpu.engine;
  if (npc === u64(a + 4n)) return void e.regWrite(R.PC, a);
  const w = fetchOne(cpu, a);
  if (w === undefined) return fault(cpu, { signal: SIG.SIGSEGV, reason: 'instruction fetch' }, a);
  if (w === NOP) return void e.regWrite(R.PC, npc);
  if (isTcc(w) || isSave(w) || isRestore(w) || isFlushw(w)) return perform(cpu, a, w, npc);
  if (isDcti(w)) {
    // A DCTI in a delay slot (a "DCTI couple", deprecated in V9): run it without the pending target.
    return void e.regWrite(R.PC, a);
  }
  if (isRdPc(w)) {
    if (rd(w) !== 0) e.regWrite(R32[rd(w)]!, a);
    return void e.regWrite(R.PC, npc);
  }
  // After `return`, the callee's %i registers are the caller's %o: `jmpl` on the renamed operands
  // recomputes the target, with the delay-slot word as its own delay slot.
  if (ret !== undefined) {
    const map = (r: number): number | undefined => (r < 8 ? r : r >= 24 ? r - 16 : undefined);
    const s1 = map(rs1(ret));
    const s2 = iBit(ret) ? 0 : map(rs2(ret));
    if (s1 !== undefined && s2 !== undefined) {
      const jmpl = iBit(ret) ? encJmplImm(s1, ret & 0x1fff, 0) : encJmplReg(s1, s2, 0);
      return void e.regWrite(R.PC, cpu.returnStub(jmpl, w));
    }
  }
  e.regWrite(R.PC, cpu.stub([w, encTa(ST.RESUME)], [[1, { kind: 'resume', to: npc }]]));
}

/**
 * Continue at `pc` with next PC `npc` from inside a trap hook, through the same trampolines the
 * window emulation uses: how the probe back-ends (arch/sparc/kprobes, arch/sparc/uprobes) run a
 * probed branch's delay slot before its target, Unicorn having no NPC register to write.
 */
export function sparcResumeAt(e: Engine, pc: bigint, npc: bigint): void {
  const cpu = cpuOf(e);
  const w = npc === u64(pc + 4n) ? undefined : fetchOne(cpu, pc);
  if (w !== undefined && isTcc(w)) {
    // A trap word (a uprobe's breakpoint on the delay slot of a probed branch, a system call):
    // carrying it out here would call back into the trap handler that is resuming. Let the CPU
    // reach it and hand its trap the right next PC instead (atInstruction).
    cpu.deferredNpc = { at: pc, npc };
    return void e.regWrite(R.PC, pc);
  }
  resumeAt(cpu, pc, npc);
}

function softwareTrap(cpu: SparcCpu, n: number, a: bigint, npc: bigint): void {
  const e = cpu.engine;
  const sink = cpu.sink!;
  switch (n) {
    case ST.SYSCALL: {
      const action = sink.syscall(npc);
      if (action?.pc !== undefined && sink.isKernelText(action.pc)) {
        // Into the guest kernel through the entry trampoline: %g7 = the user's %ccr.
        const enter = cpu.stub([encRdCcr(REG.G7), ...encSetx(action.pc, REG.G1, REG.G2), encJmplImm(REG.G1, 0, 0), NOP]);
        return finish(cpu, { ...action, pc: enter }, npc);
      }
      return finish(cpu, action, npc);
    }
    case ST.HYPERCALL: {
      const viaStub = a === STUB_SYSRET + 4n;
      // From user code the same number is Linux's getcontext (ST_GETCONTEXT).
      if (!viaStub && !sink.isKernelText(a)) return getContext(cpu, a, npc);
      if (!viaStub) {
        const [nr, ret, ccr] = e.regReadBatch([R.O0, R.O1, R.G7]);
        if (nr === HC_SYSRET) {
          // The user's %ccr with Linux's error convention, written by guest code before the
          // generic return to user mode runs.
          const v = BigInt.asIntN(64, ret!);
          const carry = v < 0n && v >= -4095n ? CCR_CARRY : 0n;
          e.regWriteBatch([R.G1, R.PC], [(ccr! & ~CCR_CARRY & 0xffn) | carry, STUB_SYSRET]);
          return;
        }
      }
      return finish(cpu, sink.hypercall(npc), npc);
    }
    case ST.FLUSH_WINDOWS: {
      const mem = memoryOf(cpu);
      try {
        cpu.windows.flush(e.regReadBatch(R32), mem);
      } catch (err) {
        if (err instanceof UniprobeError && err.code === 'MM') {
          return fault(cpu, { signal: SIG.SIGSEGV, reason: 'register window spill to an unusable stack' }, a);
        }
        throw err;
      }
      e.regWrite(R.PC, npc);
      if (mem.unsettled) e.stop();
      return;
    }
    default:
      if (n === ST.BREAKPOINT || (n >= ST.KPROBE_BP && n <= ST.KPROBE_LAST)) return finish(cpu, sink.breakpoint(a, npc), npc);
  }
  // Linux: a software trap nobody owns is a bad trap, SIGILL (ILL_ILLTRP).
  fault(cpu, { signal: SIG.SIGILL, reason: `software trap ta 0x${n.toString(16)}` }, a);
}

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
  unameMachine: 'sparc64',
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
    e.memWrite(STUB_READ_STATE, be32([encRdCcr(REG.G1), encRdY(REG.G2)]));
    e.memWrite(STUB_WRITE_STATE, be32([encWrCcr(REG.G1), encWrY(REG.G2)]));
    e.memWrite(STUB_SYSRET, be32([encWrCcr(REG.G1), encTa(ST.HYPERCALL)]));
    e.memWrite(STUB_FPU_PROBE, be32([0x87802082, 0x8d802000 | Number(FPRS_FEF)]));
    // Give the lazy condition-code state a defined value before any guest instruction reads it.
    writeCcrY(e, 0n, 0n);
    cpu.fpu.locate(() => void runStub(e, STUB_FPU_PROBE, 2, 0n, 0n));
  },

  installTrapHooks(engine: Engine, sink: TrapSink): void {
    const cpu = cpuOf(engine);
    cpu.sink = sink;
    engine.hookIntr((intno) => onTrap(cpu, intno));
  },

  runStart(e: Engine): { pc: bigint; replay: number } {
    // Restart at the DCTI when the last run stopped in its delay slot (see the module comment).
    const pc = e.regRead(R.PC);
    const npc = pendingNpc(fetch(e, u64(pc - 4n)), pc, new LazyRegs(e));
    if (npc === u64(pc + 4n)) return { pc, replay: 0 };
    if (typeof npc === 'object' && 'lost' in npc) {
      throw new UniprobeError('ARCH', `sparc64: cannot resume at 0x${pc.toString(16)}: ${npc.lost}`);
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
    cpuOf(e).deferredNpc = undefined;
    cpuOf(e).fpu.restore(FRESH_FP_STATE); // Linux's flush_thread at exec
  },

  syscallName: (nr) => table.name(nr),
  syscallNumber: (name) => table.number(name),
  readSyscall(e) {
    const v = e.regReadBatch([R.G1, ...SYSCALL_ARG_REGS]);
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
