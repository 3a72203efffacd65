/**
 * The kprobes hit path (kprobe_int3_handler / kprobe_handler, setup_singlestep, resume_execution
 * and kprobe_post_process), inside the guest run, in the trapped task's atomic context.
 *
 *   trap → rcu_read_lock → get_kprobe(addr) → pre handlers → emulate | boost | step in the slot
 *   → (step trap) postStep fixups → post handlers → rcu_read_unlock → resume.
 * Between the trap and the end of its step the vCPU is an RCU reader (the task is pinned to it),
 * so unregister's synchronize_rcu waits for it before the slot is freed (seed 003).
 *
 * Cost: the registers come from the engine's trap cache (one batched read and one batched write
 * per trap, Engine.cacheTrapRegisters), the probe from one index lookup (table.ts), and the
 * instruction's mode, slot and step-trap address were decided at registration (Ainsn).
 */
import type { KprobeHitState, ProbeCpu } from '../../arch/probes.js';
import type { TrapAction } from '../../arch/types.js';
import type { BreakpointHit } from '../kernel/machine.js';
import type { Task } from '../kernel/task.js';
import type { ExecContext } from '../sync/context.js';
import { UniprobeError } from '../errors.js';
import { isAggr, type HandlerCalls, type Kprobe } from './kprobe.js';
import type { Kprobes } from './kprobes.js';
import { ProbeRegs, type HitCpu } from '../regs/probe-regs.js';

/** KPROBE_HIT_* (kprobe_ctlblk.kprobe_status), Linux's values. */
export const KPROBE_STATUS = { NONE: 0, HIT_ACTIVE: 1, HIT_SS: 2, REENTER: 3, HIT_SSDONE: 4 } as const;

/** The status a reentry interrupts, as the arch's reentry rule names it. */
const HIT_STATE: Record<number, KprobeHitState> = { 1: 'active', 2: 'ss', 3: 'reenter', 4: 'ssdone' };
const EMPTY = new Uint8Array(0);

/**
 * Per-vCPU state (current_kprobe + kprobe_ctlblk). Only the trap path of the task pinned to the
 * vCPU touches it, from the trap to the end of the step.
 */
interface Ctlblk {
  status: number;
  current: Kprobe | undefined;
  /** The hit a reentry interrupted (kcb->prev_kprobe). */
  prevKp: Kprobe | undefined;
  prevStatus: number;
  /** The probe being single-stepped, its slot and the address of the slot's step trap. */
  stepping: Kprobe | undefined;
  stepSlot: bigint;
  stepTrap: bigint | undefined;
  hitPcAfter: bigint | undefined;
  /** The stepping task's context while the engine may finish its step natively (armNativeStep). */
  stepCtx: ExecContext | undefined;
  /**
   * pt_regs and the CPU view of the current (non-reentrant) hit, rebound at each one: valid
   * while its handlers run, like the pt_regs pointer Linux hands them.
   */
  readonly regs: ProbeRegs;
  readonly cpu: HitCpu;
}

/** Does the owner at an address have a post handler (its own, or any child's for an aggregate)? */
function hasPostHandler(p: Kprobe): boolean {
  if (!isAggr(p)) return p.postHandler !== undefined;
  const cs = p.children;
  for (let i = 0; i < cs.length; i++) if (cs[i]!.postHandler) return true;
  return false;
}

function resetCtlblk(kcb: Ctlblk): void {
  kcb.status = KPROBE_STATUS.NONE;
  kcb.current = kcb.prevKp = kcb.stepping = undefined;
  kcb.prevStatus = KPROBE_STATUS.NONE;
  kcb.stepSlot = 0n;
  kcb.stepTrap = kcb.hitPcAfter = undefined;
  kcb.stepCtx = undefined;
}

export class KprobeTrapPath {
  private readonly ctl: Ctlblk[];
  /** The resume action of a hit (see `resume`). */
  private readonly action: { pc: bigint | undefined; stop?: boolean } = { pc: undefined };

