/**
 * Seed 001 (2011 uprobes locking proposal): uprobe register/unregister racing mmap/munmap of the
 * probed file, in two patterns, under a seeded scheduler.
 *
 * The model of a uprobe is the minimum the locking question needs: a probe is (inode, offset);
 * installing it writes the breakpoint byte into every mm that maps the inode private+executable
 * (`mm.write(..., force)`: a COW copy, the page cache stays clean, as uprobe_write_opcode does);
 * removing it writes the original byte back. Actors are kernel threads: one per process doing
 * mmap/munmap of the file (mmap_lock held for write around the whole operation, the VMA linked
 * into `inode.mappings` under i_mmap_rwsem write, then the uprobe_mmap hook), one registering
 * probe A (which stays registered) and one cycling register/unregister of probe B.
 *
 * The invariant (reference §5(a)): every private executable mapping of the inode has the
 * breakpoint iff the probe is registered — no new mmap misses a fresh probe, unregister leaves
 * no stray trap — and nothing is allocated (GFP_KERNEL) or slept on under the rmap lock.
 * It is checked between every two scheduler steps, whenever neither the probe nor the mm is in
 * the middle of an operation, and once more at the end together with the page cache's bytes and
 * the whole text of every mapping.
 *
 * OLD pattern — the design the seed's "Issues" list is written against (seed sentences quoted):
 *  - "Insertion/deletion of breakpoint needs mmap_sem" and "Cannot sleep while walking thro
 *    vma-rmap; hence temp list": the old register/unregister walk i_mmap and, for each VMA, take
 *    that mm's mmap_lock and install (allocating the COW page) *while still holding the rmap
 *    lock*. Lockdep sees "Cannot allocate when i_mmap_mutex is held" (fs_reclaim → i_mmap_rwsem
 *    against i_mmap_rwsem → fs_reclaim) and "Lock ordering issues since mmap/munmap are called
 *    with mmap_sem held for write unlike register/unregister" (mmap: mmap_lock → i_mmap_rwsem;
 *    register: i_mmap_rwsem → mmap_lock) — and under some seeds the AB-BA really deadlocks: the
 *    registrar holds i_mmap_rwsem for read and waits for an mm's mmap_lock, whose holder (an
 *    mmap) waits for i_mmap_rwsem to link its VMA.
 *  - The mmap hook bails out on the seed's lockless `if (!inode->uprobes_count) return` and
 *    registration serialises only on the inode's i_mutex, which mmap cannot take ("mmap_uprobe
 *    can't take i_mutex while holding mmap_sem"). Nothing orders "the registrar walked i_mmap"
 *    against "the hook read the counter": here the counter and the tree entry are published after
 *    the walk (a registration that does the work first and then turns the probe on for future
 *    mmaps). An mmap whose VMA is linked after the walk and whose hook runs before the
 *    publication is seen by neither side — a missed breakpoint.
 *  - Unregister follows the seed: consumer off first, walk, remove, counter down, tree delete
 *    under uprobes_mmap_mutex.
 *
 * FIXED pattern — mainline (reference §1.3–1.5, §1.11, §5(a) "Mainline"):
 *  - per-uprobe register_rwsem; the uprobe is inserted into the tree and the consumer added
 *    *before* the walk, so a VMA linked after the walk finds it in its hook (the hook runs after
 *    the VMA is linked, under i_mmap_rwsem's ordering), and a VMA linked before is in the walk;
 *  - build_map_info: (mm, vaddr) list under i_mmap_rwsem READ with GFP_NOWAIT nodes only; when
 *    short, drop the lock, allocate the missing nodes GFP_KERNEL and walk again;
 *  - then per entry: mmap_lock for write, re-find the VMA and re-check valid_vma / same inode /
 *    same offset (it may have been unmapped or replaced since the walk), install/remove;
 *  - install and remove verify the opcode first (idempotent: the hook and the walk may both try);
 *  - unregister takes the consumer off first so a racing mmap does not reinstall, and deletes the
 *    uprobe from the tree only when no consumer is left; a registration that finds a uprobe
 *    deleted meanwhile (!uprobe_is_active) retries with a new one;
 *  - uprobe_mmap under the caller's mmap_lock (write) + uprobes_mmap_mutex, walking the tree under
 *    uprobes_treelock with references; munmap installs/removes nothing (the pages go away).
 * Not modelled: fork (dup_mmap_sem), filters, ref_ctr, mm refcounts (no mm dies during a run).
 */
