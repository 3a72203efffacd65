/**
 * The process table: pids, processes and tasks, and their life cycle — clone (fork, vfork,
 * threads), wait4, kill, exit and exit_group, the zombie/reap hand-off to the parent, the OOM
 * kill, and the destruction of address spaces nobody uses any more.
 *
 * Who may change what: everything here runs between guest runs or inside a trap hook of the
 * running task (the host half of a system call); a task's kernel stack is freed at retirement,
 * its mm only once no engine runs it (`reapMms`). A dying task leaves any RCU read-side section
 * it was in (a probe trap cut short by exit_group), so no grace period waits for a dead task.
 */
import type { Arch } from '../../arch/types.js';
import { SIG } from '../../arch/types.js';
import type { Mm } from '../mm/mm.js';
import type { Engine } from '../emu/unicorn.js';
import type { SyncWorld } from '../sync/index.js';
import { E, err } from './errno.js';
import type { KernelImage } from './kernel-image.js';
import { taskFits, type Limits } from './limits.js';
import type { MachineState } from './machine-state.js';
import type { SyscallResult } from './syscalls.js';
import { Process, Task, type CloneStart } from './task.js';
import { SignalCore } from './signal/core.js';
import { genericSignalName } from './signal/numbers.js';

/** A generic signal number's name (the one-line reports). */
export const signalName = genericSignalName;

const CLONE = { VM: 0x100n, VFORK: 0x4000n, THREAD: 0x10000n, SETTLS: 0x80000n, PARENT_SETTID: 0x100000n, CHILD_CLEARTID: 0x200000n, CHILD_SETTID: 0x1000000n };

/** What the process table needs from its machine. */
export interface ProcessTableDeps {
  readonly arch: Arch;
  readonly kernel: KernelImage;
  readonly limits: Limits;
  readonly sync: SyncWorld;
  readonly state: MachineState;
  /** Called when a task dies, before its trap context is unwound (Machine.taskExitHooks). */
  readonly taskExitHooks: ReadonlyArray<(t: Task) => void>;
  /** Futex wait queues (a dying thread's clear_child_tid wakes one waiter). */
  readonly futex: import('./futex.js').FutexTable;
  /** clone/fork: after the child task exists, before it runs (Machine.forkHooks). */
  readonly forkHooks: ReadonlyArray<(parent: Task, child: Task) => void>;
  /** Signal delivery is held while one of these says so (Machine.signalHoldHooks). */
  readonly signalHoldHooks: ReadonlyArray<(t: Task) => boolean>;
}

/** CLONE_FS (include/uapi/linux/sched.h): share cwd and umask with the parent. */
const CLONE_FS = 0x200n;

export class ProcessTable {
  readonly processes: Process[] = [];
  readonly tasks: Task[] = [];
  /** The first process spawned; its exit is the machine's result. */
  init: Process | undefined;
  private nextPid = 1;

  /** Sending and delivering signals (src/kernel/signal). */
  readonly signals: SignalCore;

  constructor(private readonly d: ProcessTableDeps) {
    this.signals = new SignalCore({
      arch: d.arch,
      processes: () => this.processes,
      killProcess: (p, sig, line) => this.killProcess(p, sig, line),
      uid: process.getuid?.() ?? 0,
      holdHooks: d.signalHoldHooks,
      notifyWaiters: (p) => this.wakeWaiters(p),
    });
  }

  allocPid(): number {
    return this.nextPid++;
  }

  /** A task of `proc` with a kernel stack of its own (the first task takes the process's pid). */
  newTask(proc: Process): Task {
    const task = new Task(proc.tasks.length === 0 ? proc.pid : this.nextPid++, proc);
    const ks = this.d.kernel.allocStack();
    task.kstackIndex = ks.index;
    task.kstackTop = ks.top;
    proc.tasks.push(task);
    this.tasks.push(task);
    return task;
  }

  /**
   * copy_process's new thread group: it inherits the parent's program, arguments, comm, process
   * group and session, shares its open file descriptions, and shares (CLONE_FS) or copies its cwd
   * and umask.
   */
  private childProcess(parent: Process, mm: Mm, flags: bigint): Process {
    const proc = new Process(this.nextPid++, mm, parent.exePath, parent.fds.limit);
    proc.comm = parent.comm;
    proc.fs = flags & CLONE_FS ? parent.fs : parent.fs.clone();
    proc.argv = parent.argv;
    proc.envp = parent.envp;
    proc.exeNode = parent.exeNode;
    proc.pgid = parent.pgid;
    proc.sid = parent.sid;
    proc.parent = parent;
    parent.children.add(proc);
    this.processes.push(proc);
    for (const [fd, f] of parent.fds) proc.fds.set(fd, f);
    return proc;
  }

  /** Forget a task that never became part of a process's life (a host-initiated kernel call). */
  dropTask(task: Task): void {
    const proc = task.process;
    proc.tasks.splice(proc.tasks.indexOf(task), 1);
    this.tasks.splice(this.tasks.indexOf(task), 1);
  }

