/**
 * Trap dispatch: what happens when the guest leaves the instruction stream. The arch layer's
 * trap hooks call the `TrapSink` here, synchronously inside the guest run:
 * - a user system call enters the guest kernel at `entry_syscall` (a syscall frame on the task's
 *   kernel stack), and HC_SYSRET returns to user mode with the result;
 * - a hypercall from guest kernel code reaches the host half of a system call (`syscalls.ts`,
 *   the process table), or completes a host-initiated kernel call (`kernel-calls.ts`);
 * - a breakpoint goes to the probe cores in order (the die-notifier chain), else SIGTRAP;
 * - a fault, a run that ended in a CPU exception, or a kernel oops kills the process with one
 *   line naming signal, address and PC.
 *
 * Rule: nothing here changes mappings while the engine runs (Mm's invariant). A mapping system
 * call's host half is deferred (`state.deferred`) and runs in `mappingSyscall` after the run, with
 * mmap_lock held for write in the task's process context and the hooks' locks after it (trylock:
 * a busy lock puts the task to sleep, to retry).
 */
import type { GuestFault, TrapAction, TrapSink } from '../../arch/types.js';
import { SIG } from '../../arch/types.js';
import { UC_ERR } from '../emu/unicorn.js';
import { writeAll } from '../host-io.js';
import { UniprobeError } from '../errors.js';
import { E, err } from './errno.js';
import { HC, KSYS } from './kernel-image.js';
import type { KernelCalls } from './kernel-calls.js';
import type { BreakpointHit, Machine, MachineOptions, MappingLockHook } from './machine.js';
import type { MachineState } from './machine-state.js';
import { signalName, type ProcessTable } from './process-table.js';
import { UNBLOCKABLE } from './signal/numbers.js';
import { formatSyscallCall, formatSyscallResult, syscallReturns } from './strace.js';
import { installExec } from './execve.js';
import { handlers, normaliseSyscall, type SyscallHost, type SyscallResult } from './syscalls.js';
import type { Task } from './task.js';

/**
 * System calls that change the caller's mappings. Their host half runs after the current run has
 * stopped (Mm's invariant: no mapping change while the engine runs); the kernel code around them
 * runs as usual.
 */
const MAPPING_SYSCALLS = new Set(['mmap', 'mmap2', 'munmap', 'mprotect', 'brk', 'mremap', 'clone', 'fork', 'vfork']);

const MEM_FAULTS: Record<number, string> = {
  [UC_ERR.READ_UNMAPPED]: 'read of unmapped memory',
  [UC_ERR.WRITE_UNMAPPED]: 'write to unmapped memory',
  [UC_ERR.FETCH_UNMAPPED]: 'fetch from unmapped memory',
  [UC_ERR.READ_PROT]: 'read of protected memory',
  [UC_ERR.WRITE_PROT]: 'write to read-only memory',
  [UC_ERR.FETCH_PROT]: 'fetch from non-executable memory',
};

const ACCESS: Record<number, string> = {
  [UC_ERR.READ_UNMAPPED]: 'read of',
  [UC_ERR.WRITE_UNMAPPED]: 'write to',
  [UC_ERR.FETCH_UNMAPPED]: 'fetch from',
  [UC_ERR.READ_PROT]: 'read of',
  [UC_ERR.WRITE_PROT]: 'write to',
  [UC_ERR.FETCH_PROT]: 'fetch from',
};

export interface TrapDispatchDeps {
  readonly machine: Machine;
  readonly opts: Pick<MachineOptions, 'strace' | 'stdout' | 'stderr'>;
  readonly state: MachineState;
  readonly procs: ProcessTable;
  readonly calls: KernelCalls;
}

export class TrapDispatch {
  /** What the system calls' host halves see of the machine. */
  readonly syscallHost: SyscallHost;

  constructor(private readonly d: TrapDispatchDeps) {
    this.syscallHost = this.makeSyscallHost();
  }

