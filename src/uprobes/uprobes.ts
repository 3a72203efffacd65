/**
 * The generic uprobes core (kernel/events/uprobes.c): the (inode, offset) tree, consumers,
 * registration across every mm that maps the file, the mmap/fork/exit hooks, breakpoint writes
 * into per-mm copies of the page, USDT reference counters, and the per-mm XOL area.
 * The hit path lives in trap.ts.
 *
 * Lock order (mainline, reference §1.11; lockdep checks it):
 *   register:  uprobe->register_rwsem (write) → dup_mmap_sem (write) → i_mmap_rwsem (read, only
 *              while collecting the VMAs, never while touching an mm) → mmap_lock (write)
 *   mmap path: mmap_lock (write, held by the caller) → uprobes_mmap_mutex[hash] → treelock
 *   fork:      dup_mmap_sem (read) inside mmap_lock (the machine's mapping-syscall path)
 * Registration runs in kernel threads (it sleeps); the mmap hook runs synchronously inside the
 * mapping system call, which already holds mmap_lock, and never sleeps.
 */
import type { UprobeArch } from '../../arch/probes.js';
import { isRefusal } from '../../arch/probes.js';
import { uprobeArchFor } from '../../arch/index.js';
// Decoding is synchronous and needs Capstone loaded: this module's users get it at import.
import '../../arch/decoders-ready.js';
import type { Machine } from '../kernel/machine.js';
import type { Task } from '../kernel/task.js';
import type { Inode } from '../mm/inode.js';
import type { Mm } from '../mm/mm.js';
import { PROT, type Vma } from '../mm/vma.js';
import { Mutex, RwSem, SpinLock, UPROBE_LOCKS, newContext, type ExecContext, type Kthread } from '../sync/index.js';
import { UprobeTree } from './tree.js';
import { EAGAIN, EINVAL, EIO, ENOTSUPP, Uprobe, type UprobeConsumer } from './uprobe.js';
import { Utask } from './utask.js';
import { XolArea } from './xol.js';
import { UprobeTrapPath } from './trap.js';
import { cacheHitRegisters } from '../regs/probe-regs.js';

/** Per-mm uprobes state (Linux keeps it in mm->uprobes_state and mm->flags). */
export interface MmUprobes {
  /** MMF_HAS_UPROBES: set before the first breakpoint is written, so a trap is claimed at once. */
  hasUprobes: boolean;
  xol: XolArea | undefined;
  /** delayed_uprobe_list entries of this mm: counters to raise once their data VMA is mapped. */
  readonly delayed: Set<Uprobe>;
}

/** Hash buckets of uprobes_mmap_mutex (UPROBES_HASH_SZ). */
const UPROBES_HASH_SZ = 13;

const FORK_SYSCALLS = new Set(['clone', 'fork', 'vfork']);

export class Uprobes {
  readonly arch: UprobeArch;
  readonly tree = new UprobeTree();
  readonly treelock: SpinLock;
  readonly dupMmapSem: RwSem;
  private readonly mmapMutex: Mutex[];
  private readonly mmState = new WeakMap<Mm, MmUprobes>();
  /** Used for the mmap hook when no mapping context is set (host code mapping directly). */
  private readonly hostCtx: ExecContext = newContext('uprobe_mmap (host)', true);
  readonly trap: UprobeTrapPath;
  /** Warnings Linux prints (ref_ctr underflow, unable to set uretprobe, nestedness limit…). */
  readonly warnings: string[] = [];
  /**
   * Historical variant of registration (seed 001): 'fixed' is mainline (the VMAs collected under
   * i_mmap_rwsem, each mm touched after it is dropped); 'old' is the code the 2011 proposal was
   * written against: install/remove while walking the rmap under its lock, taking each mm's
   * mmap_lock and allocating the COW page inside it. Only the seed scenario sets 'old'.
   */
  policy: { register: 'fixed' | 'old' } = { register: 'fixed' };

