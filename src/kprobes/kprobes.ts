/**
 * The generic kprobes core (kernel/kprobes.c): the 64-bucket hash table walked under RCU by the
 * trap path, kprobe_mutex and text_mutex for writers, aggregation, enable/disable, the global
 * switch, batch register/unregister with one grace period, the listing and the blacklist.
 *
 * Data flow of a hit (`onBreakpoint`, inside the guest run, in the task's atomic trap context):
 *   trap → rcu_read_lock → get_kprobe(addr) → pre handlers → emulate | boost | step in the slot
 *   → (step trap) postStep fixups → post handlers → rcu_read_unlock → resume.
 * Between the trap and the end of its step the vCPU is an RCU reader (the task is pinned to it),
 * so unregister's synchronize_rcu waits for it before the slot is freed (seed 003).
 * A handler may call guest kernel functions (HandlerCalls): each call runs on the same vCPU in
 * the middle of the hit, with the control block unchanged, so a probe it hits is a reentry
 * (nmissed), as test_kprobe_missed expects of Linux.
 *
 * Arming writes the breakpoint into the kernel image shared by every mm and flushes every
 * engine's translation cache; it happens in kernel threads, i.e. between guest runs.
 */
import { isRefusal, type PreparedInsn, type ProbeArch, type ProbeCpu } from '../../arch/probes.js';
import type { TrapAction } from '../../arch/types.js';
import { probeArchFor } from '../../arch/index.js';
import type { BreakpointHit, Machine } from '../kernel/machine.js';
import { UniprobeError } from '../errors.js';
import { KPROBE_LOCKS, Mutex, RcuHashTable, type ExecContext, type Kthread } from '../sync/index.js';
import { InsnSlotCache } from './insn-slots.js';
import { AggrKprobe, isAggr, Kprobe, KPROBE_FLAG, type HandlerCalls } from './kprobe.js';
import { ProbeRegs } from './regs.js';

export const EINVAL = 22;
export const ENOENT = 2;
export const EILSEQ = 84;
export const ENOMEM = 12;

/** KPROBE_HIT_* (kprobe_ctlblk.kprobe_status), Linux's values. */
export const KPROBE_STATUS = { NONE: 0, HIT_ACTIVE: 1, HIT_SS: 2, REENTER: 3, HIT_SSDONE: 4 } as const;

export const KPROBE_TABLE_SIZE = 64;
const KPROBE_HASH_BITS = 6n;

/** include/linux/hash.h: hash_64 / hash_32 with GOLDEN_RATIO_64 / _32 (facts, not code). */
function hashPtr(wordSize: number): (addr: bigint) => number {
  if (wordSize === 8) return (a) => Number(BigInt.asUintN(64, a * 0x61c8864680b583ebn) >> (64n - KPROBE_HASH_BITS));
  return (a) => Number(BigInt.asUintN(32, a * 0x61c88647n) >> (32n - KPROBE_HASH_BITS));
}

/** Per-vCPU state (current_kprobe + kprobe_ctlblk). */
interface Ctlblk {
  status: number;
  current: Kprobe | undefined;
  prev: { kp: Kprobe | undefined; status: number } | undefined;
  /** The probe being single-stepped, its slot and the address of the slot's step trap. */
  stepping: Kprobe | undefined;
  stepSlot: bigint;
  stepTrap: bigint | undefined;
  hitPcAfter: bigint | undefined;
}

const newCtlblk = (): Ctlblk => ({ status: 0, current: undefined, prev: undefined, stepping: undefined, stepSlot: 0n, stepTrap: undefined, hitPcAfter: undefined });

export class Kprobes {
  readonly arch: ProbeArch;
  readonly table: RcuHashTable<bigint, Kprobe>;
  readonly mutex: Mutex;
  readonly textMutex: Mutex;
  readonly slots: InsnSlotCache;
  /** kprobes_all_disarmed (debugfs `enabled` = !this). */
  allDisarmed = false;
  private readonly registered = new Set<Kprobe>();
  private readonly armed = new Set<Kprobe>();
  private readonly ctl: Ctlblk[];
  /** Extra trap owners at fixed addresses (the kretprobe trampoline). */
  readonly trapHooks = new Map<bigint, (hit: BreakpointHit) => TrapAction | undefined>();