  /** The sink every engine's trap hooks report to (Arch.installTrapHooks). */
  readonly sink: TrapSink = {
    isKernelText: (pc) => this.d.machine.kernel.isText(pc),
    isKernelCode: (pc) => this.d.machine.kernel.isText(pc) || this.d.machine.kernel.isInsnArea(pc),
    readKernelWord: (addr, out) => this.d.machine.kernel.readWordInto(addr, out),
    syscall: (resumePc) => this.enterSyscall(resumePc),
    hypercall: () => this.hypercall(),
    breakpoint: (addr, pcAfter) => this.breakpoint(addr, pcAfter),
    fault: (f, pc) => {
      const task = this.d.state.current;
      if (!task) return { stop: true };
      this.deliverFault(task, f, pc);
      return { stop: true };
    },
    memory: () => {
      const task = this.d.state.current;
      if (!task) throw new UniprobeError('INTERNAL', 'guest memory asked for outside a run');
      return task.mm;
    },
    signalMask: {
      get: () => {
        const task = this.d.state.current;
        return task ? this.d.procs.signals.num.setFromGeneric(task.signal.blocked) : 0n;
      },
      set: (userSet) => {
        const task = this.d.state.current;
        if (!task) return false;
        const sc = this.d.procs.signals;
        task.signal.blocked = sc.num.setToGeneric(userSet) & ~UNBLOCKABLE;
        return sc.deliverable(task) !== 0n;
      },
    },
  };

  // --- breakpoints ---------------------------------------------------------------------------

  private breakpoint(addr: bigint, pcAfter: bigint): TrapAction {
    const { machine, state } = this.d;
    const task = state.current!;
    // The die-notifier chain of Linux's trap handler: kprobes, then uprobes, get their chance.
    // One hit for the whole chain (a handler may keep it past the trap: it is never reused).
    const hit: BreakpointHit = { task, cpu: state.currentCpu!.id, addr, pcAfter, engine: task.mm.engine, mem: task.mm };
    const handlers = machine.breakpointHandlers;
    for (let i = 0; i < handlers.length; i++) {
      const action = handlers[i]!(hit);
      if (action) return action;
    }
    // No probe owns this trap: it is the program's own breakpoint, SIGTRAP as Linux delivers it.
    this.deliverFault(task, { signal: SIG.SIGTRAP, reason: 'trace/breakpoint trap' }, addr);
    return { stop: true };
  }

  // --- system call entry and return ------------------------------------------------------------

  /** The syscall frame's words (kernel function, number, arguments), reused by every entry. */
  private readonly frameWords: bigint[] = new Array<bigint>(8).fill(0n);

  private enterSyscall(resumePc: bigint): TrapAction {
    const { machine, opts } = this.d;
    const task = this.d.state.current!;
    const mm = task.mm;
    const e = mm.engine;
    const arch = machine.arch;
    const kernel = machine.kernel;
    const req = arch.readSyscall(e);
    const raw = arch.syscallName(req.nr) ?? `syscall_${req.nr}`;
    const { name, args } = normaliseSyscall(raw, req.args);
    task.syscall = { name, nr: req.nr, args };
    if (opts.strace) {
      const call = `[${task.tid}] ${formatSyscallCall(name, args, { read: (a, n) => e.tryMemRead(a, n) }, arch.wordSize * 8)}`;
      // Printed when the call returns (with its result); one that never returns, when entered.
      if (syscallReturns(name)) task.straceCall = call;
      else opts.strace(`${call} = ?`);
    }
    task.userRegs = arch.saveSyscallRegs(e);
    task.userSp = arch.getSp(e);
    task.userResumePc = resumePc;
    task.inKernel = true;
    mm.boundary?.setUser(false);
    // struct syscall_frame just below the top of the task's kernel stack.
    const w = arch.wordSize;
    const frame = (task.kstackTop - BigInt(8 * w) - 64n) & ~0xfn;
    const words = this.frameWords;
    const n = 2 + Math.min(6, args.length);
    words[0] = BigInt(KSYS[name] ?? 0);
    words[1] = BigInt(req.nr);
    for (let i = 2; i < n; i++) words[i] = args[i - 2]!;
    mm.writeWords(frame, words, n);
    arch.enterKernelFunction(e, mm, {
      pc: kernel.entrySyscall,
      stackTop: frame,
      args: [frame],
      returnTo: kernel.entryCallReturn,
      kernel: kernel.elf,
    });
    return { pc: kernel.entrySyscall };
  }