  constructor(private readonly core: Kprobes) {
    const machine = core.machine;
    this.ctl = machine.cpus.map((c) => ({
      status: KPROBE_STATUS.NONE,
      current: undefined,
      prevKp: undefined,
      prevStatus: KPROBE_STATUS.NONE,
      stepping: undefined,
      stepSlot: 0n,
      stepTrap: undefined,
      hitPcAfter: undefined,
      stepCtx: undefined,
      regs: new ProbeRegs(machine.arch, undefined!, undefined!, undefined!, c.id, 0n),
      cpu: { engine: undefined!, mem: undefined!, pcAfter: undefined },
    }));
  }

  private get machine() {
    return this.core.machine;
  }

  /** A task killed mid-step (a fault in the slot): its vCPU's control block must not stay busy. */
  taskExit(task: Task): void {
    if (task.pinnedCpu !== undefined) resetCtlblk(this.ctl[task.pinnedCpu]!);
  }

  // --- the trap path (inside a guest run; atomic) ------------------------------------------------
  //
  // trap → lookup → pre handlers → emulate | boost | step → (step trap) fixup → post handlers →
  // resume. The common case — handlers that return plainly — runs straight through without
  // allocating: the control block's ProbeRegs and ProbeCpu are reused, the resume action is one
  // object per core, and everything about the instruction was decided at registration (ainsn).
  // A handler that yields a guest kernel call (HandlerCalls) moves the hit onto the general path:
  // the call runs on the vCPU and the stage goes on from the call's return with the same control
  // block (runHandlers), so the remaining stages read the same either way.

  onBreakpoint(hit: BreakpointHit): TrapAction | undefined {
    try {
      return this.handleBreakpoint(hit);
    } catch (e) {
      throw this.unwind(hit, e);
    }
  }

  /**
   * A handler that throws: the trap context is unwound (control block reset, read-side section
   * left) before the error leaves the run, so the vCPU is not left "inside a probe"; the machine
   * kills the task. The probe stays registered, and unregistering it works as usual. The same
   * holds for a handler that throws after a kernel call it made returned.
   */
  private unwind(hit: BreakpointHit, e: unknown): UniprobeError {
    // Name the probe, not the trap: a post handler runs at the step trap in the slot.
    const kcb = this.ctl[hit.cpu]!;
    const at = kcb.current?.addr ?? hit.addr;
    resetCtlblk(kcb);
    while (hit.task.kctx.rcuDepth > 0) this.machine.sync.rcu.readUnlock(hit.task.kctx);
    const why = e instanceof Error ? e.message : String(e);
    return new UniprobeError('PROBE', `kprobe handler at ${this.machine.kernelSymbolize(at)} threw: ${why}`, { cause: e });
  }

  /** Resume at `pc`. One object reused for every hit: the arch trap hook reads it at once. */
  private resume(pc: bigint): TrapAction {
    const a = this.action;
    a.pc = pc;
    return a;
  }

  private handleBreakpoint(hit: BreakpointHit): TrapAction | undefined {
    const kcb = this.ctl[hit.cpu]!;
    const addr = hit.addr;
    if (kcb.stepTrap === addr) return this.stepDone(hit, kcb);
    if (this.core.trapHooks.size > 0) {
      const hook = this.core.trapHooks.get(addr);
      if (hook) return hook(hit);
    }
    if (!this.machine.kernel.isText(addr)) return undefined;
    const ctx = hit.task.kctx;
    const rcu = this.machine.sync.rcu;
    rcu.readLock(ctx);
    const p = this.core.table.get(ctx, addr);
    if (p === undefined) {
      rcu.readUnlock(ctx);
      return this.notOurs(addr);
    }
    if (kcb.current !== undefined) return this.reenter(hit, kcb, p);
    kcb.current = p;
    kcb.status = KPROBE_STATUS.HIT_ACTIVE;
    const cpu = kcb.cpu;
    cpu.engine = hit.engine;
    cpu.mem = hit.mem;
    cpu.pcAfter = hit.pcAfter;
    const regs = kcb.regs.rebind(hit.engine, hit.mem, hit.task, hit.cpu, addr);
    const r = this.preHandlers(p, regs);
    if (typeof r !== 'number') return this.runHandlers(hit, r, (redirected) => this.afterPre(hit, kcb, p, redirected));
    return this.afterPre(hit, kcb, p, r);
  }

