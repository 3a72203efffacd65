/**
 * The generic kprobes core (kernel/kprobes.c): the 64-bucket hash table (table.ts), kprobe_mutex
 * and text_mutex for writers, aggregation, enable/disable, the global switch, batch
 * register/unregister with one grace period, the listing and the blacklist. The hit path is
 * trap.ts: an RCU reader from the trap to the end of the step, which unregister's
 * synchronize_rcu waits for before a slot is freed (seed 003). A handler may call guest kernel
 * functions (HandlerCalls): a probe such a call hits is a reentry (nmissed), as
 * test_kprobe_missed expects of Linux.
 *
 * Arming writes the breakpoint into the kernel image shared by every mm and flushes every
 * engine's translation cache; it happens in kernel threads, i.e. between guest runs.
 */
import { E } from '../kernel/errno.js';
import { isRefusal, type ProbeArch } from '../../arch/probes.js';
import type { TrapAction } from '../../arch/types.js';
import { probeArchFor } from '../../arch/index.js';
// Decoding is synchronous and needs Capstone loaded: this module's users get it at import.
import '../../arch/decoders-ready.js';
import type { BreakpointHit, Machine } from '../kernel/machine.js';
import { KPROBE_LOCKS, Mutex, type Kthread } from '../sync/index.js';
import { InsnSlotCache } from './insn-slots.js';
import { AggrKprobe, isAggr, Kprobe, KPROBE_FLAG, makeAinsn, type Ainsn } from './kprobe.js';
import { cacheHitRegisters } from '../regs/probe-regs.js';
import { KprobeTable } from './table.js';
import { blacklistReason, checkAddressSafe, checkBoundary, functionBounds, originalText, resolveKprobeAddr, type KprobeSite } from './checks.js';
import { DETOUR_AREA_SIZE, KprobeOptimizer } from './optimizer.js';
import type { OptFunction } from '../../arch/probes.js';
import { KprobeTrapPath } from './trap.js';

export { KPROBE_TABLE_SIZE } from './table.js';
export { KPROBE_STATUS } from './trap.js';

export const { EINVAL, ENOENT, EILSEQ, ENOMEM } = E;

/**
 * The default of debug.kprobes-optimization for a new core: on, as in Linux, unless the
 * environment says UNIPROBE_KPROBES_OPTIMIZATION=0 (the test helpers run the kprobe suites both
 * ways with it).
 */
export function kprobesOptimizationDefault(): boolean {
  return process.env.UNIPROBE_KPROBES_OPTIMIZATION !== '0';
}

export interface KprobesOptions {
  /** debug.kprobes-optimization: jump-optimize probes that can be (default: on, see above). */
  optimization?: boolean;
}

export class Kprobes {
  readonly arch: ProbeArch;
  readonly table: KprobeTable;
  readonly mutex: Mutex;
  readonly textMutex: Mutex;
  readonly slots: InsnSlotCache;
  /** The hit path (trap.ts). */
  readonly trap: KprobeTrapPath;
  /**
   * Historical variant of the unregister path (seed 003): 'fixed' is mainline (free after the
   * grace period); 'old' is 2.6.15's order, the slot freed before synchronize_sched and one
   * grace period per probe (there was no batch API). Only the seed scenario sets 'old'.
   */
  policy: { unregister: 'fixed' | 'old' } = { unregister: 'fixed' };
  /** kprobes_all_disarmed (debugfs `enabled` = !this). */
  allDisarmed = false;
  private readonly registered = new Set<Kprobe>();
  private readonly armed = new Set<Kprobe>();
  /** Extra trap owners at fixed addresses (the kretprobe trampoline). */
  readonly trapHooks = new Map<bigint, (hit: BreakpointHit) => TrapAction | undefined>();
  /** The delayed optimizer (optprobes). */
  readonly optimizer: KprobeOptimizer;

