/**
 * The uprobes hit path (handle_swbp, handle_singlestep, handle_trampoline), inside the guest
 * run, in the task's own context.
 *
 * Data flow of a hit:
 *   trap → (step trap of this task? → post_xol → resume)
 *        → (the XOL trampoline? → return instances → ret handlers → resume at the real return)
 *        → find the uprobe by VMA → (inode, offset) → none: foreign trap → SIGTRAP, or a racing
 *          unregister → restart the instruction
 *        → make sure the XOL area and a slot exist (else stop the run, create or wait, retry —
 *          before any handler ran, so a retry never runs handlers twice)
 *        → handler chain → uretprobe instance → emulate, or pre_xol and step the slot copy.
 * Linux runs this work on the way back to user mode, where it may sleep; the emulator's way of
 * sleeping is to end the run and do the work with the engine stopped (Machine.runAfterStop).
 */
import { SIG, type TrapAction } from '../../arch/types.js';
import { signalPending } from '../kernel/signal/state.js';
import type { BreakpointHit } from '../kernel/machine.js';
import { UniprobeError } from '../errors.js';
import type { HitCpu } from '../regs/probe-regs.js';
import { UprobeRegs } from './regs.js';
import { MAX_URETPROBE_DEPTH, UPROBE_HANDLER_IGNORE, UPROBE_HANDLER_REMOVE, type Uprobe } from './uprobe.js';
import type { MmUprobes, Uprobes } from './uprobes.js';
import { Utask, type ReturnInstance } from './utask.js';
import type { XolArea } from './xol.js';

export class UprobeTrapPath {
  /** The resume action of a hit (see `resume`). */
  private readonly action: { pc: bigint | undefined; stop?: boolean } = { pc: undefined };
  /** A step armed by armNativeStep finished in C: the rest of handle_singlestep. */
  private readonly nativeDone = (owner: unknown): void => {
    const ut = owner as Utask;
    if (ut.state === 'sstep') this.stepFinished(ut);
  };
  /** The return instances a trampoline hit is handling (see `trampoline`). */
  private readonly group: ReturnInstance[] = [];

  constructor(private readonly core: Uprobes) {}

  private get machine() {
    return this.core.machine;
  }

  /** Resume at `pc`. One object reused for every hit: the arch trap hook reads it at once. */
  private resume(pc: bigint): TrapAction {
    const a = this.action;
    a.pc = pc;
    return a;
  }

  onBreakpoint(hit: BreakpointHit): TrapAction | undefined {
    // task.utask is only ever set by this core (Uprobes.utask), to a Utask.
    const ut = hit.task.utask as Utask | undefined;
    if (ut?.state === 'sstep' && hit.addr === ut.stepTrap) return this.singlestep(hit, ut);
    // uprobes take user-mode traps only (sparc64's uprobe_trap even calls a kernel-mode one a bad
    // trap): kernel text and the kprobe slot area belong to kprobes, and a task inside a system
    // call runs kernel code.
    const k = this.machine.kernel;
    if (hit.task.inKernel || k.isText(hit.addr) || k.isInsnArea(hit.addr)) return undefined;
    const st = this.core.stateIf(hit.mem);
    if (st?.xol && hit.addr === st.xol.trampoline) return this.trampoline(hit, ut);
    // uprobe_pre_sstep_notifier: only an mm with uprobes (or a task with return instances).
    if (!st?.hasUprobes && !(ut && ut.depth > 0)) return undefined;
    try {
      return this.swbp(hit, ut, st ?? this.core.state(hit.mem));
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new UniprobeError('PROBE', `uprobe handler at 0x${hit.addr.toString(16)} in ${hit.task.process.comm}[${hit.task.tid}] threw: ${why}`, { cause: e });
    }
  }

  /** The task's reusable CPU view, pointed at this trap. */
  private cpu(hit: BreakpointHit, ut: Utask): HitCpu {
    const cpu = ut.cpu;
    cpu.engine = hit.engine;
    // The back-end's emulation and fix-ups write with the program's pointers: user accesses.
    cpu.mem = hit.mem.user;
    cpu.pcAfter = hit.pcAfter;
    return cpu;
  }

