/**
 * A guest machine: one target, N vCPUs, processes and tasks, the guest kernel image, and the
 * scheduler that runs tasks on vCPUs in bounded quanta, deterministically from a seed. This file
 * is the composition and the run loop; its parts live beside it:
 * - trap-dispatch.ts — syscall entry, hypercalls, sysret, breakpoints, faults and oopses;
 * - kernel-calls.ts — host- and trap-initiated calls into guest kernel functions;
 * - process-table.ts — pids, clone, wait4, kill, exit, reap, OOM kill;
 * - machine-state.ts — the state they share (current task and vCPU, loaded registers, mms).
 *
 * Execution model (DESIGN.md):
 * - One Unicorn engine per mm. A quantum is one `uc_emu_start` bounded by an instruction count:
 *   Unicorn's own (exact, ~3x slower code) while tasks share the machine, the native block
 *   counter's (block granularity) for a task alone. Faults are exact either way (src/emu/mmu.ts).
 * - A user system call traps into the arch hook, which enters the guest kernel image at
 *   `entry_syscall` *inside the same run*; kernel C code runs (kprobes can hit it), reaches the
 *   host through hypercalls, and HC_SYSRET returns to user mode. A run is only stopped when the
 *   task cannot go on (it exits, blocks in wait4, yields, faults) or the quantum is used up.
 * - Same seed ⇒ same choices of task, vCPU and quantum length ⇒ same interleaving.
 * - Kernel text is patched and mappings change only between runs (`current` is unset then).
 */
import { runResult, type RunResult } from './run-result.js';
import { writeAll } from '../host-io.js';
import { realpathSync, statSync } from 'node:fs';
import { UniprobeError } from '../errors.js';
import { UC_ERR, UC_HOOK, type Engine } from '../emu/unicorn.js';
import { readElfFileSync, readFileBytesSync } from '../elf/index.js';
import { archFor } from '../../arch/index.js';
import type { Arch, GuestFault, Target, TrapAction } from '../../arch/types.js';
import { SIG } from '../../arch/types.js';
import { Mm } from '../mm/mm.js';
import { Inode } from '../mm/inode.js';
import { MmLocks } from '../mm/locking.js';
import { MmuNotifiers } from '../mm/notifier.js';
import { E } from './errno.js';
import { loadElf } from './exec.js';
import { KernelImage } from './kernel-image.js';
import { Rng } from './rng.js';
import { Process, Task } from './task.js';
import { MemCharge } from '../mm/charge.js';
import { checkInt, resolveLimits, type Limits } from './limits.js';
import { setupKernelLocking, type KernelLocking } from '../mm/kernel-locking.js';
import { buildView, showHostPath, vfsContext, type View, type Vfs } from '../vfs/index.js';
import { hostNode } from '../vfs/node.js';
import { procfsSource } from './procfs.js';
import { FutexTable } from './futex.js';
import { Timers } from './timers.js';
import { SyncWorld, type ExecContext, type GuestWork, type Kthread } from '../sync/index.js';
import { Vcpu, type MachineState } from './machine-state.js';
import type { MachineOptions } from './machine-options.js';
import { ProcessTable } from './process-table.js';
import { TrapDispatch } from './trap-dispatch.js';
import { KernelCalls } from './kernel-calls.js';
import { RunClock } from './run-clock.js';

export { Vcpu } from './machine-state.js';
export { signalName } from './process-table.js';

export type { MachineOptions } from './machine-options.js';

/** A breakpoint trap as the probe cores see it. */
export interface BreakpointHit {
  readonly task: Task;
  readonly cpu: number;
  /** The breakpoint's own address (the arch layer already took the trap's PC offset off). */
  readonly addr: bigint;
  readonly pcAfter: bigint;
  readonly engine: Engine;
  readonly mem: Mm;
}

/**
 * A lock a mapping system call takes after mmap_lock (uprobes: dup_mmap_sem for fork). Trylock
 * style: the syscall path runs between guest runs and cannot wait inside; when a lock is busy the
 * task sleeps and retries (Task.pendingMapping).
 */
export interface MappingLockHook {
  tryLock(ctx: ExecContext, syscall: string, mm: Mm): boolean;
  unlock(ctx: ExecContext, syscall: string, mm: Mm): void;
}

export type { RunResult } from './run-result.js';