  constructor(readonly machine: Machine) {
    this.arch = probeArchFor(machine.arch);
    const world = machine.sync;
    // hash_ptr(addr, KPROBE_HASH_BITS), as Linux: the multiplicative golden-ratio hash of the
    // kernel's word size, top bits kept. (Kept in BigInt: Number() of a 64-bit kernel address
    // rounds away its low bits and would put every probe in one bucket.)
    this.table = new RcuHashTable(KPROBE_TABLE_SIZE, hashPtr(machine.arch.wordSize), world.lockdep);
    this.mutex = new Mutex(world.sched, KPROBE_LOCKS.kprobeMutex);
    this.textMutex = new Mutex(world.sched, KPROBE_LOCKS.textMutex);
    const k = machine.kernel;
    this.slots = new InsnSlotCache(world, { base: k.insnAreaBase, size: k.insnArea.size }, this.arch.slotSize, machine.arch.layout.pageSize);
    this.ctl = machine.cpus.map(() => newCtlblk());
    machine.breakpointHandlers.push((hit) => this.onBreakpoint(hit));
    machine.taskExitHooks.push((task) => {
      // A task killed mid-step (a fault in the slot): its vCPU's control block must not stay busy.
      if (task.pinnedCpu !== undefined) this.ctl[task.pinnedCpu] = newCtlblk();
    });
  }

  // --- registration (kernel-thread context) --------------------------------------------------

  /** register_kprobe: 0 or -errno (p.addr is written back, as Linux does). */
  async register(t: Kthread, p: Kprobe): Promise<number> {
    const where = this.resolve(p);
    if (typeof where === 'number') return where;
    if (this.registered.has(p)) return -EINVAL;
    p.addr = where.addr;
    p.flags &= KPROBE_FLAG.DISABLED;
    p.nmissed = 0;
    const unsafe = this.checkAddressSafe(where.addr);
    if (unsafe) return unsafe;
    await this.mutex.lock(t, 'register_kprobe');
    try {
      const old = this.getKprobe(t, where.addr, true);
      if (old) {
        const rc = await this.registerAggr(t, old, p);
        if (rc === 0) this.registered.add(p);
        return rc;
      }
      const rc = await this.prepare(t, p, where.funcStart);
      if (rc) return rc;
      p.node = this.table.bucket(where.addr).addHead(p);
      if (!p.disabled && !this.allDisarmed) await this.arm(t, p);
      this.registered.add(p);
      return 0;
    } finally {
      this.mutex.unlock(t);
    }
  }

  /** register_kprobes: all or nothing. */
  async registerBatch(t: Kthread, ps: Kprobe[]): Promise<number> {
    if (ps.length <= 0) return -EINVAL;
    for (let i = 0; i < ps.length; i++) {
      const rc = await this.register(t, ps[i]!);
      if (rc < 0) {
        if (i > 0) await this.unregisterBatch(t, ps.slice(0, i));
        return rc;
      }
    }
    return 0;
  }

  async unregister(t: Kthread, p: Kprobe): Promise<void> {
    await this.unregisterBatch(t, [p]);
  }

  /** unregister_kprobes: tops under kprobe_mutex, one synchronize_rcu, then bottoms. */
  async unregisterBatch(t: Kthread, ps: Kprobe[]): Promise<void> {
    if (ps.length <= 0) return;
    const bottoms: Array<() => Promise<void>> = [];
    await this.mutex.lock(t, 'unregister_kprobes');
    try {
      for (const p of ps) {
        if (!this.registered.has(p)) {
          p.addr = undefined;
          continue;
        }
        bottoms.push(await this.unregisterTop(t, p));
      }
    } finally {
      this.mutex.unlock(t);
    }
    if (!bottoms.length) return;
    // Another vCPU may be between get_kprobe() and the end of its step with this probe's slot.
    await this.machine.sync.rcu.synchronize(t, 'unregister_kprobes');
    for (const b of bottoms) await b();
  }

  /** disable_kprobe: 0 or -EINVAL (not registered). */
  async disable(t: Kthread, p: Kprobe): Promise<number> {
    await this.mutex.lock(t, 'disable_kprobe');
    try {
      if (!this.registered.has(p)) return -EINVAL;
      await this.disableInternal(t, p);
      return 0;
    } finally {
      this.mutex.unlock(t);
    }
  }