  private sysret(task: Task, value: bigint): TrapAction {
    const { machine, opts, state } = this.d;
    const e = task.mm.engine;
    const arch = machine.arch;
    if (task.straceCall !== undefined) {
      opts.strace?.(`${task.straceCall}${formatSyscallResult(task.syscall?.name ?? '', value, arch.wordSize * 8)}`);
      task.straceCall = undefined;
    }
    if (!task.userRegs) return this.kernelOops(task, 'HC_SYSRET without a system call');
    arch.restoreSyscallRegs(e, task.userRegs);
    arch.setPc(e, task.userResumePc);
    const call = task.syscall ?? { name: '', nr: -1, args: [] };
    task.inKernel = false;
    task.mm.boundary?.setUser(true);
    task.syscall = undefined;
    task.userRegs = undefined;
    // The result, a restart, rt_sigreturn's frame, and the handlers of signals due (their frames).
    this.d.procs.signals.syscallExit(task, call, BigInt.asIntN(arch.wordSize * 8, value), task.userResumePc, task.mm);
    if (task.state === 'dead') return { stop: true };
    const pc = arch.getPc(e);
    // A CLONE_VFORK parent sleeps here until its child execs or exits (ProcessTable.releaseVfork).
    if (task.vforkWaiting) {
      task.state = 'blocked';
      return { pc, stop: true };
    }
    // A long slice of a lone task ends when the system call gave it company (clone, a wake-up);
    // a signal frame written over copy-on-write pages is complete only once the run has stopped;
    // a task that a stop signal stopped (job control) runs no further.
    if ((state.loneQuantum && !state.runsAlone()) || task.mm.unsettled || task.state !== 'runnable') return { pc, stop: true };
    return { pc };
  }

  // --- hypercalls ----------------------------------------------------------------------------

  private hypercall(): TrapAction | undefined {
    const task = this.d.state.current!;
    const kcall = this.d.calls.hypercall(task);
    if (kcall) return kcall;
    const e = task.mm.engine;
    const arch = this.d.machine.arch;
    const a = new Array<bigint>(6);
    for (let i = 0; i < 6; i++) a[i] = arch.readCallArg(e, task.mm, i);
    const nr = Number(a[0]!);
    const sys = task.syscall;
    let r: SyscallResult;
    switch (nr) {
      case HC.SYSRET:
        return this.sysret(task, a[1]!);
      case HC.SYSCALL:
      case HC.CLONE:
        if (!sys) return this.kernelOops(task, `hypercall ${nr} outside a system call`);
        if (MAPPING_SYSCALLS.has(sys.name)) {
          this.d.state.deferred = { task, name: sys.name, args: sys.args };
          return { stop: true };
        }
        r = this.hostSyscall(task, sys.name, sys.args);
        break;
      case HC.VFS_WRITE:
        r = this.hostSyscall(task, 'write', a.slice(1, 4));
        break;
      case HC.VFS_READ:
        r = this.hostSyscall(task, 'read', a.slice(1, 4));
        break;
      case HC.VFS_WRITEV:
        r = this.hostSyscall(task, 'writev', a.slice(1, 4));
        break;
      case HC.VFS_READV:
        r = this.hostSyscall(task, 'readv', a.slice(1, 4));
        break;
      case HC.OPENAT:
        r = this.hostSyscall(task, 'openat', a.slice(1, 5));
        break;
      case HC.CLOSE:
        r = this.hostSyscall(task, 'close', a.slice(1, 2));
        break;
      case HC.EXIT:
        // do_exit()/do_group_exit() pass the wait status, as in Linux: (status & 0xff) << 8.
        r = { kind: 'exit', code: Number((a[1]! >> 8n) & 0xffn), group: a[2]! !== 0n };
        break;
      case HC.WAIT4:
        r = this.hostSyscall(task, 'wait4', a.slice(1, 5));
        break;
      case HC.SCHEDULE:
        if (task.waitingForChild) task.state = 'blocked';
        return { stop: true };
      default:
        return this.kernelOops(task, `unknown hypercall ${nr}`);
    }
    return this.completeHypercall(task, r, this.lastCall);
  }