/** A lone task's slice by default (MachineOptions.loneSlice): restarts cost nothing, the event loop turns. */
const LONE_SLICE = 1 << 24;
const MAX_BLOCK_INSNS = 512; // QEMU's TCG_MAX_INSNS: how far an uncounted run may overshoot
const UNCOUNTED = process.env.UNIPROBE_COUNT_ALL !== '1'; // =1: count every run (to compare)

export class Machine {
  readonly arch: Arch;
  readonly target: Target;
  readonly kernel: KernelImage;
  readonly cpus: Vcpu[];
  readonly rng: Rng;
  /** Scheduler of kernel threads, lockdep, RCU, slab: the kernel's synchronisation state. */
  readonly sync: SyncWorld;
  /**
   * Breakpoint-trap handlers (kprobes, uprobes), asked in order; the first that returns an action
   * owns the trap. They run inside the guest run, in `hit.task.kctx` (atomic, cannot sleep).
   */
  readonly breakpointHandlers: Array<(hit: BreakpointHit) => TrapAction | undefined> = [];
  /** The locks of every mm and file (mmap_lock, i_mmap_rwsem…), for kernel threads. */
  readonly mmLocks: MmLocks;
  /** src/mm/kernel-locking.ts: lock-order priming and the rmap's i_mmap_rwsem. */
  readonly locking: KernelLocking;
  /** mmu notifier subscriptions of every mm. */
  readonly notifiers: MmuNotifiers;
  /** Called when a task dies, before its trap context is unwound (probe cores reset per-CPU state). */
  readonly taskExitHooks: Array<(t: Task) => void> = [];
  /** Every new address space (exec, fork) before anything is mapped in it (uprobes hook its mmaps). */
  readonly mmAttachHooks: Array<(mm: Mm) => void> = [];
  /** clone/fork: after the child task exists, before it runs (uprobe_copy_process). */
  readonly forkHooks: Array<(parent: Task, child: Task) => void> = [];
  /** Locks mapping system calls take inside mmap_lock (see MappingLockHook). */
  readonly mappingLockHooks: MappingLockHook[] = [];
  /**
   * The context that holds mmap_lock (write) for the mapping operation running right now — an
   * exec or a guest mapping system call — so hooks called from inside Mm (uprobe_mmap) can take
   * their locks in the right context. Undefined otherwise.
   */
  mappingContext: ExecContext | undefined;
  /**
   * Called when a task faults, before the signal is reported: may give the PC the report should
   * name (uprobes: a fault in the XOL slot is the probed instruction's, arch_uprobe_abort_xol).
   */
  readonly faultFixups: Array<(task: Task, pc: bigint) => bigint | undefined> = [];
  /** Signal delivery to a task is held while one of these says so (uprobe_deny_signal). */
  readonly signalHoldHooks: Array<(task: Task) => boolean> = [];
  private readonly opts: Required<Pick<MachineOptions, 'maxInsns' | 'quantum' | 'loneSlice'>> & MachineOptions;
  private readonly inodes = new Map<string, Inode>();
  /** The guest's filesystem (src/vfs): a view of the host and the guest's in-memory changes. */
  readonly vfs: Vfs;
  /** Futex wait queues, and timers on the guest clock (futex timeouts, nanosleep). */
  readonly futex = new FutexTable();
  readonly timers = new Timers(() => this.insnsNow());
  private readonly clock = new RunClock(); // the clock inside a run (run-clock.ts)
  private readonly view: View;
  /** Every live address space (the same set as `st.mms`). */
  private readonly mms: Set<Mm>;
  /** What the machine's parts share (machine-state.ts). */
  private readonly st: MachineState;
  private readonly procs: ProcessTable;
  private readonly traps: TrapDispatch;
  private readonly calls: KernelCalls;
  insns = 0;
  quanta = 0;
  /** Mapping system calls that had to sleep because a kernel thread held mmap_lock. */
  mappingSleeps = 0;
  private closed = false;
  /** The guest's resource limits, after validation. */
  readonly limits: Limits;
  /** Guest memory charged against limits.maxMemory (used, peak, refusals). */
  readonly memory: MemCharge;

