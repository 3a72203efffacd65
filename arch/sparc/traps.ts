/**
 * sparc64: the trap handler. Every trap of the engine comes here (windows spill/fill, software
 * traps, faults); it reconstructs the next PC the CPU lost (`pendingNpc`), performs the window
 * instructions the CPU cannot, and leaves towards (PC, NPC) through the stub trampolines. The
 * module comment of sparc64.ts says why; cpu.ts holds the per-engine state it works on.
 */
import type { Engine } from '../../src/emu/unicorn.js';
import { UniprobeError } from '../../src/errors.js';
import { SIG, type GuestFault, type TrapAction } from '../types.js';
import { UC_SPARC_REG as R } from './ucregs.js';
import * as isa from './isa.js';
import { type WindowMemory } from './windows.js';
import type { CpuWindowFile, WindowStack } from './window-file.js';
import { getContextWrites } from './ucontext.js';
import { ST_SETCONTEXT, setContext } from './setcontext.js';
import { R32, TT, ST, HC_SYSRET, CCR_CARRY, FPU_DISABLED_REASON, STUB_SYSRET, SparcCpu, cpuOf, u64, fetch, fetchPair, fetchOne, writeWindow, op2 } from './cpu.js';

// Bound once: the trap handlers call these millions of times, and a bundler's ESM-to-CJS output
// (tsx, vitest) would otherwise go through an export getter on every call.
const {
  NOP,
  REG,
  annulBit,
  branchDisp,
  branchKind,
  callTarget,
  cond,
  encJmplImm,
  encJmplReg,
  encTa,
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
} = isa;


/** Where the CPU would go after the instruction at `a`: see the module comment. */
type Npc = bigint | { resolve: number } | { lost: string };

/** The current window's registers, read from the engine on first use (one batch call). */
export class LazyRegs {
  private r: bigint[] | undefined;
  constructor(readonly engine: Engine) {}
  get(): bigint[] {
    return (this.r ??= this.engine.regReadBatch(R32));
  }
  get read(): bigint[] | undefined {
    return this.r;
  }
}

export function pendingNpc(w: number | undefined, a: bigint, lazy: LazyRegs): Npc {
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
  if (isReturn(w)) {
    // Without the CPU's window file `return` always traps and is emulated: never pending.
    const file = cpuOf(lazy.engine).windows.cpuFile;
    return file ? returnTarget(w, lazy.get(), file) : next;
  }
  const target = u64(at + branchDisp(w));
  if (branchKind(w) === 'bpr') return annulBit(w) ? target : { resolve: w };
  const c = cond(w);
  if (c === 8) return annulBit(w) ? next : target; // ba,a annuls its delay slot: `a` is not one
  if (c === 0) return next; // bn: falls through; bn,a annuls
  return annulBit(w) ? target : { resolve: w }; // an annulled delay slot runs only when taken
}

/**
 * Where a `return` the CPU ran goes: rs1 + op2 in the window it left. Its %i registers are now
 * the current %o; its %o and %l are still in the file (CpuWindowFile.calleeReg).
 */
function returnTarget(w: number, r: readonly bigint[], file: CpuWindowFile): bigint {
  const value = (n: number): bigint => (n < 8 ? r[n]! : n >= 24 ? r[n - 16]! : file.calleeReg(n));
  return u64(value(rs1(w)) + (iBit(w) ? isa.simm13(w) : value(rs2(w))));
}

/**
 * The task's memory for work done on the guest's behalf in a trap (window spills and fills,
 * getcontext). A trap from user code gets user accesses, as Linux's handlers use ASI_AIUP there:
 * a %sp pointing into the kernel faults (SIGSEGV) instead of writing kernel memory.
 */
export function memoryOf(cpu: SparcCpu): WindowMemory & { readonly unsettled: boolean; asUser?<T>(fn: () => T): T } {
  const m = cpu.sink!.memory();
  if (!m.asUser || !cpu.windows.cpuFile?.userMode) return m;
  const asUser = m.asUser.bind(m);
  return {
    read: (addr, len) => asUser(() => m.read(addr, len)),
    write: (addr, bytes) => asUser(() => m.write(addr, bytes)),
    get unsettled() {
      return m.unsettled;
    },
  };
}

export function fault(cpu: SparcCpu, f: GuestFault, pc: bigint): void {
  const action = cpu.sink!.fault(f, pc);
  finish(cpu, action, pc);
}

