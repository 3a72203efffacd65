/**
 * The signal core: sending (send_signal, complete_signal, force_sig_fault, do_notify_parent),
 * and delivery on the way back to user mode (get_signal, handle_signal, the system-call restart
 * rules of arch_do_signal_or_restart, rt_sigreturn). Generic numbering throughout; the arch's
 * SignalAbi turns it into a target's numbers, flags and frame.
 *
 * When things happen (who may call what):
 * - send/kill/notify run in a trap hook or between runs; they never touch registers.
 * - deliver/syscallExit write registers: only at a return to user mode — HC_SYSRET (inside the
 *   hypercall hook, where sysret writes registers anyway) or before a run of a task that is in
 *   user mode (Machine.runQuantum).
 */
import type { Arch, GuestFault, SignalAbi, SigreturnResult } from '../../../arch/types.js';
import type { Process, Task } from '../task.js';
import { E } from '../errno.js';
import { encodeSiginfo } from './siginfo.js';
import type { SigInfo } from './pending.js';
import type { KSigaction } from './sighand.js';
import { numberingOf, type SignalNumbering } from './numbering.js';
import { continueGroup, doSignalStop, type JobCtlDeps } from './jobctl.js';
import {
  DEFAULT_IGNORE, DEFAULT_STOP, ERESTART_RESTARTBLOCK, ERESTARTNOHAND, ERESTARTNOINTR, ERESTARTSYS, GSIG,
  NSIG, SA, SI, SIG_DFL, SIG_IGN, SS_AUTODISARM, SYNCHRONOUS, UNBLOCKABLE, isRestartCode, sigbit,
} from './numbers.js';

export interface SignalCoreDeps {
  readonly arch: Arch;
  processes(): readonly Process[];
  /** Kill the thread group with (generic) `sig` as its default action, reporting `line` if given. */
  killProcess(proc: Process, sig: number, line: string | undefined): void;
  /** uid the guest's processes run as (si_uid). */
  readonly uid: number;
  /** Delivery is held while any of these says so (uprobe_deny_signal: a step in the XOL slot). */
  readonly holdHooks: ReadonlyArray<(task: Task) => boolean>;
  /** Wake the parent's tasks sleeping in wait4 (a child stopped or continued). */
  notifyWaiters(parent: Process): void;
}

/** A signal chosen for a handler (get_signal's ksignal). */
interface KSignal {
  info: SigInfo;
  ka: KSigaction;
}

/** How a sleeping call that a signal interrupts reports it (which -ERESTART* code). */
const RESTART_CODE: Record<string, number> = {
  nanosleep: ERESTART_RESTARTBLOCK,
  clock_nanosleep: ERESTART_RESTARTBLOCK,
  clock_nanosleep_time64: ERESTART_RESTARTBLOCK,
  poll: ERESTARTNOHAND,
  ppoll: ERESTARTNOHAND,
  ppoll_time64: ERESTARTNOHAND,
  select: ERESTARTNOHAND,
  _newselect: ERESTARTNOHAND,
  pselect6: ERESTARTNOHAND,
  pselect6_time64: ERESTARTNOHAND,
  rt_sigsuspend: ERESTARTNOHAND,
  pause: ERESTARTNOHAND,
};

/** Sleeping calls a signal ends with a plain EINTR, never restarted (do_sigtimedwait). */
const EINTR_ONLY = new Set(['rt_sigtimedwait', 'rt_sigtimedwait_time64']);

export class SignalCore {
  readonly abi: SignalAbi;
  readonly num: SignalNumbering;

  private readonly job: JobCtlDeps;

  constructor(private readonly d: SignalCoreDeps) {
    this.abi = d.arch.signals;
    this.num = numberingOf(this.abi);
    this.job = {
      processes: d.processes,
      send: (info, proc) => this.send(info, proc),
      notifyWaiters: (p) => d.notifyWaiters(p),
      fromGeneric: (sig) => this.num.fromGeneric(sig),
      uid: d.uid,
    };
  }

  // --- state queries ---------------------------------------------------------------------------

  /** The signals that would interrupt `task` now (signal_pending with the mask applied). */
  deliverable(task: Task): bigint {
    return (task.signal.pending.set | task.process.signal.shared.set) & ~task.signal.blocked;
  }