  /** Deliver a host result to the kernel code that made the hypercall. */
  private completeHypercall(task: Task, r: SyscallResult, call?: { name: string; args: bigint[] }): TrapAction | undefined {
    const e = task.mm.engine;
    const arch = this.d.machine.arch;
    if (typeof r === 'bigint') {
      arch.writeReturnValue(e, r);
      return task.state === 'dead' || task.mm.unsettled ? { stop: true } : undefined;
    }
    switch (r.kind) {
      case 'exit':
        this.d.procs.exitTask(task, r.code, r.group);
        return { stop: true };
      case 'block':
        // A signal to take ends the wait (do_wait's signal_pending check): -ERESTARTSYS.
        if (this.d.procs.signals.deliverable(task)) {
          task.waitingForChild = false;
          arch.writeReturnValue(e, this.d.procs.signals.interruptSleep(task, call?.name ?? 'wait4', () => {}));
          return undefined;
        }
        // kernel_wait4 sees -EAGAIN and calls schedule(), which blocks the task.
        task.waitingForChild = true;
        arch.writeReturnValue(e, err(E.EAGAIN));
        return undefined;
      case 'yield':
        arch.writeReturnValue(e, 0n);
        return { stop: true };
      case 'exec':
        // The old image goes away under the running engine: replace it once the run has stopped.
        this.d.state.afterStopWork.push(() => installExec(this.d, task, r.image));
        return { stop: true };
      case 'wait': {
        // Sleep on the wait queue; the call runs again when woken (retryCall), still inside the
        // kernel function that made the hypercall, as pipe_read sleeps inside vfs_read.
        if (!call) return this.kernelOops(task, 'a sleeping call without its arguments');
        if (this.d.procs.signals.deliverable(task)) {
          // signal_pending in the wait loop: the sleep ends, the call returns -ERESTART* (or the
          // bytes a pipe write already moved).
          arch.writeReturnValue(e, this.d.procs.signals.interruptSleep(task, call.name, () => this.abandonSleep(task)));
          return task.mm.unsettled ? { stop: true } : undefined;
        }
        task.pendingCall = call;
        task.state = 'blocked';
        const unsubscribe = r.subscribe(() => {
          unsubscribe();
          if (task.pendingCall === call && task.state === 'blocked') task.state = 'runnable';
        });
        return { stop: true };
      }
    }
  }

  /** Undo the bookkeeping of a sleep a signal cut short (futex queue, timers, poll deadline). */
  private abandonSleep(task: Task): void {
    const w = task.futexWaiter;
    if (w) {
      this.d.machine.futex.remove(w);
      w.cancelTimer?.();
      task.futexWaiter = undefined;
    }
    task.sleepUntil = undefined;
    task.pollDeadline = undefined;
    task.signal.suspended = false;
    if (task.signal.waitSet !== undefined) {
      // rt_sigtimedwait's set goes back to blocked.
      task.signal.blocked = task.signal.waitBlocked;
      task.signal.waitSet = undefined;
    }
  }

