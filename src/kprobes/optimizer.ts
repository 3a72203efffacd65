/**
 * The kprobe optimizer (kernel/kprobes.c's optprobes half): after a probe is armed, a delayed
 * worker replaces its breakpoint with a jump to a per-probe detour buffer, as Linux's
 * kprobe_optimizer does.
 *
 * - Delay and batching: arming queues the probe (optimizing_list) and kicks the worker, which
 *   first lets OPTIMIZE_DELAY scheduler ticks pass (Linux: 5 jiffies of delayed work), then takes
 *   everything queued at once under kprobe_mutex.
 * - Grace period: before a jump overwrites more than the breakpoint (x86: 5 bytes over several
 *   instructions) no task may be stopped inside the overwritten bytes, and before a detour is
 *   freed no task may be stopped inside it. Linux waits with synchronize_rcu_tasks(); here the
 *   worker waits, ticking, until no live task's PC (the loaded one's in its engine, the others'
 *   saved ones) lies in those ranges.
 * - The jump lands on the detour's entry, where a code hook of every engine hands the hit to the
 *   trap path's optimized_callback (trap.ts: no breakpoint trap, no single-step); the entry then
 *   jumps to the body — the relocated original instructions and a jump back (the arch builds
 *   both: arch/x86/kprobes/optimize.ts, arch/ppc/kprobes/optimize.ts).
 * - Not optimized, each with Linux's reason (`refusals`): the arch's can_optimize answers; a post
 *   handler on the probe or any aggregated child; a disabled probe; another armed probe inside
 *   the replaced bytes (-EEXIST); optimization switched off (debug.kprobes-optimization = 0).
 * - Unoptimizing (a post handler added, a probe armed inside the range, disable, unregister,
 *   sysctl off) restores the breakpoint and the original bytes at once, under text_mutex — Linux
 *   queues a disabled probe's unoptimization and lets the callback skip it meanwhile; doing it at
 *   once gives the same hits — and hands the detour to the worker, which frees it only after an
 *   RCU grace period (a handler in a kernel call it made from the detour returns into it) and the
 *   wait above, then poisons it with breakpoints, so a use after free traps visibly.
 *
 * Aggregated probes optimize as one: the optimized state belongs to the address (the table's
 * owner there, lone probe or aggregate), and the callback walks the owner's children.
 */
import type { OptimizedInsn, ProbeCpu, ProbeRefusal } from '../../arch/probes.js';
import { isRefusal } from '../../arch/probes.js';
import type { Mm } from '../mm/mm.js';
import type { Task } from '../kernel/task.js';
import type { Engine } from '../emu/unicorn.js';
import type { Kthread } from '../sync/index.js';
import { isAggr, KPROBE_FLAG, type Kprobe } from './kprobe.js';
import { E } from '../kernel/errno.js';
import { canOptimize } from './checks.js';
import type { Kprobes } from './kprobes.js';

/** OPTIMIZE_DELAY (5 jiffies): ticks of the worker before it optimizes what was queued. */
export const OPTIMIZE_DELAY = 5;
/** Detour buffers (kprobe_optinsn_slots): entries, and bodies of this many bytes each. */
export const DETOUR_SLOTS = 1024;
export const DETOUR_BODY_SIZE = 32;
/** Bytes of the kernel's insn area the detours take, at its top. */
export const DETOUR_AREA_SIZE = 64 * 1024;
/** How long the worker waits for tasks to leave a range before it retries in a later round. */
const MAX_QUIESCE_TICKS = 2000;


/** One optimized probe: its address, the arch's plan, its detour and the bytes it replaced. */
export interface OptimizedProbe {
  readonly addr: bigint;
  readonly prep: OptimizedInsn;
  readonly index: number;
  readonly entry: bigint;
  readonly body: bigint;
  /** Original text of [addr, addr + prep.size) (the breakpoint not included). */
  readonly original: Uint8Array;
  /**
   * What the entry's host crossing does after the handlers (trap.ts optimizedHit): emulate the
   * instruction and give the PC (ppc64 branches); undefined = the entry jumps into the body.
   */
  readonly after: ((cpu: ProbeCpu) => bigint | undefined) | undefined;
}