  /** The action's effect is "ignore" (sig_handler_ignored). */
  private ignored(ka: KSigaction, sig: number): boolean {
    return ka.handler === SIG_IGN || (ka.handler === SIG_DFL && (DEFAULT_IGNORE & sigbit(sig)) !== 0n);
  }

  /** The default action kills (sig_fatal): no handler, neither ignored nor a stop by default. */
  private fatal(proc: Process, sig: number): boolean {
    const ka = proc.signal.sighand.action[sig]!;
    if (sig === GSIG.SIGKILL) return true;
    return ka.handler === SIG_DFL && ((DEFAULT_IGNORE | DEFAULT_STOP) & sigbit(sig)) === 0n;
  }

  // --- sending ---------------------------------------------------------------------------------

  /**
   * send_signal: queue `info` to the thread group (`thread` undefined) or one thread, then
   * complete_signal: a fatal signal kills the group at once; otherwise a thread that does not
   * block it is woken from an interruptible sleep to take it.
   */
  send(info: SigInfo, proc: Process, thread?: Task): void {
    if (proc.zombie) return;
    const sig = info.signo;
    const sh = proc.signal;
    const bit = sigbit(sig);
    // prepare_signal: a continue discards pending stops and resumes a stopped group (whatever
    // SIGCONT's action), a stop discards a pending continue.
    if (sig === GSIG.SIGCONT) {
      sh.shared.flush(DEFAULT_STOP);
      for (const t of proc.tasks) t.signal.pending.flush(DEFAULT_STOP);
      continueGroup(this.job, proc);
    } else if (DEFAULT_STOP & bit) {
      sh.shared.flush(sigbit(GSIG.SIGCONT));
      for (const t of proc.tasks) t.signal.pending.flush(sigbit(GSIG.SIGCONT));
    }
    // Then an ignored signal is dropped unless blocked (the handler may change before it is
    // unblocked). SIGKILL is never ignored.
    const ka = sh.sighand.action[sig]!;
    const blockedBy = (thread ?? proc.tasks.find((t) => t.state !== 'dead'))?.signal.blocked ?? 0n;
    if (sig !== GSIG.SIGKILL && this.ignored(ka, sig) && !(blockedBy & bit)) return;
    (thread ? thread.signal.pending : sh.shared).add(info);
    // complete_signal: who takes it.
    const wants = (t: Task): boolean => t.state !== 'dead' && !(t.signal.blocked & bit);
    let target: Task | undefined;
    if (thread) target = wants(thread) ? thread : undefined;
    else target = proc.tasks.find(wants);
    if (!target) return; // blocked everywhere: it stays pending
    // sig_fatal, unless the taker only unblocked it to sigtimedwait for it (real_blocked).
    const waiting = target.signal.waitSet !== undefined && (target.signal.waitBlocked & bit) !== 0n;
    if (this.fatal(proc, sig) && !waiting) {
      this.d.killProcess(proc, sig, undefined);
      return;
    }
    this.wakeUp(target);
  }

  /** signal_wake_up: end an interruptible sleep (not mmap_lock's down_write, which is not one). */
  wakeUp(t: Task): void {
    // A stopped task (job control) only goes on for SIGCONT, which resumes it itself.
    if (t.state === 'blocked' && !t.pendingMapping && !t.signal.stopped) t.state = 'runnable';
  }

  /** kill(2)'s siginfo: SI_USER from the sender. */
  userInfo(sig: number, sender: Task, code: number = SI.USER): SigInfo {
    return { signo: sig, code, pid: sender.process.pid, uid: this.d.uid };
  }