import { archFor } from '../../arch/index.js';
import { Rng } from '../kernel/rng.js';
import { Inode } from '../mm/inode.js';
import { MmLocks } from '../mm/locking.js';
import { Mm } from '../mm/mm.js';
import { PROT, type Vma } from '../mm/vma.js';
import { Kref, LockClass, Mutex, RwSem, SpinLock, SyncWorld, type Kthread, type LockdepReport } from '../sync/index.js';
import type { RunOutcome } from '../sync/world.js';

export type UprobePattern = 'old' | 'fixed';

export interface UprobeMmapOptions {
  seed: number;
  pattern: UprobePattern;
  /** vCPUs (default 4). */
  cpus?: number;
  /** Processes, each with its own mm and mapper thread (default 3). */
  processes?: number;
  /** mmap/munmap operations per process (default 5). */
  mapRounds?: number;
  /** register/unregister cycles of probe B (default 2). */
  cycles?: number;
  maxSteps?: number;
  /**
   * How the old register/unregister walk i_mmap. 'install-under-rmap' (default): install/remove
   * while holding i_mmap_rwsem — the design the seed's Issues list argues against. 'temp-list':
   * the seed proposal's own answer — collect the VMAs into a temporary list under i_mmap_rwsem
   * (intrusive, no allocation), drop it, then take each mm's mmap_lock; a VMA unmapped meanwhile
   * is skipped (the proposal's munmap_uprobe list_del, its SRCU keeping the VMA alive; the
   * SRCU itself is not modelled). This isolates the publication race from the lock inversion.
   */
  oldWalk?: 'install-under-rmap' | 'temp-list';
}

export type UprobeViolationKind = 'missed-breakpoint' | 'stray-breakpoint' | 'corrupt-text' | 'page-cache-modified';

export interface UprobeViolation {
  kind: UprobeViolationKind;
  detail: string;
}

export interface UprobeMmapResult {
  seed: number;
  pattern: UprobePattern;
  outcome: RunOutcome;
  lockdep: LockdepReport[];
  kasan: string[];
  /** Hung-task lines when the run really deadlocked. */
  deadlock: string[];
  /** Kernel threads that failed, or exited holding locks. */
  problems: string[];
  violations: UprobeViolation[];
  stats: {
    steps: number;
    mmaps: number;
    munmaps: number;
    installs: number;
    removals: number;
    /** build_map_info walks repeated because GFP_NOWAIT came up short (fixed). */
    mapInfoRetries: number;
    /** Registrations that found their uprobe deleted meanwhile and started again (fixed). */
    registerRetries: number;
    /** Invariant checks made between steps. */
    checks: number;
  };
}

/** x86's UPROBE_SWBP_INSN (int3), one byte: the model writes it at the probed offset. */
const SWBP = 0xcc;
const PAGES = 2;
/** Probe A (registered once, stays) in page 0; probe B (cycled) in page 1. */
const PROBES = [
  { name: 'A', offset: 0x40 },
  { name: 'B', offset: 0x1100 },
] as const;
/** Where the mappers map the file: one slot per address, never overlapping. */
const SLOTS = [0x400000n, 0x600000n, 0x800000n];

const CLASSES = {
  iMutex: new LockClass('&sb->s_type->i_mutex_key', 'mutex'),
  treelock: new LockClass('uprobes_treelock', 'spinlock'),
  mmapMutex: new LockClass('uprobes_mmap_mutex', 'mutex'),
  registerRwsem: new LockClass('&uprobe->register_rwsem', 'rwsem'),
};

interface Uprobe {
  readonly name: string;
  readonly offset: number;
  readonly ref: Kref;
  readonly registerRwsem: RwSem;
  consumers: number;
  /** In the tree (uprobe_is_active). */
  active: boolean;
  readonly origInsn: number;
}

interface MapInfo {
  mm: Mm | undefined;
  vaddr: bigint;
}