  constructor(readonly machine: Machine) {
    this.arch = uprobeArchFor(machine.arch);
    const sched = machine.sync.sched;
    this.treelock = new SpinLock(sched, UPROBE_LOCKS.treelock);
    this.dupMmapSem = new RwSem(sched, UPROBE_LOCKS.dupMmapSem);
    this.mmapMutex = Array.from({ length: UPROBES_HASH_SZ }, () => new Mutex(sched, UPROBE_LOCKS.uprobesMmapMutex));
    this.trap = new UprobeTrapPath(this);
    // Kprobes come first in the chain (Linux's uprobes notifier has a lower priority).
    machine.breakpointHandlers.push((hit) => this.trap.onBreakpoint(hit));
    const attach = (mm: Mm): void => void mm.mapHooks.push((vma) => this.onMmap(mm, vma));
    machine.mmAttachHooks.push(attach);
    for (const mm of new Set(machine.processes.filter((p) => !p.zombie).map((p) => p.mm))) attach(mm);
    machine.forkHooks.push((parent, child) => this.onFork(parent, child));
    machine.taskExitHooks.push((task) => this.freeUtask(task));
    machine.faultFixups.push((task, pc) => this.abortXol(task, pc));
    // uprobe_deny_signal: no signal is delivered while the task steps in its XOL slot.
    machine.signalHoldHooks.push((task) => task.utask instanceof Utask && task.utask.state === 'sstep');
    // Every engine serves a hit's registers from one batched read and one batched write.
    cacheHitRegisters(machine, this.arch.hitRegisters);
    // dup_mmap runs under dup_mmap_sem (read): no registration walks while an mm is copied.
    machine.mappingLockHooks.push({
      tryLock: (ctx, name) => !FORK_SYSCALLS.has(name) || this.dupMmapSem.tryDownRead(ctx, 'dup_mmap'),
      unlock: (ctx, name) => {
        if (FORK_SYSCALLS.has(name)) this.dupMmapSem.upRead(ctx, 'dup_mmap');
      },
    });
  }

  // --- per-mm and per-task state -----------------------------------------------------------------

  state(mm: Mm): MmUprobes {
    let s = this.mmState.get(mm);
    if (!s) this.mmState.set(mm, (s = { hasUprobes: false, xol: undefined, delayed: new Set() }));
    return s;
  }

  stateIf(mm: Mm): MmUprobes | undefined {
    return this.mmState.get(mm);
  }

  utask(task: Task): Utask {
    if (!(task.utask instanceof Utask)) task.utask = new Utask();
    return task.utask as Utask;
  }

  // --- registration (kernel-thread context) ----------------------------------------------------

  /**
   * uprobe_register (v5.8 shape): 0 or -errno. The consumer gets the breakpoint installed in every
   * mm that maps the file now (and, through the mmap hook, in every mm that maps it later) whose
   * mm its filter accepts.
   */
  async register(t: Kthread, inode: Inode, offset: bigint, uc: UprobeConsumer, refCtrOffset?: bigint): Promise<number> {
    if (!uc.handler && !uc.retHandler) return -EINVAL;
    if (offset < 0n || offset > BigInt(inode.size)) return -EINVAL;
    if (offset % BigInt(this.arch.swbp.length) !== 0n) return -EINVAL;
    if (refCtrOffset !== undefined && (refCtrOffset < 0n || refCtrOffset % 2n !== 0n)) return -EINVAL;
    for (;;) {
      const u = await this.allocUprobe(t, inode, offset, refCtrOffset);
      if (typeof u === 'number') return u;
      await u.registerRwsem.downWrite(t, 'uprobe_register');
      let ret = -EAGAIN;
      // Deleted by a racing unregister after we found it: start again with a fresh node.
      if (u.active) {
        await this.consumerAdd(t, u, uc);
        ret = await this.registerForEachVma(t, u, uc);
        if (ret) await this.unregisterLocked(t, u, uc);
      }
      u.registerRwsem.upWrite(t, 'uprobe_register');
      this.putUprobe(u);
      if (ret !== -EAGAIN) return ret;
      await this.machine.sync.sched.tick(t);
    }
  }

  /** uprobe_unregister: take the consumer off; the breakpoint goes wherever nobody else wants it. */
  async unregister(t: Kthread, inode: Inode, offset: bigint, uc: UprobeConsumer): Promise<void> {
    const u = this.tree.find(inode, offset);
    if (!u || !u.ref.getUnlessZero()) return;
    await u.registerRwsem.downWrite(t, 'uprobe_unregister');
    await this.unregisterLocked(t, u, uc);
    u.registerRwsem.upWrite(t, 'uprobe_unregister');
    this.putUprobe(u);
  }