/** Apply a generic trap action: PC (default: leave it) and stop. */
export function finish(cpu: SparcCpu, action: TrapAction | undefined, pc: bigint | undefined): void {
  const e = cpu.engine;
  const to = action?.pc ?? pc;
  if (to !== undefined) e.regWrite(R.PC, to);
  if (action?.stop) e.stop();
}

export function faultForTrap(tt: number): GuestFault {
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

/**
 * Every trap of the engine. Window overflow and underflow are served first, without leaving the
 * CPU's own PC and NPC (windows.ts, window-file.ts); everything else goes through trapBody, and
 * the windows host code took out of the CPU go back before the guest runs again.
 */
export function onTrap(cpu: SparcCpu, intno: number): void {
  if ((intno === TT.SPILL || intno === TT.FILL) && windowTrap(cpu, intno === TT.SPILL)) return;
  try {
    trapBody(cpu, intno);
  } finally {
    cpu.windows.push();
  }
}

/** The task's memory for the window fast paths: faults come back as "not now", never as errors. */
class WindowStackOf implements WindowStack {
  mem: (WindowMemory & { readonly unsettled: boolean; asUser?<T>(fn: () => T): T; readInto?(addr: bigint, out: Uint8Array): Uint8Array }) | undefined;
  user = false;
  readNow(addr: bigint, into: Uint8Array): boolean {
    const m = this.mem!;
    const read = (): unknown => (m.readInto ? m.readInto(addr, into) : into.set(m.read(addr, into.length)));
    try {
      if (this.user && m.asUser) m.asUser(read);
      else read();
      return true;
    } catch (err) {
      if (err instanceof UniprobeError && err.code === 'MM') return false;
      throw err;
    }
  }
  writeNow(addr: bigint, bytes: Uint8Array): boolean {
    const m = this.mem!;
    try {
      if (this.user && m.asUser) m.asUser(() => m.write(addr, bytes));
      else m.write(addr, bytes);
      return true;
    } catch (err) {
      if (err instanceof UniprobeError && err.code === 'MM') return false;
      throw err;
    }
  }
}
const stacks = new WeakMap<SparcCpu, WindowStackOf>();

/**
 * spill_*_normal / fill_*_normal, in the hook: true when served (the CPU runs the `save`,
 * `restore`, `return` or `flushw` again by itself). False leaves the trap to the slow path: no
 * CPU window file, a store or load that faults (the slow path raises the signal), or a store to a
 * copy-on-write page, which is only finished once the run stops — the slow path then emulates the
 * instruction, which resumes correctly at (PC, NPC) after the stop.
 */
function windowTrap(cpu: SparcCpu, spill: boolean): boolean {
  const file = cpu.windows.cpuFile;
  if (!file) return false;
  let st = stacks.get(cpu);
  if (!st) stacks.set(cpu, (st = new WindowStackOf()));
  const mem = (st.mem = cpu.sink!.memory());
  st.user = file.userMode;
  if (!(spill ? cpu.windows.spill(st) : cpu.windows.fill(st))) return false;
  if (mem.unsettled) return false;
  cpu.engine.retry(file.pc);
  return true;
}

function trapBody(cpu: SparcCpu, intno: number): void {
  const e = cpu.engine;
  const pc = cpu.windows.cpuFile?.pc ?? e.regRead(R.PC);
  if (intno >= TT.TRAP) {
    const n = intno - TT.TRAP;
    if (cpu.inStubArea(pc)) {
      const t = cpu.stubTraps.get(pc);
      if (t?.kind === 'resume' && n === ST.RESUME) return void e.regWrite(R.PC, t.to);
      if (t?.kind === 'call' && n === ST.RESUME) return t.run(cpu);
      if (t?.kind === 'resolve' && n === ST.RESOLVE) {
        const w = fetch(e, t.at)!;
        return perform(cpu, t.at, w, t.npc);
      }
      if (pc === STUB_SYSRET + 4n && n === ST.HYPERCALL) return softwareTrap(cpu, n, pc, pc + 4n);
      // Anything else in the stub area is a copied instruction trapping: handled as usual below.
    }
    // The CPU's own NPC, when its state is reachable: no reconstruction from the word before.
    const file = cpu.windows.cpuFile;
    if (file) {
      const npc = cpu.takeDeferredNpc(pc) ?? file.npc;
      // A conditional trap taken mid-block leaves the rest of its block counted but not run. The
      // kprobe traps in kernel code (breakpoints, slot step traps) are the engine's own `ta`,
      // unconditional, which ends QEMU's block: nothing to give back, and no BigInt work per hit.
      if (!(n >= ST.KPROBE_BP && n <= ST.KPROBE_LAST && isKernelCode(cpu, pc))) e.blockLeftAt(pc + 4n);
      return softwareTrap(cpu, n, pc, npc);
    }
    return atInstruction(cpu, pc, n);
  }
  if (intno === TT.SPILL || intno === TT.FILL) return atInstruction(cpu, pc);
  if (intno === TT.FP_DISABLED) {
    if (cpu.fpu.fpDisabled(pc)) return;
    const why = cpu.fpu.unreachable;
    if (why === undefined) return fault(cpu, { signal: SIG.SIGILL, reason: `fp_disabled with the FPU enabled (${cpu.fpu.stateText})` }, pc);
    return fault(cpu, { signal: SIG.SIGILL, reason: `${FPU_DISABLED_REASON} (${why})` }, pc);
  }
  if (intno === TT.DATA_MISS && cpu.fpu.dataMiss(pc)) return;
  fault(cpu, faultForTrap(intno), pc);
}

/** Guest kernel text or the kprobe slot area (TrapSink.isKernelCode; its text when the sink has no such test). */
function isKernelCode(cpu: SparcCpu, pc: bigint): boolean {
  const sink = cpu.sink!;
  return sink.isKernelCode ? sink.isKernelCode(pc) : sink.isKernelText(pc);
}

/** Linux's sparc64_get_context (ucontext.ts): windows flushed first, as synchronize_user_stack does. */
function getContext(cpu: SparcCpu, a: bigint, npc: bigint): void {
  const e = cpu.engine;
  const r = e.regReadBatch(R32);
  const mem = memoryOf(cpu);
  const fpuOn = cpu.fpu.enabled;
  try {
    cpu.windows.flush(r, mem);
    for (const w of getContextWrites(r, npc, fpuOn, cpu.sink!.signalMask?.get() ?? 0n)) mem.write(w.at, w.bytes);
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
export function atInstruction(cpu: SparcCpu, a: bigint, trapNo?: number): void {
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
export function perform(cpu: SparcCpu, a: bigint, w: number, npc: bigint, regsIn?: bigint[], trapNo?: number): void {
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
export function resumeAt(cpu: SparcCpu, a: bigint, npc: bigint, ret?: number): void {
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
  const viaJmpl = ret !== undefined ? returnStubFor(cpu, ret, w) : undefined;
  if (viaJmpl !== undefined) return void e.regWrite(R.PC, viaJmpl);
  e.regWrite(R.PC, cpu.stub([w, encTa(ST.RESUME)], [[1, { kind: 'resume', to: npc }]]));
}

/**
 * After `return`, the callee's %i registers are the caller's %o: `[jmpl on the renamed operands,
 * %g0][w]` recomputes the target in the restored window, with the delay-slot word `w` as its own
 * delay slot (a trap there is reported with the jmpl's target as its next PC). Undefined when an
 * operand was a %o or %l of the window left.
 */
export function returnStubFor(cpu: SparcCpu, ret: number, w: number): bigint | undefined {
  const map = (r: number): number | undefined => (r < 8 ? r : r >= 24 ? r - 16 : undefined);
  const s1 = map(rs1(ret));
  const s2 = iBit(ret) ? 0 : map(rs2(ret));
  if (s1 === undefined || s2 === undefined) return undefined;
  const jmpl = iBit(ret) ? encJmplImm(s1, ret & 0x1fff, 0) : encJmplReg(s1, s2, 0);
  return cpu.returnStub(jmpl, w);
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

export function softwareTrap(cpu: SparcCpu, n: number, a: bigint, npc: bigint): void {
  const e = cpu.engine;
  const sink = cpu.sink!;
  switch (n) {
    case ST.SYSCALL: {
      const action = sink.syscall(npc);
      if (action?.pc !== undefined && sink.isKernelText(action.pc)) {
        // Into the guest kernel through the entry trampoline: %g7 = the user's %ccr.
        return finish(cpu, { ...action, pc: cpu.entryStub(action.pc) }, npc);
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
    case ST_SETCONTEXT:
      // Linux's setcontext from user code; nothing else owns the number.
      if (!sink.isKernelText(a)) return setContext(cpu, a);
      break;
    default:
      if (n === ST.BREAKPOINT || (n >= ST.KPROBE_BP && n <= ST.KPROBE_LAST)) return finish(cpu, sink.breakpoint(a, npc), npc);
  }
  // Linux: a software trap nobody owns is a bad trap, SIGILL (ILL_ILLTRP).
  fault(cpu, { signal: SIG.SIGILL, reason: `software trap ta 0x${n.toString(16)}` }, a);
}