export class KprobeOptimizer {
  /** debug.kprobes-optimization (kprobes_allow_optimization). */
  allowed: boolean;
  /** Optimized probes by address (the jump is in the text). */
  private readonly live = new Map<bigint, OptimizedProbe>();
  /** Every detour still reachable (live, or unoptimized and waiting to be freed), by entry. */
  private readonly byEntry = new Map<bigint, OptimizedProbe>();
  /** optimizing_list: addresses armed since the last round. */
  private readonly queue = new Set<bigint>();
  /** freeing_list: unoptimized detours waiting for the tasks to leave them. */
  private readonly freeing: OptimizedProbe[] = [];
  private readonly slotUsed = new Uint8Array(DETOUR_SLOTS);
  private readonly hooked = new WeakSet<Mm>();
  private worker: Kthread | undefined;
  /** Why the probe at an address is not optimized (the last answer), for listings and tests. */
  readonly refusals = new Map<bigint, ProbeRefusal>();
  /** Rounds the worker ran, and rounds that had to put work off (tasks did not leave in time). */
  rounds = 0;
  deferredRounds = 0;
  /** Ticks the worker waited for a task to leave a replaced range or a detour (the rcu_tasks wait). */
  quiesceTicks = 0;
  /** Hits that entered a detour (the optimized path). */
  hits = 0;
  readonly entryBase: bigint;
  readonly bodyBase: bigint;

  constructor(
    private readonly core: Kprobes,
    allowed: boolean,
  ) {
    this.allowed = allowed;
    const k = core.machine.kernel;
    const top = k.insnAreaBase + BigInt(k.insnArea.size);
    this.entryBase = top - BigInt(DETOUR_AREA_SIZE);
    this.bodyBase = this.entryBase + BigInt(DETOUR_SLOTS * core.arch.optimize.entrySize);
    core.machine.mmAttachHooks.push((mm) => this.hook(mm));
  }

  private get machine() {
    return this.core.machine;
  }

  // --- queries -------------------------------------------------------------------------------

  isOptimized(addr: bigint): boolean {
    return this.live.has(addr);
  }

  get optimizedCount(): number {
    return this.live.size;
  }

  /** The optimized probe at `addr`, if the jump is in the text. */
  optimized(addr: bigint): OptimizedProbe | undefined {
    return this.live.get(addr);
  }

  /** Is the worker queued or running (tests wait for it with `flush`)? */
  get busy(): boolean {
    return this.worker !== undefined || this.queue.size > 0 || this.freeing.length > 0;
  }

  // --- what the core calls (kprobe_mutex held) -------------------------------------------------

  /**
   * optimize_kprobe after arming: what Linux checks at once (sysctl, disabled, post handler, the
   * arch's can_optimize) refuses without waking anything; the rest is queued for the delayed
   * worker, which checks again when it runs.
   */
  kick(t: Kthread, addr: bigint): void {
    if (this.live.has(addr)) return;
    const owner = this.core.ownerAt(t, addr);
    if (!owner) return;
    const why = this.ineligible(owner) ?? this.archRefusal(addr);
    if (why) {
      this.refusals.set(addr, why);
      return;
    }
    this.queue.add(addr);
    this.startWorker();
  }

  /** The arch's can_optimize answer alone (no detour allocated). */
  private archRefusal(addr: bigint): ProbeRefusal | undefined {
    const prep = canOptimize(this.core.machine.kernel, this.core.arch, addr);
    return isRefusal(prep) ? prep : undefined;
  }

  /**
   * unoptimize_kprobe (forced): the breakpoint and the original bytes back at once; the detour
   * goes to the worker to be freed after the tasks left it. Text mutex taken here.
   */
  async unoptimize(t: Kthread, addr: bigint): Promise<void> {
    this.queue.delete(addr);
    const op = this.live.get(addr);
    if (!op) return;
    await this.core.textMutex.lock(t, 'arch_unoptimize_kprobe');
    try {
      const bytes = op.original.slice();
      bytes.set(this.core.arch.breakpoint);
      this.machine.patchKernelText(addr, bytes);
      this.live.delete(addr);
    } finally {
      this.core.textMutex.unlock(t);
    }
    const owner = this.core.ownerAt(t, addr);
    if (owner) owner.flags &= ~KPROBE_FLAG.OPTIMIZED;
    this.freeing.push(op);
    this.startWorker();
  }