  /** enable_kprobe: 0, or -EINVAL when not registered or gone. */
  async enable(t: Kthread, p: Kprobe): Promise<number> {
    await this.mutex.lock(t, 'enable_kprobe');
    try {
      if (!this.registered.has(p) || p.gone) return -EINVAL;
      // enable_kprobe: a child of an aggregate is enabled by itself; the probe that owns the
      // breakpoint (the aggregate, or the lone probe) is armed if it was disabled.
      const owner = p.parent ?? p;
      if (owner !== p) p.flags &= ~KPROBE_FLAG.DISABLED;
      if (owner.disabled) {
        owner.flags &= ~KPROBE_FLAG.DISABLED;
        if (!this.allDisarmed) await this.arm(t, owner);
      }
      return 0;
    } finally {
      this.mutex.unlock(t);
    }
  }

  /** debugfs `enabled` = 1: arm every probe that is not disabled. */
  async armAll(t: Kthread): Promise<void> {
    await this.mutex.lock(t, 'arm_all_kprobes');
    try {
      this.allDisarmed = false;
      for (const p of this.owners()) if (!p.disabled) await this.arm(t, p);
    } finally {
      this.mutex.unlock(t);
    }
  }

  /** debugfs `enabled` = 0: disarm everything, per-probe flags untouched. */
  async disarmAll(t: Kthread): Promise<void> {
    await this.mutex.lock(t, 'disarm_all_kprobes');
    try {
      this.allDisarmed = true;
      for (const p of this.owners()) await this.disarm(t, p);
    } finally {
      this.mutex.unlock(t);
    }
  }

  isRegistered(p: Kprobe): boolean {
    return this.registered.has(p);
  }

  /** Is the breakpoint of this address in the text right now? */
  isArmed(addr: bigint): boolean {
    for (const p of this.armed) if (p.addr === addr) return true;
    return false;
  }

  // --- listings ------------------------------------------------------------------------------

  /** /sys/kernel/debug/kprobes/list: one line per user probe, aggregate children listed. */
  list(): string[] {
    const width = this.machine.arch.wordSize * 2;
    const lines: Array<{ addr: bigint; line: string }> = [];
    for (const owner of this.owners()) {
      for (const p of isAggr(owner) ? owner.children : [owner]) {
        const loc = this.machine.kernel.elf.symbolAt(p.addr!);
        const sym = loc ? `${loc.symbol.name}+0x${loc.offset.toString(16)}` : `0x${p.addr!.toString(16)}`;
        const type = p.kretprobe ? 'r' : 'k';
        const tags = p.gone ? '[GONE]' : p.disabled ? '[DISABLED]' : '';
        lines.push({ addr: p.addr!, line: `${p.addr!.toString(16).padStart(width, '0')}  ${type}  ${sym}    ${tags}` });
      }
    }
    return lines.sort((a, b) => (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : 0)).map((l) => l.line);
  }

  /** /sys/kernel/debug/kprobes/blacklist: `0xSTART-0xEND\tSYMBOL` for every blacklisted function. */
  blacklist(): string[] {
    const width = this.machine.arch.wordSize * 2;
    const out: string[] = [];
    const hex = (a: bigint) => `0x${a.toString(16).padStart(width, '0')}`;
    for (const f of this.machine.kernel.elf.functions()) {
      const start = f.codeAddress;
      if (this.blacklistReason(start) !== undefined) out.push(`${hex(start)}-${hex(start + f.size)}\t${f.name}`);
    }
    return out;
  }

  // --- internals: registration -----------------------------------------------------------------

