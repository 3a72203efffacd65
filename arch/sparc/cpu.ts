/**
 * sparc64: the state the host adds to each engine's CPU (SparcCpu: register windows, the
 * engine-private stub area and what its `ta` words mean) and the host's small helpers around it
 * — instruction fetch without an FFI call, running a stub between runs (the only way to read or
 * write %ccr and %y), the constants of the trap numbers and the syscall ABI. See sparc64.ts for
 * why each exists.
 */
import type { Engine } from '../../src/emu/unicorn.js';
import { UniprobeError } from '../../src/errors.js';
import { type TrapSink } from '../types.js';
import type { NativeStepTrapSpec } from '../probes.js';
import { SyscallTable } from '../syscall-table.js';
import { UC_SPARC_REG as R } from './ucregs.js';
import { SYSCALLS_SPARC64 } from './syscalls-sparc64.js';
import * as isa from './isa.js';
import { RegisterWindows } from './windows.js';
import { CpuTraps } from './cpu-traps.js';

// Bound once: the trap handlers call these millions of times, and a bundler's ESM-to-CJS output
// (tsx, vitest) would otherwise go through an export getter on every call.
const {
  iBit,
  rs2,
  simm13,
} = isa;

export const table = new SyscallTable(SYSCALLS_SPARC64);

/** Unicorn ids of r0..r31 (%g0–%g7, %o0–%o7, %l0–%l7, %i0–%i7). */
export const R32: readonly number[] = [
  ...Array.from({ length: 8 }, (_, k) => R.G0 + k),
  ...Array.from({ length: 8 }, (_, k) => R.O0 + k),
  ...Array.from({ length: 8 }, (_, k) => R.L0 + k),
  ...Array.from({ length: 8 }, (_, k) => R.I0 + k),
];
/** r1..r31 and the PC: what the host writes back after emulating an instruction. */
export const R31_PC: readonly number[] = [...R32.slice(1), R.PC];
export const R32_PC: readonly number[] = [...R32, R.PC];
/** The window registers %o, %l, %i and the PC: what a save/restore/return changes. */
export const WINDOW_PC: readonly number[] = [...R32.slice(8), R.PC];
export const SYSCALL_ARG_REGS = [R.O0, R.O1, R.O2, R.O3, R.O4, R.O5];
/** %g1 (the number) and the arguments: what every system call entry reads, made once. */
export const SYSCALL_READ = [R.G1, ...SYSCALL_ARG_REGS];