  /**
   * Before a breakpoint goes in at `addr`: an optimized probe whose replaced bytes contain it is
   * unoptimized first (Linux's __arm_kprobe → get_optimized_kprobe → forced unoptimize).
   */
  async beforeArm(t: Kthread, addr: bigint): Promise<void> {
    for (const op of [...this.live.values()]) {
      if (addr > op.addr && addr < op.addr + BigInt(op.prep.size)) {
        await this.unoptimize(t, op.addr);
        // Blocked until that breakpoint goes (afterDisarm kicks it again).
        this.refusals.set(op.addr, { refused: true, errno: E.EEXIST, reason: `another kprobe at 0x${addr.toString(16)} lies inside the bytes the jump replaces` });
      }
    }
  }

  /** After a breakpoint left `addr`: the probes it blocked may be optimized again. */
  afterDisarm(t: Kthread, addr: bigint): void {
    for (const [a, r] of [...this.refusals]) if (r.errno === E.EEXIST && a < addr && addr - a < 32n) this.kick(t, a);
  }

  /** sysctl debug.kprobes-optimization: optimize_all_kprobes / unoptimize_all_kprobes. */
  async setAllowed(t: Kthread, on: boolean, armedOwners: Iterable<Kprobe>): Promise<void> {
    this.allowed = on;
    if (on) {
      for (const p of armedOwners) this.kick(t, p.addr!);
      return;
    }
    this.queue.clear();
    for (const addr of [...this.live.keys()]) await this.unoptimize(t, addr);
  }

  /** Wait (tests, the command line) until the worker has nothing left to do. */
  async flush(t: Kthread): Promise<void> {
    for (let i = 0; this.busy && i < 100_000; i++) await this.machine.sync.sched.tick(t);
  }

  // --- the worker (kprobe_optimizer) -------------------------------------------------------------

  private startWorker(): void {
    if (this.worker) return;
    this.worker = this.machine.sync.sched.spawn('kprobe_optimizer', async (t) => {
      try {
        for (let i = 0; i < OPTIMIZE_DELAY; i++) await this.machine.sync.sched.tick(t);
        await this.round(t);
      } finally {
        this.worker = undefined;
      }
      if (this.queue.size > 0 || this.freeing.length > 0) this.startWorker();
    });
  }

  private async round(t: Kthread): Promise<void> {
    const core = this.core;
    await core.mutex.lock(t, 'kprobe_optimizer');
    try {
      this.rounds++;
      const todo: OptimizedProbe[] = [];
      for (const addr of [...this.queue]) {
        this.queue.delete(addr);
        const r = this.prepare(t, addr);
        if (isRefusal(r)) {
          this.refusals.set(addr, r);
          continue;
        }
        this.refusals.delete(addr);
        todo.push(r);
      }
      const freeing = this.freeing.splice(0);
      if (todo.length === 0 && freeing.length === 0) return;
      for (const mm of this.mms()) this.hook(mm);
      // The detours first (nothing jumps to them yet).
      await core.textMutex.lock(t, 'arch_prepare_optimized_kprobe');
      try {
        for (const op of todo) {
          this.machine.patchKernelText(op.entry, op.prep.entryBytes(op.entry, op.body));
          this.machine.patchKernelText(op.body, op.prep.bodyBytes(op.body));
          this.byEntry.set(op.entry, op);
        }
      } finally {
        core.textMutex.unlock(t);
      }
      // A hit whose handler is in a kernel call it made from a detour (an RCU reader, its PC in
      // the called function) comes back to that detour's body: wait for such readers first.
      if (freeing.length > 0) await this.machine.sync.rcu.synchronize(t, 'kprobe_optimizer');
      // synchronize_rcu_tasks: nobody stopped inside the bytes a jump replaces or a freed detour.
      const ranges: Array<[bigint, bigint]> = [];
      for (const op of todo) if (op.prep.size > 1) ranges.push([op.addr + 1n, op.addr + BigInt(op.prep.size)]);
      for (const op of freeing) ranges.push(...this.detourRanges(op));
      if (!(await this.quiesce(t, ranges))) {
        // Put off: the queued probes stay traps until a later round, the detours stay allocated.
        this.deferredRounds++;
        for (const op of todo) {
          this.byEntry.delete(op.entry);
          this.slotUsed[op.index] = 0;
          this.queue.add(op.addr);
        }
        this.freeing.push(...freeing);
        return;
      }
      await core.textMutex.lock(t, 'arch_optimize_kprobes');
      try {
        for (const op of todo) {
          // Still eligible? (kprobe_mutex was held throughout, so only the text can tell.)
          const owner = core.ownerAt(t, op.addr);
          if (!owner || !this.eligible(owner)) {
            this.byEntry.delete(op.entry);
            this.slotUsed[op.index] = 0;
            continue;
          }
          this.machine.patchKernelText(op.addr, op.prep.jumpBytes(op.entry));
          this.live.set(op.addr, op);
          owner.flags |= KPROBE_FLAG.OPTIMIZED;
        }
        // do_free_cleaned_kprobes: poison, then the slot is free.
        for (const op of freeing) this.release(op);
      } finally {
        core.textMutex.unlock(t);
      }
    } finally {
      core.mutex.unlock(t);
    }
  }