  /**
   * handle_swbp. The common case — the probe's page mapped, a slot that already holds the copy
   * (or an emulated instruction), handlers that return plainly — stays inside the run and
   * allocates nothing; the rest ends the run and finishes with the engine stopped.
   */
  private swbp(hit: BreakpointHit, utIn: Utask | undefined, st: MmUprobes): TrapAction | undefined {
    const bp = hit.addr;
    const mm = hit.mem;
    const task = hit.task;
    const core = this.core;
    const vma = mm.findVma(bp);
    const u = vma?.file && core.validVma(vma, false) ? core.tree.find(vma.file, vma.fileOffset(bp, mm.pageSize)) : undefined;
    if (!u) {
      // is_trap_at_addr: still a trap → it is the program's own (SIGTRAP from the machine);
      // gone → a racing unregister took the probe away after we trapped: run the original.
      let now: Uint8Array;
      try {
        now = mm.read(bp, core.arch.maxInsnBytes);
      } catch {
        return { pc: bp };
      }
      return core.arch.isTrapInsn(now) ? undefined : { pc: bp };
    }
    const prep = u.prepared;
    if (!prep) return { pc: bp };
    const consumers = u.consumers;
    let needsXol = prep.mode === 'step';
    for (let i = 0; i < consumers.length && !needsXol; i++) if (consumers[i]!.retHandler) needsXol = true;
    if (needsXol && !st.xol) {
      this.machine.runAfterStop(() => core.ensureXol(task));
      return { pc: bp, stop: true };
    }
    const xol = st.xol;
    const image = xol && prep.mode === 'step' ? this.image(u, xol) : undefined;
    let slot = -1;
    if (prep.mode === 'step') {
      slot = xol!.take(image) ?? -1;
      // Every slot is busy: the task waits for one (Linux sleeps on area->wq).
      if (slot < 0) return { pc: bp, stop: true };
    }
    const ut = utIn ?? core.utask(task);
    if (!u.ref.getUnlessZero()) {
      if (slot >= 0) xol!.free(slot);
      return { pc: bp };
    }
    u.nhit++;
    const regs = (ut.regs ??= new UprobeRegs(this.machine.arch, hit.engine, mm, task, hit.cpu, bp)).rebind(hit.engine, mm, task, hit.cpu, bp);

    // handler_chain: REMOVE only if every consumer asked for it.
    let remove = consumers.length > 0;
    let needPrep = false;
    for (let i = 0; i < consumers.length; i++) {
      const c = consumers[i]!;
      let rc = 0;
      if (c.handler) rc = c.handler(c, regs);
      if (c.retHandler && !(rc & UPROBE_HANDLER_IGNORE)) needPrep = true;
      remove &&= (rc & UPROBE_HANDLER_REMOVE) !== 0;
    }
    if (needPrep && !remove) this.prepareUretprobe(hit, u, ut);
    // unapply_uprobe needs mmap_lock and a text write: it is done as soon as the run stops.
    const unapply = remove && u.consumers.length > 0;
    if (!unapply) {
      const cpu = this.cpu(hit, ut);
      // arch_uprobe_skip_sstep: emulated, no slot.
      if (prep.mode === 'emulate' && prep.emulate!(cpu, bp)) {
        if (slot >= 0) xol!.free(slot);
        core.putUprobe(u);
        // A signal a handler sent is delivered with the PC after the emulated instruction.
        return this.toUser(hit);
      }
      // An emulation that declined (x86: the call's push would fault) steps after all; a task
      // that never stepped has no XOL area yet: it is made once the run stops (get_xol_area in
      // pre_ssout), and the handlers, which already ran, do not run again.
      if (!xol) return this.finishStopped(hit, u, ut, -1, false);
      const img = image ?? this.image(u, xol);
      if (slot < 0) slot = xol?.take(img) ?? -1;
      if (slot < 0) {
        core.putUprobe(u);
        return { pc: bp, stop: true };
      }
      if (xol!.holds(slot, img!)) return this.preSsout(hit, u, ut, xol!, slot);
    }
    return this.finishStopped(hit, u, ut, slot, unapply);
  }

  /** The slot contents of `u` (made once per uprobe, see Uprobe.xolImage). */
  private image(u: Uprobe, xol: XolArea): Uint8Array {
    return (u.xolImage ??= u.prepared!.slotBytes(xol.slotAddr(1)));
  }