  constructor(opts: MachineOptions) {
    const arch = archFor(opts.target);
    if (!arch) throw new UniprobeError('ARCH', `target ${opts.target} is not supported yet`);
    this.arch = arch;
    this.target = opts.target;
    // `?? default`, not spread: an explicit `undefined` option must not erase the default.
    this.opts = { ...opts, maxInsns: opts.maxInsns ?? 2e9, quantum: opts.quantum ?? 20000, loneSlice: opts.loneSlice ?? LONE_SLICE };
    // Checked here, as USAGE errors: a NaN or 0 would otherwise surface later as a raw RangeError.
    checkInt('maxInsns', this.opts.maxInsns, 1, Number.MAX_SAFE_INTEGER);
    checkInt('quantum', this.opts.quantum, 1, 1e9);
    checkInt('loneSlice', this.opts.loneSlice, 1, 1e9);
    if (opts.seed !== undefined) checkInt('seed', opts.seed, 0, Number.MAX_SAFE_INTEGER);
    this.limits = resolveLimits(opts);
    this.memory = new MemCharge(this.limits.maxMemory);
    const ncpu = opts.cpus ?? 1;
    if (!Number.isInteger(ncpu) || ncpu < 1 || ncpu > 64) throw new UniprobeError('USAGE', `--cpus must be between 1 and 64, not ${ncpu}`);
    this.cpus = Array.from({ length: ncpu }, (_, i) => new Vcpu(i));
    this.rng = new Rng(opts.seed ?? 1);
    this.sync = new SyncWorld(ncpu, this.rng);
    this.mmLocks = new MmLocks(this.sync);
    // lockdep primed with the kernel's lock order; i_mmap_rwsem around every rmap change.
    this.locking = setupKernelLocking(this);
    this.notifiers = new MmuNotifiers(this.mmLocks);
    this.kernel = new KernelImage(arch, opts.kernelImage);
    this.mms = new Set<Mm>();
    this.st = {
      current: undefined,
      currentCpu: undefined,
      loneQuantum: false,
      deferred: undefined,
      lastMemFault: undefined,
      mms: this.mms,
      loaded: new Map<Mm, Task>(),
      afterStopWork: [],
      newMm: () => this.newMm(),
      attachMm: (mm) => this.attachMm(mm),
      runsAlone: () => this.runsAlone(),
      runQuantum: (task, cpu) => this.runQuantum(task, this.cpus[cpu]!),
      pinnedCpus: () => this.pinnedCpus(),
      report: (line) => this.report(line),
    };
    this.procs = new ProcessTable({ arch, kernel: this.kernel, limits: this.limits, sync: this.sync, state: this.st, taskExitHooks: this.taskExitHooks, forkHooks: this.forkHooks, futex: this.futex, signalHoldHooks: this.signalHoldHooks });
    const st = this.st;
    const procs = this.procs;
    // The dispatcher and the kernel calls refer to each other (HC_CALL_DONE, a kernel oops).
    let traps: TrapDispatch | undefined;
    this.calls = new KernelCalls({ machine: this, state: st, procs, maxInsns: this.opts.maxInsns, oops: (t, why) => traps!.kernelOops(t, why) });
    traps = new TrapDispatch({ machine: this, opts: this.opts, state: st, procs, calls: this.calls });
    this.traps = traps;
    this.view = buildView({
      paths: opts.allowFiles ?? [],
      ...(opts.root !== undefined && { root: opts.root }),
      ...(opts.cwd !== undefined && { cwd: opts.cwd }),
      rng: { bytes: (n) => this.rng.bytes(n) },
      ctx: vfsContext({ now: () => this.clockNs(), charge: this.memory }),
      proc: procfsSource({
        arch,
        processes: () => this.procs.processes,
        current: () => this.st.current,
        uid: process.getuid?.() ?? 0,
        gid: process.getgid?.() ?? 0,
      }),
    });
    this.vfs = this.view.vfs;
  }

  /** Instructions retired so far, also inside a run (at block granularity there: run-clock.ts). */
  insnsNow(): number { return this.clock.insns(this.insns); } // prettier-ignore

  /** The deterministic clock: nanoseconds since the run began — instructions retired, plus idle jumps. */
  clockNs(): bigint {
    return this.timers.now();
  }

  // --- files, address spaces, exec ------------------------------------------------------------