  // --- the optimized path (optimized_callback): no trap, no step --------------------------------

  /**
   * A task arrived at the entry of the detour of the optimized probe at `hit.addr` (the host
   * crossing is the emulator's code hook there). As Linux's optimized_callback: a disabled probe
   * is skipped; a hit while a kprobe is running on this vCPU is missed (counted, no handlers);
   * otherwise the probe is current (HIT_ACTIVE) while every enabled pre handler runs — their
   * return values ignored, an optimized probe cannot redirect the PC — and never a post handler
   * (a probe with one is never optimized). Then `after` finishes the replaced instructions (the
   * arch's emulation, or nothing: the entry jumps into the copied body) and may give the PC to go
   * on at. Returns the action when the PC must move, undefined to go on with the entry.
   */
  optimizedHit(hit: BreakpointHit, after: ((cpu: ProbeCpu) => bigint | undefined) | undefined, body: bigint): TrapAction | undefined {
    try {
      return this.handleOptimized(hit, after, body);
    } catch (e) {
      throw this.unwind(hit, e);
    }
  }

  // The common case (handlers that return plainly, the body runs the copies) allocates nothing.
  private handleOptimized(hit: BreakpointHit, after: ((cpu: ProbeCpu) => bigint | undefined) | undefined, body: bigint): TrapAction | undefined {
    const kcb = this.ctl[hit.cpu]!;
    const ctx = hit.task.kctx;
    const rcu = this.machine.sync.rcu;
    // preempt_disable in Linux: an RCU(-sched) reader until the callback returns.
    rcu.readLock(ctx);
    const p = this.core.table.get(ctx, hit.addr);
    if (p === undefined || p.disabled) {
      rcu.readUnlock(ctx);
      return after === undefined ? undefined : this.optResume(hit, after);
    }
    if (kcb.current !== undefined) {
      this.core.incMissed(p);
      rcu.readUnlock(ctx);
      return after === undefined ? undefined : this.optResume(hit, after);
    }
    kcb.current = p;
    kcb.status = KPROBE_STATUS.HIT_ACTIVE;
    const cpu = kcb.cpu;
    cpu.engine = hit.engine;
    cpu.mem = hit.mem;
    cpu.pcAfter = hit.pcAfter;
    const regs = kcb.regs.rebind(hit.engine, hit.mem, hit.task, hit.cpu, hit.addr);
    const chain = isAggr(p) ? this.optPreHandlers(p.children, regs) : this.optPreOne(p, regs);
    if (chain === undefined) {
      kcb.current = undefined;
      kcb.status = KPROBE_STATUS.NONE;
      rcu.readUnlock(ctx);
      return after === undefined ? undefined : this.optResume(hit, after);
    }
    // A handler's kernel call: the call runs first; the detour then goes on where `after` says,
    // or in its body (the entry must not run again: its hook would fire twice). The detour may
    // have been unoptimized meanwhile: the optimizer frees it only after this RCU reader is done.
    return this.runHandlers(hit, chain, () => {
      kcb.current = undefined;
      kcb.status = KPROBE_STATUS.NONE;
      rcu.readUnlock(ctx);
      return (after === undefined ? undefined : this.optResume(hit, after)) ?? { pc: body };
    });
  }

  private optResume(hit: BreakpointHit, after: (cpu: ProbeCpu) => bigint | undefined): TrapAction | undefined {
    const pc = after({ engine: hit.engine, mem: hit.mem, pcAfter: hit.pcAfter });
    return pc === undefined ? undefined : this.resume(pc);
  }

  /** A lone probe's pre handler (return value ignored), or the chain when it yields a kernel call. */
  private optPreOne(c: Kprobe, regs: ProbeRegs): HandlerCalls<number> | undefined {
    c.nhit++;
    if (!c.preHandler) return undefined;
    const r = c.preHandler(c, regs);
    return typeof r === 'number' ? undefined : this.optPreRest(r, regs, [], 0);
  }

