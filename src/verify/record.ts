/**
 * What one run of a program leaves for the transparency comparison: per thread, the sequence of
 * text instructions it executed (with the named registers at the ones that may carry a probe),
 * the registers at every system call entry, and per process the exit status and the writable
 * memory at exit.
 */
import { createHash } from 'node:crypto';
import type { Arch } from '../../arch/types.js';
import type { Task } from '../kernel/task.js';
import type { Mm } from '../mm/mm.js';
import { PROT } from '../mm/vma.js';

/** A growable flat array of 64-bit values (a run records tens of thousands of register rows). */
export class U64Rows {
  private buf: BigUint64Array;
  rows = 0;

  constructor(readonly width: number) {
    this.buf = new BigUint64Array(Math.max(1, width) * 1024);
  }

  push(values: readonly bigint[]): number {
    const need = (this.rows + 1) * this.width;
    if (need > this.buf.length) {
      const next = new BigUint64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    const at = this.rows * this.width;
    for (let i = 0; i < this.width; i++) this.buf[at + i] = BigInt.asUintN(64, values[i] ?? 0n);
    return this.rows++;
  }

  row(i: number): BigUint64Array {
    return this.buf.subarray(i * this.width, (i + 1) * this.width);
  }
}

/** One thread's execution: the text addresses in order; `regRow[k]` ≥ 0 where registers were taken. */
export class ThreadTrace {
  readonly addrs: number[] = [];
  readonly regRow: number[] = [];
  /** The run-wide position of each step (all threads): orders divergences of different threads. */
  readonly clock: number[] = [];
  /** Indexes of the first step of each emulation run (where a run boundary may repeat a step). */
  readonly runStarts = new Set<number>();
  /** Set when a run starts: the next step of this thread is the run's first. */
  runPending = false;
  /**
   * Instructions the unprobed run executed outside the program text and the kernel text, keyed by
   * how many text steps came before: copies the arch runs from its own trampolines (sparc64 runs
   * the delay slot of an emulated `return` there), which no hook sees at their text address.
   */
  readonly foreign = new Map<number, Array<{ bytes: Uint8Array; row: number; used: boolean }>>();
  /** `at` = how many text instructions the thread had executed when it made the call. */
  readonly syscalls: Array<{ name: string; row: number; at: number }> = [];
}

export interface ProcessEnd {
  readonly pid: number;
  status: number;
  /** Writable memory at exit: page address → bytes (only pages that were mapped). */
  readonly pages: Map<bigint, Uint8Array>;
  readonly digest: string;
}

/**
 * The named registers of the target (the kernel's names, arch.registers), one per Unicorn id.
 * `pcIds` are learned on the unprobed run: the ids whose value always equals the address of the
 * instruction about to run — the PC and its aliases. At a probe hit the engine's PC is wherever
 * the trap left it, so hit rows are compared without them (the sequence compares the address).
 */
export class RegisterSet {
  readonly names: string[] = [];
  readonly ids: number[] = [];
  pcIds: Set<number> | undefined;

  constructor(readonly arch: Arch) {
    for (const [name, r] of arch.registers.byName) {
      if (this.ids.includes(r.id)) continue;
      this.names.push(name);
      this.ids.push(r.id);
    }
  }

  read(mm: Mm, pc?: bigint): bigint[] {
    const v = mm.engine.regReadBatch(this.ids);
    if (pc !== undefined) {
      if (this.pcIds === undefined) this.pcIds = new Set(this.ids.filter((id, i) => v[i] === pc));
      else for (const id of this.pcIds) if (v[this.ids.indexOf(id)] !== pc) this.pcIds.delete(id);
    }
    return v;
  }
}

export class RunRecord {
  readonly threads = new Map<number, ThreadTrace>();
  readonly regs: U64Rows;
  readonly ends = new Map<number, ProcessEnd>();
  stdout: Buffer[] = [];
  stderr: Buffer[] = [];
  reports: string[] = [];
  status = 0;
  reason = '';
  error: string | undefined;
  /** Steps recorded so far, all threads. */
  clock = 0;
  /** The parent of each forked process. */
  readonly parents = new Map<number, number>();
  /** The process of each thread. */
  readonly threadPids = new Map<number, number>();
  /** Start addresses of the XOL areas the probed run used, by process. */
  readonly xolAreas = new Map<number, Set<bigint>>();