  /**
   * uprobe_apply: install (add) or remove the breakpoint for a consumer that is already
   * registered, after its filter changed its mind.
   */
  async apply(t: Kthread, inode: Inode, offset: bigint, uc: UprobeConsumer, add: boolean): Promise<number> {
    const u = this.tree.find(inode, offset);
    if (!u || !u.ref.getUnlessZero()) return -EINVAL;
    await u.registerRwsem.downWrite(t, 'uprobe_apply');
    let ret = -EINVAL;
    if (u.consumers.includes(uc)) ret = await this.registerForEachVma(t, u, add ? uc : undefined);
    u.registerRwsem.upWrite(t, 'uprobe_apply');
    this.putUprobe(u);
    return ret;
  }

  /** The uprobes currently in the tree (for listings). */
  list(): readonly Uprobe[] {
    return this.tree.all();
  }

  private async unregisterLocked(t: Kthread, u: Uprobe, uc: UprobeConsumer): Promise<void> {
    if (!(await this.consumerDel(t, u, uc))) return;
    const err = await this.registerForEachVma(t, u, undefined);
    if (!err && u.consumers.length === 0) await this.deleteUprobe(t, u);
  }

  /** alloc_uprobe + insert_uprobe: the existing node (+1) or a new one (ref 2: tree + caller). */
  private async allocUprobe(t: Kthread, inode: Inode, offset: bigint, refCtrOffset: bigint | undefined): Promise<Uprobe | number> {
    this.machine.sync.lockdep.mightAlloc(t, 'GFP_KERNEL', 'alloc_uprobe');
    const fresh = new Uprobe(this.machine.sync.sched, inode, offset, refCtrOffset);
    await this.treelock.lock(t, 'insert_uprobe');
    try {
      const cur = this.tree.find(inode, offset);
      if (cur && cur.ref.getUnlessZero()) {
        if (cur.refCtrOffset !== refCtrOffset) {
          this.warnings.push(`ref_ctr_offset mismatch. inode: 0x${inode.ino.toString(16)} offset: 0x${offset.toString(16)}`);
          cur.ref.put(() => undefined);
          return -EINVAL;
        }
        return cur;
      }
      this.tree.insert(fresh);
      return fresh;
    } finally {
      this.treelock.unlock(t, 'insert_uprobe');
    }
  }

  /** delete_uprobe: out of the tree; drop the tree's reference. */
  private async deleteUprobe(t: Kthread, u: Uprobe): Promise<void> {
    await this.treelock.lock(t, 'delete_uprobe');
    this.tree.erase(u);
    u.active = false;
    this.treelock.unlock(t, 'delete_uprobe');
    // Its out-of-line copies are dead now: poison them (xol.ts), between guest runs as we are.
    if (u.xolImage) {
      for (const mm of new Set(this.machine.processes.filter((p) => !p.zombie).map((p) => p.mm))) {
        if (!mm.destroyed) this.stateIf(mm)?.xol?.poisonImage(mm, u.xolImage, this.arch.xolPoison);
      }
    }
    this.putUprobe(u);
  }

  putUprobe(u: Uprobe): void {
    u.ref.put(u.release);
  }

  private async consumerAdd(t: Kthread, u: Uprobe, uc: UprobeConsumer): Promise<void> {
    await u.consumerRwsem.downWrite(t, 'consumer_add');
    u.consumers = [uc, ...u.consumers];
    u.consumerRwsem.upWrite(t, 'consumer_add');
  }

  private async consumerDel(t: Kthread, u: Uprobe, uc: UprobeConsumer): Promise<boolean> {
    await u.consumerRwsem.downWrite(t, 'consumer_del');
    const had = u.consumers.includes(uc);
    if (had) u.consumers = u.consumers.filter((c) => c !== uc);
    u.consumerRwsem.upWrite(t, 'consumer_del');
    return had;
  }