  // --- clone, wait4, kill --------------------------------------------------------------------

  clone(task: Task, flags: bigint, stack: bigint, ptid: bigint, ctid: bigint, tls: bigint): bigint {
    const { arch, state } = this.d;
    const parent = task.process;
    const e = task.mm.engine;
    if (!task.userRegs) return err(E.EINVAL);
    // RLIMIT_NPROC (copy_process: EAGAIN), and the kernel stacks the arena holds.
    if (!taskFits(this.tasks, this.d.limits.maxTasks, this.d.kernel.freeStackCount)) return err(E.EAGAIN);
    let setTls: ((e: Engine) => void) | undefined;
    if (flags & CLONE.SETTLS) {
      const t = arch.cloneTls ? arch.cloneTls(tls, task.mm) : (ce: Engine) => arch.setThreadPointer(ce, tls, task.mm);
      if (typeof t === 'bigint') return t;
      setTls = t;
    }
    const start: CloneStart = {
      full: arch.snapshot(e),
      user: task.userRegs,
      resumePc: task.userResumePc,
      stack,
      setTls,
      parentTid: task.tid,
    };
    let proc: Process;
    let child: Task;
    if (flags & CLONE.VM) {
      if (flags & CLONE.THREAD) {
        proc = parent;
      } else {
        proc = this.childProcess(parent, parent.mm, flags);
      }
      task.mm.users++;
      child = this.newTask(proc);
      child.cloneStart = start;
      this.signals.fork(task, child, flags, proc !== parent);
      for (const h of this.d.forkHooks) h(task, child);
    } else {
      const mm = task.mm.fork();
      state.attachMm(mm);
      proc = this.childProcess(parent, mm, flags);
      child = this.newTask(proc);
      this.applyCloneStart(child, start);
      state.loaded.set(mm, child);
      this.signals.fork(task, child, flags, true);
      for (const h of this.d.forkHooks) h(task, child);
    }
    const tid = BigInt(child.tid);
    const u32 = (mm: Mm, addr: bigint, v: bigint): void => {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, Number(v), arch.endian === 'little');
      try {
        mm.write(addr, b);
      } catch {
        /* a bad pointer is the program's problem, as in Linux (put_user fails silently here) */
      }
    };
    if (flags & CLONE.PARENT_SETTID) u32(parent.mm, ptid, tid);
    if (flags & CLONE.CHILD_SETTID) u32(child.mm, ctid, tid);
    if (flags & CLONE.CHILD_CLEARTID) child.clearChildTid = ctid;
    if (flags & CLONE.VFORK && !(flags & CLONE.THREAD)) {
      // glibc's posix_spawn and system() run the child on a stack in the parent's memory and
      // unmap it once clone returns: the parent must not go on before the child execs or exits.
      proc.vforkParent = task;
      task.vforkWaiting = true;
    }
    return tid;
  }

  /** A clone child's first registers: its parent's at the system call, then the child's differences. */
  applyCloneStart(task: Task, s: CloneStart): void {
    const arch = this.d.arch;
    const e = task.mm.engine;
    arch.restore(e, s.full);
    arch.restoreSyscallRegs(e, s.user);
    arch.setPc(e, s.resumePc);
    arch.setupCloneChild(e, s.stack, s.parentTid);
    s.setTls?.(e);
  }

  wait4(task: Task, pid: number, statusPtr: bigint, options: number): SyscallResult {
    const proc = task.process;
    const match = [...proc.children].filter((c) => !c.reaped && (pid <= 0 || c.pid === pid));
    if (match.length === 0) return err(E.ECHILD);
    const z = match.find((c) => c.zombie);
    if (z) {
      if (statusPtr !== 0n) {
        const b = new Uint8Array(4);
        new DataView(b.buffer).setUint32(0, z.waitStatus, this.d.arch.endian === 'little');
        try {
          task.mm.write(statusPtr, b);
        } catch {
          return err(E.EFAULT);
        }
      }
      z.reaped = true;
      proc.children.delete(z);
      task.waitingForChild = false;
      return BigInt(z.pid);
    }
    // WUNTRACED / WCONTINUED: a stop or a continue not reported yet (wait_task_stopped/continued).
    const changed = match.find((c) => c.signal.report && options & (c.signal.report.kind === 'stopped' ? 2 : 8));
    if (changed) {
      const rep = changed.signal.report!;
      const status = rep.kind === 'stopped' ? ((rep.sig & 0xff) << 8) | 0x7f : 0xffff;
      if (statusPtr !== 0n) {
        const b = new Uint8Array(4);
        new DataView(b.buffer).setUint32(0, status, this.d.arch.endian === 'little');
        try {
          task.mm.write(statusPtr, b);
        } catch {
          return err(E.EFAULT);
        }
      }
      changed.signal.report = undefined;
      task.waitingForChild = false;
      return BigInt(changed.pid);
    }
    if (options & 1 /* WNOHANG */) return 0n;
    return { kind: 'block' };
  }

  /** kill(2); `sig` in the user's numbering. */
  kill(task: Task, pid: number, sig: number): bigint {
    return this.signals.kill(task, pid, sig);
  }

  // --- exit ----------------------------------------------------------------------------------

  /** do_exit (one task) or do_group_exit (every task of the process). */
  exitTask(task: Task, code: number, group: boolean): void {
    const proc = task.process;
    for (const t of group ? proc.tasks : [task]) this.retireTask(t);
    if (!proc.alive) {
      proc.exitCode = code;
      this.processExited(proc);
    }
  }

  retireTask(t: Task): void {
    if (t.state === 'dead') return;
    t.state = 'dead';
    if (t.clearChildTid !== 0n && t.process.mm.users > 1) {
      // mm_release: zero the thread id and wake one waiter on it (pthread_join sleeps there).
      try {
        t.mm.write(t.clearChildTid, new Uint8Array(4));
        this.d.futex.wake(t.mm, t.clearChildTid, 1);
      } catch {
        /* as in Linux: a bad clear_child_tid pointer is ignored */
      }
    }
    if (t.futexWaiter) this.d.futex.remove(t.futexWaiter);
    this.d.kernel.freeStack(t.kstackIndex);
    t.kstackIndex = -1;
    // Killed between a probe trap and its step (another thread's exit_group, a fault in the
    // slot): leave the read-side section so no grace period waits for a dead task.
    for (const h of this.d.taskExitHooks) h(t);
    while (t.kctx.rcuDepth > 0) this.d.sync.rcu.readUnlock(t.kctx);
    t.kctx.preempt = 0;
    t.kctx.cpu = undefined;
    t.pinnedCpu = undefined;
  }

  /**
   * Kill every task of `proc` with generic signal `sig` (its default action), reporting `line`
   * if given. The status word carries the target's own number for it.
   */
  killProcess(proc: Process, sig: number, line: string | undefined): void {
    if (proc.zombie) return;
    if (line) this.d.state.report(line);
    for (const t of proc.tasks) this.retireTask(t);
    proc.termSignal = this.signals.num.fromGeneric(sig);
    this.processExited(proc);
  }

  /** mm_release's complete_vfork_done: the vfork parent goes on (at exec, or at exit). */
  releaseVfork(proc: Process): void {
    const t = proc.vforkParent;
    if (!t) return;
    proc.vforkParent = undefined;
    t.vforkWaiting = false;
    if (t.state === 'blocked' && !t.pendingCall && !t.pendingMapping && !t.waitingForChild) t.state = 'runnable';
  }

  /** The process is a zombie now: its parent's wait4 may reap it; orphans go to init. */
  private processExited(proc: Process): void {
    if (proc.zombie) return;
    this.releaseVfork(proc);
    proc.zombie = true;
    proc.fds.clear();
    proc.mm.users--;
    const parent = proc.parent;
    // do_notify_parent: SIGCHLD, and the auto-reap of a child nobody will wait for.
    if (parent && parent.alive && this.signals.notifyParent(proc)) {
      proc.reaped = true;
      parent.children.delete(proc);
    }
    if (parent && parent.alive) {
      this.wakeWaiters(parent);
    } else {
      proc.reaped = true; // nobody to wait for it: init reaps it
    }
    for (const c of proc.children) {
      c.parent = undefined;
      if (c.zombie) c.reaped = true;
    }
  }

  /** A child changed state: the parent's tasks sleeping in wait4 look again. */
  private wakeWaiters(parent: Process): void {
    for (const t of parent.tasks) {
      // Also a parent between wait4's -EAGAIN and its schedule(): clearing the flag keeps that
      // schedule() from blocking after the wakeup already happened (a lost wakeup otherwise).
      if (t.waitingForChild) {
        if (t.state === 'blocked' && !t.signal.stopped) t.state = 'runnable';
        t.waitingForChild = false;
      }
    }
  }

  /** Destroy address spaces no task uses any more (never while their engine runs). */
  reapMms(): void {
    const { mms, loaded } = this.d.state;
    for (const mm of mms) {
      if (mm.users <= 0 && !mm.engine.isRunning) {
        mms.delete(mm);
        loaded.delete(mm);
        mm.destroy();
      }
    }
  }

  /**
   * A guest store needed a copy-on-write copy the memory limit refused: as the OOM killer would,
   * SIGKILL every process using the mm (its tasks never resume after the failed store).
   */
  oomKill(mm: Mm): void {
    mm.oom = false;
    for (const p of this.processes) {
      if (p.mm === mm && !p.zombie) {
        this.killProcess(p, SIG.SIGKILL, `Out of memory: Killed process ${p.pid} (${p.comm}): ${mm.oomReason}`);
      }
    }
  }
}