  /** opt_pre_handler: every enabled child's pre handler, return values ignored. */
  private optPreHandlers(cs: readonly Kprobe[], regs: ProbeRegs): HandlerCalls<number> | undefined {
    for (let i = 0; i < cs.length; i++) {
      const c = cs[i]!;
      if (c.disabled) continue;
      c.nhit++;
      if (!c.preHandler) continue;
      const r = c.preHandler(c, regs);
      if (typeof r !== 'number') return this.optPreRest(r, regs, cs, i);
    }
    return undefined;
  }

  private *optPreRest(first: HandlerCalls<number>, regs: ProbeRegs, cs: readonly Kprobe[], i: number): HandlerCalls<number> {
    yield* first;
    for (let k = i + 1; k < cs.length; k++) {
      const c = cs[k]!;
      if (c.disabled) continue;
      c.nhit++;
      if (!c.preHandler) continue;
      const r = c.preHandler(c, regs);
      if (typeof r !== 'number') yield* r;
    }
    return 0;
  }

  /** No probe at `addr` (now): a racing unregister removed it after the trap, or not ours. */
  private notOurs(addr: bigint): TrapAction | undefined {
    // The breakpoint is gone from the text: run the original instruction (Linux returns "handled").
    const now = this.machine.readKernelText(addr, this.core.arch.breakpoint.length);
    if (!now.every((b, i) => b === this.core.arch.breakpoint[i])) return { pc: addr };
    return undefined;
  }

  /**
   * A hit while a handler runs (also inside a kernel function the handler called) or while
   * stepping: the arch's rule (ProbeArch.reentry) says whether it is missed and stepped, never
   * nested (reenter_kprobe and its kin), a BUG, or not a kprobe trap at all.
   */
  private reenter(hit: BreakpointHit, kcb: Ctlblk, p: Kprobe): TrapAction | undefined {
    const rule = this.core.arch.reentry(HIT_STATE[kcb.status]!, p.opcode ?? EMPTY);
    if (rule !== 'reenter') {
      this.machine.sync.rcu.readUnlock(hit.task.kctx);
      if (rule === 'not-ours') return undefined;
      throw new Error(`Unrecoverable kprobe detected at 0x${hit.addr.toString(16)} (re-entered while re-entering)`);
    }
    this.core.incMissed(p);
    kcb.prevKp = kcb.current;
    kcb.prevStatus = kcb.status;
    kcb.current = p;
    kcb.status = KPROBE_STATUS.REENTER;
    // The outer hit's ProbeCpu and ProbeRegs may still be in use (a handler's kernel call): not
    // touched here, the reentered step gets its own CPU view.
    return this.setupStep(hit, kcb, p, true, { engine: hit.engine, mem: hit.mem, pcAfter: hit.pcAfter });
  }

  private afterPre(hit: BreakpointHit, kcb: Ctlblk, p: Kprobe, redirected: number): TrapAction {
    if (redirected === 0) return this.setupStep(hit, kcb, p, false, kcb.cpu);
    // The handler redirected the PC: no step, no post handler.
    kcb.current = undefined;
    kcb.status = KPROBE_STATUS.NONE;
    this.machine.sync.rcu.readUnlock(hit.task.kctx);
    return this.resume(this.machine.arch.getPc(hit.engine));
  }