  inodeFor(realPath: string, contents?: Uint8Array): Inode {
    let ino = this.inodes.get(realPath);
    if (!ino) {
      // A file the guest opens is read whole into the page cache: check its size against the
      // memory limit before reading it into host memory at all.
      if (!contents && statSync(realPath).size > this.limits.maxMemory - this.memory.used) {
        throw new UniprobeError('MM', `${realPath}: larger than the guest memory left`, { errno: E.ENOMEM });
      }
      const bytes = contents ?? readElfBytes(realPath);
      ino = new Inode(realPath, bytes, this.arch.layout.pageSize, this.memory);
      this.inodes.set(realPath, ino);
    }
    return ino;
  }

  private newMm(): Mm {
    const mm = new Mm(this.arch, this.kernel.mappings());
    mm.charge = this.memory;
    this.attachMm(mm);
    return mm;
  }

  private attachMm(mm: Mm): void {
    this.mms.add(mm);
    this.notifiers.attach(mm);
    for (const h of this.mmAttachHooks) h(mm);
    this.arch.installTrapHooks(mm.engine, this.traps.sink);
    mm.engine.hookMemInvalid(
      (type, addr) => {
        this.st.lastMemFault = { type, addr };
        return false;
      },
      UC_HOOK.MEM_READ_UNMAPPED | UC_HOOK.MEM_WRITE_UNMAPPED | UC_HOOK.MEM_FETCH_UNMAPPED | UC_HOOK.MEM_READ_PROT | UC_HOOK.MEM_WRITE_PROT | UC_HOOK.MEM_FETCH_PROT,
    );
  }

  /** Load a static ELF program into a new process (the first one becomes init, pid 1). */
  spawn(path: string, argv: string[] = [path], envp: string[] = []): Process {
    if (this.closed) throw new UniprobeError('USAGE', 'machine is closed');
    const elf = readElfFileSync(path);
    if (elf.target !== this.target) {
      throw new UniprobeError('ELF', `${path}: an ELF for ${elf.target}, but the machine is ${this.target}`);
    }
    const real = realpathSync(path);
    // The program and each argument that names a host path are visible to the guest.
    showHostPath(this.view, path);
    for (const a of argv.slice(1)) if (a.length > 0 && !a.startsWith('-')) showHostPath(this.view, a);
    const inode = this.inodeFor(real, elf.bytes);
    const mm = this.newMm();
    try {
      const proc = new Process(this.procs.allocPid(), mm, real, this.limits.maxFiles);
      proc.comm = (path.split('/').pop() ?? path).slice(0, 15);
      proc.fs = this.view.fs.clone();
      proc.exeNode = hostNode(this.vfs.ctx, undefined, '', real);
      proc.argv = argv;
      proc.envp = envp;
      const task = this.procs.newTask(proc);
      proc.fds.set(0, { kind: 'stdio', hostFd: 0 });
      proc.fds.set(1, { kind: 'stdio', hostFd: 1 });
      proc.fds.set(2, { kind: 'stdio', hostFd: 2 });
      // exec maps the program with mmap_lock held for write (uprobe_mmap runs under it).
      const lock = this.mmLocks.mmapLock(mm);
      if (!lock.tryDownWrite(task.sysctx, 'exec')) throw new UniprobeError('INTERNAL', 'a new mm has a busy mmap_lock');
      this.mappingContext = task.sysctx;
      let start;
      try {
        start = loadElf(this.arch, mm, elf, inode, argv, envp, this.rng);
      } finally {
        this.mappingContext = undefined;
        lock.upWrite(task.sysctx, 'exec');
      }
      this.arch.startRegisters(mm.engine, { entry: start.entry, sp: start.sp, elf });
      this.st.loaded.set(mm, task);
      this.procs.processes.push(proc);
      this.procs.init ??= proc;
      return proc;
    } catch (e) {
      this.mms.delete(mm);
      mm.destroy();
      throw e;
    }
  }

  // --- the run loop --------------------------------------------------------------------------

  /**
   * Run until every process has exited (or the budget ends it). Synchronous: for machines with
   * no kernel threads; with kernel threads use `runAsync`.
   */
  run(): RunResult {
    if (this.closed) throw new UniprobeError('USAGE', 'machine is closed');
    for (;;) {
      const r = this.step(false);
      if (r === 'ran') continue;
      if (typeof r !== 'string') {
        throw new UniprobeError('USAGE', 'kernel threads are running on this machine: use runAsync()');
      }
      return this.result(r);
    }
  }

