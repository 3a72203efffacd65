/**
 * kretprobes (struct kretprobe, register_kretprobe, pre_handler_kretprobe and the trampoline
 * handler of kernel/kprobes.c), on top of the generic core in kprobes.ts.
 *
 * A kretprobe is a kprobe at a function's entry whose pre handler takes an instance from the
 * kretprobe's preallocated pool, runs the optional entry handler, and hijacks the return address
 * (`ProbeArch.hijackReturn`: the stack word on x86, LR on powerpc, %o7 on sparc64) so the function
 * returns into the trampoline. The instance goes on the current task's LIFO list. The trampoline
 * is one insn slot holding the arch breakpoint, owned through `Kprobes.trapHooks`; a hit there
 * pops the task's instances of the returning frame — several kretprobes on one function make a
 * chain whose saved return addresses are the trampoline itself, closed by the first real one (as
 * Linux's correct_ret_addr) — runs their return handlers newest first with regs.ip = the real
 * return address, repairs the hijacked slot and resumes at the real return PC.
 *
 * Bookkeeping as Linux: an empty pool counts on `rp.nmissed` (not `rp.kp.nmissed`); an entry
 * handler returning non-zero only gives the instance back (no miss); maxactive <= 0 becomes
 * max(10, 2 × possible CPUs). After unregister the holder forgets its kretprobe before the grace
 * period: instances still live on task stacks return through the trampoline without running a
 * handler and are dropped. A task that dies with live instances gives them back.
 */
import { E } from '../kernel/errno.js';
import type { TrapAction } from '../../arch/types.js';
import type { BreakpointHit } from '../kernel/machine.js';
import type { Task } from '../kernel/task.js';
import type { Kthread } from '../sync/index.js';
import { Kprobe } from './kprobe.js';
import { EINVAL, ENOENT, type Kprobes } from './kprobes.js';
import { ProbeRegs, type HitCpu } from '../regs/probe-regs.js';

export const { E2BIG } = E;
/** KRETPROBE_MAX_DATA_SIZE */
export const KRETPROBE_MAX_DATA_SIZE = 4096;

/** Return handler / entry handler. The entry handler's non-zero return = do not track this call. */
export type KretprobeHandler = (ri: KretprobeInstance, regs: ProbeRegs) => number | void;

export interface KretprobeInit {
  symbolName?: string;
  offset?: number;
  addr?: bigint;
  handler?: KretprobeHandler;
  entryHandler?: KretprobeHandler;
  /** Instances (live activations tracked at once); <= 0 → max(10, 2 × vCPUs). */
  maxactive?: number;
  /** Bytes of per-instance private data (`ri.data`), at most 4096. */
  dataSize?: number;
  disabled?: boolean;
}

/** struct kretprobe_holder: the pool and an RCU-style pointer back to the kretprobe. */
class KretprobeHolder {
  /** get_kretprobe() target; undefined once unregistration began. */
  rp: Kretprobe | undefined;
  readonly free: KretprobeInstance[] = [];
  /** Instances taken from the pool and not yet given back. */
  inUse = 0;
  constructor(rp: Kretprobe) {
    this.rp = rp;
  }
}

/** struct kretprobe_instance. */
export class KretprobeInstance {
  /** The real return address (ri->ret_addr; the trampoline for a chained instance). */
  retAddr = 0n;
  /** The frame (stack pointer at function entry, `ProbeArch.frameSp`). */
  frame = 0n;
  /** The task the instance is live on. */
  task: Task | undefined;
  /** Private data of `dataSize` bytes (not cleared between uses, as in Linux). */
  readonly data: Uint8Array;
  /** @internal */
  constructor(
    readonly holder: KretprobeHolder,
    dataSize: number,
  ) {
    this.data = new Uint8Array(dataSize);
  }

  /** get_kretprobe(ri): undefined once the kretprobe is being unregistered. */
  get rp(): Kretprobe | undefined {
    return this.holder.rp;
  }
}

