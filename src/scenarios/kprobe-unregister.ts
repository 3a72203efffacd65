/**
 * Seed 003 (2005 "kprobes: changed from using spinlock to mutex", 2.6.16): unregistering a kprobe
 * while another vCPU is between its breakpoint trap and the end of its single-step.
 *
 * Model: a kprobe table (RcuHashTable, 64 buckets = KPROBE_HASH_BITS 6), kprobe objects and
 * instruction slots from the Slab (kfree poisons: a later access is a KASAN use-after-free
 * report), a slot cache of pages of slots, and "hitting vCPUs": kernel threads pinned to vCPUs
 * that run over probed addresses. A hit is the int3 handler's shape, atomic from trap to the end
 * of the step (an RCU read-side section with preemption off):
 *   trap → rcu_read_lock → get_kprobe (RCU hash walk) → pre handler → read the slot
 *   → sched.point('kprobe:before-step') (+ ticks: the single step runs here; tests force a switch)
 *   → read the slot again (executing the copied instruction) → post handler → rcu_read_unlock.
 * Loader threads ("modules") register and unregister their own probes, in cycles.
 *
 * OLD pattern — the seed's removed ('-') lines: the trap path already walks the table under RCU,
 * but unregister still does, under the irq-safe `kprobe_lock` spinlock, disarm + hlist_del_rcu,
 * unlocks, and frees the slot at once (cleanup_kprobe → arch_remove_kprobe → free_insn_slot,
 * under x86_64's own slot semaphore), and only then synchronize_sched(). A vCPU that trapped
 * before the unlink is still stepping the slot: its next read of the slot hits the poison
 * (use-after-free), and the slot's index is back in the cache, so a concurrent registration may
 * be handed the very slot that vCPU executes. Registration prepares the slot *before* taking the
 * spinlock (old arch_prepare_kprobe) — allocations could not happen under it.
 * There is no batch API (unregister_kprobes came in 2.6.25): a batch is N unregisters, N waits.
 *
 * FIXED pattern — the seed's '+' lines as mainline has them (reference kprobes §2, §3.4, §4.9):
 * writers serialise on the `kprobe_mutex` (a sleeping lock: the slot can be allocated under it,
 * only for a probe that is really new); unregister = top (under the mutex: disarm, hlist_del_rcu)
 * → synchronize_rcu() → bottom (under the mutex: arch_remove_kprobe frees the slot); the caller
 * frees its kprobe after unregister returns. Batch unregister: all tops, ONE grace period, all
 * bottoms. Slot cache as kprobe_insn_cache: a slot freed "dirty" (a boostable probe: a CPU may
 * still be inside it) is garbage until a collection that waits a grace period; a clean free
 * returns it at once — clean frees only ever happen after the unregister's grace period anyway.
 *
 * Checked: KASAN reports (none for fixed), "a new registration got a slot some vCPU is still
 * stepping" (at get_insn_slot), grace-period waits per batch unregister (fixed: exactly 1),
 * and at the end nothing leaked (every kprobe and slot freed, no slot marked used).
 */
import { Rng } from '../kernel/rng.js';
import { LockClass, Mutex, RcuHashTable, SpinLock, SyncWorld, UseAfterFree, type Kthread, type LockdepReport } from '../sync/index.js';
import type { RunOutcome } from '../sync/world.js';

export type KprobePattern = 'old' | 'fixed';

export interface KprobeUnregisterOptions {
  seed: number;
  pattern: KprobePattern;
  /** vCPUs (default 4); hitters are pinned to the first ones. */
  cpus?: number;
  /** Hitting vCPUs (default 2). */
  hitters?: number;
  /** Breakpoint executions attempted per hitter (default 14). */
  hitsPerCpu?: number;
  /** Loader threads, each owning `probesPerLoader` addresses (default 2). */
  loaders?: number;
  probesPerLoader?: number;
  /** register-all / unregister-all cycles per loader (default 3). */
  cycles?: number;
  /** Slots per slot page (default 4: small, so slots are reused). */
  slotsPerPage?: number;
  /**
   * 'race' (default): everything runs freely. 'mid-step': one hitter on vCPU 0 hits one probe;
   * a switch is forced at 'kprobe:before-step'; the unregister starts only once that vCPU is
   * inside the step, and a second thread registers another probe right after the unlink.
   */
  mode?: 'race' | 'mid-step';
  maxSteps?: number;
}

export type KprobeViolationKind = 'use-after-free' | 'slot-reused-while-stepping' | 'batch-grace-periods' | 'leak';

export interface KprobeViolation {
  kind: KprobeViolationKind;
  detail: string;
}