  /** _kprobe_addr: exactly one of symbol/address; symbol+offset re-split into function+offset. */
  private resolve(p: Kprobe): { addr: bigint; funcStart: bigint } | number {
    if ((p.symbolName === undefined) === (p.addr === undefined)) return -EINVAL;
    let addr: bigint;
    if (p.symbolName !== undefined) {
      // kallsyms knows data symbols too: such a probe is found, then refused as not text.
      const sym = this.machine.kernel.symbol(p.symbolName) ?? this.machine.kernel.elf.symbolByName(p.symbolName);
      if (!sym) return -ENOENT;
      // ppc64 ELFv2: kprobe_lookup_name gives the local entry point (after the TOC setup).
      addr = (sym.localEntry ?? sym.codeAddress) + BigInt(p.offset);
    } else addr = p.addr! + BigInt(p.offset);
    // Outside every function: not kernel text a probe may go to (check_kprobe_address_safe).
    const loc = this.machine.kernel.elf.symbolAt(addr);
    if (!loc) return -EINVAL;
    return { addr, funcStart: loc.symbol.codeAddress };
  }

  /** check_kprobe_address_safe: kernel text, not blacklisted. */
  private checkAddressSafe(addr: bigint): number {
    if (!this.machine.kernel.isText(addr)) return -EINVAL;
    if (this.blacklistReason(addr) !== undefined) return -EINVAL;
    return 0;
  }

  /** Why `addr` may not be probed (NOKPROBE / entry text / arch ranges), or undefined. */
  blacklistReason(addr: bigint): string | undefined {
    const k = this.machine.kernel;
    for (const r of k.blacklist) if (addr >= r.start && addr < r.end) return r.why;
    for (const [s, e] of this.arch.blacklistRanges ?? []) {
      const a = k.symbol(s)?.value;
      const b = k.symbol(e)?.value;
      if (a !== undefined && b !== undefined && addr >= a && addr < b) return `${s}..${e}`;
    }
    return undefined;
  }

  /** Original text (never the breakpoints): the kernel ELF's bytes. */
  private originalText(addr: bigint, len: number): Uint8Array {
    const k = this.machine.kernel;
    const n = Math.max(0, Math.min(len, Number(k.textEnd - addr)));
    return k.elf.textBytesAt(addr, n);
  }

  /** prepare_kprobe → arch_prepare_kprobe + slot. */
  private async prepare(t: Kthread, p: Kprobe, funcStart: bigint): Promise<number> {
    const addr = p.addr!;
    if (!this.arch.isInsnBoundary((a, n) => this.originalText(a, n), funcStart, addr)) return -EILSEQ;
    const r = await this.prepareInsn(t, addr, !!p.postHandler);
    if (typeof r === 'number') return r;
    p.opcode = this.originalText(addr, this.arch.breakpoint.length);
    p.ainsn = r;
    return 0;
  }

  private async prepareInsn(t: Kthread, addr: bigint, hasPostHandler: boolean): Promise<{ prep: PreparedInsn; slot: bigint | undefined } | number> {
    const prep = this.arch.prepareKprobe(addr, this.originalText(addr, this.arch.maxInsnLength), { hasPostHandler });
    if (isRefusal(prep)) return -prep.errno;
    if (prep.mode === 'emulate') return { prep, slot: undefined };
    const slot = await this.slots.get(t);
    const refused = prep.slotRefusal?.(slot);
    if (refused) {
      await this.slots.free(t, slot, false);
      return -refused.errno;
    }
    await this.textMutex.lock(t, 'arch_prepare_kprobe');
    try {
      this.machine.patchKernelText(slot, prep.slotBytes(slot));
    } finally {
      this.textMutex.unlock(t);
    }
    return { prep, slot };
  }

  /** register_aggr_kprobe: the second probe at an address. */
  private async registerAggr(t: Kthread, old: Kprobe, p: Kprobe): Promise<number> {
    let ap: AggrKprobe;
    if (isAggr(old)) ap = old;
    else {
      ap = new AggrKprobe();
      ap.addr = old.addr;
      ap.opcode = old.opcode;
      ap.ainsn = old.ainsn;
      ap.flags = old.flags & KPROBE_FLAG.DISABLED;
      ap.children = [old];
      old.parent = ap;
      ap.node = this.table.bucket(ap.addr!).replace(old.node!, ap);
      old.node = undefined;
      if (this.armed.delete(old)) this.armed.add(ap);
    }
    // A post handler needs the step trap: a boosted copy must become a stepped one (new slot;
    // the old one may still be executed by a vCPU, so it is freed dirty).
    if (p.postHandler && ap.ainsn!.prep.mode === 'boost') {
      const r = await this.prepareInsn(t, ap.addr!, true);
      if (typeof r === 'number') return r;
      const oldSlot = ap.ainsn!.slot;
      ap.ainsn = r;
      for (const c of ap.children) c.ainsn = r;
      if (oldSlot !== undefined) await this.slots.free(t, oldSlot, true);
    }
    p.opcode = ap.opcode;
    p.ainsn = ap.ainsn;
    p.parent = ap;
    ap.children = [...ap.children, p];
    if (ap.disabled && !p.disabled) {
      ap.flags &= ~KPROBE_FLAG.DISABLED;
      if (!this.allDisarmed) await this.arm(t, ap);
    }
    return 0;
  }