export class Kretprobe {
  /** The embedded kprobe: its pre handler becomes pre_handler_kretprobe at registration. */
  readonly kp: Kprobe;
  handler: KretprobeHandler | undefined;
  entryHandler: KretprobeHandler | undefined;
  maxactive: number;
  dataSize: number;
  /** Calls not tracked because every instance was in use. */
  nmissed = 0;
  /** @internal the pool of the current registration. */
  holder: KretprobeHolder | undefined;

  constructor(init: KretprobeInit = {}) {
    this.kp = new Kprobe({ symbolName: init.symbolName, offset: init.offset, addr: init.addr, disabled: init.disabled });
    this.kp.kretprobe = this;
    this.handler = init.handler;
    this.entryHandler = init.entryHandler;
    this.maxactive = init.maxactive ?? 0;
    this.dataSize = init.dataSize ?? 0;
  }

  /** Instances in the pool right now (free). */
  get nfree(): number {
    return this.holder?.free.length ?? 0;
  }

  /** Instances live on some task's stack. */
  get ninuse(): number {
    return this.holder?.inUse ?? 0;
  }
}

export const isKretprobe = (p: Kprobe): boolean => p.kretprobe instanceof Kretprobe;

export class Kretprobes {
  /** Address of the trampoline (allocated at the first registration). */
  trampoline: bigint | undefined;
  /** current->kretprobe_instances, per task, oldest first. */
  private readonly tasks = new Map<Task, KretprobeInstance[]>();
  /** Trampoline hits whose frame did not match the instance's (Linux WARNs). */
  frameMismatches = 0;
  /**
   * The CPU view and pt_regs of the hit being handled, rebound per hit (no allocation): the entry
   * side and the trampoline side run synchronously in their trap, one at a time.
   */
  private readonly cpu: HitCpu = { engine: undefined!, mem: undefined!, pcAfter: undefined };
  private regs: ProbeRegs | undefined;
  /** The instances a trampoline hit takes off the task's list (reused: hits never nest). */
  private readonly returning: KretprobeInstance[] = [];
  /** The trampoline's resume action, one object read by the arch trap hook at once. */
  private readonly action: { pc: bigint | undefined } = { pc: undefined };

  constructor(readonly kprobes: Kprobes) {
    kprobes.machine.taskExitHooks.push((task) => this.flushTask(task));
  }

  // --- registration (kernel-thread context) --------------------------------------------------

  /** register_kretprobe: 0 or -errno. */
  async register(t: Kthread, rp: Kretprobe): Promise<number> {
    const kp = rp.kp;
    // Re-registering the same struct (by addr or still registered) is refused.
    if (this.kprobes.isRegistered(kp)) return -EINVAL;
    const entry = this.funcEntry(kp);
    if (typeof entry === 'number') return entry;
    for (const name of this.kprobes.arch.kretprobeBlacklist ?? []) {
      const s = this.kprobes.machine.kernel.symbol(name);
      if (s && this.kprobes.machine.arch.functionEntry(s).entries.includes(entry)) return -EINVAL;
    }
    if (rp.dataSize > KRETPROBE_MAX_DATA_SIZE || rp.dataSize < 0) return -E2BIG;
    await this.ensureTrampoline(t);
    kp.preHandler = (_p, regs) => this.preHandler(rp, regs);
    kp.postHandler = undefined;
    if (rp.maxactive <= 0) rp.maxactive = Math.max(10, 2 * this.kprobes.machine.cpus.length);
    const holder = new KretprobeHolder(rp);
    for (let i = 0; i < rp.maxactive; i++) holder.free.push(new KretprobeInstance(holder, rp.dataSize));
    rp.holder = holder;
    rp.nmissed = 0;
    const rc = await this.kprobes.register(t, kp);
    if (rc !== 0) {
      holder.rp = undefined;
      holder.free.length = 0;
      rp.holder = undefined;
    }
    return rc;
  }