  private setupStep(hit: BreakpointHit, kcb: Ctlblk, p: Kprobe, reenter: boolean, cpu: ProbeCpu): TrapAction {
    const ai = p.ainsn!;
    if (ai.mode === 'emulate') {
      ai.emulate!(cpu);
      return this.finishHit(hit, kcb, p, reenter, undefined);
    }
    // Boosted: the slot jumps back by itself; nothing pins the vCPU while it runs (hence the
    // dirty free of boosted slots). A boosted probe has no post handler.
    if (ai.mode === 'boost') return this.finishHit(hit, kcb, p, reenter, ai.slot);
    // try_to_emulate: a first refusal is remembered and the probe is stepped from then on; one
    // that emulated before is tried again at every hit (and stepped when it declines).
    if (ai.tryEmulate !== undefined && ai.emulated >= 0) {
      if (ai.tryEmulate(cpu)) {
        ai.emulated = 1;
        return this.finishHit(hit, kcb, p, reenter, undefined);
      }
      if (ai.emulated === 0) ai.emulated = -1;
    }
    kcb.stepping = p;
    kcb.stepSlot = ai.slot!;
    kcb.stepTrap = ai.stepTrap;
    kcb.hitPcAfter = hit.pcAfter;
    if (!reenter) kcb.status = KPROBE_STATUS.HIT_SS;
    // Tests may force a switch between the trap and the step: the run ends with the PC on the
    // slot; the task stays pinned (atomic) and resumes there.
    if (this.machine.sync.sched.forcedSwitch('kprobe:before-step', hit.task.kctx)) return { pc: ai.slot, stop: true };
    if (!reenter && ai.nativePcAt !== undefined && !hasPostHandler(p)) this.armNativeStep(hit, kcb, ai.nativePcAt, ai.plainStepResume!);
    return this.resume(ai.slot!);
  }

  /**
   * A step whose fix-up only moves the PC, of a probe with no post handler, may be finished by the
   * engine's native trap hook (src/emu/trap-hook.ts NativeStepTrap): it puts the PC at `resume`
   * at the step trap, as postStep would, and `nativeDone` does the rest of the step's end (the
   * control block back to idle, the RCU read side left) before any other JavaScript of the engine
   * runs — the next trap hook, or the end of the run — so nothing can see the vCPU in between.
   * A reentered step keeps the JavaScript path (its end restores the interrupted hit).
   */
  private armNativeStep(hit: BreakpointHit, kcb: Ctlblk, pcAt: bigint, resume: bigint): void {
    const spec = this.core.arch.nativeStepTrap!;
    const ns = hit.engine.nativeSteps;
    if (!ns || (spec.hitPcAfterIsNext && hit.pcAfter !== resume)) return;
    kcb.stepCtx = hit.task.kctx;
    ns.onDone = this.nativeDone;
    ns.armAt(spec.intno, spec.pcReg, pcAt, resume, kcb);
  }

  /** The end of a natively finished step: what stepDone → finishHit → leave do, with no post handler. */
  private readonly nativeDone = (owner: unknown): void => {
    const kcb = owner as Ctlblk;
    const ctx = kcb.stepCtx;
    if (kcb.stepping === undefined || ctx === undefined) return;
    kcb.stepping = undefined;
    kcb.stepTrap = undefined;
    kcb.hitPcAfter = undefined;
    kcb.stepCtx = undefined;
    kcb.current = undefined;
    kcb.status = KPROBE_STATUS.NONE;
    this.machine.sync.rcu.readUnlock(ctx);
  };

  private stepDone(hit: BreakpointHit, kcb: Ctlblk): TrapAction {
    const p = kcb.stepping!;
    const reenter = kcb.status === KPROBE_STATUS.REENTER;
    // The step trap's own next PC (sparc64's tnpc); the engine and mm are the hit's.
    const cpu = reenter ? { engine: hit.engine, mem: hit.mem, pcAfter: hit.pcAfter } : kcb.cpu;
    cpu.pcAfter = hit.pcAfter;
    p.ainsn!.prep.postStep?.(cpu, kcb.stepSlot, kcb.hitPcAfter);
    kcb.stepping = undefined;
    kcb.stepTrap = undefined;
    kcb.hitPcAfter = undefined;
    return this.finishHit(hit, kcb, p, reenter, undefined);
  }