  private async disableInternal(t: Kthread, p: Kprobe): Promise<void> {
    p.flags |= KPROBE_FLAG.DISABLED;
    const owner = p.parent ?? p;
    if (p.parent && !p.parent.children.every((c) => c.disabled)) return;
    owner.flags |= KPROBE_FLAG.DISABLED;
    await this.disarm(t, owner);
  }

  /** __unregister_kprobe_top; returns the bottom half to run after the grace period. */
  private async unregisterTop(t: Kthread, p: Kprobe): Promise<() => Promise<void>> {
    await this.disableInternal(t, p);
    this.registered.delete(p);
    const ap = p.parent;
    if (!ap) {
      this.table.bucket(p.addr!).del(p.node!);
      p.node = undefined;
      return () => this.freeInsn(t, p);
    }
    ap.children = ap.children.filter((c) => c !== p);
    p.parent = undefined;
    if (ap.children.length > 0) return async () => undefined;
    this.table.bucket(ap.addr!).del(ap.node!);
    ap.node = undefined;
    return () => this.freeInsn(t, ap);
  }

  /** arch_remove_kprobe: a boosted slot may be executing without any pin → free it dirty. */
  private async freeInsn(t: Kthread, p: Kprobe): Promise<void> {
    const a = p.ainsn;
    if (a?.slot !== undefined) await this.slots.free(t, a.slot, a.prep.mode === 'boost');
  }

  private async arm(t: Kthread, p: Kprobe): Promise<void> {
    if (this.armed.has(p)) return;
    await this.textMutex.lock(t, 'arch_arm_kprobe');
    try {
      this.machine.patchKernelText(p.addr!, this.arch.breakpoint);
      this.armed.add(p);
    } finally {
      this.textMutex.unlock(t);
    }
  }

  private async disarm(t: Kthread, p: Kprobe): Promise<void> {
    if (!this.armed.has(p)) return;
    await this.textMutex.lock(t, 'arch_disarm_kprobe');
    try {
      this.machine.patchKernelText(p.addr!, p.opcode!);
      this.armed.delete(p);
    } finally {
      this.textMutex.unlock(t);
    }
  }

  /** Table owners (lone probes and aggregates). */
  private *owners(): Generator<Kprobe> {
    yield* this.table.all();
  }

  /** get_kprobe: under RCU (trap path) or kprobe_mutex (writers). */
  private getKprobe(ctx: ExecContext, addr: bigint, writer = false): Kprobe | undefined {
    for (const p of this.table.walk(ctx, addr, writer, 'get_kprobe')) if (p.addr === addr) return p;
    return undefined;
  }

  // --- the trap path (inside a guest run; atomic) ------------------------------------------------
  //
  // trap → lookup → pre handlers → emulate | boost | step → (step trap) fixup → post handlers →
  // resume. Every stage returns the TrapAction that resumes the vCPU. A handler that calls a
  // guest kernel function suspends its stage at that point (runHandlers): the call runs on the
  // vCPU and the stage goes on from the call's return with the same control block, so the
  // remaining stages read the same either way.

  private onBreakpoint(hit: BreakpointHit): TrapAction | undefined {
    return this.guarded(hit, () => this.handleBreakpoint(hit));
  }