  /** register_kretprobes: all or nothing. */
  async registerBatch(t: Kthread, rps: Kretprobe[]): Promise<number> {
    if (rps.length <= 0) return -EINVAL;
    for (let i = 0; i < rps.length; i++) {
      const rc = await this.register(t, rps[i]!);
      if (rc < 0) {
        if (i > 0) await this.unregisterBatch(t, rps.slice(0, i));
        return rc;
      }
    }
    return 0;
  }

  async unregister(t: Kthread, rp: Kretprobe): Promise<void> {
    await this.unregisterBatch(t, [rp]);
  }

  /**
   * unregister_kretprobes: each holder forgets its kretprobe, the kprobes go with one grace
   * period (after which no return handler of these kretprobes runs anywhere), then the free
   * instances are released; live ones are dropped when their function returns or the task dies.
   */
  async unregisterBatch(t: Kthread, rps: Kretprobe[]): Promise<void> {
    if (rps.length <= 0) return;
    for (const rp of rps) if (rp.holder) rp.holder.rp = undefined;
    await this.kprobes.unregisterBatch(
      t,
      rps.map((rp) => rp.kp),
    );
    for (const rp of rps) {
      if (!rp.holder) continue;
      rp.holder.free.length = 0;
      rp.holder = undefined;
    }
  }

  /** The live instances of a task, oldest first (for tests and unwinders). */
  pending(task: Task): readonly KretprobeInstance[] {
    return this.tasks.get(task) ?? [];
  }

  /** Every task's live instances (tests: nothing may stay behind). */
  get npending(): number {
    let n = 0;
    for (const l of this.tasks.values()) n += l.length;
    return n;
  }

  /**
   * kretprobe_find_ret_addr for an unwinder walking `task`'s stack: the `nth` trampoline return
   * address met from the innermost frame outwards (0-based) stands for this real address.
   */
  findRetAddr(task: Task, nth: number): bigint | undefined {
    const list = this.tasks.get(task) ?? [];
    let seen = 0;
    for (let i = list.length - 1; i >= 0; i--) {
      if (list[i]!.retAddr === this.trampoline) continue;
      if (seen++ === nth) return list[i]!.retAddr;
    }
    return undefined;
  }

  // --- internals -------------------------------------------------------------------------------

  /**
   * kprobe_on_func_entry: the address must resolve (else -ENOENT / -EINVAL as _kprobe_addr) and be
   * a function's entry: its first byte, or on ppc64 ELFv2 its local entry.
   */
  private funcEntry(kp: Kprobe): bigint | number {
    const k = this.kprobes.machine.kernel;
    const arch = this.kprobes.machine.arch;
    if ((kp.symbolName === undefined) === (kp.addr === undefined)) return -EINVAL;
    let addr: bigint;
    if (kp.symbolName !== undefined) {
      const sym = k.symbol(kp.symbolName);
      if (!sym) return -ENOENT;
      addr = arch.functionEntry(sym).probe + BigInt(kp.offset);
    } else addr = kp.addr! + BigInt(kp.offset);
    const loc = k.elf.symbolAt(addr);
    if (!loc) return -ENOENT;
    // arch_kprobe_on_func_entry: only at an entry of the function.
    if (!arch.functionEntry(loc.symbol).entries.includes(addr)) return -EINVAL;
    return addr;
  }

  /** The trampoline: one insn slot holding the breakpoint, owned through trapHooks. */
  private async ensureTrampoline(t: Kthread): Promise<void> {
    if (this.trampoline !== undefined) return;
    const kprobes = this.kprobes;
    const slot = await kprobes.slots.get(t);
    if (this.trampoline !== undefined) {
      // Another registration won the race while this one waited for the slot cache.
      await kprobes.slots.free(t, slot, false);
      return;
    }
    await kprobes.textMutex.lock(t, 'kretprobe_trampoline');
    try {
      kprobes.machine.patchKernelText(slot, kprobes.arch.breakpoint);
    } finally {
      kprobes.textMutex.unlock(t);
    }
    this.trampoline = slot;
    kprobes.trapHooks.set(slot, (hit) => this.trampolineHit(hit));
  }