/** Trap types as QEMU delivers them to UC_HOOK_INTR (intno). */
export const TT = {
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

/**
 * A probe's step trap (`ta n` behind the copy in its slot) as the engine's native trap hook sees
 * it: intno TT.TRAP + n with the PC still on the `ta` (traps.ts reads it there too). An
 * unconditional `ta` ends QEMU's translated block, so the host skipping the JavaScript trap path
 * leaves no instruction count to give back (traps.ts's blockLeftAt finds none there either), and
 * the register windows are untouched: the host holds none while the guest runs (windows.ts).
 */
export const sparcStepTrap = (n: number): NativeStepTrapSpec => ({ intno: TT.TRAP + n, pcReg: R.PC, pcAfterTrap: 0, hitPcAfterIsNext: true });

/** Software trap numbers (`ta N`). */
export const ST = {
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
export const HC_SYSRET = 0n;
/** icc.C | xcc.C: Linux/sparc's system-call error flag. */
export const CCR_CARRY = 0x11n;
export const FORK_LIKE = new Set([SYSCALLS_SPARC64.fork!, SYSCALLS_SPARC64.vfork!, SYSCALLS_SPARC64.clone!].map((n) => BigInt(n)));

/** What the host says when a program reaches a floating-point instruction (see the module comment). */
export const FPU_DISABLED_REASON =
  "floating-point instruction: the sparc64 CPU's FPU is disabled and this Unicorn build's CPU state could not be reached to enable it";

/** Unicorn keeps 41 address bits with the MMU off. */
export const ADDRESS_MASK = (1n << 41n) - 1n;

/** Engine-private executable memory for stubs and trampolines (below 2^41, above every user and alias range). */
export const STUB_AREA = 0x180_0000_0000n;
export const STUB_AREA_SIZE = 1 << 20;
/** The first address past the stub area (every trap asks inStubArea: no BigInt made per ask). */
const STUB_AREA_END = STUB_AREA + BigInt(STUB_AREA_SIZE);
export const STUB_READ_STATE = STUB_AREA; // rd %ccr,%g1 ; rd %y,%g2 ; STUB_END
export const STUB_WRITE_STATE = STUB_AREA + 0x10n; // wr %g1,%ccr ; wr %g2,%y ; STUB_END
export const STUB_SYSRET = STUB_AREA + 0x20n; // wr %g1,%ccr ; ta 0x6e
export const STUB_FPU_PROBE = STUB_AREA + 0x30n; // wr %g0,0x82,%asi ; wr %g0,FEF,%fprs ; STUB_END (cpu-state.ts)
export const STUB_DYNAMIC = STUB_AREA + 0x40n;

/** What a `ta` inside the stub area means. */
export type StubTrap =
  | { kind: 'resume'; to: bigint }
  | { kind: 'resolve'; at: bigint; npc: bigint }
  // The host finishes a job the stub began (signal-frame.ts: rt_sigreturn after `wr %ccr/%y`).
  | { kind: 'call'; run: (cpu: SparcCpu) => void };

/** Per-engine state the host adds to the CPU. */
export class SparcCpu {
  readonly windows = new RegisterWindows();
  sink: TrapSink | undefined;
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

  /** The FPU, the data TLB and the FP registers, through QEMU's CPU state (cpu-traps.ts). */
  readonly fpu: CpuTraps;

  constructor(readonly engine: Engine) {
    this.fpu = new CpuTraps(engine);
  }

  /**
   * A stub with these words, written once into the engine's stub area (content-addressed: a stub
   * is never rewritten, so no translated block can go stale) and its traps registered.
   */
  stub(words: number[], traps: Array<[number, StubTrap]> = []): bigint {
    const key = words.join(',') + '|' + traps.map(([i, t]) => `${i}:${t.kind}:${t.kind === 'resume' ? t.to : t.kind === 'resolve' ? `${t.at}:${t.npc}` : t.run.name}`).join(',');
    const have = this.slots.get(key);
    if (have !== undefined) return have;
    const at = this.next;
    const size = BigInt(((words.length * 4 + 15) >> 4) << 4);
    if (at + size > STUB_AREA_END) {
      throw new UniprobeError('ARCH', 'sparc64: the engine-private trampoline area is full');
    }
    this.engine.memWrite(at, be32(words));
    this.next = at + size;
    this.slots.set(key, at);
    for (const [i, t] of traps) this.stubTraps.set(at + BigInt(4 * i), t);
    return at;
  }

  private readonly returnStubs = new Map<number, Map<number, bigint>>();

  private readonly entryStubs = new Map<bigint, bigint>();

  /**
   * The system-call entry trampoline into the guest kernel at `to` (`rd %ccr, %g7`, then a jump:
   * the user's %ccr travels in %g7), memoised by entry point: every system call takes it.
   */
  entryStub(to: bigint): bigint {
    let at = this.entryStubs.get(to);
    if (at === undefined) {
      at = this.stub([isa.encRdCcr(isa.REG.G7), ...isa.encSetx(to, isa.REG.G1, isa.REG.G2), isa.encJmplImm(isa.REG.G1, 0, 0), isa.NOP]);
      this.entryStubs.set(to, at);
    }
    return at;
  }

  /** `[jmpl][delay insn]` (see resumeAt), memoised without building a key string: one per `return`. */
  returnStub(jmpl: number, delay: number): bigint {
    let byDelay = this.returnStubs.get(jmpl);
    if (!byDelay) this.returnStubs.set(jmpl, (byDelay = new Map()));
    let at = byDelay.get(delay);
    if (at === undefined) byDelay.set(delay, (at = this.stub([jmpl, delay])));
    return at;
  }

  inStubArea(pc: bigint): boolean {
    return pc >= STUB_AREA && pc < STUB_AREA_END;
  }
}

export const cpus = new WeakMap<Engine, SparcCpu>();

export function cpuOf(e: Engine): SparcCpu {
  const c = cpus.get(e);
  if (!c) throw new UniprobeError('INTERNAL', 'sparc64: engine was not set up by this back-end');
  return c;
}

export function be32(words: number[]): Uint8Array {
  const b = new Uint8Array(words.length * 4);
  const v = new DataView(b.buffer);
  words.forEach((w, i) => v.setUint32(i * 4, w >>> 0));
  return b;
}

export const u64 = (v: bigint): bigint => BigInt.asUintN(64, v);

/** The instruction word at `addr` through the engine, or undefined when it is not mapped. */
export function fetch(e: Engine, addr: bigint): number | undefined {
  const b = e.tryMemRead(addr, 4);
  return b ? ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0 : undefined;
}

/** sparc64's 8 KiB pages. */
const PAGE_MASK = 0x1fffn;

export const word32 = (b: Uint8Array, at: number): number => ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;

/**
 * The words at `a − 4` and `a` (the possible DCTI and the trapping instruction), from the task's
 * memory on the host side (no FFI call: this runs on every window trap); the stub area and a
 * missing previous page go through the engine.
 */
export function fetchPair(cpu: SparcCpu, a: bigint): { prev: number | undefined; w: number | undefined } {
  // The first word of a page (a return-probe trampoline is one) often has nothing mapped before
  // it: ask for the two words apart rather than through a failing read (an MmFault per trap).
  if ((a & PAGE_MASK) === 0n) return { prev: fetch(cpu.engine, u64(a - 4n)), w: fetchOne(cpu, a) };
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

export function fetchOne(cpu: SparcCpu, a: bigint): number | undefined {
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
export function writeWindow(e: Engine, r: bigint[], pc: bigint): void {
  const v = r.slice(8);
  v.push(pc);
  e.regWriteBatch(WINDOW_PC, v);
}

/** Operand 2 of a format-3 instruction: simm13 or rs2. */
export const op2 = (w: number, r: readonly bigint[]): bigint => (iBit(w) ? simm13(w) : r[rs2(w)]!);

/**
 * Run a stub between runs (engine idle): %g1/%g2 in, %g1/%g2 out; the PC and both registers are
 * put back. Only used where no emulation run is in progress.
 */
export function runStub(e: Engine, at: bigint, count: number, g1: bigint, g2: bigint): [bigint, bigint] {
  const saved = e.regReadBatch([R.G1, R.G2, R.G3, R.PC]);
  e.regWriteBatch([R.G1, R.G2, R.G3], [g1, g2, STUB_READ_STATE]);
  // The stub's words, then its STUB_END, which ends it (Engine.runStub).
  const r = { err: e.runStub(at, count + STUB_END.length) };
  if (r.err !== 0) throw new UniprobeError('UNICORN', `sparc64: state stub at 0x${at.toString(16)} failed: ${e.strerror(r.err)}`);
  const out = e.regReadBatch([R.G1, R.G2]);
  e.regWriteBatch([R.G1, R.G2, R.G3, R.PC], saved);
  return [out[0]!, out[1]!];
}

/** %ccr and %y, read through a stub (undefined while the engine runs: no stub can run then). */
export function readCcrY(e: Engine): [bigint, bigint] | undefined {
  return e.isRunning ? undefined : runStub(e, STUB_READ_STATE, 2, 0n, 0n);
}

export function writeCcrY(e: Engine, ccr: bigint, y: bigint | undefined): void {
  if (e.isRunning) return;
  // The stub writes both: %y keeps its value when only %ccr is given.
  runStub(e, STUB_WRITE_STATE, 2, ccr & 0xffn, y ?? runStub(e, STUB_READ_STATE, 2, 0n, 0n)[1]);
}

/**
 * `jmpl %g3, %g0; nop`: the two words after each state stub, which end its block (Engine.runStub)
 * at %g3 = STUB_READ_STATE, code that is never rewritten. A register jump, because QEMU goes on
 * translating through a static branch (`ba,a`) into the code at its target, in the same block.
 */
export const STUB_END = [0x81c0e000, 0x01000000];