  /** Run guests and kernel threads, interleaved by the seeded scheduler, until all are done. */
  async runAsync(): Promise<RunResult> {
    if (this.closed) throw new UniprobeError('USAGE', 'machine is closed');
    let lastYield = Date.now();
    for (;;) {
      const r = this.step(false);
      if (r === 'ran') {
        // A long guest run must not starve the host's event loop (timers, pipes, a test
        // runner's messages): let it turn every 50 ms. Guest time does not depend on it.
        if (Date.now() - lastYield > 50) {
          await new Promise((ok) => setImmediate(ok));
          lastYield = Date.now();
        }
        continue;
      }
      if (typeof r !== 'string') {
        await r;
        continue;
      }
      return this.result(r);
    }
  }

  /**
   * Start a kernel thread that runs concurrently with the guests in `runAsync` (tests: register
   * a probe while other vCPUs hit it). It may only await the machine's sync primitives.
   */
  kthread<T>(name: string, fn: (self: Kthread<T>) => Promise<T>, opts: { cpu?: number } = {}): Kthread<T> {
    return this.sync.spawn(name, fn, opts);
  }

  /**
   * Run `fn` as a kernel thread to completion with the guest programs paused — as a module's init
   * would run before the program starts. Guest tasks pinned mid-probe still finish their step
   * (they are not preemptible), so a grace period can always end. Resolves with `fn`'s result.
   */
  async kernelCall<T>(name: string, fn: (self: Kthread<T>) => Promise<T>): Promise<T> {
    if (this.closed) throw new UniprobeError('USAGE', 'machine is closed');
    const t = this.sync.spawn(name, fn);
    while (t.state !== 'done') {
      const r = this.step(true);
      if (r === 'ran') continue;
      if (typeof r !== 'string') {
        await r;
        continue;
      }
      const hung = this.sync.sched.hungTasks();
      throw new UniprobeError('SYNC', `${t.name} cannot finish: ${hung.join('; ') || 'nothing left to run'}`);
    }
    return t.done;
  }

  /**
   * One scheduling step: a guest quantum or a kernel-thread step (returned as a promise), or why
   * the machine stopped. `frozen`: only pinned guest tasks may run.
   */
  private step(frozen: boolean): 'ran' | 'exit' | 'deadlock' | 'budget' | Promise<void> {
    this.procs.reapMms();
    const work = frozen ? this.frozenWork : this.guestWork;
    if (work.runnable() && this.insns >= this.opts.maxInsns) {
      this.report(`uniprobe: stopped after ${this.insns} instructions (--max-insns ${this.opts.maxInsns}): the guest did not exit`);
      for (const p of this.processes) if (p.alive) this.procs.killProcess(p, SIG.SIGKILL, undefined);
      this.procs.reapMms();
      return 'budget';
    }
    if (!frozen) this.timers.expire();
    const s = this.sync.sched.chooseStep(work);
    if (!s) {
      // Every task sleeps: if one sleeps with a timeout, jump the clock to it (virtual time).
      if (!frozen && this.timers.idleUntilNext()) return 'ran';
      const hung = this.sync.sched.hungTasks();
      if (!frozen && this.tasks.some((t) => t.state === 'blocked')) {
        this.report(`uniprobe: every task is blocked (deadlock); stopping`);
        return 'deadlock';
      }
      if (hung.length) {
        for (const line of hung) this.report(`uniprobe: ${line}`);
        return 'deadlock';
      }
      return 'exit';
    }
    if (s.kind === 'kthread') return this.sync.sched.runThread(s).then(() => this.wakeMappingWaiters());
    work.runQuantum(s.cpu);
    return 'ran';
  }

  /** A kernel thread ran (and may have dropped mmap_lock): sleeping mapping syscalls retry. */
  private wakeMappingWaiters(): void {
    for (const t of this.tasks) if (t.pendingMapping && t.state === 'blocked') t.state = 'runnable';
  }

  /**
   * Work a trap handler needs done once the engine has stopped (a mapping change such as the
   * uprobes XOL area). The handler returns `{ stop: true }`; `fn` runs right after the run, before
   * the task goes on in the same quantum.
   */
  runAfterStop(fn: () => void): void {
    this.st.afterStopWork.push(fn);
  }

