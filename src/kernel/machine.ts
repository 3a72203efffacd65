/**
 * A guest machine: one target, N vCPUs, processes and tasks, the guest kernel image, and the
 * scheduler that runs tasks on vCPUs in bounded quanta, deterministically from a seed.
 *
 * Execution model (DESIGN.md):
 * - One Unicorn engine per mm. A quantum is one `uc_emu_start` with an instruction count.
 * - A user system call traps into the arch hook, which enters the guest kernel image at
 *   `entry_syscall` *inside the same run*; kernel C code runs (kprobes can hit it), reaches the
 *   host through hypercalls, and HC_SYSRET returns to user mode. A run is only stopped when the
 *   task cannot go on (it exits, blocks in wait4, yields, faults) or the quantum is used up.
 * - Same seed ⇒ same choices of task, vCPU and quantum length ⇒ same interleaving.
 */
import { formatSyscallCall, formatSyscallResult, syscallReturns } from './strace.js';
import { writeAll } from '../host-io.js';
import { realpathSync, statSync } from 'node:fs';
import { UniprobeError } from '../errors.js';
import { UC_ERR, UC_HOOK, type Engine } from '../emu/unicorn.js';
import { readElfFileSync, readFileBytesSync } from '../elf/index.js';
import { archFor } from '../../arch/index.js';
import type { Arch, GuestFault, Target, TrapAction, TrapSink } from '../../arch/types.js';
import { SIG } from '../../arch/types.js';
import { Mm } from '../mm/mm.js';
import { Inode } from '../mm/inode.js';
import { MmLocks } from '../mm/locking.js';
import { MmuNotifiers } from '../mm/notifier.js';
import { E, err } from './errno.js';
import { loadElf } from './exec.js';
import { HC, KERNEL_STACK_SIZE, KSYS, KernelImage } from './kernel-image.js';
import { Rng } from './rng.js';
import { handlers, normaliseSyscall, type SyscallHost, type SyscallResult } from './syscalls.js';
import { Process, Task, type CloneStart } from './task.js';
import { MemCharge } from '../mm/charge.js';
import { checkInt, resolveLimits, taskFits, type Limits } from './limits.js';
import { setupKernelLocking, type KernelLocking } from '../mm/kernel-locking.js';
import { SyncWorld, type ExecContext, type GuestWork, type Kthread } from '../sync/index.js';

/** Guest resource limits (maxMemory, maxTasks, maxFiles) are documented in src/kernel/limits.ts. */
export interface MachineOptions extends Partial<Limits> {
  target: Target;
  /** Number of vCPUs (default 1). */
  cpus?: number;
  /** Scheduler seed (default 1). */
  seed?: number;
  /** Stop runaway guests after about this many instructions (default 2e9). */
  maxInsns?: number;
  /** Mean quantum length in instructions (default 20000). */
  quantum?: number;
  stdout?: (bytes: Uint8Array) => void;
  stderr?: (bytes: Uint8Array) => void;
  /** One-line reports of guest faults and budget stops (default: to stderr). */
  report?: (line: string) => void;
  /** Path of the guest kernel image (default: fixtures/kernel/<target>/vmlinux). */
  kernelImage?: string;
  /** Host files the guest may open read-only, besides those named in its argv. */
  allowFiles?: string[];
  /** Called with one line per system call, in strace(1)'s shape (src/kernel/strace.ts). */
  strace?: (line: string) => void;
  /** Called after every quantum (progress displays); must be cheap and must not touch the guest. */
  onQuantum?: (m: Machine) => void;
}

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

export interface RunResult {
  /** What a shell would report: the exit code, 128 + signal, or 124 for a budget stop. */
  status: number;
  exitCode: number;
  signal: number;
  reason: 'exit' | 'signal' | 'budget' | 'deadlock';
  /** Instruction budget used: exact for quanta that ran to their length; a run cut short (block, exit, COW copy) counts in full, so this is an upper bound. */
  insns: number;
  quanta: number;
}

const SIGNAL_NAMES: Record<number, string> = { 4: 'SIGILL', 5: 'SIGTRAP', 6: 'SIGABRT', 7: 'SIGBUS', 8: 'SIGFPE', 9: 'SIGKILL', 11: 'SIGSEGV', 15: 'SIGTERM' };
export const signalName = (n: number): string => SIGNAL_NAMES[n] ?? `signal ${n}`;

/** Signals whose default action is to do nothing (SIGCHLD, SIGURG, SIGWINCH, SIGCONT). */
const IGNORED_BY_DEFAULT = new Set([17, 23, 28, 18]);

/**
 * System calls that change the caller's mappings. Their host half runs after the current run has
 * stopped (Mm's invariant: no mapping change while the engine runs); the kernel code around them
 * runs as usual.
 */
/**
 * Instructions a lone task runs per slice (runQuantum): long enough that restarting the engine
 * costs nothing measurable, short enough that the host event loop turns every few milliseconds.
 */
const LONE_SLICE = 1 << 24;

const MAPPING_SYSCALLS = new Set(['mmap', 'mmap2', 'munmap', 'mprotect', 'brk', 'mremap', 'clone', 'fork', 'vfork']);

const CLONE = { VM: 0x100n, VFORK: 0x4000n, THREAD: 0x10000n, SETTLS: 0x80000n, PARENT_SETTID: 0x100000n, CHILD_CLEARTID: 0x200000n, CHILD_SETTID: 0x1000000n };