  /** Everything optimize_kprobe and arch_prepare_optimized_kprobe check, or the refusal. */
  private prepare(t: Kthread, addr: bigint): OptimizedProbe | ProbeRefusal {
    const core = this.core;
    const owner = core.ownerAt(t, addr);
    if (!owner) return { refused: true, errno: E.EINVAL, reason: 'not registered any more' };
    const why = this.ineligible(owner);
    if (why) return why;
    // get_optinsn_slot, then the arch's checks against that detour (checks.ts).
    const index = this.slotUsed.indexOf(0);
    if (index < 0) return { refused: true, errno: E.ENOMEM, reason: `all ${DETOUR_SLOTS} detour buffers are in use` };
    const { entry, body } = this.detourAt(index);
    const prep = canOptimize(core.machine.kernel, core.arch, addr, { entry, body });
    if (isRefusal(prep)) return prep;
    // optimize_kprobe: no other probe's breakpoint inside the replaced bytes.
    for (let a = addr + 1n; a < addr + BigInt(prep.size); a++) {
      if (core.ownerAt(t, a)) return { refused: true, errno: E.EEXIST, reason: `another kprobe at 0x${a.toString(16)} lies inside the bytes the jump replaces` };
    }
    if (prep.bodySize > DETOUR_BODY_SIZE) return { refused: true, errno: E.ENOMEM, reason: 'the detour does not fit a detour buffer' };
    this.slotUsed[index] = 1;
    const emulate = prep.emulate;
    const arch = this.machine.arch;
    return {
      addr,
      prep,
      index,
      entry,
      body,
      original: core.originalText(addr, prep.size),
      after: emulate
        ? (cpu) => {
            emulate(cpu);
            return arch.getPc(cpu.engine);
          }
        : undefined,
    };
  }

  /** Detour buffer `index`: its entry and its body. */
  detourAt(index: number): { entry: bigint; body: bigint } {
    return { entry: this.entryBase + BigInt(index * this.core.arch.optimize.entrySize), body: this.bodyBase + BigInt(index * DETOUR_BODY_SIZE) };
  }

  private eligible(owner: Kprobe): boolean {
    return this.ineligible(owner) === undefined;
  }

  /** The generic reasons (optimize_kprobe): sysctl, disarmed, disabled, a post handler. */
  private ineligible(owner: Kprobe): ProbeRefusal | undefined {
    const no = (errno: number, reason: string): ProbeRefusal => ({ refused: true, errno, reason });
    if (!this.allowed) return no(E.EPERM, 'optimization is off (debug.kprobes-optimization = 0)');
    if (this.core.allDisarmed) return no(E.EINVAL, 'kprobes are disarmed (debugfs enabled = 0)');
    if (owner.disabled) return no(E.EINVAL, 'the probe is disabled');
    if (!this.core.isArmed(owner.addr!)) return no(E.EINVAL, 'the probe is not armed');
    const posts = isAggr(owner) ? owner.children.some((c) => c.postHandler) : !!owner.postHandler;
    if (posts) return no(E.EINVAL, 'a post_handler needs the single-step: a probe with one is never optimized');
    return undefined;
  }