  /**
   * kill(pid, sig) (kill_something_info): pid > 0 one thread group, 0 the caller's process
   * group, -1 every process but init and the caller's own, < -1 the process group -pid.
   * `sig` is the user's number; 0 only checks.
   */
  kill(sender: Task, pid: number, userSig: number): bigint {
    if (userSig < 0 || userSig > NSIG) return -BigInt(E.EINVAL);
    const sig = this.num.toGeneric(userSig);
    const live = (p: Process): boolean => !p.reaped;
    let targets: Process[];
    if (pid > 0) {
      const p = this.d.processes().find((q) => live(q) && (q.pid === pid || q.tasks.some((t) => t.tid === pid && t.state !== 'dead')));
      targets = p ? [p] : [];
    } else if (pid === -1) {
      targets = this.d.processes().filter((p) => live(p) && p.pid > 1 && p !== sender.process);
    } else {
      const pgid = pid === 0 ? sender.process.pgid : -pid;
      targets = this.d.processes().filter((p) => live(p) && p.pgid === pgid);
    }
    if (targets.length === 0) return -BigInt(E.ESRCH);
    if (sig !== 0) for (const p of targets) this.send(this.userInfo(sig, sender), p);
    return 0n;
  }

  /** tgkill / tkill (tgid < 0: tkill): one thread, SI_TKILL. */
  tkill(sender: Task, tgid: number, tid: number, userSig: number): bigint {
    if (tid <= 0 || (tgid !== -1 && tgid <= 0)) return -BigInt(E.EINVAL);
    if (userSig < 0 || userSig > NSIG) return -BigInt(E.EINVAL);
    let task: Task | undefined;
    for (const p of this.d.processes()) {
      if (p.reaped || (tgid !== -1 && p.pid !== tgid)) continue;
      task = p.tasks.find((t) => t.tid === tid && t.state !== 'dead') ?? task;
    }
    if (!task) return -BigInt(E.ESRCH);
    const sig = this.num.toGeneric(userSig);
    if (sig !== 0) this.send(this.userInfo(sig, sender, SI.TKILL), task.process, task);
    return 0n;
  }

  /**
   * force_sig_fault for a user-mode fault: 'queued' when the program's own handler will run (at
   * the next return to user mode), 'kill' when the default action must kill — a blocked or
   * ignored synchronous signal is forced back to its default action first, as Linux does.
   */
  forceFault(task: Task, f: GuestFault, pc: bigint): 'queued' | 'kill' {
    const sig = f.signal;
    const proc = task.process;
    const ka = proc.signal.sighand.action[sig]!;
    const bit = sigbit(sig);
    if (ka.handler === SIG_IGN || task.signal.blocked & bit) {
      // force_sig_info_to_task: the signal is unblocked and its action reset, so it kills.
      proc.signal.sighand.action[sig] = { ...ka, handler: SIG_DFL };
      task.signal.blocked &= ~bit;
      return 'kill';
    }
    if (ka.handler === SIG_DFL) return 'kill';
    task.signal.pending.add({ signo: sig, code: f.code ?? SI.KERNEL, addr: f.addr ?? (f.code !== undefined ? pc : 0n) });
    return 'queued';
  }

  /**
   * do_notify_parent: a thread group has exited. The parent gets its exit signal (SIGCHLD) with
   * CLD_EXITED/CLD_KILLED; if the parent ignores SIGCHLD or set SA_NOCLDWAIT the child is reaped
   * at once (nobody will wait for it). Returns true when the child was auto-reaped.
   */
  notifyParent(child: Process): boolean {
    const parent = child.parent;
    if (!parent || parent.zombie) return false;
    const sig = child.signal.exitSignal;
    const killed = child.termSignal !== 0;
    const info: SigInfo = {
      signo: sig,
      code: killed ? SI.CLD_KILLED : SI.CLD_EXITED,
      pid: child.pid,
      uid: this.d.uid,
      // si_status: the exit code, or the signal in the parent's (= the same target's) numbering.
      status: killed ? child.termSignal : child.exitCode & 0xff,
    };
    let autoreap = false;
    if (sig === GSIG.SIGCHLD) {
      const ka = parent.signal.sighand.action[GSIG.SIGCHLD]!;
      autoreap = ka.handler === SIG_IGN || (ka.flags & SA.NOCLDWAIT) !== 0;
    }
    // do_notify_parent: a legacy clone's exit signal (CSIGNAL, 0-255) is not checked at clone
    // time; one that is not a valid signal is simply not sent (valid_signal(sig) && sig).
    if (sig > 0 && sig <= NSIG) this.send(info, parent);
    return autoreap;
  }