  private result(reason: 'exit' | 'deadlock' | 'budget'): RunResult {
    return runResult(this.procs.init, reason, this.insns, this.quanta);
  }

  /** Guest quanta as the sync scheduler sees them. */
  private readonly guestWork: GuestWork = {
    runnable: () => this.tasks.some((t) => t.state === 'runnable' && t.pinnedCpu === undefined),
    pinnedCpus: () => this.pinnedCpus(),
    runQuantum: (cpu) => {
      const pinned = this.tasks.find((t) => t.pinnedCpu === cpu && t.state === 'runnable');
      if (pinned) return this.runQuantum(pinned, this.cpus[cpu]!);
      const runnable = this.tasks.filter((t) => t.state === 'runnable' && t.pinnedCpu === undefined);
      this.runQuantum(runnable[this.rng.below(runnable.length)]!, this.cpus[cpu]!);
    },
  };

  /** While guests are paused (kernelCall): only tasks pinned mid-probe go on. */
  private readonly frozenWork: GuestWork = {
    runnable: () => false,
    pinnedCpus: () => this.pinnedCpus(),
    runQuantum: (cpu) => this.guestWork.runQuantum(cpu),
  };

  private pinnedCpus(): Set<number> {
    const s = new Set<number>();
    for (const t of this.tasks) if (t.pinnedCpu !== undefined && t.state === 'runnable') s.add(t.pinnedCpu);
    return s;
  }

  /** One runnable guest task and no kernel thread: no preemption is needed (see runQuantum). */
  private runsAlone(): boolean {
    let runnable = 0;
    for (const t of this.tasks) if (t.state === 'runnable' && ++runnable > 1) return false;
    return this.sync.sched.live().length === 0;
  }

  private loadTask(task: Task): void {
    const mm = task.mm;
    const prev = this.st.loaded.get(mm);
    if (prev === task) return;
    const e = mm.engine;
    if (prev && prev.state !== 'dead') prev.regs = this.arch.snapshot(e);
    if (task.cloneStart) {
      this.procs.applyCloneStart(task, task.cloneStart);
      task.cloneStart = undefined;
    } else if (task.regs) {
      this.arch.restore(e, task.regs);
    }
    this.st.loaded.set(mm, task);
  }