  private detourRanges(op: OptimizedProbe): Array<[bigint, bigint]> {
    return [
      [op.entry, op.entry + BigInt(this.core.arch.optimize.entrySize)],
      [op.body, op.body + BigInt(DETOUR_BODY_SIZE)],
    ];
  }

  /** Free a detour: poison it with breakpoints first (text mutex held). */
  private release(op: OptimizedProbe): void {
    const bp = this.core.arch.breakpoint;
    for (const [a, b] of this.detourRanges(op)) {
      const poison = new Uint8Array(Number(b - a));
      for (let i = 0; i + bp.length <= poison.length; i += bp.length) poison.set(bp, i);
      this.machine.patchKernelText(a, poison);
    }
    this.byEntry.delete(op.entry);
    this.slotUsed[op.index] = 0;
  }

  /** synchronize_rcu_tasks for `ranges`: tick until no live task is stopped inside one. */
  private async quiesce(t: Kthread, ranges: Array<[bigint, bigint]>): Promise<boolean> {
    if (ranges.length === 0) return true;
    for (let i = 0; i < MAX_QUIESCE_TICKS; i++) {
      if (!this.anyTaskIn(ranges)) return true;
      this.quiesceTicks++;
      await this.machine.sync.sched.tick(t);
    }
    return false;
  }

  /**
   * Is a live task stopped inside `ranges`? Conservative: for every mm the engine's PC (its
   * loaded task) and every task's saved registers (a switched-out task's PC; for the loaded one
   * a stale copy, which at worst makes the wait longer).
   */
  private anyTaskIn(ranges: Array<[bigint, bigint]>): boolean {
    const inside = (pc: bigint) => ranges.some(([a, b]) => pc >= a && pc < b);
    const arch = this.machine.arch;
    for (const mm of this.mms()) if (inside(arch.getPc(mm.engine))) return true;
    for (const task of this.machine.tasks) {
      if (task.state === 'dead' || !task.regs || task.mm.destroyed) continue;
      const e = task.mm.engine;
      // The saved PC, read by loading the snapshot and putting the engine's state back (between
      // runs: the engine is idle).
      const cur = arch.snapshot(e);
      arch.restore(e, task.regs);
      const pc = arch.getPc(e);
      arch.restore(e, cur);
      if (inside(pc)) return true;
    }
    return false;
  }

  private *mms(): Generator<Mm> {
    const seen = new Set<Mm>();
    for (const task of this.machine.tasks) {
      const mm = task.mm;
      if (seen.has(mm) || mm.destroyed) continue;
      seen.add(mm);
      yield mm;
    }
  }

  /** The code hook on the detour entries of one engine: the optimized probe's host crossing. */
  private hook(mm: Mm): void {
    if (this.hooked.has(mm)) return;
    this.hooked.add(mm);
    const end = this.bodyBase - 1n;
    mm.engine.hookCode((address) => this.onEntry(address), this.entryBase, end);
  }

  /** One reusable hit description per vCPU (the hook runs at every optimized hit). */
  private readonly hitOf: Array<{ task: Task; cpu: number; addr: bigint; pcAfter: bigint; engine: Engine; mem: Mm } | undefined> = [];

  private onEntry(entry: bigint): void {
    const op = this.byEntry.get(entry);
    const vcpu = this.machine.runningCpu;
    const task = vcpu?.current;
    if (!op || !vcpu || !task) return;
    this.hits++;
    let hit = this.hitOf[vcpu.id];
    if (hit === undefined) hit = this.hitOf[vcpu.id] = { task, cpu: vcpu.id, addr: op.addr, pcAfter: entry, engine: task.mm.engine, mem: task.mm };
    else {
      hit.task = task;
      hit.addr = op.addr;
      hit.pcAfter = entry;
      hit.engine = task.mm.engine;
      hit.mem = task.mm;
    }
    const action = this.core.trap.optimizedHit(hit, op.after, op.body);
    if (action?.pc !== undefined) this.machine.arch.setPc(hit.engine, action.pc);
  }
}