export class Vcpu {
  readonly id: number;
  current: Task | undefined;
  constructor(id: number) {
    this.id = id;
  }
}

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
  /** Work a trap handler asked for that needs the engine stopped (runAfterStop). */
  private readonly afterStopWork: Array<() => void> = [];
  readonly processes: Process[] = [];
  readonly tasks: Task[] = [];
  private readonly opts: Required<Pick<MachineOptions, 'maxInsns' | 'quantum'>> & MachineOptions;
  private readonly inodes = new Map<string, Inode>();
  private readonly allowed = new Set<string>();
  private readonly loaded = new Map<Mm, Task>();
  private readonly mms = new Set<Mm>();
  private nextPid = 1;
  private current: Task | undefined;
  private currentCpu: Vcpu | undefined;
  private init: Process | undefined;
  private readonly syscallHost: SyscallHost;
  private lastMemFault: { type: number; addr: bigint } | undefined;
  /** A hypercall whose host half must run once the engine has stopped. */
  private deferred: { task: Task; name: string; args: bigint[] } | undefined;
  insns = 0;
  /** The running quantum is a lone task's long slice (runQuantum). */
  private loneQuantum = false;
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
    this.opts = { ...opts, maxInsns: opts.maxInsns ?? 2e9, quantum: opts.quantum ?? 20000 };
    // Checked here, as USAGE errors: a NaN or 0 would otherwise surface later as a raw RangeError.
    checkInt('maxInsns', this.opts.maxInsns, 1, Number.MAX_SAFE_INTEGER);
    checkInt('quantum', this.opts.quantum, 1, 1e9);
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
    this.syscallHost = this.makeSyscallHost();
    for (const f of opts.allowFiles ?? []) this.allowFile(f);
  }

  // --- processes -----------------------------------------------------------------------------

  private allowFile(path: string): void {
    try {
      this.allowed.add(realpathSync(path));
    } catch {
      /* not a host file: nothing to allow */
    }
  }

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
    this.arch.installTrapHooks(mm.engine, this.trapSink);
    mm.engine.hookMemInvalid(
      (type, addr) => {
        this.lastMemFault = { type, addr };
        return false;
      },
      UC_HOOK.MEM_READ_UNMAPPED | UC_HOOK.MEM_WRITE_UNMAPPED | UC_HOOK.MEM_FETCH_UNMAPPED | UC_HOOK.MEM_READ_PROT | UC_HOOK.MEM_FETCH_PROT,
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
    this.allowed.add(real);
    for (const a of argv.slice(1)) this.allowFile(a);
    const inode = this.inodeFor(real, elf.bytes);
    const mm = this.newMm();
    try {
      const proc = new Process(this.nextPid++, mm, real, this.limits.maxFiles);
      proc.comm = (path.split('/').pop() ?? path).slice(0, 15);
      const task = this.newTask(proc);
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
      this.arch.startRegisters(mm.engine, { entry: start.entry, sp: start.sp, entryToc: start.entryToc, elfv2: elf.ppc64Abi === 'elfv2' });
      this.loaded.set(mm, task);
      this.processes.push(proc);
      this.init ??= proc;
      return proc;
    } catch (e) {
      this.mms.delete(mm);
      mm.destroy();
      throw e;
    }
  }

  private newTask(proc: Process): Task {
    const task = new Task(proc.tasks.length === 0 ? proc.pid : this.nextPid++, proc);
    const ks = this.kernel.allocStack();
    task.kstackIndex = ks.index;
    task.kstackTop = ks.top;
    proc.tasks.push(task);
    this.tasks.push(task);
    return task;
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

  // --- host-initiated kernel calls -------------------------------------------------------------
  //
  // The kprobes self-tests call their targets directly (`kprobe_target(value)`), and a kprobe
  // handler may call kernel functions too. Both run the function on a vCPU: arguments the way
  // the guest kernel's C ABI passes them, return address `entry_call_return`, whose HC_CALL_DONE
  // hypercall hands the result back. Each task keeps a stack of such calls (a handler's call can
  // be nested inside a host call); HC_CALL_DONE completes the innermost one.

  /** Per task: what to do when each pending kernel call returns, innermost last. */
  private readonly kernelCalls = new WeakMap<Task, Array<(ret: bigint) => TrapAction>>();
  /** The mm kernel-call tasks run in (kernel mappings only, like a kthread's borrowed init_mm). */
  private kernelCallProc: Process | undefined;
  /** Bytes left free below a trapped stack pointer for a handler's call (red zones, stack bias). */
  private static readonly CALL_STACK_GAP = 512n;

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
    const name = typeof fn === 'string' ? fn : this.kernelSymbolize(fn);
    const pc = typeof fn === 'string' ? this.kernel.symbol(fn)?.codeAddress : fn;
    if (pc === undefined || !this.kernel.isText(pc)) throw new UniprobeError('KERNEL', `${name}: not a function of the guest kernel`);
    this.reapMms();
    if (!this.kernelCallProc || this.kernelCallProc.zombie) {
      this.kernelCallProc = new Process(this.nextPid++, this.newMm(), '[kernel]', this.limits.maxFiles);
    }
    const proc = this.kernelCallProc;
    proc.comm = (opts.comm ?? 'kcall').slice(0, 15);
    const task = this.newTask(proc);
    task.inKernel = true;
    // Linux zeroes a new kernel stack (THREADINFO_GFP has __GFP_ZERO): no stale return addresses
    // from an earlier task for an unwinder to find.
    const size = KERNEL_STACK_SIZE;
    this.kernel.stackArena.bytes.fill(0, task.kstackIndex * size, (task.kstackIndex + 1) * size);
    const e = proc.mm.engine;
    const prev = this.loaded.get(proc.mm);
    if (prev && prev.state !== 'dead') prev.regs = this.arch.snapshot(e);
    this.loaded.set(proc.mm, task);
    let result: bigint | undefined;
    this.pushKernelCall(task, (ret) => {
      result = ret;
      this.retireTask(task);
      return { stop: true };
    });
    this.enterKernelCall(task, pc, args.map(BigInt), task.kstackTop);
    const work: GuestWork = {
      runnable: () => task.state === 'runnable' && task.pinnedCpu === undefined,
      pinnedCpus: () => this.pinnedCpus(),
      runQuantum: (cpu) => {
        const pinned = this.tasks.find((t) => t.pinnedCpu === cpu && t.state === 'runnable');
        this.runQuantum(pinned ?? task, this.cpus[cpu]!);
      },
    };
    try {
      while (result === undefined) {
        if (task.state === 'dead') throw new UniprobeError('KERNEL', `${name}() did not return: its task was killed (see the report above)`);
        if (this.insns >= this.opts.maxInsns) throw new UniprobeError('KERNEL', `${name}() did not return within --max-insns ${this.opts.maxInsns}`);
        const s = this.sync.sched.chooseStep(work);
        if (!s) {
          const hung = this.sync.sched.hungTasks();
          throw new UniprobeError('SYNC', `${name}() cannot finish: ${hung.join('; ') || 'nothing left to run'}`);
        }
        if (s.kind === 'kthread') await this.sync.sched.runThread(s);
        else work.runQuantum(s.cpu);
      }
      return result;
    } finally {
      if (task.state !== 'dead') this.retireTask(task);
      this.kernelCalls.delete(task);
      proc.tasks.splice(proc.tasks.indexOf(task), 1);
      this.tasks.splice(this.tasks.indexOf(task), 1);
    }
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
    const e = task.mm.engine;
    const enter = (trappedPc: bigint): void => {
      this.arch.setPc(e, trappedPc);
      const saved = this.arch.snapshot(e);
      this.pushKernelCall(task, (ret) => {
        this.runAfterStop(() => {
          this.arch.restore(e, saved);
          let action: TrapAction;
          try {
            action = resume(ret);
          } catch (err) {
            // As for an exception out of a hook inside the run: the task cannot go on.
            this.current = undefined;
            if (this.currentCpu) this.currentCpu.current = undefined;
            this.currentCpu = undefined;
            this.killProcess(task.process, SIG.SIGKILL, undefined);
            throw err;
          }
          if (action.pc !== undefined) this.arch.setPc(e, action.pc);
        });
        return { stop: true };
      });
      this.enterKernelCall(task, fn, args, this.arch.getSp(e) - Machine.CALL_STACK_GAP);
    };
    const pc = this.arch.getPc(e);
    // Asked again from a `resume` (the handler's next call): the engine is stopped already.
    if (!e.isRunning) {
      enter(pc);
      return { pc: this.arch.getPc(e) };
    }
    const stub = this.kernel.symbol('uniprobe_hypercall')?.codeAddress;
    if (stub === undefined) throw new UniprobeError('KERNEL', 'the guest kernel image lacks uniprobe_hypercall');
    this.parkedCalls.set(task, () => enter(pc));
    return { pc: stub };
  }

  /** Tasks sent to the hypercall stub by callFromTrap, and the call to enter once stopped. */
  private readonly parkedCalls = new WeakMap<Task, () => void>();

  /** The hypercalls of host-initiated calls: a parked task's stop, and HC_CALL_DONE. */
  private kernelCallHypercall(task: Task): TrapAction | undefined {
    const parked = this.parkedCalls.get(task);
    if (parked) {
      this.parkedCalls.delete(task);
      this.runAfterStop(parked);
      return { stop: true };
    }
    const e = task.mm.engine;
    if (this.arch.readCallArg(e, task.mm, 0) !== BigInt(HC.CALL_DONE)) return undefined;
    const done = this.kernelCalls.get(task)?.pop();
    if (!done) return this.kernelOops(task, 'HC_CALL_DONE without a host-initiated call');
    return done(this.arch.readCallArg(e, task.mm, 1));
  }

  private pushKernelCall(task: Task, done: (ret: bigint) => TrapAction): void {
    let stack = this.kernelCalls.get(task);
    if (!stack) this.kernelCalls.set(task, (stack = []));
    stack.push(done);
  }

  /** Enter `pc(args)` on `task`'s loaded registers, returning to entry_call_return. */
  private enterKernelCall(task: Task, pc: bigint, args: bigint[], stackTop: bigint): void {
    const e = task.mm.engine;
    this.arch.enterKernelFunction(e, task.mm, { pc, stackTop, args, returnTo: this.kernel.entryCallReturn, toc: this.kernel.toc });
    this.placeKernelArgs(e, task.mm, args);
  }

  /**
   * enterKernelFunction passes arguments by the C ABI of the system-call entry stub; the kernel's
   * own functions may take them elsewhere (i386: -mregparm=3 — eax, edx, ecx, then the stack
   * from 4(%esp)), which is what readKernelCallArg reads. Where the two disagree, find the place
   * readKernelCallArg reads for that argument — a register, or a stack word just above the stack
   * pointer — by writing a marker there, and put the argument in it. An argument that cannot be
   * placed, or a placement that moved another one, is refused rather than passed wrong.
   */
  private placeKernelArgs(e: Engine, mem: Mm, args: bigint[]): void {
    const read = this.arch.readKernelCallArg;
    if (!read) return;
    const w = this.arch.wordSize;
    const mask = (1n << BigInt(w * 8)) - 1n;
    const reads = (i: number, v: bigint): boolean => {
      try {
        return read(e, mem, i) === (v & mask);
      } catch {
        return false;
      }
    };
    if (args.every((a, i) => reads(i, a))) return;
    const sp = this.arch.getSp(e);
    const places: Array<{ get(): bigint; set(v: bigint): void }> = [
      ...[...this.arch.registers.byName.values()].map((r) => ({ get: () => e.regRead(r.id), set: (v: bigint) => e.regWrite(r.id, v) })),
      ...Array.from({ length: args.length + 4 }, (_, k) => {
        const at = sp + BigInt(k * w);
        return { get: () => mem.readWord(at), set: (v: bigint) => mem.writeWord(at, v) };
      }),
    ];
    args.forEach((arg, i) => {
      if (reads(i, arg)) return;
      const marker = (arg ^ 0x5a5a5a5an) & mask;
      const place = places.find((p) => {
        const old = p.get();
        p.set(marker);
        const hit = reads(i, marker);
        p.set(old);
        return hit;
      });
      place?.set(arg & mask);
    });
    const wrong = args.findIndex((a, i) => !reads(i, a));
    if (wrong >= 0) throw new UniprobeError('ARCH', `${this.target}: cannot pass kernel-function argument ${wrong} where readKernelCallArg reads it`);
  }

  /**
   * One scheduling step: a guest quantum or a kernel-thread step (returned as a promise), or why
   * the machine stopped. `frozen`: only pinned guest tasks may run.
   */
  private step(frozen: boolean): 'ran' | 'exit' | 'deadlock' | 'budget' | Promise<void> {
    this.reapMms();
    const work = frozen ? this.frozenWork : this.guestWork;
    if (work.runnable() && this.insns >= this.opts.maxInsns) {
      this.report(`uniprobe: stopped after ${this.insns} instructions (--max-insns ${this.opts.maxInsns}): the guest did not exit`);
      for (const p of this.processes) if (p.alive) this.killProcess(p, SIG.SIGKILL, undefined);
      this.reapMms();
      return 'budget';
    }
    const s = this.sync.sched.chooseStep(work);
    if (!s) {
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
    this.afterStopWork.push(fn);
  }

  /**
   * The host half of a mapping system call, with mmap_lock held for write (and the hooks' locks):
   * true when done, false when a lock was busy (the task must sleep and retry).
   */
  private mappingSyscall(task: Task, name: string, args: bigint[]): boolean {
    const ctx = task.sysctx;
    const mm = task.mm;
    const lock = this.mmLocks.mmapLock(mm);
    if (!lock.tryDownWrite(ctx, name)) return false;
    const taken: MappingLockHook[] = [];
    const release = (): void => {
      for (const h of taken.reverse()) h.unlock(ctx, name, mm);
      lock.upWrite(ctx, name);
    };
    for (const h of this.mappingLockHooks) {
      if (!h.tryLock(ctx, name, mm)) {
        release();
        return false;
      }
      taken.push(h);
    }
    this.mappingContext = ctx;
    try {
      const r = this.hostSyscall(task, name, args);
      this.completeHypercall(task, r);
      mm.settle();
      if (mm.oom) this.oomKill(mm);
    } finally {
      this.mappingContext = undefined;
      release();
    }
    return true;
  }

  private result(reason: 'exit' | 'deadlock' | 'budget'): RunResult {
    const init = this.init;
    if (reason === 'budget') return { status: 124, exitCode: 0, signal: SIG.SIGKILL, reason, insns: this.insns, quanta: this.quanta };
    if (!init) return { status: 0, exitCode: 0, signal: 0, reason, insns: this.insns, quanta: this.quanta };
    return {
      status: reason === 'deadlock' ? 124 : init.shellStatus,
      exitCode: init.exitCode,
      signal: init.termSignal,
      reason: reason === 'deadlock' ? reason : init.termSignal ? 'signal' : 'exit',
      insns: this.insns,
      quanta: this.quanta,
    };
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

  private loadTask(task: Task): void {
    const mm = task.mm;
    const prev = this.loaded.get(mm);
    if (prev === task) return;
    const e = mm.engine;
    if (prev && prev.state !== 'dead') prev.regs = this.arch.snapshot(e);
    if (task.cloneStart) {
      this.applyCloneStart(task, task.cloneStart);
      task.cloneStart = undefined;
    } else if (task.regs) {
      this.arch.restore(e, task.regs);
    }
    this.loaded.set(mm, task);
  }

  private applyCloneStart(task: Task, s: CloneStart): void {
    const e = task.mm.engine;
    this.arch.restore(e, s.full);
    this.arch.restoreSyscallRegs(e, s.user);
    this.arch.setPc(e, s.resumePc);
    this.arch.setupCloneChild(e, s.stack, s.parentTid);
    if (s.tls !== undefined) this.arch.setThreadPointer(e, s.tls, task.mm);
  }

  private runQuantum(task: Task, cpu: Vcpu): void {
    const mm = task.mm;
    this.loadTask(task);
    if (task.pendingMapping) {
      // Woken from a sleep on mmap_lock: retry the system call before running on.
      const p = task.pendingMapping;
      if (!this.mappingSyscall(task, p.name, p.args)) {
        task.state = 'blocked';
        return;
      }
      task.pendingMapping = undefined;
      if (task.state !== 'runnable') return;
    }
    this.current = task;
    this.currentCpu = cpu;
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
    this.loneQuantum = this.runsAlone();
    const budgetLeft = Math.max(1, this.opts.maxInsns - this.insns);
    let count = Math.min(this.loneQuantum ? Math.max(q, LONE_SLICE) : q, budgetLeft);
    let quantumRetired = 0;
    // One quantum may take several runs: a run ends early for work that cannot be done while
    // the engine executes (a COW copy, a mapping system call); the task then goes on.
    for (let restarts = 0; ; restarts++) {
      this.lastMemFault = undefined;
      let result;
      let retired: number;
      try {
        const at = this.arch.runStart?.(mm.engine) ?? { pc: this.arch.getPc(mm.engine), replay: 0 };
        result = mm.engine.run(at.pc, count + at.replay, () => this.arch.getPc(mm.engine));
        // Instructions replayed to rebuild the CPU state (sparc64 delay slots) ran before.
        retired = Math.max(0, result.retired - at.replay);
      } catch (e) {
        this.current = undefined;
        cpu.current = undefined;
        // An exception from our own hook code: the engine is consistent (the hook was unwound
        // safely), the guest process cannot go on.
        this.killProcess(task.process, SIG.SIGKILL, undefined);
        throw e;
      }
      const cowResolved = mm.settle();
      if (mm.oom) this.oomKill(mm);
      const deferred = this.deferred;
      this.deferred = undefined;
      if (deferred && task.state !== 'dead' && !this.mappingSyscall(deferred.task, deferred.name, deferred.args)) {
        // mmap_lock is held by a kernel thread (a probe registration): sleep until it is dropped.
        deferred.task.pendingMapping = { name: deferred.name, args: deferred.args };
        this.mappingSleeps++;
        deferred.task.state = 'blocked';
      }
      const afterStop = this.afterStopWork.splice(0);
      for (const fn of afterStop) if (task.state !== 'dead') fn();
      this.insns += retired;
      task.insns += retired;
      // Unicorn's own count (no native counter) restarts with the whole quantum, as it always did.
      quantumRetired += retired;
      if (mm.engine.countsNatively) count = Math.max(1, count - retired);
      let companyArrived = false;
      if (this.loneQuantum && !this.runsAlone()) {
        this.loneQuantum = false;
        companyArrived = q > quantumRetired;
        count = Math.min(count, Math.max(1, q - quantumRetired));
      }
      const fault = result.err !== UC_ERR.OK && !(result.err === UC_ERR.WRITE_PROT && cowResolved);
      if (fault && task.state !== 'dead') this.faultFromRun(task, result.err);
      if (fault || task.state !== 'runnable' || (!deferred && !cowResolved && afterStop.length === 0 && !companyArrived) || restarts >= 1000) break;
    }
    this.loneQuantum = false;
    this.quanta++;
    task.quanta++;
    this.opts.onQuantum?.(this);
    this.current = undefined;
    this.currentCpu = undefined;
    cpu.current = undefined;
    // Still between a probe trap and the end of its step: not preemptible, stays on this vCPU.
    const atomic = task.state === 'runnable' && (task.kctx.preempt > 0 || task.kctx.rcuDepth > 0);
    task.pinnedCpu = atomic ? cpu.id : undefined;
    if (!atomic) task.kctx.cpu = undefined;
  }

  private faultFromRun(task: Task, ucErr: number): void {
    const pc = this.arch.getPc(task.mm.engine);
    const mf = this.lastMemFault;
    let f: GuestFault;
    switch (ucErr) {
      case UC_ERR.READ_UNMAPPED:
      case UC_ERR.WRITE_UNMAPPED:
      case UC_ERR.FETCH_UNMAPPED:
      case UC_ERR.READ_PROT:
      case UC_ERR.WRITE_PROT:
      case UC_ERR.FETCH_PROT: {
        const what = {
          [UC_ERR.READ_UNMAPPED]: 'read of unmapped memory',
          [UC_ERR.WRITE_UNMAPPED]: 'write to unmapped memory',
          [UC_ERR.FETCH_UNMAPPED]: 'fetch from unmapped memory',
          [UC_ERR.READ_PROT]: 'read of protected memory',
          [UC_ERR.WRITE_PROT]: 'write to read-only memory',
          [UC_ERR.FETCH_PROT]: 'fetch from non-executable memory',
        }[ucErr]!;
        f = { signal: SIG.SIGSEGV, reason: what, addr: mf?.addr };
        break;
      }
      case UC_ERR.READ_UNALIGNED:
      case UC_ERR.WRITE_UNALIGNED:
      case UC_ERR.FETCH_UNALIGNED:
        f = { signal: SIG.SIGBUS, reason: 'unaligned access' };
        break;
      case UC_ERR.INSN_INVALID:
        f = { signal: SIG.SIGILL, reason: 'invalid instruction' };
        break;
      default:
        f = { signal: SIG.SIGILL, reason: `unhandled CPU exception (${task.mm.engine.strerror(ucErr)})` };
    }
    this.deliverFault(task, f, pc);
  }

  /**
   * force_sig from a trap handler (uprobes: SIGILL for a trampoline hit with no return instance,
   * SIGTRAP for a foreign breakpoint): the default action, which kills the process. The handler
   * then ends the run ({ stop: true }).
   */
  forceSignal(task: Task, f: GuestFault, pc: bigint): void {
    this.deliverFault(task, f, pc);
  }

  private deliverFault(task: Task, f: GuestFault, pc: bigint): void {
    // A fault while stepping a probe's copy (uprobes' abort_xol): the signal is reported at the
    // probed instruction, not in the XOL slot.
    for (const h of this.faultFixups) pc = h(task, pc) ?? pc;
    const where = task.inKernel ? ` in the guest kernel (${this.kernelSymbolize(pc)}) during ${task.syscall?.name ?? 'a system call'}` : '';
    const addr = f.addr !== undefined ? ` at address 0x${f.addr.toString(16)}` : '';
    this.killProcess(
      task.process,
      f.signal,
      `uniprobe: ${task.process.comm}[${task.tid}]: ${signalName(f.signal)} (${f.reason})${addr}, pc 0x${pc.toString(16)}${where}`,
    );
  }

  /**
   * Write kernel text or insn-slot bytes (kprobe arm/disarm, slot fill) and flush every engine's
   * translation cache for the range — the emulator's flush_icache_range. Only between runs: a
   * write inside a running hook would not reach already-translated code.
   */
  patchKernelText(addr: bigint, bytes: Uint8Array): void {
    if (this.current) throw new UniprobeError('INTERNAL', `kernel text patched at 0x${addr.toString(16)} while ${this.current.process.comm} runs`);
    const k = this.kernel;
    const len = BigInt(bytes.length);
    if (addr >= k.base && addr + len <= k.end) k.mem.bytes.set(bytes, Number(addr - k.base));
    else if (k.isInsnArea(addr, bytes.length)) k.insnArea.bytes.set(bytes, Number(addr - k.insnAreaBase));
    else throw new UniprobeError('INTERNAL', `0x${addr.toString(16)} is neither kernel text nor the insn slot area`);
    for (const mm of this.mms) {
      if (mm.destroyed) continue;
      mm.engine.flushTranslations(addr, addr + len);
    }
  }

  /** Read kernel text or slot-area bytes as they are now (breakpoints included). */
  readKernelText(addr: bigint, len: number): Uint8Array {
    const k = this.kernel;
    if (addr >= k.base && addr + BigInt(len) <= k.end) return k.mem.bytes.slice(Number(addr - k.base), Number(addr - k.base) + len);
    if (k.isInsnArea(addr, len)) return k.insnArea.bytes.slice(Number(addr - k.insnAreaBase), Number(addr - k.insnAreaBase) + len);
    throw new UniprobeError('INTERNAL', `0x${addr.toString(16)} is neither kernel text nor the insn slot area`);
  }

  kernelSymbolize(addr: bigint): string {
    const loc = this.kernel.elf.symbolAt(addr);
    return loc ? `${loc.symbol.name}+0x${loc.offset.toString(16)}` : `0x${addr.toString(16)}`;
  }

  // --- traps -----------------------------------------------------------------------------------

  private readonly trapSink: TrapSink = {
    isKernelText: (pc) => this.kernel.isText(pc),
    syscall: (resumePc) => this.enterSyscall(resumePc),
    hypercall: (resumePc) => this.hypercall(resumePc),
    breakpoint: (addr, pcAfter) => this.breakpoint(addr, pcAfter),
    fault: (f, pc) => {
      const task = this.current;
      if (!task) return { stop: true };
      this.deliverFault(task, f, pc);
      return { stop: true };
    },
    memory: () => {
      const task = this.current;
      if (!task) throw new UniprobeError('INTERNAL', 'guest memory asked for outside a run');
      return task.mm;
    },
  };

  private breakpoint(addr: bigint, pcAfter: bigint): TrapAction {
    const task = this.current!;
    // The die-notifier chain of Linux's trap handler: kprobes, then uprobes, get their chance.
    for (const h of this.breakpointHandlers) {
      const action = h({ task, cpu: this.currentCpu!.id, addr, pcAfter, engine: task.mm.engine, mem: task.mm });
      if (action) return action;
    }
    // No probe owns this trap: it is the program's own breakpoint, SIGTRAP as Linux delivers it.
    this.deliverFault(task, { signal: SIG.SIGTRAP, reason: 'trace/breakpoint trap' }, addr);
    return { stop: true };
  }

  private enterSyscall(resumePc: bigint): TrapAction {
    const task = this.current!;
    const mm = task.mm;
    const e = mm.engine;
    const arch = this.arch;
    const req = arch.readSyscall(e);
    const raw = arch.syscallName(req.nr) ?? `syscall_${req.nr}`;
    const { name, args } = normaliseSyscall(raw, req.args);
    task.syscall = { name, nr: req.nr, args };
    if (this.opts.strace) {
      const call = `[${task.tid}] ${formatSyscallCall(name, args, { read: (a, n) => e.tryMemRead(a, n) }, arch.wordSize * 8)}`;
      // Printed when the call returns (with its result); one that never returns, when entered.
      if (syscallReturns(name)) task.straceCall = call;
      else this.opts.strace(`${call} = ?`);
    }
    task.userRegs = arch.saveSyscallRegs(e);
    task.userResumePc = resumePc;
    task.inKernel = true;
    // struct syscall_frame just below the top of the task's kernel stack.
    const w = arch.wordSize;
    const frame = (task.kstackTop - BigInt(8 * w) - 64n) & ~0xfn;
    const words = [BigInt(KSYS[name] ?? 0), BigInt(req.nr), ...args.slice(0, 6)];
    words.forEach((v, i) => mm.writeWord(frame + BigInt(i * w), v));
    arch.enterKernelFunction(e, mm, {
      pc: this.kernel.entrySyscall,
      stackTop: frame,
      args: [frame],
      returnTo: this.kernel.entryCallReturn,
      toc: this.kernel.toc,
    });
    return { pc: this.kernel.entrySyscall };
  }

  private hypercall(_resumePc: bigint): TrapAction | undefined {
    const task = this.current!;
    const kcall = this.kernelCallHypercall(task);
    if (kcall) return kcall;
    const e = task.mm.engine;
    const arch = this.arch;
    const a = [0, 1, 2, 3, 4, 5].map((i) => arch.readCallArg(e, task.mm, i));
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
          this.deferred = { task, name: sys.name, args: sys.args };
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
    return this.completeHypercall(task, r);
  }

  /** Deliver a host result to the kernel code that made the hypercall. */
  private completeHypercall(task: Task, r: SyscallResult): TrapAction | undefined {
    const e = task.mm.engine;
    const arch = this.arch;
    if (typeof r === 'bigint') {
      arch.writeReturnValue(e, r);
      return task.state === 'dead' || task.mm.unsettled ? { stop: true } : undefined;
    }
    switch (r.kind) {
      case 'exit':
        this.exitTask(task, r.code, r.group);
        return { stop: true };
      case 'block':
        // kernel_wait4 sees -EAGAIN and calls schedule(), which blocks the task.
        task.waitingForChild = true;
        arch.writeReturnValue(e, err(E.EAGAIN));
        return undefined;
      case 'yield':
        arch.writeReturnValue(e, 0n);
        return { stop: true };
    }
  }

  /** One runnable guest task and no kernel thread: no preemption is needed (see runQuantum). */
  private runsAlone(): boolean {
    let runnable = 0;
    for (const t of this.tasks) if (t.state === 'runnable' && ++runnable > 1) return false;
    return this.sync.sched.live().length === 0;
  }

  private sysret(task: Task, value: bigint): TrapAction {
    const e = task.mm.engine;
    const arch = this.arch;
    if (task.straceCall !== undefined) {
      this.opts.strace?.(`${task.straceCall}${formatSyscallResult(task.syscall?.name ?? '', value, arch.wordSize * 8)}`);
      task.straceCall = undefined;
    }
    if (!task.userRegs) return this.kernelOops(task, 'HC_SYSRET without a system call');
    arch.restoreSyscallRegs(e, task.userRegs);
    arch.setPc(e, task.userResumePc);
    arch.writeSyscallResult(e, BigInt.asIntN(arch.wordSize * 8, value));
    task.inKernel = false;
    task.syscall = undefined;
    task.userRegs = undefined;
    // A long slice of a lone task ends when the system call gave it company (clone, a wake-up).
    if (this.loneQuantum && !this.runsAlone()) return { pc: task.userResumePc, stop: true };
    return { pc: task.userResumePc };
  }

  private kernelOops(task: Task, why: string): TrapAction {
    const pc = this.arch.getPc(task.mm.engine);
    this.killProcess(task.process, SIG.SIGKILL, `uniprobe: guest kernel oops: ${why} at ${this.kernelSymbolize(pc)}; killing ${task.process.comm}[${task.tid}]`);
    return { stop: true };
  }

  private hostSyscall(task: Task, name: string, args: bigint[]): SyscallResult {
    const archResult = this.arch.archSyscall(name, task.mm.engine, args, task.mm);
    if (archResult !== undefined) return archResult;
    const h = handlers[name];
    if (!h) return err(E.ENOSYS);
    return h({ host: this.syscallHost, task }, args);
  }

  // --- process lifecycle -----------------------------------------------------------------------

  private makeSyscallHost(): SyscallHost {
    return {
    arch: this.arch,
    rng: { bytes: (n) => this.rng.bytes(n) },
    write: (fd, bytes) => {
      const sink = fd === 1 ? this.opts.stdout : this.opts.stderr;
      if (sink) sink(bytes);
      else writeAll(fd, bytes);
    },
    limits: this.limits,
    mayOpen: (p) => this.allowed.has(p),
    inodeFor: (p) => this.inodeFor(p),
    clone: (task, flags, stack, ptid, ctid, tls) => this.clone(task, flags, stack, ptid, ctid, tls),
    wait4: (task, pid, statusPtr, options) => this.wait4(task, pid, statusPtr, options),
    kill: (task, pid, sig) => this.kill(task, pid, sig),
    clockNs: () => BigInt(this.insns),
    uname: { sysname: 'Linux', nodename: 'uniprobe', release: '6.1.0-uniprobe', version: '#1 SMP', machine: this.arch.unameMachine },
    };
  }

  private clone(task: Task, flags: bigint, stack: bigint, ptid: bigint, ctid: bigint, tls: bigint): bigint {
    const parent = task.process;
    const e = task.mm.engine;
    if (!task.userRegs) return err(E.EINVAL);
    // RLIMIT_NPROC (copy_process: EAGAIN), and the kernel stacks the arena holds.
    if (!taskFits(this.tasks, this.limits.maxTasks, this.kernel.freeStackCount)) return err(E.EAGAIN);
    const start: CloneStart = {
      full: this.arch.snapshot(e),
      user: task.userRegs,
      resumePc: task.userResumePc,
      stack,
      tls: flags & CLONE.SETTLS ? tls : undefined,
      parentTid: task.tid,
    };
    let proc: Process;
    let child: Task;
    if (flags & CLONE.VM) {
      if (flags & CLONE.THREAD) {
        proc = parent;
      } else {
        proc = new Process(this.nextPid++, parent.mm, parent.exePath, parent.fds.limit);
        proc.parent = parent;
        parent.children.add(proc);
        this.processes.push(proc);
        for (const [fd, f] of parent.fds) proc.fds.set(fd, f);
      }
      task.mm.users++;
      child = this.newTask(proc);
      child.cloneStart = start;
      for (const h of this.forkHooks) h(task, child);
    } else {
      const mm = task.mm.fork();
      this.attachMm(mm);
      proc = new Process(this.nextPid++, mm, parent.exePath, parent.fds.limit);
      proc.comm = parent.comm;
      proc.parent = parent;
      parent.children.add(proc);
      this.processes.push(proc);
      // The child shares its parent's open file descriptions.
      for (const [fd, f] of parent.fds) proc.fds.set(fd, f);
      child = this.newTask(proc);
      this.applyCloneStart(child, start);
      this.loaded.set(mm, child);
      for (const h of this.forkHooks) h(task, child);
    }
    const tid = BigInt(child.tid);
    const u32 = (mm: Mm, addr: bigint, v: bigint): void => {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, Number(v), this.arch.endian === 'little');
      try {
        mm.write(addr, b);
      } catch {
        /* a bad pointer is the program's problem, as in Linux (put_user fails silently here) */
      }
    };
    if (flags & CLONE.PARENT_SETTID) u32(parent.mm, ptid, tid);
    if (flags & CLONE.CHILD_SETTID) u32(child.mm, ctid, tid);
    if (flags & CLONE.CHILD_CLEARTID) child.clearChildTid = ctid;
    return tid;
  }

  private wait4(task: Task, pid: number, statusPtr: bigint, options: number): SyscallResult {
    const proc = task.process;
    const match = [...proc.children].filter((c) => !c.reaped && (pid <= 0 || c.pid === pid));
    if (match.length === 0) return err(E.ECHILD);
    const z = match.find((c) => c.zombie);
    if (z) {
      if (statusPtr !== 0n) {
        const b = new Uint8Array(4);
        new DataView(b.buffer).setUint32(0, z.waitStatus, this.arch.endian === 'little');
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
    if (options & 1 /* WNOHANG */) return 0n;
    return { kind: 'block' };
  }

  private kill(task: Task, pid: number, sig: number): bigint {
    const target = this.processes.find((p) => p.pid === pid || p.tasks.some((t) => t.tid === pid));
    if (!target || !target.alive) return err(E.ESRCH);
    if (sig === 0 || IGNORED_BY_DEFAULT.has(sig)) return 0n;
    if (sig < 0 || sig > 64) return err(E.EINVAL);
    this.killProcess(target, sig, target === task.process ? undefined : undefined);
    return 0n;
  }

  private exitTask(task: Task, code: number, group: boolean): void {
    const proc = task.process;
    for (const t of group ? proc.tasks : [task]) this.retireTask(t);
    if (!proc.alive) {
      proc.exitCode = code;
      this.processExited(proc);
    }
  }

  private retireTask(t: Task): void {
    if (t.state === 'dead') return;
    t.state = 'dead';
    if (t.clearChildTid !== 0n && t.process.mm.users > 1) {
      try {
        t.mm.write(t.clearChildTid, new Uint8Array(4));
      } catch {
        /* as in Linux: a bad clear_child_tid pointer is ignored */
      }
    }
    this.kernel.freeStack(t.kstackIndex);
    t.kstackIndex = -1;
    // Killed between a probe trap and its step (another thread's exit_group, a fault in the
    // slot): leave the read-side section so no grace period waits for a dead task.
    for (const h of this.taskExitHooks) h(t);
    while (t.kctx.rcuDepth > 0) this.sync.rcu.readUnlock(t.kctx);
    t.kctx.preempt = 0;
    t.kctx.cpu = undefined;
    t.pinnedCpu = undefined;
  }

  private killProcess(proc: Process, sig: number, line: string | undefined): void {
    if (proc.zombie) return;
    if (line) this.report(line);
    for (const t of proc.tasks) this.retireTask(t);
    proc.termSignal = sig;
    this.processExited(proc);
  }

  private processExited(proc: Process): void {
    if (proc.zombie) return;
    proc.zombie = true;
    proc.fds.clear();
    proc.mm.users--;
    const parent = proc.parent;
    if (parent && parent.alive) {
      for (const t of parent.tasks) {
        // Also a parent between wait4's -EAGAIN and its schedule(): clearing the flag keeps that
        // schedule() from blocking after the wakeup already happened (a lost wakeup otherwise).
        if (t.waitingForChild) {
          if (t.state === 'blocked') t.state = 'runnable';
          t.waitingForChild = false;
        }
      }
    } else {
      proc.reaped = true; // nobody to wait for it: init reaps it
    }
    for (const c of proc.children) {
      c.parent = undefined;
      if (c.zombie) c.reaped = true;
    }
  }

  /** Destroy address spaces no task uses any more (never while their engine runs). */
  private reapMms(): void {
    for (const mm of this.mms) {
      if (mm.users <= 0 && !mm.engine.isRunning) {
        this.mms.delete(mm);
        this.loaded.delete(mm);
        mm.destroy();
      }
    }
  }

  /**
   * A guest store needed a copy-on-write copy the memory limit refused: as the OOM killer would,
   * SIGKILL every process using the mm (its tasks never resume after the failed store).
   */
  private oomKill(mm: Mm): void {
    mm.oom = false;
    for (const p of this.processes) {
      if (p.mm === mm && !p.zombie) {
        this.killProcess(p, SIG.SIGKILL, `Out of memory: Killed process ${p.pid} (${p.comm}): ${mm.oomReason}`);
      }
    }
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
    return this.currentCpu;
  }
}


function readElfBytes(path: string): Uint8Array {
  // Inodes for files opened by the guest: plain bytes through the ELF module's checked reader.
  return readFileBytesSync(path);
}