  /**
   * After the instruction ran: post handlers (not when re-entering), then the previous state,
   * the end of the read-side section, and on to `resumePc` (undefined: the PC as the
   * instruction and the post handlers left it).
   */
  private finishHit(hit: BreakpointHit, kcb: Ctlblk, p: Kprobe, reenter: boolean, resumePc: bigint | undefined): TrapAction {
    if (reenter) {
      kcb.current = kcb.prevKp;
      kcb.status = kcb.prevStatus;
      kcb.prevKp = undefined;
      kcb.prevStatus = KPROBE_STATUS.NONE;
      return this.leave(hit, resumePc);
    }
    kcb.status = KPROBE_STATUS.HIT_SSDONE;
    // The post handlers see instruction_pointer(regs) = the probe (the step trap is in the slot).
    // Without any, nothing runs and the pre handlers' binding is left as it is.
    const chain = hasPostHandler(p) ? this.postHandlers(p, kcb.regs.rebind(hit.engine, hit.mem, hit.task, hit.cpu, p.addr!)) : undefined;
    if (chain !== undefined) return this.runHandlers(hit, chain, () => this.afterPost(hit, kcb, resumePc));
    return this.afterPost(hit, kcb, resumePc);
  }

  private afterPost(hit: BreakpointHit, kcb: Ctlblk, resumePc: bigint | undefined): TrapAction {
    kcb.current = undefined;
    kcb.status = KPROBE_STATUS.NONE;
    return this.leave(hit, resumePc);
  }

  private leave(hit: BreakpointHit, resumePc: bigint | undefined): TrapAction {
    this.machine.sync.rcu.readUnlock(hit.task.kctx);
    return this.resume(resumePc ?? this.machine.arch.getPc(hit.engine));
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
    return this.machine.callFromTrap(hit.task, fn, [...call.args], (ret) => {
      try {
        return this.runHandlers(hit, chain, then, ret);
      } catch (e) {
        throw this.unwind(hit, e);
      }
    });
  }

  /**
   * aggr_pre_handler or the lone probe's: the first non-zero return stops the chain (1 =
   * redirected). A handler that yields kernel calls turns the rest of the chain into a generator.
   */
  private preHandlers(p: Kprobe, regs: ProbeRegs): number | HandlerCalls<number> {
    if (!isAggr(p)) return this.preOne(p, regs, undefined, 0);
    const cs = p.children;
    for (let i = 0; i < cs.length; i++) {
      const r = this.preOne(cs[i]!, regs, cs, i);
      if (r !== 0) return r;
    }
    return 0;
  }

  private preOne(c: Kprobe, regs: ProbeRegs, cs: readonly Kprobe[] | undefined, i: number): number | HandlerCalls<number> {
    if (c.disabled) return 0;
    c.nhit++;
    if (!c.preHandler) return 0;
    const r = c.preHandler(c, regs);
    if (typeof r === 'number') return r !== 0 ? 1 : 0;
    return this.preRest(r, regs, cs, i);
  }

  /** The chain from a handler that yielded: finish it, then the children after it. */
  private *preRest(first: HandlerCalls<number>, regs: ProbeRegs, cs: readonly Kprobe[] | undefined, i: number): HandlerCalls<number> {
    if ((yield* first) !== 0) return 1;
    for (let k = i + 1; cs && k < cs.length; k++) {
      const c = cs[k]!;
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
   * between the trap and the end of the step. Undefined when the chain ran to its end.
   */
  private postHandlers(p: Kprobe, regs: ProbeRegs): HandlerCalls<void> | undefined {
    if (!isAggr(p)) return p.postHandler?.(p, regs, 0) ?? undefined;
    const cs = p.children;
    for (let i = 0; i < cs.length; i++) {
      const c = cs[i]!;
      if (!c.postHandler || c.disabled) continue;
      const r = c.postHandler(c, regs, 0);
      if (r) return this.postRest(r, regs, cs, i);
    }
    return undefined;
  }

  private *postRest(first: HandlerCalls<void>, regs: ProbeRegs, cs: readonly Kprobe[], i: number): HandlerCalls<void> {
    yield* first;
    for (let k = i + 1; k < cs.length; k++) {
      const c = cs[k]!;
      if (!c.postHandler || c.disabled) continue;
      const r = c.postHandler(c, regs, 0);
      if (r) yield* r;
    }
  }
}