  /**
   * A handler that throws: the trap context is unwound (control block reset, read-side section
   * left) before the error leaves the run, so the vCPU is not left "inside a probe"; the machine
   * kills the task. The probe stays registered, and unregistering it works as usual. The same
   * holds for a handler that throws after a kernel call it made returned.
   */
  private guarded<T>(hit: BreakpointHit, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      // Name the probe, not the trap: a post handler runs at the step trap in the slot.
      const kcb = this.ctl[hit.cpu]!;
      const at = kcb.current?.addr ?? hit.addr;
      Object.assign(kcb, newCtlblk());
      while (hit.task.kctx.rcuDepth > 0) this.machine.sync.rcu.readUnlock(hit.task.kctx);
      const why = e instanceof Error ? e.message : String(e);
      throw new UniprobeError('PROBE', `kprobe handler at ${this.machine.kernelSymbolize(at)} threw: ${why}`, { cause: e });
    }
  }

  private handleBreakpoint(hit: BreakpointHit): TrapAction | undefined {
    const kcb = this.ctl[hit.cpu]!;
    if (kcb.stepTrap !== undefined && hit.addr === kcb.stepTrap) return this.stepDone(hit, kcb);
    const hook = this.trapHooks.get(hit.addr);
    if (hook) return hook(hit);
    const k = this.machine.kernel;
    if (!k.isText(hit.addr)) return undefined;
    const ctx = hit.task.kctx;
    const rcu = this.machine.sync.rcu;
    rcu.readLock(ctx);
    const p = this.getKprobe(ctx, hit.addr);
    if (!p) {
      rcu.readUnlock(ctx);
      // Not ours — unless a racing unregister removed it after the trap: the breakpoint is gone
      // from the text, so just run the original instruction (Linux returns "handled").
      const now = this.machine.readKernelText(hit.addr, this.arch.breakpoint.length);
      if (!now.every((b, i) => b === this.arch.breakpoint[i])) return { pc: hit.addr };
      return undefined;
    }
    const regs = new ProbeRegs(this.machine.arch, hit.engine, hit.mem, hit.task, hit.cpu, hit.addr);
    if (kcb.current) {
      // reenter_kprobe: a hit while a handler runs (also inside a kernel function the handler
      // called) or while stepping is missed, never nested; the instruction still runs.
      if (kcb.status === KPROBE_STATUS.REENTER) {
        rcu.readUnlock(ctx);
        throw new Error(`Unrecoverable kprobe detected at 0x${hit.addr.toString(16)} (re-entered while re-entering)`);
      }
      this.incMissed(p);
      kcb.prev = { kp: kcb.current, status: kcb.status };
      kcb.current = p;
      kcb.status = KPROBE_STATUS.REENTER;
      return this.setupStep(hit, kcb, p, regs, true);
    }
    kcb.current = p;
    kcb.status = KPROBE_STATUS.HIT_ACTIVE;
    return this.runHandlers(hit, this.preChain(p, regs), (redirected) => {
      if (redirected === 0) return this.setupStep(hit, kcb, p, regs, false);
      // The handler redirected the PC: no step, no post handler.
      kcb.current = undefined;
      kcb.status = KPROBE_STATUS.NONE;
      rcu.readUnlock(ctx);
      return { pc: this.machine.arch.getPc(hit.engine) };
    });
  }

  private setupStep(hit: BreakpointHit, kcb: Ctlblk, p: Kprobe, regs: ProbeRegs, reenter: boolean): TrapAction {
    const { prep, slot } = p.ainsn!;
    const cpu: ProbeCpu = { engine: hit.engine, mem: hit.mem, pcAfter: hit.pcAfter };
    const pcNow = (): bigint => this.machine.arch.getPc(hit.engine);
    if (prep.mode === 'emulate') {
      prep.emulate!(cpu);
      return this.finishHit(hit, kcb, p, regs, reenter, pcNow);
    }
    if (prep.mode === 'boost') {
      // Boosted: the slot jumps back by itself; nothing pins the vCPU while it runs (hence the
      // dirty free of boosted slots). A boosted probe has no post handler.
      return this.finishHit(hit, kcb, p, regs, reenter, () => slot!);
    }
    kcb.stepping = p;
    kcb.stepSlot = slot!;
    kcb.stepTrap = slot! + BigInt(prep.stepTrapOffset!);
    kcb.hitPcAfter = hit.pcAfter;
    if (!reenter) kcb.status = KPROBE_STATUS.HIT_SS;
    // Tests may force a switch between the trap and the step: the run ends with the PC on the
    // slot; the task stays pinned (atomic) and resumes there.
    if (this.machine.sync.sched.forcedSwitch('kprobe:before-step', hit.task.kctx)) return { pc: slot!, stop: true };
    return { pc: slot! };
  }

  private stepDone(hit: BreakpointHit, kcb: Ctlblk): TrapAction {
    const p = kcb.stepping!;
    const reenter = kcb.status === KPROBE_STATUS.REENTER;
    const cpu: ProbeCpu = { engine: hit.engine, mem: hit.mem, pcAfter: hit.pcAfter };
    p.ainsn!.prep.postStep?.(cpu, kcb.stepSlot, kcb.hitPcAfter);
    kcb.stepping = undefined;
    kcb.stepTrap = undefined;
    kcb.hitPcAfter = undefined;
    const regs = new ProbeRegs(this.machine.arch, hit.engine, hit.mem, hit.task, hit.cpu, p.addr!);
    return this.finishHit(hit, kcb, p, regs, reenter, () => this.machine.arch.getPc(hit.engine));
  }

  /**
   * After the instruction ran: post handlers (not when re-entering), then the previous state,
   * the end of the read-side section, and on to `resumeAt()`.
   */
  private finishHit(hit: BreakpointHit, kcb: Ctlblk, p: Kprobe, regs: ProbeRegs, reenter: boolean, resumeAt: () => bigint): TrapAction {
    const leave = (): TrapAction => {
      this.machine.sync.rcu.readUnlock(hit.task.kctx);
      return { pc: resumeAt() };
    };
    if (reenter) {
      kcb.current = kcb.prev?.kp;
      kcb.status = kcb.prev?.status ?? KPROBE_STATUS.NONE;
      kcb.prev = undefined;
      return leave();
    }
    kcb.status = KPROBE_STATUS.HIT_SSDONE;
    return this.runHandlers(hit, this.postChain(p, regs), () => {
      kcb.current = undefined;
      kcb.status = KPROBE_STATUS.NONE;
      return leave();
    });
  }

  /**
   * Run a handler chain to its end, then `then(result)`. Where a handler yields a kernel call,
   * the call runs on this vCPU first (Machine.callFromTrap: on the kernel stack below the
   * trapped frame, registers saved and put back) with the control block untouched, and the
   * chain goes on with the call's return value.
   */
  private runHandlers<T>(hit: BreakpointHit, chain: HandlerCalls<T>, then: (result: T) => TrapAction, input = 0n): TrapAction {
    const step = chain.next(input);
    if (step.done) return then(step.value);
    const call = step.value;
    const fn = typeof call.fn === 'string' ? this.machine.kernel.symbol(call.fn)?.codeAddress : call.fn;
    if (fn === undefined || !this.machine.kernel.isText(fn)) throw new Error(`the handler called ${String(call.fn)}, which is not a kernel function`);
    return this.machine.callFromTrap(hit.task, fn, [...call.args], (ret) => this.guarded(hit, () => this.runHandlers(hit, chain, then, ret)));
  }

  /** aggr_pre_handler or the lone probe's: the first non-zero return stops the chain. */
  private *preChain(p: Kprobe, regs: ProbeRegs): HandlerCalls<number> {
    for (const c of isAggr(p) ? p.children : [p]) {
      if (c.disabled) continue;
      c.nhit++;
      if (!c.preHandler) continue;
      const r = c.preHandler(c, regs);
      if ((typeof r === 'number' ? r : yield* r) !== 0) return 1;
    }
    return 0;
  }

  /**
   * aggr_post_handler skips disabled children; a lone probe's post handler always runs once its
   * pre handler did (kprobe_post_process), even when the probe was disabled or unregistered
   * between the trap and the end of the step.
   */
  private *postChain(p: Kprobe, regs: ProbeRegs): HandlerCalls<void> {
    for (const c of isAggr(p) ? p.children : [p]) {
      if (!c.postHandler || (c !== p && c.disabled)) continue;
      const r = c.postHandler(c, regs, 0);
      if (r) yield* r;
    }
  }

  /** kprobes_inc_nmissed_count: an aggregate counts on every child. */
  private incMissed(p: Kprobe): void {
    if (isAggr(p)) for (const c of p.children) c.nmissed++;
    else p.nmissed++;
  }
}