  /** A woken task's sleeping call, run again before it goes on (Machine.runQuantum). */
  retryCall(task: Task): void {
    const call = task.pendingCall!;
    task.pendingCall = undefined;
    this.completeHypercall(task, this.hostSyscall(task, call.name, call.args), call);
  }

  /** The last host call made (a call that sleeps is retried with it). */
  private lastCall: { name: string; args: bigint[] } | undefined;

  private hostSyscall(task: Task, name: string, args: bigint[]): SyscallResult {
    this.lastCall = { name, args };
    const h = handlers[name];
    // The host half copies to and from user memory only: a kernel address is EFAULT (access_ok).
    return task.mm.asUser(() => {
      const archResult = this.d.machine.arch.archSyscall(name, task.mm.engine, args, task.mm);
      if (archResult !== undefined) return archResult;
      if (!h) return err(E.ENOSYS);
      return h({ host: this.syscallHost, task }, args);
    });
  }

  /**
   * The host half of a mapping system call, with mmap_lock held for write (and the hooks' locks):
   * true when done, false when a lock was busy (the task must sleep and retry).
   */
  mappingSyscall(task: Task, name: string, args: bigint[]): boolean {
    const machine = this.d.machine;
    const ctx = task.sysctx;
    const mm = task.mm;
    const lock = machine.mmLocks.mmapLock(mm);
    if (!lock.tryDownWrite(ctx, name)) return false;
    const taken: MappingLockHook[] = [];
    const release = (): void => {
      for (const h of taken.reverse()) h.unlock(ctx, name, mm);
      lock.upWrite(ctx, name);
    };
    for (const h of machine.mappingLockHooks) {
      if (!h.tryLock(ctx, name, mm)) {
        release();
        return false;
      }
      taken.push(h);
    }
    machine.mappingContext = ctx;
    try {
      const r = this.hostSyscall(task, name, args);
      this.completeHypercall(task, r);
      mm.settle();
      if (mm.oom) this.d.procs.oomKill(mm);
    } finally {
      machine.mappingContext = undefined;
      release();
    }
    return true;
  }

  private makeSyscallHost(): SyscallHost {
    const { machine, opts, procs } = this.d;
    return {
      arch: machine.arch,
      rng: { bytes: (n) => machine.rng.bytes(n) },
      write: (fd, bytes) => {
        const sink = fd === 1 ? opts.stdout : opts.stderr;
        if (sink) sink(bytes);
        else writeAll(fd, bytes);
      },
      limits: machine.limits,
      futex: machine.futex,
      timers: machine.timers,
      get vfs() {
        return machine.vfs; // built after the dispatcher (Machine's constructor)
      },
      inodeFor: (p, contents) => machine.inodeFor(p, contents),
      clone: (task, flags, stack, ptid, ctid, tls) => procs.clone(task, flags, stack, ptid, ctid, tls),
      wait4: (task, pid, statusPtr, options) => procs.wait4(task, pid, statusPtr, options),
      kill: (task, pid, sig) => procs.kill(task, pid, sig),
      signals: procs.signals,
      clockNs: () => machine.clockNs(),
      memoryUsed: () => machine.memory.used,
      liveTasks: () => procs.tasks.filter((t) => t.state !== 'dead').length,
      cpuCount: () => machine.cpuCount,
      hasTask: (tid) => procs.tasks.some((t) => t.tid === tid && t.state !== 'dead'),
      processOf: (pid) => procs.processes.find((p) => p.pid === pid && !p.zombie),
      isGroupLeader: (pid) => procs.processes.some((p) => p.pgid === pid && !p.zombie),
      groupInSession: (pgid, sid) => procs.processes.some((p) => p.pgid === pgid && p.sid === sid && !p.zombie),
      uname: { sysname: 'Linux', nodename: 'uniprobe', release: '6.1.0-uniprobe', version: '#1 SMP', machine: machine.arch.unameMachine },
    };
  }

  // --- faults and oopses -----------------------------------------------------------------------