  // --- delivery --------------------------------------------------------------------------------

  /** Delivery is held for `task` now (uprobe_deny_signal). */
  private held(task: Task): boolean {
    for (const h of this.d.holdHooks) if (h(task)) return (task.signal.held = true);
    task.signal.held = false;
    return false;
  }

  /** Take the lowest pending signal of `set` (thread's own first) regardless of the mask: sigtimedwait. */
  take(task: Task, set: bigint): SigInfo | undefined {
    for (const p of [task.signal.pending, task.process.signal.shared]) {
      const ready = p.set & set;
      if (ready) return p.take(lowestBit(ready));
    }
    return undefined;
  }

  /** dequeue_signal: the thread's own signals first, synchronous ones before the rest, lowest first. */
  private dequeue(task: Task): SigInfo | undefined {
    for (const p of [task.signal.pending, task.process.signal.shared]) {
      const ready = p.set & ~task.signal.blocked;
      if (!ready) continue;
      const pick = ready & SYNCHRONOUS ? ready & SYNCHRONOUS : ready;
      const sig = lowestBit(pick);
      return p.take(sig);
    }
    return undefined;
  }

  /**
   * get_signal: take signals until one has a handler. Ignored ones are dropped; a default action
   * that terminates kills the group (no core is written: RLIMIT_CORE is 0, as in a default Debian
   * shell, so the status word has no 0x80 bit). A default "stop" stops the group (jobctl.ts).
   */
  private getSignal(task: Task): KSignal | undefined {
    const proc = task.process;
    for (;;) {
      if (task.state === 'dead') return undefined;
      const info = this.dequeue(task);
      if (!info) return undefined;
      const sig = info.signo;
      const ka = proc.signal.sighand.action[sig]!;
      if (ka.handler === SIG_IGN) continue;
      if (ka.handler !== SIG_DFL) return { info, ka: { ...ka } };
      if (DEFAULT_IGNORE & sigbit(sig)) continue;
      if (DEFAULT_STOP & sigbit(sig)) {
        if (doSignalStop(this.job, task, sig)) return undefined;
        continue;
      }
      this.d.killProcess(proc, sig, undefined);
      return undefined;
    }
  }

  /**
   * The return to user mode of a task not coming from a system call (the scheduler resumes it,
   * or it faulted): run every deliverable signal's handler. The engine holds its user registers.
   * false: the task is not runnable any more (a signal killed it).
   */
  deliver(task: Task): boolean {
    if (this.joinStop(task)) return false;
    if (!this.deliverable(task) || this.held(task)) return true;
    this.handleAll(task, undefined);
    return task.state === 'runnable';
  }

  /**
   * The system-call return path (syscall_exit_to_user_mode): the engine holds the user registers
   * as at entry, PC after the call. rt_sigreturn restores the frame; any other call's result is
   * written — unless it is an -ERESTART* code: then the call is restarted or fails with EINTR by
   * the rules of the handler about to run (SA_RESTART), as arch_do_signal_or_restart does.
   */
  syscallExit(task: Task, call: { name: string; nr: number; args: bigint[] }, value: bigint, resumePc: bigint, mm: import('../../mm/mm.js').Mm): void {
    const arch = this.d.arch;
    const e = mm.engine;
    const restart = isRestartCode(value) ? { call, resumePc, value } : undefined;
    if (call.name === 'rt_sigreturn' || (call.name === 'sigreturn' && this.abi.sigreturn)) {
      if (!this.sigreturn(task, mm, call.name === 'rt_sigreturn')) return;
    } else if (!restart) {
      arch.writeSyscallResult(e, value);
    }
    if (!this.deliverable(task) && !restart) {
      this.joinStop(task);
      return;
    }
    if (this.deliverable(task) && this.held(task)) {
      if (restart) this.restart(task, call, resumePc, value);
      return;
    }
    this.handleAll(task, restart);
  }

  /** A task of a stopped group on its way to user mode stops there (the group stop it missed). */
  private joinStop(task: Task): boolean {
    if (!task.process.signal.stopped) return false;
    task.signal.stopped = 'runnable';
    task.state = 'blocked';
    return true;
  }