  /**
   * The rest of a hit that needs the engine stopped: a slot whose bytes change, or the unapply.
   * Nothing may write the PC before the stop here (Unicorn drops a stop requested after a PC
   * write in the same hook), so the hit ends with the PC on the breakpoint and finishes after
   * the run.
   */
  private finishStopped(hit: BreakpointHit, u: Uprobe, ut: Utask, slotIn: number, unapply: boolean): TrapAction {
    const core = this.core;
    const mm = hit.mem;
    const task = hit.task;
    const prep = u.prepared!;
    let slot = slotIn;
    this.machine.runAfterStop(() => {
      let xol = core.state(mm).xol;
      if (mm.destroyed || task.state === 'dead') {
        if (slot >= 0) xol?.free(slot);
        core.putUprobe(u);
        return;
      }
      if (unapply) core.unapply(u, mm);
      if (prep.mode === 'emulate' && prep.emulate!(this.cpu(hit, ut), hit.addr)) {
        if (slot >= 0) xol!.free(slot);
        core.putUprobe(u);
        return;
      }
      if (!xol) {
        core.ensureXol(task);
        xol = core.state(mm).xol;
      }
      const img = xol ? this.image(u, xol) : undefined;
      if (slot < 0) slot = xol?.take(img) ?? -1;
      if (slot < 0) {
        // No slot free: the PC stays on the breakpoint and the task tries again.
        core.putUprobe(u);
        return;
      }
      if (!xol!.holds(slot, img!)) xol!.fill(mm, slot, img!);
      this.preSsout(hit, u, ut, xol!, slot);
    });
    return { pc: hit.addr, stop: true };
  }

  /** pre_ssout: record the step in the task, arch pre_xol (the PC goes to the slot). */
  private preSsout(hit: BreakpointHit, u: Uprobe, ut: Utask, xol: XolArea, slot: number): TrapAction {
    const prep = u.prepared!;
    const slotAddr = xol.slotAddr(slot);
    ut.active = u;
    ut.xol = xol;
    ut.vaddr = hit.addr;
    ut.slot = slot;
    ut.slotAddr = slotAddr;
    ut.stepTrap = xol.stepTrapOf(slot, prep.stepTrapOffset);
    ut.archState = prep.preXol(this.cpu(hit, ut), slotAddr, hit.addr);
    ut.state = 'sstep';
    this.armNativeStep(hit, prep.plainStepNext, ut);
    return this.resume(this.machine.arch.getPc(hit.engine));
  }

  /**
   * A step whose post_xol only moves the PC, by a task with no signal to take after it, may be
   * finished by the engine's native trap hook (src/emu/trap-hook.ts NativeStepTrap): it moves
   * the PC at the step trap as postXol would, and `stepFinished` does the rest before any other
   * JavaScript of the engine runs, so nothing can see the task between the two. (The signal check
   * is the only other thing handle_singlestep does; no signal can become pending in between: the
   * task's own system calls and faults reach JavaScript first, other tasks run after the run.)
   */
  private armNativeStep(hit: BreakpointHit, next: number | undefined, ut: Utask): void {
    const spec = this.core.arch.nativeStepTrap;
    const ns = hit.engine.nativeSteps;
    const task = hit.task;
    if (next === undefined || !spec || !ns || task.signal.pending.set !== 0n || task.process.signal.shared.set !== 0n) return;
    if (spec.hitPcAfterIsNext && hit.pcAfter !== hit.addr + BigInt(next)) return;
    // User addresses: exact as Numbers; a 32-bit task's wrap at 2^32 is kept (`>>> 0` is exact
    // below 2^53 and, unlike `%`, no floating-point remainder call).
    let pcAt = Number(ut.stepTrap) + spec.pcAfterTrap;
    let resume = Number(hit.addr) + next;
    if (this.machine.arch.wordSize === 4) {
      pcAt >>>= 0;
      resume >>>= 0;
    } else if (!(pcAt <= Number.MAX_SAFE_INTEGER && resume <= Number.MAX_SAFE_INTEGER)) return;
    ns.onDone = this.nativeDone;
    ns.arm(spec.intno, spec.pcReg, pcAt, resume, ut);
  }

  /** handle_singlestep: the step trap behind the slot copy. */
  private singlestep(hit: BreakpointHit, ut: Utask): TrapAction {
    const u = ut.active!;
    u.prepared!.postXol(this.cpu(hit, ut), ut.slotAddr, ut.vaddr, ut.archState);
    this.stepFinished(ut);
    // A signal held by uprobe_deny_signal during the step is delivered now.
    return this.toUser(hit);
  }

  /** The end of handle_singlestep once the PC is back in the text: the slot and the uprobe go. */
  private stepFinished(ut: Utask): void {
    const u = ut.active!;
    ut.xol?.free(ut.slot);
    ut.state = 'running';
    ut.active = undefined;
    ut.xol = undefined;
    ut.slot = -1;
    ut.archState = undefined;
    this.core.putUprobe(u);
  }