export interface KprobeUnregisterResult {
  seed: number;
  pattern: KprobePattern;
  outcome: RunOutcome;
  lockdep: LockdepReport[];
  kasan: string[];
  deadlock: string[];
  problems: string[];
  violations: KprobeViolation[];
  /** Event log: traps, steps, unlocks, unlinks, grace periods, frees (deterministic per seed). */
  events: string[];
  stats: {
    steps: number;
    hits: number;
    /** Traps that found no kprobe (disarmed meanwhile: the instruction is restarted). */
    spurious: number;
    registrations: number;
    unregistrations: number;
    /** synchronize_rcu/sched calls made by unregister paths. */
    unregisterGraceWaits: number;
    /** Grace-period waits of each batch unregister call, in order. */
    batchGraceWaits: number[];
    slotPages: number;
    slotGcRuns: number;
    gracePeriods: number;
  };
}

interface InsnSlot {
  readonly index: number;
  /** The copied instruction (arch_copy_kprobe). */
  insn: number;
  /** Which probe it was prepared for. */
  forAddr: bigint;
}

interface Kprobe {
  readonly addr: bigint;
  slot: InsnSlot | undefined;
  boostable: boolean;
  nhit: number;
  npost: number;
}

type SlotState = 'clean' | 'used' | 'dirty';

const CLASSES = {
  kprobeMutex: new LockClass('kprobe_mutex', 'mutex'),
  kprobeLock: new LockClass('kprobe_lock', 'spinlock'),
  /** x86_64's own kprobe_mutex around get/free_insn_slot before the series (arch/x86_64/kernel/kprobes.c). */
  archSlotMutex: new LockClass('x86_64 kprobe_mutex (insn slots)', 'mutex'),
  insnCacheMutex: new LockClass('&c->mutex (kprobe_insn_slots)', 'mutex'),
};

const TEXT_BASE = 0xffffffff81000000n;
const textByte = (addr: bigint): number => Number((addr * 7n + 1n) & 0x7fn);

export function kprobeBugKinds(r: KprobeUnregisterResult): string[] {
  const out = new Set<string>();
  for (const l of r.lockdep) out.add(`lockdep:${l.kind}`);
  if (r.deadlock.length) out.add('deadlock');
  for (const v of r.violations) out.add(v.kind);
  if (r.problems.length) out.add('thread-problem');
  return [...out].sort();
}