  private runQuantum(task: Task, cpu: Vcpu): void {
    const mm = task.mm;
    this.loadTask(task);
    if (task.pendingCall) {
      // Woken from a sleep on a wait queue (a pipe): run the call again before running on.
      this.traps.retryCall(task);
      if (task.state !== 'runnable') return;
    }
    if (task.pendingMapping) {
      // Woken from a sleep on mmap_lock: retry the system call before running on.
      const p = task.pendingMapping;
      if (!this.traps.mappingSyscall(task, p.name, p.args)) {
        task.state = 'blocked';
        return;
      }
      task.pendingMapping = undefined;
      if (task.state !== 'runnable') return;
    }
    // Back to user mode from the scheduler: signals due run their handlers first.
    if (!task.inKernel && !this.procs.signals.deliver(task)) return;
    this.st.current = task;
    this.st.currentCpu = cpu;
    cpu.current = task;
    task.lastCpu = cpu.id;
    task.kctx.cpu = cpu.id;
    // Quantum lengths vary with the seed so that different seeds give different interleavings.
    // A task alone on the machine has nobody to be preempted for: it runs a long slice, bounded
    // only so the host's event loop turns (runAsync) and --max-insns is checked. When a system
    // call gives it company (clone, a wake-up: sysret ends the run), the quantum goes on as an
    // ordinary one of `q` instructions, so the interleaving from there is the one a counted
    // quantum gives.
    const q = Math.max(1, Math.floor(this.opts.quantum / 2) + this.rng.below(this.opts.quantum));
    this.st.loneQuantum = this.st.runsAlone();
    this.arch.interruptReturn?.(mm.engine);
    const budgetLeft = Math.max(1, this.opts.maxInsns - this.insns);
    let count = Math.min(this.st.loneQuantum ? Math.max(q, this.opts.loneSlice) : q, budgetLeft);
    let quantumRetired = 0;
    // One quantum may take several runs: a run ends early for work that cannot be done while
    // the engine executes (a COW copy, a mapping system call); the task then goes on.
    for (let restarts = 0; ; restarts++) {
      this.st.lastMemFault = undefined;
      let result;
      let retired: number;
      try {
        const at = this.arch.runStart?.(mm.engine) ?? { pc: this.arch.getPc(mm.engine), replay: 0 };
        // User mode unless in a system call or in kernel code (a probe handler's kernel call).
        mm.boundary?.setUser(!task.inKernel && !mm.isKernelAddress(at.pc));
        // Alone, where the slice ends (a block boundary) is unobservable: no count (Engine.run), unless
        // the engine already counts (a switch flushes: docs/unicorn.md); else exact stops.
        const uncounted = UNCOUNTED && this.st.loneQuantum && !mm.engine.counting && this.opts.maxInsns - this.insns > count + at.replay + MAX_BLOCK_INSNS;
        this.clock.begin(mm.engine, at.replay);
        result = mm.engine.run(at.pc, count + at.replay, () => this.arch.getPc(mm.engine), uncounted, (pc) => this.arch.setPc(mm.engine, pc));
        this.clock.end();
        // Instructions replayed to rebuild the CPU state (sparc64 delay slots) ran before.
        retired = Math.max(0, result.retired - at.replay);
      } catch (e) {
        this.clock.end();
        this.st.current = undefined;
        cpu.current = undefined;
        // An exception from our own hook code: the engine is consistent (the hook was unwound
        // safely), the guest process cannot go on.
        this.procs.killProcess(task.process, SIG.SIGKILL, undefined);
        throw e;
      }
      const cowResolved = mm.settle();
      if (mm.oom) this.procs.oomKill(mm);
      const deferred = this.st.deferred;
      this.st.deferred = undefined;
      if (deferred && task.state !== 'dead' && !this.traps.mappingSyscall(deferred.task, deferred.name, deferred.args)) {
        // mmap_lock is held by a kernel thread (a probe registration): sleep until it is dropped.
        deferred.task.pendingMapping = { name: deferred.name, args: deferred.args };
        this.mappingSleeps++;
        deferred.task.state = 'blocked';
      }
      const afterStop = this.st.afterStopWork.splice(0);
      for (const fn of afterStop) if (task.state !== 'dead') fn();
      this.insns += retired;
      task.insns += retired;
      // Unicorn's own count (no native counter) restarts with the whole quantum, as it always did.
      quantumRetired += retired;
      if (mm.engine.countsNatively) count = Math.max(1, count - retired);
      let companyArrived = false;
      if (this.st.loneQuantum && !this.st.runsAlone()) {
        this.st.loneQuantum = false;
        companyArrived = q > quantumRetired;
        count = Math.min(count, Math.max(1, q - quantumRetired));
      }
      const fault = result.err !== UC_ERR.OK && !(result.err === UC_ERR.WRITE_PROT && cowResolved);
      if (fault && task.state !== 'dead') this.traps.faultFromRun(task, result.err);
      // execve replaced the task's mm: the quantum ends with the old engine.
      if (task.mm !== mm) break;
      if (fault || task.state !== 'runnable' || (!deferred && !cowResolved && afterStop.length === 0 && !companyArrived) || restarts >= 1000) break;
    }
    this.st.loneQuantum = false;
    this.quanta++;
    task.quanta++;
    this.opts.onQuantum?.(this);
    this.st.current = undefined;
    this.st.currentCpu = undefined;
    cpu.current = undefined;
    // Still between a probe trap and the end of its step: not preemptible, stays on this vCPU.
    const atomic = task.state === 'runnable' && (task.kctx.preempt > 0 || task.kctx.rcuDepth > 0);
    task.pinnedCpu = atomic ? cpu.id : undefined;
    if (!atomic) task.kctx.cpu = undefined;
  }

  /** send_sig_info from kernel code (a probe handler's bpf_send_signal): generic `sig` to one task. */
  sendSignal(task: Task, sig: number): void {
    this.procs.signals.send({ signo: sig, code: 0x80 /* SI_KERNEL */ }, task.process, task);
  }

  // --- kernel text (patched only between runs) ------------------------------------------------