  /** Handle the signals due (one frame each, nested as Linux's exit loop does), then any restart. */
  private handleAll(task: Task, restart: { call: { name: string; nr: number; args: bigint[] }; resumePc: bigint; value: bigint } | undefined): void {
    const arch = this.d.arch;
    const e = task.mm.engine;
    for (let n = 0; n < NSIG; n++) {
      const ks = this.getSignal(task);
      if (!ks) break;
      if (restart) {
        // handle_signal's restart rules: ERESTARTNOINTR always restarts, ERESTARTSYS only with
        // SA_RESTART; the others become EINTR when a handler runs.
        const v = -restart.value;
        if (v === BigInt(ERESTARTNOINTR) || (v === BigInt(ERESTARTSYS) && ks.ka.flags & SA.RESTART)) this.restart(task, restart.call, restart.resumePc, restart.value);
        else arch.writeSyscallResult(e, -BigInt(E.EINTR));
        restart = undefined;
      }
      if (!this.setupFrame(task, ks)) return;
    }
    if (task.state === 'dead') return;
    if (restart) this.restart(task, restart.call, restart.resumePc, restart.value);
    // No handler ran: rt_sigsuspend's mask comes back now (restore_saved_sigmask).
    if (task.signal.savedMask !== undefined) {
      task.signal.blocked = task.signal.savedMask;
      task.signal.savedMask = undefined;
    }
  }

  /** Run the call again; without the arch hook (or for a restart block) it fails with EINTR. */
  private restart(task: Task, call: { nr: number; args: bigint[] }, resumePc: bigint, _value: bigint): void {
    const arch = this.d.arch;
    const e = task.mm.engine;
    if (this.abi.restartSyscall) this.abi.restartSyscall(e, resumePc, { nr: call.nr, args: call.args });
    else arch.writeSyscallResult(e, -BigInt(E.EINTR));
  }

  /**
   * handle_signal: build the frame (on the alternate stack when asked and not already on it),
   * then signal_delivered: block sa_mask and the signal itself (unless SA_NODEFER), reset the
   * action for SA_RESETHAND. A frame that cannot be written kills with SIGSEGV (force_sigsegv).
   */
  private setupFrame(task: Task, ks: KSignal): boolean {
    const { arch } = this.d;
    const abi = this.abi;
    const e = task.mm.engine;
    const sig = ks.info.signo;
    const ts = task.signal;
    const userSig = this.num.fromGeneric(sig);
    const sp = arch.getSp(e);
    const alt = ts.altstack;
    const onAlt = (ks.ka.flags & SA.ONSTACK) !== 0 && alt.size !== 0n && !alt.onStack(sp);
    const saved = ts.savedMask ?? ts.blocked;
    // i386 and ppc32 build the old-style frame for a handler without SA_SIGINFO (setup_frame).
    const setup = !(ks.ka.flags & SA.SIGINFO) && abi.setupFrame ? abi.setupFrame : abi.setupRtFrame;
    const ok =
      setup?.call(abi, e, task.mm, {
        sig: userSig,
        handler: ks.ka.handler,
        // sparc64: ka_restorer, rt_sigaction's own argument; elsewhere sa_restorer with SA_RESTORER.
        restorer: ks.ka.kaRestorer ?? (ks.ka.flags & SA.RESTORER ? ks.ka.restorer : undefined),
        flags: this.num.flagsFromGeneric(ks.ka.flags, ks.ka.unknownFlags),
        info: encodeSiginfo(ks.info, userSig, arch.wordSize, arch.endian === 'little'),
        savedMask: this.num.setFromGeneric(saved),
        ucStack: alt.record(sp),
        altStackTop: onAlt ? alt.sp + alt.size : undefined,
        ...(ks.info.addr !== undefined && { faultAddr: ks.info.addr }),
      }) ?? false;
    if (!ok) {
      const why = abi.setupRtFrame ? 'its signal frame could not be written' : 'this target has no signal frames yet';
      this.d.killProcess(task.process, GSIG.SIGSEGV, `uniprobe: ${task.process.comm}[${task.tid}]: SIGSEGV (${why}: handler for signal ${userSig} at 0x${ks.ka.handler.toString(16)}, sp 0x${sp.toString(16)})`);
      return false;
    }
    if (onAlt && alt.flags & SS_AUTODISARM) alt.reset();
    ts.savedMask = undefined;
    let block = ks.ka.mask;
    if (!(ks.ka.flags & SA.NODEFER)) block |= sigbit(sig);
    ts.blocked = (ts.blocked | block) & ~UNBLOCKABLE;
    if (ks.ka.flags & SA.RESETHAND) {
      const cur = task.process.signal.sighand.action[sig]!;
      task.process.signal.sighand.action[sig] = { ...cur, handler: SIG_DFL };
    }
    return true;
  }