  /**
   * register_for_each_vma: `uc` given = install for that consumer; undefined = remove where no
   * remaining consumer wants the mm. The VMAs are collected under i_mmap_rwsem (read), which is
   * dropped before any mm is touched: installing allocates (the page copy) and takes mmap_lock,
   * neither allowed under the rmap lock (seed 001).
   */
  private async registerForEachVma(t: Kthread, u: Uprobe, uc: UprobeConsumer | undefined): Promise<number> {
    const isRegister = uc !== undefined;
    if (this.policy.register === 'old') return this.forEachVmaUnderRmap(t, u, uc);
    await this.dupMmapSem.downWrite(t, 'register_for_each_vma');
    try {
      const infos = await this.buildMapInfo(t, u, isRegister);
      let err = 0;
      for (const { mm, vaddr } of infos) {
        if (err || mm.destroyed || mm.users <= 0) continue;
        const lock = this.machine.mmLocks.mmapLock(mm);
        await lock.downWrite(t, 'register_for_each_vma');
        try {
          // uprobe_write_opcode may sleep with mmap_lock held (get_user_pages, the new page's
          // allocation): other vCPUs run meanwhile, and this mm's own mapping calls wait.
          this.machine.sync.lockdep.mightAlloc(t, 'GFP_KERNEL', 'uprobe_write_opcode');
          await this.machine.sync.sched.point(t, 'uprobe:write_opcode');
          // The mm may have changed while no lock was held: check the VMA again.
          const vma = mm.findVma(vaddr);
          if (!vma || !this.validVma(vma, isRegister) || vma.file !== u.inode || vma.fileOffset(vaddr, mm.pageSize) !== u.offset) continue;
          if (isRegister) {
            if (!uc.filter || uc.filter(uc, mm)) err = this.installBreakpoint(t, u, mm, vaddr);
          } else if (this.state(mm).hasUprobes && !u.wantsMm(mm)) {
            err = this.removeBreakpoint(u, mm, vaddr);
          }
        } finally {
          lock.upWrite(t, 'register_for_each_vma');
        }
      }
      return err;
    } finally {
      this.dupMmapSem.upWrite(t, 'register_for_each_vma');
    }
  }

  /**
   * Seed 001's starting point ("Insertion/deletion of breakpoint needs mmap_sem", "Cannot
   * allocate when i_mmap_mutex is held"): for each VMA of the rmap, with i_mmap_rwsem still held,
   * take the mm's mmap_lock and write the opcode (which allocates). mmap and munmap take the same
   * two locks the other way round: lockdep reports the inversion and the allocation under the
   * lock reclaim needs.
   */
  private async forEachVmaUnderRmap(t: Kthread, u: Uprobe, uc: UprobeConsumer | undefined): Promise<number> {
    const isRegister = uc !== undefined;
    const iMmap = this.machine.mmLocks.iMmap(u.inode);
    await iMmap.downRead(t, 'vma_prio_tree_foreach');
    let err = 0;
    try {
      for (const vma of [...u.inode.mappings]) {
        const mm = vma.mm;
        if (err || mm.destroyed || mm.users <= 0 || !this.validVma(vma, isRegister)) continue;
        const vaddr = this.offsetToVaddr(vma, u.offset);
        if (vaddr < vma.start || vaddr >= vma.end) continue;
        const lock = this.machine.mmLocks.mmapLock(mm);
        await lock.downRead(t, isRegister ? 'install_breakpoint' : 'remove_breakpoint');
        try {
          this.machine.sync.lockdep.mightAlloc(t, 'GFP_KERNEL', 'uprobe_write_opcode');
          await this.machine.sync.sched.point(t, 'uprobe:write_opcode');
          if (mm.destroyed || !u.inode.mappings.has(vma)) continue;
          if (isRegister) {
            if (!uc.filter || uc.filter(uc, mm)) err = this.installBreakpoint(t, u, mm, vaddr);
          } else if (this.state(mm).hasUprobes && !u.wantsMm(mm)) {
            err = this.removeBreakpoint(u, mm, vaddr);
          }
        } finally {
          lock.upRead(t, isRegister ? 'install_breakpoint' : 'remove_breakpoint');
        }
      }
    } finally {
      iMmap.upRead(t, 'vma_prio_tree_foreach');
    }
    return err;
  }

  /** build_map_info: (mm, vaddr) for every valid VMA mapping the probed page. */
  private async buildMapInfo(t: Kthread, u: Uprobe, isRegister: boolean): Promise<Array<{ mm: Mm; vaddr: bigint }>> {
    // The list nodes are allocated before the rmap lock is taken (Linux: GFP_NOWAIT under it,
    // GFP_KERNEL outside and walk again); nothing is allocated or slept on under it.
    this.machine.sync.lockdep.mightAlloc(t, 'GFP_KERNEL', 'build_map_info');
    const iMmap = this.machine.mmLocks.iMmap(u.inode);
    await iMmap.downRead(t, 'build_map_info');
    const out: Array<{ mm: Mm; vaddr: bigint }> = [];
    for (const vma of u.inode.mappings) {
      if (!this.validVma(vma, isRegister)) continue;
      const vaddr = this.offsetToVaddr(vma, u.offset);
      if (vaddr < vma.start || vaddr >= vma.end) continue;
      if (vma.mm.users <= 0) continue; // mmget_not_zero failed: the mm is exiting
      out.push({ mm: vma.mm, vaddr });
    }
    iMmap.upRead(t, 'build_map_info');
    return out;
  }