  /** pre_handler_kretprobe, at function entry in the trap context. Always 0 (step the insn). */
  private preHandler(rp: Kretprobe, regs: ProbeRegs): number {
    const holder = rp.holder;
    if (!holder) return 0;
    const ri = holder.free.pop();
    if (!ri) {
      rp.nmissed++;
      return 0;
    }
    holder.inUse++;
    ri.task = regs.task;
    if (rp.entryHandler && (rp.entryHandler(ri, regs) ?? 0) !== 0) {
      this.recycle(ri);
      return 0;
    }
    const cpu = this.cpu;
    cpu.engine = regs.engine;
    cpu.mem = regs.mem;
    cpu.pcAfter = undefined;
    const arch = this.kprobes.arch;
    ri.frame = arch.frameSp(cpu);
    ri.retAddr = arch.hijackReturn(cpu, this.trampoline!);
    let list = this.tasks.get(regs.task);
    if (!list) this.tasks.set(regs.task, (list = []));
    list.push(ri);
    return 0;
  }

  /** __kretprobe_trampoline_handler: the function returned into the trampoline. */
  private trampolineHit(hit: BreakpointHit): TrapAction {
    const tramp = this.trampoline!;
    const list = this.tasks.get(hit.task);
    let i = (list?.length ?? 0) - 1;
    while (i >= 0 && list![i]!.retAddr === tramp) i--;
    if (!list || i < 0) {
      throw new Error(`kretprobe trampoline hit by ${hit.task.process.comm}[${hit.task.tid}] with no kretprobe instance (kernel BUG)`);
    }
    const real = list[i]!.retAddr;
    const frame = list[i]!.frame;
    // This frame's instances are list[i..]: the chain of trampoline return addresses above the
    // real one. Taken off the task's list before any handler runs, as Linux does.
    const n = list.length;
    const machine = this.kprobes.machine;
    const cpu = this.cpu;
    cpu.engine = hit.engine;
    cpu.mem = hit.mem;
    cpu.pcAfter = hit.pcAfter;
    const expected = this.kprobes.arch.returnedFrameSp(cpu);
    for (let j = i; j < n; j++) {
      if (list[j]!.frame !== expected) {
        this.frameMismatches++;
        break;
      }
    }
    // A task's list stays in the map while the task lives (flushTask drops it): no list made and
    // dropped per call of a probed function that does not nest.
    // (push/pop only: setting an array's length is a slow runtime call.)
    const mine = this.returning;
    for (let j = i; j < n; j++) mine.push(list[j]!);
    while (list.length > i) list.pop();
    const regs = (this.regs ??= new ProbeRegs(machine.arch, hit.engine, hit.mem, hit.task, hit.cpu, real)).rebind(hit.engine, hit.mem, hit.task, hit.cpu, real);
    const rcu = machine.sync.rcu;
    rcu.readLock(hit.task.kctx);
    try {
      for (let j = mine.length - 1; j >= 0; j--) {
        const ri = mine[j]!;
        const rp = ri.rp;
        if (rp?.handler) rp.handler(ri, regs);
      }
    } catch (e) {
      while (mine.length > 0) mine.pop();
      throw e;
    } finally {
      rcu.readUnlock(hit.task.kctx);
    }
    this.kprobes.arch.fixupKretprobeReturn(cpu, frame, real);
    while (mine.length > 0) this.recycle(mine.pop()!);
    this.action.pc = real;
    return this.action;
  }

  /** recycle_rp_inst: back to the pool, or dropped once the kretprobe is gone. */
  private recycle(ri: KretprobeInstance): void {
    ri.task = undefined;
    const h = ri.holder;
    h.inUse--;
    if (h.rp) h.free.push(ri);
  }

  /** kprobe_flush_task: a dead task's instances go back to their pools. */
  private flushTask(task: Task): void {
    const list = this.tasks.get(task);
    if (!list) return;
    this.tasks.delete(task);
    for (const ri of list) this.recycle(ri);
  }
}