  /**
   * Write kernel text or insn-slot bytes (kprobe arm/disarm, slot fill) and flush every engine's
   * translation cache for the range — the emulator's flush_icache_range. Only between runs: a
   * write inside a running hook would not reach already-translated code.
   */
  patchKernelText(addr: bigint, bytes: Uint8Array): void {
    if (this.st.current) throw new UniprobeError('INTERNAL', `kernel text patched at 0x${addr.toString(16)} while ${this.st.current.process.comm} runs`);
    const t = this.kernel.textBytes(addr, bytes.length);
    t.bytes.set(bytes, t.at);
    for (const mm of this.mms) if (!mm.destroyed) mm.engine.flushTranslations(addr, addr + BigInt(bytes.length));
  }

  /** Read kernel text or slot-area bytes as they are now (breakpoints included). */
  readKernelText(addr: bigint, len: number): Uint8Array {
    const t = this.kernel.textBytes(addr, len);
    return t.bytes.slice(t.at, t.at + len);
  }

  kernelSymbolize(addr: bigint): string {
    const loc = this.kernel.elf.symbolAt(addr);
    return loc ? `${loc.symbol.name}+0x${loc.offset.toString(16)}` : `0x${addr.toString(16)}`;
  }

  // --- kernel calls (kernel-calls.ts) --------------------------------------------------------

  /**
   * Call guest kernel function `fn` (a symbol or an address) with `args` from the host, as a
   * KUnit test calls its target, and resolve with its return value (the full return register).
   * It runs in a kernel-only task of its own (`comm`) on a fresh, zeroed kernel stack, on
   * whichever vCPU the seeded scheduler picks; guest programs stay paused meanwhile, as in
   * `kernelCall`, while kernel threads and guest tasks pinned mid-probe go on. Rejects when the
   * call does not return (a fault in the function kills its task).
   */
  async callKernelFunction(fn: string | bigint, args: Array<bigint | number> = [], opts: { comm?: string } = {}): Promise<bigint> {
    if (this.closed) throw new UniprobeError('USAGE', 'machine is closed');
    return this.calls.callKernelFunction(fn, args, opts.comm);
  }

  /**
   * From a trap hook of `task` (a probe handler): call kernel function `fn(args)` on this vCPU
   * before the trapped code goes on, then `resume(retval)` and continue where the TrapAction it
   * returns says (its `pc`; a `stop` there is not honoured — the run goes on at once).
   *
   * The call runs on the task's kernel stack below the trapped frame (a margin covers every
   * target's red zone and sparc64's stack bias) with the trapped context unchanged: still
   * atomic, so the task stays on this vCPU. The CPU state is saved and put back between runs,
   * never inside a hook, because only then is all of it readable (sparc64's %ccr). To get
   * there from the hook the task is sent to the hypercall stub (its first instruction is the
   * hypercall trap), whose hook stops the run: a stop asked for in a hook that also moved the PC
   * — as a kprobe's post-step fixup does — would be dropped by Unicorn.
   */
  callFromTrap(task: Task, fn: bigint, args: bigint[], resume: (ret: bigint) => TrapAction): TrapAction {
    return this.calls.callFromTrap(task, fn, args, resume);
  }

  /**
   * force_sig from a trap handler (uprobes: SIGILL for a trampoline hit with no return instance,
   * SIGTRAP for a foreign breakpoint): the default action, which kills the process. The handler
   * then ends the run ({ stop: true }).
   */
  forceSignal(task: Task, f: GuestFault, pc: bigint): void {
    this.traps.deliverFault(task, f, pc);
  }

  // --- processes (process-table.ts), reports, teardown ----------------------------------------

  get processes(): Process[] {
    return this.procs.processes;
  }

  get tasks(): Task[] {
    return this.procs.tasks;
  }

  private report(line: string): void {
    if (this.opts.report) this.opts.report(line);
    else writeAll(2, Buffer.from(line + '\n'));
  }

  /** Free every engine, page and kernel buffer. The machine cannot run afterwards. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const mm of this.mms) mm.destroy();
    this.mms.clear();
    for (const ino of this.inodes.values()) ino.release();
    this.inodes.clear();
    this.kernel.release();
  }

  get cpuCount(): number {
    return this.cpus.length;
  }

  /** The vCPU running right now (inside a hook), if any. */
  get runningCpu(): Vcpu | undefined {
    return this.st.currentCpu;
  }
}

function readElfBytes(path: string): Uint8Array {
  // Inodes for files opened by the guest: plain bytes through the ELF module's checked reader.
  return readFileBytesSync(path);
}