  /**
   * valid_vma: a private, executable file mapping; for a new install also not writable.
   * (Linux tests VM_MAYEXEC, which comes from the file and mount; the emulated kernel has no
   * noexec mounts, so the VMA's exec permission stands in for it.)
   */
  validVma(vma: Vma, isRegister: boolean): boolean {
    if (!vma.file || vma.flags.shared || !(vma.prot & PROT.EXEC)) return false;
    return !isRegister || !(vma.prot & PROT.WRITE);
  }

  offsetToVaddr(vma: Vma, offset: bigint): bigint {
    return vma.start + offset - BigInt(vma.pgoff * vma.mm.pageSize);
  }

  // --- breakpoint writes ---------------------------------------------------------------------

  /**
   * prepare_uprobe: on the first install only, copy the instruction from the page cache and let
   * the arch analyse it. A failure leaves the uprobe unprepared (the next install tries again).
   */
  private prepareUprobe(u: Uprobe, vaddr: bigint): number {
    if (u.prepared) return 0;
    const bytes = u.inode.read(Number(u.offset), this.arch.maxInsnBytes);
    if (bytes.length === 0) {
      this.lastRefusal = `${u.name}: nothing to copy (beyond the end of the file)`;
      return -EIO;
    }
    if (this.arch.isTrapInsn(bytes)) {
      this.lastRefusal = `${u.name}: the instruction is a trap (someone else's breakpoint)`;
      return -ENOTSUPP;
    }
    const prep = this.arch.analyzeUprobe(vaddr, bytes);
    if (isRefusal(prep)) {
      this.lastRefusal = `${u.name}: ${prep.reason}`;
      return -prep.errno;
    }
    u.insn = bytes;
    u.prepared = prep;
    return 0;
  }

  /** The reason of the last instruction the arch refused (for error messages). */
  lastRefusal: string | undefined;

  /** install_breakpoint: MMF_HAS_UPROBES first (the task may trap at once), then the opcode. */
  private installBreakpoint(ctx: ExecContext, u: Uprobe, mm: Mm, vaddr: bigint): number {
    const ret = this.prepareUprobe(u, vaddr);
    if (ret) return ret;
    const st = this.state(mm);
    const first = !st.hasUprobes;
    st.hasUprobes = true;
    const r = this.writeOpcode(ctx, u, mm, vaddr, true);
    if (r && first) st.hasUprobes = false;
    return r;
  }

  private removeBreakpoint(u: Uprobe, mm: Mm, vaddr: bigint): number {
    // Never prepared = never installed anywhere: a breakpoint found there is someone else's (the
    // original instruction was a trap, which prepare_uprobe refused).
    if (!u.prepared) return 0;
    return this.writeOpcode(undefined, u, mm, vaddr, false);
  }

  /**
   * uprobe_write_opcode: idempotent (verify_opcode: installing over a breakpoint or removing
   * where there is none does nothing); the USDT counter moves first; the text write goes to a
   * private copy of the page for this mm (FOLL_FORCE COW), never to the page cache.
   */
  private writeOpcode(_ctx: ExecContext | undefined, u: Uprobe, mm: Mm, vaddr: bigint, install: boolean): number {
    const swbp = this.arch.swbp;
    let cur: Uint8Array;
    try {
      cur = mm.read(vaddr, swbp.length);
    } catch {
      return -EINVAL;
    }
    const isSwbp = cur.every((b, i) => b === swbp[i]);
    if (install === isSwbp) return 0;
    if (u.refCtrOffset !== undefined) {
      const r = this.updateRefCtr(u, mm, install ? 1 : -1);
      if (r) return r;
    }
    mm.write(vaddr, install ? swbp : u.insn!.subarray(0, swbp.length), true);
    // The restored page equals the file's again: map the page cache page back, as Linux does.
    if (!install) mm.revertToPageCache(vaddr);
    return 0;
  }