  xol(pid: number, vaddr: bigint): void {
    let s = this.xolAreas.get(pid);
    if (!s) this.xolAreas.set(pid, (s = new Set()));
    s.add(vaddr);
  }

  /**
   * Is step `i` of `t` a repeat that a run boundary made? Unicorn may call the code hook for the
   * next instruction and then honour a stop requested before it (the instruction runs again at
   * the start of the next run), and a run that restarts at a delayed branch (sparc64) replays it.
   * Such a step is one of the first two of a run and repeats one of the last two before it.
   */
  isBoundaryRepeat(t: ThreadTrace, i: number): boolean {
    for (const s of [i, i - 1]) {
      if (!t.runStarts.has(s)) continue;
      const a = t.addrs[i];
      if (t.addrs[s - 1] === a || t.addrs[s - 2] === a) return true;
    }
    return false;
  }

  constructor(readonly regset: RegisterSet) {
    this.regs = new U64Rows(regset.ids.length);
  }

  thread(tid: number): ThreadTrace {
    let t = this.threads.get(tid);
    if (!t) this.threads.set(tid, (t = new ThreadTrace()));
    return t;
  }

  /** A text instruction about to run (or, at a probe, the hit); `regs` = its register row. */
  step(tid: number, addr: bigint, regs?: bigint[]): void {
    const t = this.thread(tid);
    if (t.runPending) {
      t.runStarts.add(t.addrs.length);
      t.runPending = false;
    }
    t.addrs.push(Number(addr));
    t.clock.push(this.clock++);
    t.regRow.push(regs ? this.regs.push(regs) : -1);
  }

  /**
   * The last step of `tid` at `addr` did not complete: a trap served transparently lets the CPU
   * run it again (Engine.retryHooks), and its second start is recorded as the step.
   */
  unstep(tid: number, addr: bigint): void {
    const t = this.threads.get(tid);
    if (!t || t.addrs[t.addrs.length - 1] !== Number(addr)) return;
    t.addrs.pop();
    t.clock.pop();
    t.regRow.pop(); // its register row, if any, stays unused in this.regs
  }

  foreignStep(tid: number, bytes: Uint8Array, regs: bigint[]): void {
    const t = this.thread(tid);
    const at = t.addrs.length;
    let list = t.foreign.get(at);
    if (!list) t.foreign.set(at, (list = []));
    list.push({ bytes, row: this.regs.push(regs), used: false });
  }

  syscall(tid: number, name: string, regs: bigint[]): void {
    const t = this.thread(tid);
    t.syscalls.push({ name, row: this.regs.push(regs), at: t.addrs.length });
  }

  get stdoutText(): Buffer {
    return Buffer.concat(this.stdout);
  }

  get stderrText(): Buffer {
    return Buffer.concat(this.stderr);
  }
}

/**
 * Writable memory of `mm` as the process leaves it: every mapped page of every writable VMA
 * (data, bss, heap, stack, anonymous mappings), in address order, and a SHA-256 over them.
 */
export function writableMemory(mm: Mm): { pages: Map<bigint, Uint8Array>; digest: string } {
  const pages = new Map<bigint, Uint8Array>();
  const h = createHash('sha256');
  const ps = BigInt(mm.pageSize);
  for (const v of [...mm.vmas].sort((a, b) => (a.start < b.start ? -1 : 1))) {
    if (!(v.prot & PROT.WRITE)) continue;
    for (let a = v.start; a < v.end; a += ps) {
      if (!mm.isMapped(a)) continue;
      const b = mm.read(a, mm.pageSize);
      pages.set(a, b);
      h.update(a.toString(16));
      h.update(b);
    }
  }
  return { pages, digest: h.digest('hex') };
}

/** The last live task of its process is retiring: the process's end state. */
export function isLastTask(t: Task): boolean {
  return t.process.tasks.every((x) => x === t || x.state === 'dead');
}