  /**
   * The return to user mode that ends a hit (after the step, or after an emulated instruction):
   * a signal pending now — held during the step, or sent by a handler — is delivered here, so the
   * run ends and the scheduler's delivery point runs before the next instruction. (Nothing
   * pending, the common case, is told without signalPending's BigInt arithmetic.)
   */
  private toUser(hit: BreakpointHit): TrapAction {
    const task = hit.task;
    if ((task.signal.pending.set !== 0n || task.process.signal.shared.set !== 0n) && signalPending(task)) return { pc: this.machine.arch.getPc(hit.engine), stop: true };
    return this.resume(this.machine.arch.getPc(hit.engine));
  }

  /**
   * prepare_uretprobe: at the probed function's entry, hijack its return address. Nested deeper
   * than MAX_URETPROBE_DEPTH: no instance (Linux only warns). A return address that already is
   * the trampoline (a tail call from another probed function) makes a chained instance that
   * returns where the previous one does.
   */
  private prepareUretprobe(hit: BreakpointHit, u: Uprobe, ut: Utask): void {
    const core = this.core;
    const xol = core.state(hit.mem).xol;
    if (!xol) return;
    if (ut.depth >= MAX_URETPROBE_DEPTH) {
      core.warnings.push(`uprobe: omit uretprobe due to nestedness limit pid/tgid=${hit.task.tid}/${hit.task.process.pid}`);
      return;
    }
    const cpu = this.cpu(hit, ut);
    const stack = core.arch.userSp(cpu);
    let orig = core.arch.hijackUserReturn(cpu, xol.trampoline);
    if (orig === undefined) return;
    const chained = orig === xol.trampoline;
    // cleanup_return_instances, after the hijack as Linux does it: frames abandoned by longjmp
    // are gone from the stack (a chained call compares differently on some arches).
    while (ut.depth > 0 && !core.arch.uretprobeIsAlive(cpu, ut.returnInstances[ut.depth - 1]!.stack, chained ? 'chain-call' : 'call')) {
      core.putUprobe(ut.returnInstances.pop()!.uprobe);
    }
    if (chained) {
      const prev = ut.returnInstances[ut.depth - 1];
      if (!prev) {
        // Linux: "not possible" (an attack from user space); it warns and sets no instance.
        core.warnings.push(`uprobe: ${hit.task.process.comm}:${hit.task.tid} failed to handle tail call`);
        return;
      }
      orig = prev.origRetVaddr;
    }
    u.ref.get();
    ut.returnInstances.push({ uprobe: u, func: hit.addr, stack, origRetVaddr: orig, chained });
  }

  /**
   * handle_trampoline: the probed function returned into slot 0. Fire the newest group of
   * instances (a group = chained instances plus the one they chain to) if the frame it belongs
   * to is the one returning; groups skipped by longjmp are dropped without calling handlers.
   */
  private trampoline(hit: BreakpointHit, ut: Utask | undefined): TrapAction {
    const core = this.core;
    const arch = this.machine.arch;
    if (!ut || ut.depth === 0) {
      this.machine.forceSignal(hit.task, { signal: SIG.SIGILL, reason: 'uretprobe trampoline with no return instance' }, hit.addr);
      return { stop: true };
    }
    const cpu = this.cpu(hit, ut);
    const ris = ut.returnInstances;
    for (;;) {
      // The group: from the top down to (and including) the first non-chained instance.
      let end = ris.length - 1;
      while (end > 0 && ris[end]!.chained) end--;
      const next = end > 0 ? ris[end - 1] : undefined;
      const valid = !next || core.arch.uretprobeIsAlive(cpu, next.stack, 'ret');
      const top = ris[ris.length - 1]!;
      arch.setPc(hit.engine, top.origRetVaddr);
      // The group leaves the task's list before any handler runs; newest first. Through a reused
      // array: handlers run synchronously and cannot trap, so trampoline hits never nest.
      // (pop/push only: setting an array's length is a slow runtime call.)
      const group = this.group;
      while (ris.length > end) group.push(ris.pop()!);
      try {
        for (let j = 0; j < group.length; j++) {
          const ri = group[j]!;
          if (valid) {
            const regs = (ut.regs ??= new UprobeRegs(arch, hit.engine, hit.mem, hit.task, hit.cpu, 0n)).rebind(hit.engine, hit.mem, hit.task, hit.cpu, top.origRetVaddr);
            const cs = ri.uprobe.consumers;
            for (let k = 0; k < cs.length; k++) cs[k]!.retHandler?.(cs[k]!, ri.func, regs);
          }
          core.putUprobe(ri.uprobe);
        }
      } finally {
        while (group.length > 0) group.pop();
      }
      if (valid || ris.length === 0) break;
    }
    return this.resume(arch.getPc(hit.engine));
  }
}