  // --- USDT reference counters ---------------------------------------------------------------

  /** The private, writable VMA of the same file that holds the counter (valid_ref_ctr_vma). */
  private refCtrVaddr(u: Uprobe, mm: Mm): bigint | undefined {
    for (const vma of mm.vmas) {
      if (vma.file !== u.inode || vma.flags.shared || !(vma.prot & PROT.WRITE)) continue;
      const vaddr = this.offsetToVaddr(vma, u.refCtrOffset!);
      if (vaddr >= vma.start && vaddr + 2n <= vma.end) return vaddr;
    }
    return undefined;
  }

  private updateRefCtr(u: Uprobe, mm: Mm, d: 1 | -1): number {
    const at = this.refCtrVaddr(u, mm);
    const st = this.state(mm);
    if (at === undefined) {
      // Not mapped yet (text is mapped before data): delayed_uprobe_add / _remove.
      if (d > 0) st.delayed.add(u);
      else st.delayed.delete(u);
      return 0;
    }
    return this.bumpCounter(u, mm, at, d);
  }

  private bumpCounter(u: Uprobe, mm: Mm, at: bigint, d: 1 | -1): number {
    const le = mm.arch.endian === 'little';
    const b = mm.read(at, 2);
    const v = new DataView(b.buffer, b.byteOffset).getInt16(0, le);
    if (v + d < 0) {
      this.warnings.push(`ref_ctr going negative. vaddr: 0x${at.toString(16)}, curr val: ${v}, delta: ${d} (${u.name})`);
      return -EINVAL;
    }
    new DataView(b.buffer, b.byteOffset).setInt16(0, v + d, le);
    mm.write(at, b);
    return 0;
  }

  // --- hooks from the mm and process lifecycle -------------------------------------------------

  /**
   * uprobe_mmap, called by Mm.mmap with mmap_lock held for write: raise delayed counters whose
   * data VMA just appeared, and install every uprobe of the file that falls in a new text VMA.
   */
  private onMmap(mm: Mm, vma: Vma): void {
    if (this.tree.size === 0 || !vma.file) return;
    const ctx = this.machine.mappingContext ?? this.hostCtx;
    const st = this.state(mm);
    if (!vma.flags.shared && vma.prot & PROT.WRITE && st.delayed.size > 0) {
      for (const u of [...st.delayed]) {
        if (u.inode !== vma.file) continue;
        const at = this.offsetToVaddr(vma, u.refCtrOffset!);
        if (at < vma.start || at + 2n > vma.end) continue;
        st.delayed.delete(u);
        this.bumpCounter(u, mm, at, 1);
      }
    }
    if (!this.validVma(vma, true)) return;
    const mutex = this.mmapMutex[vma.file.ino % UPROBES_HASH_SZ]!;
    // Only this synchronous path takes the mutex, so it is never contended; lockdep still sees
    // mmap_lock → uprobes_mmap_mutex → treelock.
    if (!mutex.tryLock(ctx, 'uprobe_mmap')) throw new Error('uprobes_mmap_mutex contended in uprobe_mmap');
    try {
      const probes = this.buildProbeList(ctx, vma);
      for (const u of probes) {
        if (u.wantsMm(mm)) this.installBreakpoint(ctx, u, mm, this.offsetToVaddr(vma, u.offset));
        this.putUprobe(u);
      }
    } finally {
      mutex.unlock(ctx, 'uprobe_mmap');
    }
  }

  /** build_probe_list: the file's uprobes inside the VMA, each with a reference. */
  private buildProbeList(ctx: ExecContext, vma: Vma): Uprobe[] {
    if (!this.treelock.tryLock(ctx, 'build_probe_list')) throw new Error('uprobes_treelock contended in uprobe_mmap');
    try {
      const first = vma.fileOffset(vma.start, vma.mm.pageSize);
      const last = vma.fileOffset(vma.end, vma.mm.pageSize) - 1n;
      return this.tree.range(vma.file!, first, last).filter((u) => u.ref.getUnlessZero());
    } finally {
      this.treelock.unlock(ctx, 'build_probe_list');
    }
  }