/** A short description of which bug kinds a result shows (tests and the final report use it). */
export function uprobeBugKinds(r: UprobeMmapResult): string[] {
  const out = new Set<string>();
  for (const l of r.lockdep) {
    if (l.kind === 'circular' && l.locks.includes('fs_reclaim')) out.add('lockdep:fs_reclaim');
    else if (l.kind === 'circular') out.add(`lockdep:circular(${l.locks.slice(0, 2).sort().join(',')})`);
    else out.add(`lockdep:${l.kind}`);
  }
  if (r.deadlock.length) out.add('deadlock');
  if (r.kasan.length) out.add('kasan');
  for (const v of r.violations) out.add(v.kind);
  if (r.problems.length) out.add('thread-problem');
  return [...out].sort();
}

export async function runUprobeMmapScenario(opts: UprobeMmapOptions): Promise<UprobeMmapResult> {
  const arch = archFor('x86_64');
  if (!arch) throw new Error('uprobe-mmap scenario: the x86_64 arch is not available');
  const ps = arch.layout.pageSize;
  const cpus = opts.cpus ?? 4;
  const nproc = opts.processes ?? 3;
  const rounds = opts.mapRounds ?? 5;
  const cycles = opts.cycles ?? 2;
  const old = opts.pattern === 'old';

  // The scheduler draws from the seed's stream; the actors' own choices (what to map where, how
  // long to wait, whether GFP_NOWAIT succeeds) from a second stream of the same seed.
  const world = new SyncWorld(cpus, new Rng(opts.seed));
  const choice = new Rng(BigInt(opts.seed) * 0x9e3779b1n + 17n);
  const sched = world.sched;
  const locks = new MmLocks(world);

  const contents = Uint8Array.from({ length: PAGES * ps }, (_, i) => (i * 13 + 5) & 0x7f); // never 0xcc
  const inode = new Inode('/seed001/libprobed.so', contents, ps);
  const mms: Mm[] = [];
  const stats: UprobeMmapResult['stats'] = { steps: 0, mmaps: 0, munmaps: 0, installs: 0, removals: 0, mapInfoRetries: 0, registerRetries: 0, checks: 0 };
  const violations: UprobeViolation[] = [];
  const seenViolation = new Set<string>();
  const violate = (kind: UprobeViolationKind, detail: string): void => {
    const key = `${kind}:${detail}`;
    if (seenViolation.has(key)) return;
    seenViolation.add(key);
    violations.push({ kind, detail });
  };

  // Shared kernel state.
  const iMutex = new Mutex(sched, CLASSES.iMutex);
  const treelock = new SpinLock(sched, CLASSES.treelock);
  const mmapMutex = new Mutex(sched, CLASSES.mmapMutex);
  const tree = new Map<number, Uprobe>(); // one inode: keyed by offset
  /** The seed's inode->uprobes_count, read locklessly by the old mmap hook. */
  let inodeUprobesCount = 0;

  // What the checker may rely on: a probe's state outside its register/unregister calls, and
  // which mms are inside an mmap/munmap.
  const probeState = new Map<string, 'on' | 'off' | 'transition'>(PROBES.map((p) => [p.name, 'off']));
  const busy = new Set<Mm>();

  const tick = (t: Kthread, n = 1): Promise<void> => (n <= 0 ? Promise.resolve() : sched.tick(t).then(() => tick(t, n - 1)));
  const enter = async <T>(t: Kthread, frame: string, fn: () => Promise<T>): Promise<T> => {
    t.frames.push(frame);
    try {
      return await fn();
    } finally {
      t.frames.pop();
    }
  };

  // valid_vma(vma, is_register): file-backed, private, may-exec, not writable (on register).
  const validVma = (v: Vma, isRegister: boolean): boolean =>
    v.file === inode && v.isPrivateExecFile && !(isRegister && (v.prot & PROT.WRITE) !== 0);
  const vaddrOf = (v: Vma, offset: number): bigint | undefined => {
    const lo = v.pgoff * ps;
    const hi = lo + Number(v.end - v.start);
    return offset >= lo && offset < hi ? v.start + BigInt(offset - lo) : undefined;
  };

  // install_breakpoint / remove_breakpoint with verify_opcode: idempotent. The caller holds the
  // mm's mmap_lock (write in mainline, read in the old designs).
  const install = (t: Kthread, mm: Mm, vaddr: bigint): void => {
    if (mm.read(vaddr, 1)[0] === SWBP) return; // already there: nothing to do
    // uprobe_write_opcode allocates the new anonymous page with a sleeping allocation.
    world.lockdep.mightAlloc(t, 'GFP_KERNEL', 'uprobe_write_opcode');
    mm.write(vaddr, Uint8Array.of(SWBP), true);
    stats.installs++;
  };
  const remove = (mm: Mm, vaddr: bigint, u: Uprobe): void => {
    if (mm.read(vaddr, 1)[0] !== SWBP) return; // not a breakpoint: nothing to restore
    mm.write(vaddr, Uint8Array.of(u.origInsn), true);
    stats.removals++;
  };

  const newUprobe = (t: Kthread, name: string, offset: number): Uprobe =>
    world.slab.alloc<Uprobe>(t, 'uprobe', 'GFP_KERNEL', 'alloc_uprobe', {
      name,
      offset,
      ref: new Kref(`uprobe ${name}`, 1),
      registerRwsem: new RwSem(sched, CLASSES.registerRwsem),
      consumers: 0,
      active: false,
      // prepare_uprobe's copy_insn reads the page cache, never an mm.
      origInsn: inode.read(offset, 1)[0]!,
    });
  const putUprobe = (t: Kthread, u: Uprobe): void => {
    u.ref.put(() => world.slab.free(t, u, 'put_uprobe'));
  };
  /** find_uprobe: a referenced uprobe from the tree, or undefined. */
  const findUprobe = async (t: Kthread, offset: number): Promise<Uprobe | undefined> => {
    await treelock.lock(t, 'find_uprobe');
    const u = tree.get(offset);
    u?.ref.get();
    treelock.unlock(t);
    return u;
  };
  /** Delete from the tree (drops the tree's reference). */
  const deleteUprobe = async (t: Kthread, u: Uprobe): Promise<void> => {
    await treelock.lock(t, 'delete_uprobe');
    if (tree.get(u.offset) === u) tree.delete(u.offset);
    u.active = false;
    treelock.unlock(t);
    putUprobe(t, u);
  };

  // ---------------------------------------------------------------------------------------------
  // OLD register/unregister: walk i_mmap and install/remove while holding it (see the header).

  const oldForEachVma = async (t: Kthread, u: Uprobe, installing: boolean): Promise<void> => {
    const iMmap = locks.iMmap(inode);
    await iMmap.downRead(t, 'vma_prio_tree_foreach');
    if (opts.oldWalk === 'temp-list') {
      const tmpList = [...inode.mappings].filter((v) => validVma(v, installing));
      iMmap.upRead(t);
      for (const vma of tmpList) {
        await tick(t);
        const mmapLock = locks.mmapLock(vma.mm);
        await mmapLock.downRead(t, installing ? 'install_breakpoint' : 'remove_breakpoint');
        const vaddr = vaddrOf(vma, u.offset);
        // munmap_uprobe took an unmapped VMA off the temporary list.
        if (inode.mappings.has(vma) && vaddr !== undefined) {
          if (installing) install(t, vma.mm, vaddr);
          else remove(vma.mm, vaddr, u);
        }
        mmapLock.upRead(t);
      }
      return;
    }
    // The set cannot change while we hold i_mmap_rwsem: every linker takes it for write.
    for (const vma of [...inode.mappings]) {
      if (!validVma(vma, installing)) continue;
      const vaddr = vaddrOf(vma, u.offset);
      if (vaddr === undefined) continue;
      const mmapLock = locks.mmapLock(vma.mm);
      await mmapLock.downRead(t, installing ? 'install_breakpoint' : 'remove_breakpoint');
      await tick(t);
      if (installing) install(t, vma.mm, vaddr);
      else remove(vma.mm, vaddr, u);
      mmapLock.upRead(t);
      await tick(t);
    }
    iMmap.upRead(t);
  };

  const oldRegister = (t: Kthread, name: string, offset: number): Promise<void> =>
    enter(t, 'register_uprobe', async () => {
      await iMutex.lock(t, 'register_uprobe');
      let u = await findUprobe(t, offset);
      if (!u) u = newUprobe(t, name, offset);
      if (u.consumers++ === 0) {
        await oldForEachVma(t, u, true);
        // Only now is the probe turned on for future mmaps: tree entry and the lockless counter.
        await tick(t);
        await treelock.lock(t, 'insert_uprobe');
        if (!tree.has(offset)) {
          tree.set(offset, u);
          u.ref.get(); // the tree's reference
          u.active = true;
        }
        treelock.unlock(t);
        inodeUprobesCount++;
      }
      iMutex.unlock(t);
      putUprobe(t, u);
    });

  const oldUnregister = (t: Kthread, offset: number): Promise<void> =>
    enter(t, 'unregister_uprobe', async () => {
      await iMutex.lock(t, 'unregister_uprobe');
      const u = await findUprobe(t, offset);
      if (u) {
        if (--u.consumers === 0) {
          await oldForEachVma(t, u, false);
          inodeUprobesCount--;
          await mmapMutex.lock(t, 'delete_uprobe'); // sync with mmap_uprobe
          await deleteUprobe(t, u);
          mmapMutex.unlock(t);
        }
        putUprobe(t, u);
      }
      iMutex.unlock(t);
    });

  // ---------------------------------------------------------------------------------------------
  // FIXED (mainline) register/unregister.

  /** build_map_info: (mm, vaddr) of every valid VMA, without sleeping under i_mmap_rwsem. */
  const buildMapInfo = async (t: Kthread, u: Uprobe, isRegister: boolean): Promise<MapInfo[]> => {
    const iMmap = locks.iMmap(inode);
    let prealloc: MapInfo[] = [];
    let found: MapInfo[] = [];
    for (;;) {
      prealloc.push(...found);
      found = [];
      let more = 0;
      await iMmap.downRead(t, 'build_map_info');
      for (const vma of inode.mappings) {
        if (!validVma(vma, isRegister)) continue;
        const vaddr = vaddrOf(vma, u.offset);
        if (vaddr === undefined) continue;
        let node = prealloc.pop();
        // GFP_NOWAIT may fail (no reclaim allowed here): then count what is missing.
        if (!node && choice.below(3) !== 0) node = world.slab.alloc<MapInfo>(t, 'map_info', 'GFP_NOWAIT', 'build_map_info', { mm: undefined, vaddr: 0n });
        if (!node) {
          more++;
          continue;
        }
        node.mm = vma.mm;
        node.vaddr = vaddr;
        found.push(node);
      }
      iMmap.upRead(t);
      if (!more) break;
      // Outside the rmap lock a sleeping allocation is fine; then walk again from scratch.
      stats.mapInfoRetries++;
      for (let i = 0; i < more; i++) prealloc.push(world.slab.alloc<MapInfo>(t, 'map_info', 'GFP_KERNEL', 'build_map_info', { mm: undefined, vaddr: 0n }));
      await tick(t);
    }
    for (const n of prealloc) world.slab.free(t, n, 'build_map_info');
    return found;
  };

  /** register_for_each_vma: install (register) or remove (unregister: no consumer left). */
  const registerForEachVma = async (t: Kthread, u: Uprobe, isRegister: boolean): Promise<void> => {
    const infos = await buildMapInfo(t, u, isRegister);
    for (const info of infos) {
      const mm = info.mm!;
      const vaddr = info.vaddr;
      world.slab.free(t, info, 'register_for_each_vma');
      await tick(t);
      const mmapLock = locks.mmapLock(mm);
      await mmapLock.downWrite(t, 'register_for_each_vma');
      // The walk's answer may be stale: the VMA may be gone, or another mapping there now.
      const vma = mm.findVma(vaddr);
      if (vma && validVma(vma, isRegister) && vaddrOf(vma, u.offset) === vaddr) {
        if (isRegister) install(t, mm, vaddr);
        else if (u.consumers === 0) remove(mm, vaddr, u);
      }
      mmapLock.upWrite(t);
    }
  };

  const fixedRegister = (t: Kthread, name: string, offset: number): Promise<void> =>
    enter(t, 'uprobe_register', async () => {
      for (;;) {
        // alloc_uprobe: insert into the tree (or find) *before* anything else.
        const fresh = newUprobe(t, name, offset);
        await treelock.lock(t, 'insert_uprobe');
        let u = tree.get(offset);
        if (u) u.ref.get();
        else {
          u = fresh;
          tree.set(offset, u);
          u.ref.get(); // the tree's reference
          u.active = true;
        }
        treelock.unlock(t);
        if (u !== fresh) putUprobe(t, fresh);
        await tick(t);
        await u.registerRwsem.downWrite(t, 'uprobe_register');
        if (!u.active) {
          // Deleted by an unregister between our lookup and the lock: -EAGAIN, start again.
          u.registerRwsem.upWrite(t);
          putUprobe(t, u);
          stats.registerRetries++;
          continue;
        }
        u.consumers++; // consumer_add, before the walk: a racing mmap's hook sees it
        await registerForEachVma(t, u, true);
        u.registerRwsem.upWrite(t);
        putUprobe(t, u);
        return;
      }
    });

  const fixedUnregister = (t: Kthread, offset: number): Promise<void> =>
    enter(t, 'uprobe_unregister', async () => {
      const u = await findUprobe(t, offset);
      if (!u) return;
      await u.registerRwsem.downWrite(t, 'uprobe_unregister');
      u.consumers--; // consumer_del first: a racing mmap no longer installs
      await registerForEachVma(t, u, false);
      if (u.consumers === 0 && u.active) await deleteUprobe(t, u);
      u.registerRwsem.upWrite(t);
      putUprobe(t, u);
    });

  // ---------------------------------------------------------------------------------------------
  // mmap / munmap and the uprobe_mmap hook (caller holds mmap_lock for write).

  const uprobeMmap = async (t: Kthread, vma: Vma): Promise<void> => {
    if (!validVma(vma, true)) return;
    if (old && inodeUprobesCount === 0) return; // the seed's lockless bail-out
    await mmapMutex.lock(t, 'uprobe_mmap');
    // build_probe_list: every uprobe of this inode inside the VMA's file range, referenced.
    await treelock.lock(t, 'build_probe_list');
    const list = [...tree.values()].filter((u) => vaddrOf(vma, u.offset) !== undefined);
    for (const u of list) u.ref.get();
    treelock.unlock(t);
    for (const u of list) {
      await tick(t);
      if (u.consumers > 0) install(t, vma.mm, vaddrOf(vma, u.offset)!);
      putUprobe(t, u);
    }
    mmapMutex.unlock(t);
  };

  const doMmap = (t: Kthread, mm: Mm, addr: bigint, pgoff: number): Promise<void> =>
    enter(t, 'vm_mmap_pgoff', async () => {
      const mmapLock = locks.mmapLock(mm);
      await mmapLock.downWrite(t, 'vm_mmap_pgoff');
      busy.add(mm);
      await tick(t); // mmap_region's work before the VMA is linked
      const iMmap = locks.iMmap(inode);
      await iMmap.downWrite(t, 'vma_link');
      const r = mm.mmap({ addr, len: BigInt((PAGES - pgoff) * ps), prot: PROT.READ | PROT.EXEC, fixed: true, shared: false, file: { inode, pgoff } });
      iMmap.upWrite(t);
      if (r !== addr) throw new Error(`mmap at 0x${addr.toString(16)} failed: ${r}`);
      stats.mmaps++;
      await tick(t);
      await enter(t, 'uprobe_mmap', () => uprobeMmap(t, mm.findVma(addr)!));
      busy.delete(mm);
      mmapLock.upWrite(t);
    });

  const doMunmap = (t: Kthread, mm: Mm, vma: Vma): Promise<void> =>
    enter(t, 'vm_munmap', async () => {
      const mmapLock = locks.mmapLock(mm);
      await mmapLock.downWrite(t, 'vm_munmap');
      busy.add(mm);
      await tick(t);
      const iMmap = locks.iMmap(inode);
      // unlink_file_vma takes i_mmap_rwsem for write; uprobe_munmap removes nothing.
      await iMmap.downWrite(t, 'unlink_file_vma');
      mm.munmap(vma.start, vma.end - vma.start);
      iMmap.upWrite(t);
      stats.munmaps++;
      busy.delete(mm);
      mmapLock.upWrite(t);
    });

  const register = old ? oldRegister : fixedRegister;
  const unregister = old ? oldUnregister : fixedUnregister;

  // ---------------------------------------------------------------------------------------------
  // The invariant.

  const fileMappings = (mm: Mm): Vma[] => mm.vmas.filter((v) => v.file === inode && v.isPrivateExecFile);
  const checkBreakpoints = (): void => {
    stats.checks++;
    for (const p of PROBES) {
      const state = probeState.get(p.name);
      if (state === 'transition') continue;
      for (const mm of mms) {
        if (busy.has(mm)) continue;
        for (const v of fileMappings(mm)) {
          const vaddr = vaddrOf(v, p.offset);
          if (vaddr === undefined) continue;
          const isBp = mm.read(vaddr, 1)[0] === SWBP;
          const where = `probe ${p.name} in mm${mm.id - mms[0]!.id} at 0x${vaddr.toString(16)}`;
          if (state === 'on' && !isBp) violate('missed-breakpoint', `${where}: registered, no breakpoint`);
          if (state === 'off' && isBp) violate('stray-breakpoint', `${where}: not registered, breakpoint left`);
        }
      }
    }
  };

  // ---------------------------------------------------------------------------------------------
  // Actors.

  for (let i = 0; i < nproc; i++) {
    const mm = new Mm(arch, []);
    mms.push(mm);
    // Some processes already map the file when the run starts (no engine runs: mmap is legal).
    if (choice.below(2) === 0) mm.mmap({ addr: SLOTS[0]!, len: BigInt(PAGES * ps), prot: PROT.READ | PROT.EXEC, fixed: true, shared: false, file: { inode, pgoff: 0 } });
  }

  const result = (outcome: RunOutcome): UprobeMmapResult => ({
    seed: opts.seed,
    pattern: opts.pattern,
    outcome,
    lockdep: [...world.lockdep.reports],
    kasan: [...world.slab.reports],
    deadlock: world.deadlocks.flat(),
    problems: [...sched.problems],
    violations,
    stats,
  });

  try {
    mms.forEach((mm, i) => {
      world.spawn(`mapper${i}`, async (t) => {
        for (let r = 0; r < rounds; r++) {
          await tick(t, choice.below(3));
          const mine = fileMappings(mm);
          const free = SLOTS.filter((a) => !mm.findVma(a));
          if (mine.length && (choice.below(2) === 0 || !free.length)) await doMunmap(t, mm, mine[choice.below(mine.length)]!);
          else await doMmap(t, mm, free[choice.below(free.length)]!, choice.below(3) === 0 ? 1 : 0);
        }
      });
    });
    const [a, b] = PROBES;
    const delayA = choice.below(8);
    world.spawn('probeA', async (t) => {
      await tick(t, delayA);
      probeState.set(a.name, 'transition');
      await register(t, a.name, a.offset);
      probeState.set(a.name, 'on');
    });
    const delaysB = Array.from({ length: cycles * 2 }, () => choice.below(6));
    world.spawn('probeB', async (t) => {
      for (let c = 0; c < cycles; c++) {
        await tick(t, delaysB[2 * c]!);
        probeState.set(b.name, 'transition');
        await register(t, b.name, b.offset);
        probeState.set(b.name, 'on');
        await tick(t, delaysB[2 * c + 1]!);
        probeState.set(b.name, 'transition');
        await unregister(t, b.offset);
        probeState.set(b.name, 'off');
      }
    });

    const outcome = await world.run({
      maxSteps: opts.maxSteps ?? 200_000,
      until: () => {
        checkBreakpoints();
        return false;
      },
    });
    stats.steps = sched.steps;

    // The page cache is never written, whatever happened.
    if (!bytesEqual(inode.read(0, contents.length), contents)) violate('page-cache-modified', 'the inode page cache differs from the file');
    if (outcome === 'idle') {
      checkBreakpoints();
      // Whole text of every mapping: the file's bytes everywhere but at the probed offsets (those
      // are the breakpoint check's business) — a breakpoint written through a stale address
      // into another part of the file would show here.
      for (const mm of mms) {
        for (const v of fileMappings(mm)) {
          const want = inode.read(v.pgoff * ps, Number(v.end - v.start));
          const got = mm.read(v.start, want.length);
          for (const p of PROBES) {
            const va = vaddrOf(v, p.offset);
            if (va !== undefined) want[Number(va - v.start)] = got[Number(va - v.start)]!;
          }
          if (!bytesEqual(got, want)) violate('corrupt-text', `mm${mm.id - mms[0]!.id} mapping at 0x${v.start.toString(16)} differs from the file outside the registered probes`);
        }
      }
    }
    return result(outcome);
  } finally {
    for (const mm of mms) mm.destroy();
    inode.release();
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