  constructor(
    readonly machine: Machine,
    opts: KprobesOptions = {},
  ) {
    this.arch = probeArchFor(machine.arch);
    const world = machine.sync;
    this.table = new KprobeTable(machine.arch.wordSize, world.lockdep);
    this.mutex = new Mutex(world.sched, KPROBE_LOCKS.kprobeMutex);
    this.textMutex = new Mutex(world.sched, KPROBE_LOCKS.textMutex);
    const k = machine.kernel;
    const poison = this.arch.slotPoison;
    // The top of the insn area holds the optimizer's detour buffers.
    this.slots = new InsnSlotCache(world, { base: k.insnAreaBase, size: k.insnArea.size - DETOUR_AREA_SIZE }, this.arch.slotSize, machine.arch.layout.pageSize, (slot) =>
      machine.patchKernelText(slot, poison),
    );
    this.trap = new KprobeTrapPath(this);
    this.optimizer = new KprobeOptimizer(this, opts.optimization ?? kprobesOptimizationDefault());
    machine.breakpointHandlers.push((hit) => this.trap.onBreakpoint(hit));
    // After the trap path: a trap in a freed slot is recorded as a use after free (insn-slots.ts).
    machine.breakpointHandlers.push((hit) => void this.slots.noteTrap(hit.addr, hit.cpu, hit.task));
    // A task killed mid-step (a fault in the slot): its vCPU's control block must not stay busy.
    machine.taskExitHooks.push((task) => this.trap.taskExit(task));
    // Every engine serves a hit's registers from one batched read and one batched write.
    cacheHitRegisters(machine, this.arch.hitRegisters);
  }

  // --- registration (kernel-thread context) --------------------------------------------------

  /** register_kprobe: 0 or -errno (p.addr is written back, as Linux does). */
  async register(t: Kthread, p: Kprobe): Promise<number> {
    // The checks the placement map runs too (checks.ts), in register_kprobe's order.
    const where = resolveKprobeAddr(this.machine.kernel, p);
    if (isRefusal(where)) return -where.errno;
    if (this.registered.has(p)) return -EINVAL;
    p.addr = where.addr;
    p.flags &= KPROBE_FLAG.DISABLED;
    p.nmissed = 0;
    const unsafe = checkAddressSafe(this.machine.kernel, this.arch, where.addr);
    if (unsafe) return -unsafe.errno;
    await this.mutex.lock(t, 'register_kprobe');
    try {
      const old = this.table.walk(t, where.addr, true);
      if (old) {
        const rc = await this.registerAggr(t, old, p);
        if (rc === 0) this.registered.add(p);
        return rc;
      }
      const rc = await this.prepare(t, p, where);
      if (rc) return rc;
      this.table.add(p);
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
    if (this.policy.unregister === 'old') return this.unregisterOld(t, ps);
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

  /**
   * Seed 003's '-' lines (2.6.15 unregister_kprobe): unlink under the lock, free the slot
   * (arch_remove_kprobe) at once, and only then wait for the grace period — a CPU still between
   * its trap and the end of its step runs a freed (here: poisoned) slot.
   */
  private async unregisterOld(t: Kthread, ps: Kprobe[]): Promise<void> {
    for (const p of ps) {
      if (!this.registered.has(p)) continue;
      await this.mutex.lock(t, 'unregister_kprobe');
      let bottom: () => Promise<void>;
      try {
        bottom = await this.unregisterTop(t, p);
      } finally {
        this.mutex.unlock(t);
      }
      await bottom();
      await this.machine.sync.rcu.synchronize(t, 'unregister_kprobe');
    }
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
        // Tags as Linux concatenates them; OPTIMIZED is the owner's (the aggregate's).
        const tags = (p.gone ? '[GONE]' : p.disabled ? '[DISABLED]' : '') + (this.optimizer.isOptimized(owner.addr!) ? '[OPTIMIZED]' : '');
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

  /** Why `addr` may not be probed (NOKPROBE / entry text / arch ranges), or undefined. */
  blacklistReason(addr: bigint): string | undefined {
    return blacklistReason(this.machine.kernel, this.arch, addr);
  }

  /** @internal Original text (never breakpoints or jumps): the kernel ELF's bytes. */
  originalText(addr: bigint, len: number): Uint8Array {
    return originalText(this.machine.kernel, addr, len);
  }

  /** @internal The table's owner at `addr` (kprobe_mutex held). */
  ownerAt(t: Kthread, addr: bigint): Kprobe | undefined {
    return this.table.walk(t, addr, true);
  }

  /** @internal The bounds of the kernel function containing `addr` (kallsyms_lookup_size_offset). */
  functionBounds(addr: bigint): OptFunction | undefined {
    return functionBounds(this.machine.kernel, addr);
  }

  /** sysctl debug.kprobes-optimization: optimize every armed probe, or unoptimize them all. */
  async setOptimization(t: Kthread, on: boolean): Promise<void> {
    await this.mutex.lock(t, 'proc_kprobes_optimization_handler');
    try {
      await this.optimizer.setAllowed(t, on, [...this.owners()].filter((p) => this.armed.has(p)));
    } finally {
      this.mutex.unlock(t);
    }
  }

  /** prepare_kprobe → arch_prepare_kprobe + slot. */
  private async prepare(t: Kthread, p: Kprobe, site: KprobeSite): Promise<number> {
    const addr = p.addr!;
    const mid = checkBoundary(this.machine.kernel, this.arch, site);
    if (mid) return -mid.errno;
    const r = await this.prepareInsn(t, addr, !!p.postHandler);
    if (typeof r === 'number') return r;
    p.opcode = this.originalText(addr, this.arch.breakpoint.length);
    p.ainsn = r;
    return 0;
  }

  private async prepareInsn(t: Kthread, addr: bigint, hasPostHandler: boolean): Promise<Ainsn | number> {
    const prep = this.arch.prepareKprobe(addr, this.originalText(addr, this.arch.maxInsnLength), { hasPostHandler });
    if (isRefusal(prep)) return -prep.errno;
    if (prep.mode === 'emulate') return makeAinsn(prep, undefined, undefined, undefined);
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
    // Where the step ends, decided once: the hit only compares against it.
    const stepTrap = prep.mode === 'step' ? slot + BigInt(prep.stepTrapOffset!) : undefined;
    const native = this.arch.nativeStepTrap;
    const nativePcAt = stepTrap !== undefined && native && prep.plainStepResume !== undefined ? stepTrap + BigInt(native.pcAfterTrap) : undefined;
    return makeAinsn(prep, slot, stepTrap, nativePcAt);
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
      this.table.replace(old, ap);
      if (this.armed.delete(old)) this.armed.add(ap);
    }
    // A post handler needs the step trap: an optimized aggregate is unoptimized at once (Linux's
    // forced unoptimization in register_aggr_kprobe), and a boosted copy must become a stepped
    // one (new slot; the old one may still be executed by a vCPU, so it is freed dirty).
    if (p.postHandler) await this.optimizer.unoptimize(t, ap.addr!);
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
    } else if (this.armed.has(ap)) this.optimizer.kick(t, ap.addr!);
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
      this.table.del(p);
      return () => this.freeInsn(t, p);
    }
    ap.children = ap.children.filter((c) => c !== p);
    p.parent = undefined;
    if (ap.children.length > 0) {
      // The child that left may have been what kept the aggregate from being optimized.
      if (this.armed.has(ap)) this.optimizer.kick(t, ap.addr!);
      return async () => undefined;
    }
    this.table.del(ap);
    return () => this.freeInsn(t, ap);
  }