  /**
   * uprobe_dup_mmap + uprobe_copy_process. The child's pages already carry the breakpoints (the
   * probed pages are private copies, shared copy-on-write). If the parent has pending return
   * instances, the child gets copies — its stack holds the same hijacked return addresses — and,
   * for a new mm, an XOL area at the same address so the trampoline is where those point.
   */
  private onFork(parent: Task, child: Task): void {
    const newMm = child.mm !== parent.mm;
    if (newMm) {
      const ps = this.stateIf(parent.mm);
      if (ps?.hasUprobes) this.state(child.mm).hasUprobes = true;
    }
    const pu = parent.utask instanceof Utask ? parent.utask : undefined;
    if (!pu || pu.depth === 0 || !newMm) return;
    const cu = this.utask(child);
    for (const ri of pu.returnInstances) {
      ri.uprobe.ref.get();
      cu.returnInstances.push({ ...ri });
    }
    const px = this.stateIf(parent.mm)?.xol;
    if (px) {
      const area = XolArea.create(child.mm, this.arch.swbp, this.arch.xolSlotBytes, px.vaddr);
      if (area) this.state(child.mm).xol = area;
      else this.warnings.push(`uprobe: cannot re-create the XOL area of ${child.process.comm}[${child.tid}] at 0x${px.vaddr.toString(16)}`);
    }
  }

  /**
   * The copied instruction faulted in its XOL slot (UTASK_SSTEP_TRAPPED → arch_uprobe_abort_xol):
   * the PC goes back to the probed address, so the signal names the program's own instruction.
   */
  private abortXol(task: Task, pc: bigint): bigint | undefined {
    const ut = task.utask instanceof Utask ? task.utask : undefined;
    if (!ut || ut.state !== 'sstep' || !ut.active || pc < ut.slotAddr || pc >= ut.slotAddr + BigInt(this.arch.xolSlotBytes)) return undefined;
    const mm = task.mm;
    ut.active.prepared!.abortXol({ engine: mm.engine, mem: mm.user }, ut.slotAddr, ut.vaddr, ut.archState);
    // The step is over (handle_singlestep after UTASK_SSTEP_TRAPPED): the slot is freed and the
    // task runs again, so the fault's signal can reach a handler, whose frame names vaddr.
    const vaddr = ut.vaddr;
    ut.xol?.free(ut.slot);
    this.putUprobe(ut.active);
    ut.state = 'running';
    ut.active = undefined;
    ut.xol = undefined;
    ut.slot = -1;
    ut.archState = undefined;
    return vaddr;
  }

  /** uprobe_free_utask (exit, exec): the slot and the return instances go. */
  private freeUtask(task: Task): void {
    const ut = task.utask instanceof Utask ? task.utask : undefined;
    if (!ut) return;
    if (ut.state === 'sstep' && ut.active) {
      this.stateIf(task.mm)?.xol?.free(ut.slot);
      this.putUprobe(ut.active);
    }
    for (const ri of ut.returnInstances) this.putUprobe(ri.uprobe);
    task.utask = undefined;
  }

  /**
   * get_xol_area, with the engine stopped: map the area if this mm has none yet. Runs in the
   * task's context with mmap_lock taken for write, like xol_add_vma; when a kernel thread holds
   * mmap_lock the area is not created now and the hit is simply retried.
   */
  ensureXol(task: Task): void {
    const mm = task.mm;
    const st = this.state(mm);
    if (st.xol || mm.destroyed) return;
    const lock = this.machine.mmLocks.mmapLock(mm);
    if (!lock.tryDownWrite(task.sysctx, 'xol_add_vma')) return;
    try {
      st.xol = XolArea.create(mm, this.arch.swbp, this.arch.xolSlotBytes);
      if (!st.xol) this.warnings.push(`uprobe: no room for the XOL area in ${task.process.comm}[${task.tid}]`);
    } finally {
      lock.upWrite(task.sysctx, 'xol_add_vma');
    }
  }

  /** unapply_uprobe: every handler asked to remove the probe from this mm (engine stopped). */
  unapply(u: Uprobe, mm: Mm): void {
    if (mm.destroyed) return;
    for (const vma of [...mm.vmas]) {
      if (!this.validVma(vma, false) || vma.file !== u.inode) continue;
      const vaddr = this.offsetToVaddr(vma, u.offset);
      if (vaddr >= vma.start && vaddr < vma.end) this.removeBreakpoint(u, mm, vaddr);
    }
  }
}