export async function runKprobeUnregisterScenario(opts: KprobeUnregisterOptions): Promise<KprobeUnregisterResult> {
  const old = opts.pattern === 'old';
  const midStep = opts.mode === 'mid-step';
  const cpus = opts.cpus ?? 4;
  const nHitters = midStep ? 1 : (opts.hitters ?? 2);
  const hitsPerCpu = opts.hitsPerCpu ?? 14;
  const nLoaders = midStep ? 1 : (opts.loaders ?? 2);
  const perLoader = midStep ? 1 : (opts.probesPerLoader ?? 3);
  const cycles = midStep ? 1 : (opts.cycles ?? 3);
  const slotsPerPage = opts.slotsPerPage ?? 4;
  if (nHitters >= cpus) throw new RangeError('kprobe-unregister scenario: leave at least one vCPU for the loaders');

  const world = new SyncWorld(cpus, new Rng(opts.seed));
  const choice = new Rng(BigInt(opts.seed) * 0x9e3779b1n + 3n);
  const sched = world.sched;
  const rcu = world.rcu;
  const slab = world.slab;
  const events: string[] = [];
  const log = (e: string): void => {
    events.push(e);
  };
  const violations: KprobeViolation[] = [];
  const violate = (kind: KprobeViolationKind, detail: string): void => {
    if (!violations.some((v) => v.kind === kind && v.detail === detail)) violations.push({ kind, detail });
  };
  const stats: KprobeUnregisterResult['stats'] = {
    steps: 0,
    hits: 0,
    spurious: 0,
    registrations: 0,
    unregistrations: 0,
    unregisterGraceWaits: 0,
    batchGraceWaits: [],
    slotPages: 0,
    slotGcRuns: 0,
    gracePeriods: 0,
  };

  const tick = (t: Kthread, n = 1): Promise<void> => (n <= 0 ? Promise.resolve() : sched.tick(t).then(() => tick(t, n - 1)));

  // --- the kprobe table and the text ------------------------------------------------------------
  // hash_ptr(addr, KPROBE_HASH_BITS): any spreading function will do for the model.
  const table = new RcuHashTable<bigint, Kprobe>(64, (a) => Number((a >> 4n) % 64n), world.lockdep);
  /** Addresses whose first byte is the breakpoint now (armed). */
  const armed = new Set<bigint>();

  // --- the insn slot cache --------------------------------------------------------------------
  const slotState: SlotState[] = [];
  let nrGarbage = 0;
  /** Slot index → names of the vCPU threads stepping in it right now. */
  const stepping = new Map<number, Set<string>>();
  const cacheMutex = new Mutex(sched, old ? CLASSES.archSlotMutex : CLASSES.insnCacheMutex);

  /** synchronize_rcu (synchronize_sched in 2005): counted per caller for the batch check. */
  const gpWaits = new Map<Kthread, number>();
  const synchronize = async (t: Kthread, where: string): Promise<void> => {
    gpWaits.set(t, (gpWaits.get(t) ?? 0) + 1);
    log(`${t.name} ${where} start`);
    await rcu.synchronize(t, where);
    log(`${t.name} ${where} end`);
  };

  const getInsnSlot = async (t: Kthread, forAddr: bigint): Promise<InsnSlot> => {
    await cacheMutex.lock(t, 'get_insn_slot');
    let index = slotState.indexOf('clean');
    if (index < 0 && nrGarbage > 0) {
      // collect_garbage_slots: one grace period, then every dirty slot is clean again.
      stats.slotGcRuns++;
      await rcu.synchronize(t, 'collect_garbage_slots');
      for (let i = 0; i < slotState.length; i++) if (slotState[i] === 'dirty') slotState[i] = 'clean';
      nrGarbage = 0;
      index = slotState.indexOf('clean');
    }
    if (index < 0) {
      index = slotState.length;
      for (let i = 0; i < slotsPerPage; i++) slotState.push('clean');
      stats.slotPages++;
    }
    slotState[index] = 'used';
    const users = stepping.get(index);
    if (users?.size) violate('slot-reused-while-stepping', `slot ${index} handed to the probe at 0x${forAddr.toString(16)} while ${[...users].join(', ')} still steps in it`);
    const slot = slab.alloc<InsnSlot>(t, 'kprobe_insn_slot', 'GFP_KERNEL', 'get_insn_slot', { index, insn: textByte(forAddr), forAddr });
    log(`${t.name} slot ${index} -> 0x${forAddr.toString(16)}`);
    cacheMutex.unlock(t);
    return slot;
  };

  const freeInsnSlot = async (t: Kthread, slot: InsnSlot, dirty: boolean): Promise<void> => {
    await cacheMutex.lock(t, 'free_insn_slot');
    const index = slot.index;
    slab.free(t, slot, 'free_insn_slot');
    if (dirty) {
      slotState[index] = 'dirty';
      nrGarbage++;
    } else slotState[index] = 'clean';
    log(`${t.name} free slot ${index}`);
    cacheMutex.unlock(t);
  };

  /** get_kprobe: the RCU hash walk (readers) or under the writers' lock. */
  const getKprobe = (t: Kthread, addr: bigint, writerHeld: boolean): Kprobe | undefined => {
    for (const p of table.walk(t, addr, writerHeld, 'get_kprobe')) if (p.addr === addr) return p;
    return undefined;
  };
  const unlink = (p: Kprobe): void => {
    const b = table.bucket(p.addr);
    for (const n of b.nodes()) if (n.value === p) b.del(n);
  };

  // --- OLD (the seed's '-' lines) -----------------------------------------------------------
  const kprobeLock = new SpinLock(sched, CLASSES.kprobeLock);

  const oldRegister = async (t: Kthread, p: Kprobe): Promise<void> => {
    t.frames.push('register_kprobe');
    // arch_prepare_kprobe before the spinlock: the slot allocation may sleep.
    p.slot = await getInsnSlot(t, p.addr);
    await kprobeLock.lock(t, 'register_kprobe');
    if (!getKprobe(t, p.addr, true)) {
      table.bucket(p.addr).addHead(p);
      armed.add(p.addr);
      stats.registrations++;
      log(`${t.name} register 0x${p.addr.toString(16)}`);
    }
    kprobeLock.unlock(t);
    t.frames.pop();
  };

  const oldUnregister = async (t: Kthread, p: Kprobe): Promise<void> => {
    t.frames.push('unregister_kprobe');
    await kprobeLock.lock(t, 'unregister_kprobe');
    const found = getKprobe(t, p.addr, true);
    if (!found) {
      kprobeLock.unlock(t);
      t.frames.pop();
      return;
    }
    // cleanup_kprobe: disarm, unlink, unlock — and free the slot before any grace period.
    armed.delete(p.addr);
    unlink(p);
    log(`${t.name} unlink 0x${p.addr.toString(16)}`);
    kprobeLock.unlock(t);
    t.frames.push('arch_remove_kprobe');
    await freeInsnSlot(t, p.slot!, false);
    t.frames.pop();
    await synchronize(t, 'synchronize_sched');
    stats.unregisterGraceWaits++;
    stats.unregistrations++;
    t.frames.pop();
  };

  // --- FIXED (mainline) -------------------------------------------------------------------------
  const kprobeMutex = new Mutex(sched, CLASSES.kprobeMutex);

  const fixedRegister = async (t: Kthread, p: Kprobe): Promise<void> => {
    t.frames.push('register_kprobe');
    await kprobeMutex.lock(t, 'register_kprobe');
    if (!getKprobe(t, p.addr, true)) {
      // arch_prepare_kprobe under the mutex, only for a probe that is really new.
      p.slot = await getInsnSlot(t, p.addr);
      table.bucket(p.addr).addHead(p);
      armed.add(p.addr);
      stats.registrations++;
      log(`${t.name} register 0x${p.addr.toString(16)}`);
    }
    kprobeMutex.unlock(t);
    t.frames.pop();
  };

  /** __unregister_kprobe_top: disarm and unlink under the mutex; false if not registered. */
  const unregisterTop = async (t: Kthread, p: Kprobe): Promise<boolean> => {
    await kprobeMutex.lock(t, '__unregister_kprobe_top');
    const found = getKprobe(t, p.addr, true) === p;
    if (found) {
      armed.delete(p.addr);
      unlink(p);
      log(`${t.name} unlink 0x${p.addr.toString(16)}`);
    }
    kprobeMutex.unlock(t);
    return found;
  };
  /** __unregister_kprobe_bottom: after the grace period, free the slot. */
  const unregisterBottom = async (t: Kthread, p: Kprobe): Promise<void> => {
    await kprobeMutex.lock(t, '__unregister_kprobe_bottom');
    t.frames.push('arch_remove_kprobe');
    await freeInsnSlot(t, p.slot!, p.boostable);
    p.slot = undefined;
    t.frames.pop();
    kprobeMutex.unlock(t);
    stats.unregistrations++;
  };

  const fixedUnregisterBatch = async (t: Kthread, ps: Kprobe[]): Promise<void> => {
    if (ps.length === 0) return;
    t.frames.push(ps.length > 1 ? 'unregister_kprobes' : 'unregister_kprobe');
    const valid: Kprobe[] = [];
    for (const p of ps) if (await unregisterTop(t, p)) valid.push(p);
    await synchronize(t, 'synchronize_rcu');
    stats.unregisterGraceWaits++;
    for (const p of valid) await unregisterBottom(t, p);
    t.frames.pop();
  };

  const register = old ? oldRegister : fixedRegister;
  /** A batch: mainline's unregister_kprobes; in 2005 there was none — one unregister each. */
  const unregisterBatch = async (t: Kthread, ps: Kprobe[]): Promise<void> => {
    const before = gpWaits.get(t) ?? 0;
    if (old) for (const p of ps) await oldUnregister(t, p);
    else await fixedUnregisterBatch(t, ps);
    const waits = (gpWaits.get(t) ?? 0) - before;
    if (ps.length > 1) {
      stats.batchGraceWaits.push(waits);
      // Mainline's promise; the 2005 code had no batch form, N waits is simply what it did.
      if (!old && waits !== 1) violate('batch-grace-periods', `unregistering ${ps.length} probes waited for ${waits} grace periods`);
    }
  };

  // --- actors ---------------------------------------------------------------------------------
  const addrsOf = (loader: number): bigint[] => Array.from({ length: perLoader }, (_, k) => TEXT_BASE + BigInt(loader * 0x1000 + k * 0x10));
  const allAddrs = Array.from({ length: nLoaders }, (_, i) => addrsOf(i)).flat();
  const midAddr = allAddrs[0]!;
  const midOther = TEXT_BASE + 0x8000n;
  let hittersDone = 0;

  const newKprobe = (t: Kthread, addr: bigint): Kprobe =>
    slab.alloc<Kprobe>(t, 'kprobe', 'GFP_KERNEL', 'module_init', { addr, slot: undefined, boostable: choice.below(2) === 0, nhit: 0, npost: 0 });

  /** One breakpoint execution on this vCPU (the int3 handler through the end of the step). */
  const hit = async (t: Kthread, addr: bigint, stepTicks: number): Promise<void> => {
    if (!armed.has(addr)) return; // the original instruction runs: no trap
    t.preempt++; // int3 handler: interrupts off
    rcu.readLock(t);
    log(`${t.name} trap 0x${addr.toString(16)}`);
    let slotIndex: number | undefined;
    t.frames.push('kprobe_int3_handler');
    try {
      const p = getKprobe(t, addr, false);
      if (!p) {
        // Disarmed and unlinked since we trapped: the int3 is gone, restart the instruction.
        stats.spurious++;
        return;
      }
      p.nhit++; // pre handler
      const slot = p.slot!;
      const insn = slot.insn; // prepare_singlestep: point the IP at the slot
      slotIndex = slot.index;
      let users = stepping.get(slotIndex);
      if (!users) stepping.set(slotIndex, (users = new Set()));
      users.add(t.name);
      log(`${t.name} step slot ${slotIndex}`);
      await sched.point(t, 'kprobe:before-step');
      await tick(t, stepTicks);
      // The single step executes the copied instruction in the slot.
      if (slot.insn !== insn || slot.forAddr !== addr) throw new Error(`slot ${slotIndex} changed under the step`);
      p.npost++; // post handler (resume_execution)
      stats.hits++;
    } catch (e) {
      // KASAN reported it (slab.reports); the vCPU goes on, as the kernel would after a report.
      if (!(e instanceof UseAfterFree)) throw e;
    } finally {
      t.frames.pop();
      if (slotIndex !== undefined) stepping.get(slotIndex)?.delete(t.name);
      log(`${t.name} rcu_read_unlock`);
      rcu.readUnlock(t);
      t.preempt--;
    }
  };

  if (midStep) sched.switchRules.push((point) => point === 'kprobe:before-step');

  for (let h = 0; h < nHitters; h++) {
    world.spawn(
      `cpu${h}`,
      async (t) => {
        for (let i = 0; i < hitsPerCpu; i++) {
          const addr = midStep ? midAddr : allAddrs[choice.below(allAddrs.length)]!;
          await hit(t, addr, midStep ? 2 : choice.below(3));
          await tick(t, 1 + choice.below(2)); // preemptible: a quiescent state
        }
        hittersDone++;
      },
      { cpu: h },
    );
  }

  if (midStep) {
    // The unregistering thread waits until vCPU 0 is inside the step, then unregisters.
    const regDone = { v: false };
    world.spawn('unregister', async (t) => {
      const p = newKprobe(t, midAddr);
      await register(t, p);
      regDone.v = true;
      while (![...stepping.values()].some((s) => s.size > 0)) {
        if (hittersDone === nHitters) break;
        await tick(t);
      }
      await unregisterBatch(t, [p]);
      slab.free(t, p, 'module_exit');
    });
    // A second module registers right after the unlink: it must not get the slot in use.
    world.spawn('reloader', async (t) => {
      while (!events.some((e) => e.includes(' unlink '))) {
        if (hittersDone === nHitters && regDone.v) return;
        await tick(t);
      }
      const q = newKprobe(t, midOther);
      await register(t, q);
      await unregisterBatch(t, [q]);
      slab.free(t, q, 'module_exit');
    });
  } else {
    for (let l = 0; l < nLoaders; l++) {
      const addrs = addrsOf(l);
      const delays = Array.from({ length: cycles * 2 }, () => choice.below(5));
      world.spawn(`loader${l}`, async (t) => {
        for (let c = 0; c < cycles; c++) {
          await tick(t, delays[2 * c]!);
          const ps = addrs.map((a) => newKprobe(t, a));
          for (const p of ps) await register(t, p);
          await tick(t, delays[2 * c + 1]!);
          // Loader 0 unregisters its probes as a batch, the others one by one.
          if (l === 0) await unregisterBatch(t, ps);
          else for (const p of ps) await unregisterBatch(t, [p]);
          // unregister returned: the module may free its kprobes.
          for (const p of ps) slab.free(t, p, 'module_exit');
        }
      });
    }
  }

  const outcome = await world.run({ maxSteps: opts.maxSteps ?? 200_000 });
  stats.steps = sched.steps;
  stats.gracePeriods = rcu.gracePeriods;

  for (const r of slab.reports) violate('use-after-free', r.split('\n').slice(0, 2).join(' / '));
  if (outcome === 'idle') {
    if (slab.live !== 0) violate('leak', `${slab.live} slab object(s) never freed`);
    const used = slotState.filter((s) => s === 'used').length;
    if (used) violate('leak', `${used} insn slot(s) still marked used`);
  }

  return {
    seed: opts.seed,
    pattern: opts.pattern,
    outcome,
    lockdep: [...world.lockdep.reports],
    kasan: [...slab.reports],
    deadlock: world.deadlocks.flat(),
    problems: [...sched.problems],
    violations,
    events,
    stats,
  };
}