  /** A guest kernel bug (a hypercall that makes no sense here): kill the process, name the place. */
  kernelOops(task: Task, why: string): TrapAction {
    const machine = this.d.machine;
    const pc = machine.arch.getPc(task.mm.engine);
    this.d.procs.killProcess(task.process, SIG.SIGKILL, `uniprobe: guest kernel oops: ${why} at ${machine.kernelSymbolize(pc)}; killing ${task.process.comm}[${task.tid}]`);
    return { stop: true };
  }

  /** A run that ended in a CPU exception: the signal Linux's trap handler would send. */
  faultFromRun(task: Task, ucErr: number): void {
    const pc = this.d.machine.arch.getPc(task.mm.engine);
    const mf = this.d.state.lastMemFault;
    let f: GuestFault;
    switch (ucErr) {
      case UC_ERR.READ_UNMAPPED:
      case UC_ERR.WRITE_UNMAPPED:
      case UC_ERR.FETCH_UNMAPPED:
      case UC_ERR.READ_PROT:
      case UC_ERR.WRITE_PROT:
      case UC_ERR.FETCH_PROT:
      {
        // A user access the boundary refused (src/emu/boundary.ts): a kernel address. Linux
        // answers SEGV_MAPERR there (x86 do_kern_addr_fault, ppc's address >= TASK_SIZE check:
        // bad_area_nosemaphore); otherwise SEGV_MAPERR for no mapping, SEGV_ACCERR for a mapping
        // that forbids the access.
        const kernelAddr = mf && task.mm.boundary?.translateFault(mf.addr);
        if (kernelAddr !== undefined) f = { signal: SIG.SIGSEGV, reason: `user-mode ${ACCESS[ucErr]} kernel memory`, addr: kernelAddr, code: 1 };
        else f = { signal: SIG.SIGSEGV, reason: MEM_FAULTS[ucErr]!, addr: mf?.addr, code: ucErr === UC_ERR.READ_PROT || ucErr === UC_ERR.WRITE_PROT || ucErr === UC_ERR.FETCH_PROT ? 2 : 1 };
        break;
      }
      case UC_ERR.READ_UNALIGNED:
      case UC_ERR.WRITE_UNALIGNED:
      case UC_ERR.FETCH_UNALIGNED:
        f = { signal: SIG.SIGBUS, reason: 'unaligned access', code: 1 /* BUS_ADRALN */, addr: mf?.addr };
        break;
      case UC_ERR.INSN_INVALID:
        f = { signal: SIG.SIGILL, reason: 'invalid instruction', code: 2 /* ILL_ILLOPN, si_addr = the PC */ };
        break;
      default:
        f = { signal: SIG.SIGILL, reason: `unhandled CPU exception (${task.mm.engine.strerror(ucErr)})` };
    }
    this.deliverFault(task, f, pc);
  }

  /**
   * A fault's signal (force_sig_fault): to the program's handler when it has one for it and does
   * not block it, else the default action, which kills the process with one line saying where.
   */
  deliverFault(task: Task, f: GuestFault, pc: bigint): void {
    const machine = this.d.machine;
    // A fault while stepping a probe's copy (uprobes' abort_xol): the signal is reported at the
    // probed instruction, not in the XOL slot, and the step is abandoned.
    for (const h of machine.faultFixups) pc = h(task, pc) ?? pc;
    if (!task.inKernel && this.d.procs.signals.forceFault(task, f, pc) === 'queued') return;
    const where = task.inKernel ? ` in the guest kernel (${machine.kernelSymbolize(pc)}) during ${task.syscall?.name ?? 'a system call'}` : '';
    const addr = f.addr !== undefined ? ` at address 0x${f.addr.toString(16)}` : '';
    this.d.procs.killProcess(
      task.process,
      f.signal,
      `uniprobe: ${task.process.comm}[${task.tid}]: ${signalName(f.signal)} (${f.reason})${addr}, pc 0x${pc.toString(16)}${where}`,
    );
  }
}