  /** (rt_)sigreturn: registers, mask and (rt) sigaltstack from the frame; a bad frame is SIGSEGV. */
  private sigreturn(task: Task, mm: import('../../mm/mm.js').Mm, rt: boolean): boolean {
    const e = mm.engine;
    const sp = this.d.arch.getSp(e);
    const r = rt ? this.abi.rtSigreturn?.(e, mm) : this.abi.sigreturn?.(e, mm);
    if (!r) {
      this.d.killProcess(task.process, GSIG.SIGSEGV, `uniprobe: ${task.process.comm}[${task.tid}]: SIGSEGV (${rt ? 'rt_sigreturn' : 'sigreturn'} with a bad frame, sp 0x${sp.toString(16)})`);
      return false;
    }
    task.signal.blocked = this.num.setToGeneric(r.mask) & ~UNBLOCKABLE;
    // restore_altstack: only a fault reading it fails sigreturn; EPERM & co. are ignored.
    if ('stack' in r) task.signal.altstack.set((r as SigreturnResult).stack, this.d.arch.getSp(e), this.abi.minSigStkSz);
    return true;
  }

  /**
   * A sleeping call that a signal interrupts (signal_pending in its wait loop): undo its sleep
   * and say what it returns — bytes already moved by a pipe write, else its -ERESTART* code.
   */
  interruptSleep(task: Task, name: string, cleanup: () => void): bigint {
    // futex_wait with a timeout leaves through a restart block (EINTR for any handler).
    const timed = name.startsWith('futex') && task.futexWaiter?.cancelTimer !== undefined;
    cleanup();
    if (timed) return -BigInt(ERESTART_RESTARTBLOCK);
    const done = task.ioProgress;
    task.ioProgress = undefined;
    if (done !== undefined && done > 0) return BigInt(done);
    if (EINTR_ONLY.has(name)) return -BigInt(E.EINTR);
    return -BigInt(RESTART_CODE[name] ?? ERESTARTSYS);
  }

  // --- fork and exec ---------------------------------------------------------------------------

  /**
   * copy_process: the mask is inherited, pending signals are not; a new thread group copies the
   * action table (CLONE_SIGHAND shares it); the alternate stack is kept except for a thread
   * (CLONE_VM without CLONE_VFORK) — a new thread must not share its parent's.
   */
  fork(parent: Task, child: Task, flags: bigint, newGroup: boolean): void {
    const CLONE_VM = 0x100n;
    const CLONE_SIGHAND = 0x800n;
    const CLONE_VFORK = 0x4000n;
    child.signal.blocked = parent.signal.blocked;
    if ((flags & CLONE_VM) === 0n || (flags & CLONE_VFORK) !== 0n) child.signal.altstack = parent.signal.altstack.copy();
    if (newGroup) {
      const cp = child.process.signal;
      cp.sighand = flags & CLONE_SIGHAND ? parent.process.signal.sighand : parent.process.signal.sighand.copy();
      cp.exitSignal = this.num.toGeneric(Number(flags & 0xffn));
    }
  }

  /** exec: handlers back to default (ignored stay ignored), no alternate stack; mask and pending stay. */
  exec(task: Task): void {
    const ps = task.process.signal;
    ps.sighand = ps.sighand.copy();
    ps.sighand.flushHandlers();
    task.signal.altstack.reset();
  }
}

const lowestBit = (s: bigint): number => {
  let n = 1;
  while (!(s & 1n)) {
    s >>= 1n;
    n++;
  }
  return n;
};