  /** arch_remove_kprobe: a boosted slot may be executing without any pin → free it dirty. */
  private async freeInsn(t: Kthread, p: Kprobe): Promise<void> {
    const a = p.ainsn;
    if (a?.slot !== undefined) await this.slots.free(t, a.slot, a.prep.mode === 'boost');
  }

  private async arm(t: Kthread, p: Kprobe): Promise<void> {
    if (this.armed.has(p)) return;
    // A breakpoint inside the bytes an optimized probe's jump replaced: that one goes back first.
    await this.optimizer.beforeArm(t, p.addr!);
    await this.textMutex.lock(t, 'arch_arm_kprobe');
    try {
      this.machine.patchKernelText(p.addr!, this.arch.breakpoint);
      this.armed.add(p);
    } finally {
      this.textMutex.unlock(t);
    }
    this.optimizer.kick(t, p.addr!);
  }

  private async disarm(t: Kthread, p: Kprobe): Promise<void> {
    if (!this.armed.has(p)) return;
    // The jump goes first: the breakpoint and the original bytes come back, then the breakpoint goes.
    await this.optimizer.unoptimize(t, p.addr!);
    await this.textMutex.lock(t, 'arch_disarm_kprobe');
    try {
      this.machine.patchKernelText(p.addr!, p.opcode!);
      this.armed.delete(p);
    } finally {
      this.textMutex.unlock(t);
    }
    this.optimizer.afterDisarm(t, p.addr!);
  }

  /** Table owners (lone probes and aggregates). */
  private *owners(): Generator<Kprobe> {
    yield* this.table.all();
  }

  /** kprobes_inc_nmissed_count: an aggregate counts on every child. */
  /** @internal */
  incMissed(p: Kprobe): void {
    if (isAggr(p)) for (const c of p.children) c.nmissed++;
    else p.nmissed++;
  }
}
