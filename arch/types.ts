/**
 * The narrow interface between uniprobe's generic code and an instruction set.
 *
 * Like Linux's split between kernel/ and arch/*, generic code (src/) never asks "which target is
 * this?": it calls these hooks. Everything that knows opcodes, register numbers, ABIs or Unicorn
 * quirks lives behind them in arch/<family>/.
 */
import type { ErrnoTable } from '../src/kernel/errno.js';
import type { ElfFile, ElfSymbol } from '../src/elf/index.js';
import type { FunctionEntry } from './entry.js';
import type { StatLayout } from '../src/kernel/abi/stat-layout.js';
import type { OpenFlagBits } from '../src/kernel/abi/open-flags.js';
import type { CpuOutsideContext, Engine } from '../src/emu/unicorn.js';

export type Target = 'x86_64' | 'i386' | 'ppc32' | 'ppc64' | 'sparc64';
export const TARGETS: readonly Target[] = ['x86_64', 'i386', 'ppc32', 'ppc64', 'sparc64'];

/** Where things live in a guest address space. */
export interface MemoryLayout {
  pageSize: number;
  /** User addresses are below this (TASK_SIZE). */
  taskSize: bigint;
  /** Top of the initial user stack (STACK_TOP). */
  stackTop: bigint;
  /** Initial stack reservation in bytes (the stack VMA grows down to stackTop - stackMax). */
  stackMax: number;
  /** Top-down mmap allocations start below this (mmap_base). */
  mmapBase: bigint;
  /** Link address of the guest kernel image's text. */
  kernelBase: bigint;
  /** Kernel stacks for tasks, shared by every address space. */
  kernelStackArena: bigint;
}

/** A system call as the user made it: the target's number and its six argument registers. */
export interface SyscallRequest {
  nr: number;
  args: bigint[];
}

/** What a trap handler wants the arch layer to do when the hook returns. */
export interface TrapAction {
  /** Resume at this PC instead of the natural resume point. */
  pc?: bigint;
  /** End the current emulation run (the scheduler takes over). */
  stop?: boolean;
}

/** The signals a guest fault maps to (Linux numbers are the same on every target for these). */
export const SIG = { SIGILL: 4, SIGTRAP: 5, SIGABRT: 6, SIGBUS: 7, SIGFPE: 8, SIGKILL: 9, SIGSEGV: 11 } as const;
export type Signal = (typeof SIG)[keyof typeof SIG];

export interface GuestFault {
  signal: number;
  /** Faulting data address, when there is one. */
  addr?: bigint;
  /** Human-readable reason, e.g. "invalid opcode", "divide error". */
  reason: string;
  /** si_code (e.g. SEGV_MAPERR), when the trap handler knows it; absent = SI_KERNEL. */
  code?: number;
}

/** Callbacks from the arch layer's trap hooks into the generic kernel. */
export interface TrapSink {
  /** Is `pc` inside the guest kernel image's text? (ppc: a `sc` there is a hypercall.) */
  isKernelText(pc: bigint): boolean;
  /**
   * May the trap instruction at `pc` be a hypercall? Guest kernel text, or a kprobe's copy of
   * kernel text in the instruction slots. Anywhere else it is a user program's instruction.
   * Absent: isKernelText decides.
   */
  isKernelCode?(pc: bigint): boolean;
  /**
   * Optional: copy the 4 bytes of guest kernel code (the image, or the kprobe slot area) at `addr`
   * into `out`; false when `addr` is not kernel code. Cheaper than `memory()` for the word a
   * kernel-mode trap stopped on (ppc reads it at every program check).
   */
  readKernelWord?(addr: bigint, out: Uint8Array): boolean;
  /** A user-mode system call instruction. `resumePc` = the instruction after it. */
  syscall(resumePc: bigint): TrapAction | undefined;
  /** A hypercall from guest kernel text (see fixtures/kernel/ABI.md). */
  hypercall(resumePc: bigint): TrapAction | undefined;
  /** A breakpoint trap (int3 / trap / ta 0x70). `addr` = the breakpoint's own address. */
  breakpoint(addr: bigint, pcAfter: bigint): TrapAction | undefined;
  /** A CPU exception that becomes a signal. */
  fault(fault: GuestFault, pc: bigint): TrapAction | undefined;
  /**
   * Memory of the running task's address space, for work the arch does on the guest's behalf
   * inside a trap hook (sparc64 register-window spills and fills): copy-on-write aware, like a
   * guest access. A write that needs a COW copy is finished only once the run has stopped; while
   * `unsettled` is true the hook must end the run ({ stop: true }) with the PC already past the
   * instruction it emulated.
   */
  memory(): GuestMemoryAccess & {
    readonly unsettled: boolean;
    /** Run `fn` with access_ok on every read and write (a user-mode trap's work: sparc64 window spills). */
    asUser?<T>(fn: () => T): T;
    /** `read` into a buffer the caller keeps (no allocation per trap). */
    readInto?(addr: bigint, out: Uint8Array): Uint8Array;
  };
  /**
   * The running task's blocked mask as a user sigset_t (the target's numbering), for traps that
   * read or set it outside a system call (sparc64's getcontext/setcontext). `set` applies it as
   * set_current_blocked does (SIGKILL/SIGSTOP stay unblocked) and says whether a signal is now
   * deliverable, so the trap can end the run and let the return to user mode deliver it.
   */
  signalMask?: { get(): bigint; set(userSet: bigint): boolean };
}

/** Opaque saved register state of a task (arch-defined contents). */
export interface RegSnapshot {
  readonly values: bigint[];
  readonly wide?: Uint8Array[];
}

export interface AuxvContext {
  hwcap: bigint;
  hwcap2: bigint;
  /** Extra auxv entries this target's libc expects (ppc cache line sizes, …). */
  extra: Array<[number, bigint]>;
  /** AT_PLATFORM string, if the target sets one. */
  platform?: string;
}

/** Register names users and fetch args refer to (the kernel's names for the target). */
export interface RegisterFile {
  /** name (without %) -> Unicorn register id, value width in bytes */
  readonly byName: ReadonlyMap<string, { id: number; size: number }>;
}

export interface FsAbi {
  /** `struct stat` (stat, fstat, lstat, and newfstatat where the target has it). */
  readonly stat: StatLayout;
  /** `struct stat64` (stat64, fstat64, lstat64, fstatat64) on targets that have those calls. */
  readonly stat64?: StatLayout;
  readonly openFlags: OpenFlagBits;
}

/**
 * Generic signal names (include/uapi/asm-generic/signal.h; x86 and powerpc use these numbers).
 * The generic kernel (src/kernel/signal/) works in these numbers; a target whose user ABI numbers
 * signals differently (sparc) gives its own in `SignalAbi.numbers`.
 */
export type SignalName =
  | 'SIGHUP' | 'SIGINT' | 'SIGQUIT' | 'SIGILL' | 'SIGTRAP' | 'SIGABRT' | 'SIGBUS' | 'SIGFPE' | 'SIGKILL'
  | 'SIGUSR1' | 'SIGSEGV' | 'SIGUSR2' | 'SIGPIPE' | 'SIGALRM' | 'SIGTERM' | 'SIGSTKFLT' | 'SIGCHLD'
  | 'SIGCONT' | 'SIGSTOP' | 'SIGTSTP' | 'SIGTTIN' | 'SIGTTOU' | 'SIGURG' | 'SIGXCPU' | 'SIGXFSZ'
  | 'SIGVTALRM' | 'SIGPROF' | 'SIGWINCH' | 'SIGIO' | 'SIGPWR' | 'SIGSYS' | 'SIGEMT';

/** sa_flags bits in a target's numbering (0 = the target has no such flag). */
export interface SaFlagBits {
  NOCLDSTOP: number;
  NOCLDWAIT: number;
  SIGINFO: number;
  ONSTACK: number;
  RESTART: number;
  NODEFER: number;
  RESETHAND: number;
  RESTORER: number;
}

/**
 * struct sigaction as rt_sigaction copies it in and out: byte offsets. `handler` and `restorer`
 * are user words, `flags` is `flagsSize` bytes, `mask` is the 8-byte kernel sigset_t.
 */
export interface SigactionLayout {
  size: number;
  handler: number;
  flags: number;
  flagsSize: 4 | 8;
  /** Absent: the target's struct has no sa_restorer (the kernel supplies the return path). */
  restorer?: number;
  mask: number;
}

/** stack_t, as sigaltstack and uc_stack hold it. */
export interface SignalStack {
  sp: bigint;
  flags: number;
  size: bigint;
}

/**
 * What the generic kernel asks an arch to build for one handler invocation (setup_rt_frame).
 * Numbers, masks and flags here are already in the target's user numbering.
 */
export interface SignalFrameRequest {
  /** The signal number as the handler receives it. */
  sig: number;
  handler: bigint;
  /** sa_restorer when SA_RESTORER was given (x86), else undefined. */
  restorer: bigint | undefined;
  /** The action's sa_flags (user bits). */
  flags: number;
  /** struct siginfo, already encoded (128 bytes, target byte order). */
  info: Uint8Array;
  /** The mask to restore at rt_sigreturn (uc_sigmask): 64 bits, bit n-1 = signal n. */
  savedMask: bigint;
  /** What uc_stack records (the task's sigaltstack, SS_ONSTACK set when running on it). */
  ucStack: SignalStack;
  /** Top of the alternate stack when the frame goes there (SA_ONSTACK, not already on it). */
  altStackTop: bigint | undefined;
  /** A synchronous fault's address (x86: sigcontext.cr2), when there is one. */
  faultAddr?: bigint;
}

/** What rt_sigreturn found in the frame, besides the registers it restored. */
export interface SigreturnResult {
  /** uc_sigmask (user numbering). */
  mask: bigint;
  /** uc_stack, for restore_altstack. */
  stack: SignalStack;
}

/**
 * A target's signal ABI (arch/<family>/signal*.ts). The tables are facts of the uapi headers;
 * the frame hooks are the target's setup_rt_frame / sys_rt_sigreturn.
 */
export interface SignalAbi {
  /** User numbers that differ from the generic ones (sparc); absent = generic numbering. */
  readonly numbers?: Readonly<Partial<Record<SignalName, number>>>;
  readonly saFlags: SaFlagBits;
  readonly sigaction: SigactionLayout;
  /** MINSIGSTKSZ: sigaltstack refuses a smaller stack with ENOMEM. */
  readonly minSigStkSz: number;
  /** rt_sigprocmask's `how` values when not the generic 0, 1, 2 (sparc: 1, 2, 4). */
  readonly sigprocmaskHow?: { BLOCK: number; UNBLOCK: number; SETMASK: number };
  /**
   * rt_sigaction's arguments when they differ from (sig, act, oact, sigsetsize) — sparc64 passes
   * a restorer before sigsetsize. Absent = the generic order.
   */
  rtSigactionArgs?(args: readonly bigint[]): { restorer?: bigint; sigsetsize: bigint };
  /**
   * setup_rt_frame: the engine holds the interrupted user context (PC = where it resumes, any
   * system call result already written). Write the frame below the user stack pointer (or at
   * `altStackTop`), then set the registers the handler starts with. false: the frame could not
   * be written (the generic code then forces SIGSEGV, as Linux's force_sigsegv).
   */
  setupRtFrame?(engine: Engine, mem: GuestMemoryAccess, req: SignalFrameRequest): boolean;
  /**
   * sys_rt_sigreturn: the engine holds the user registers as they were at the rt_sigreturn
   * system call (PC after the call instruction). Restore every register from the frame the
   * stack pointer leads to (the result register included: nothing is written over it
   * afterwards). undefined: the frame is unreadable (the generic code forces SIGSEGV).
   */
  rtSigreturn?(engine: Engine, mem: GuestMemoryAccess): SigreturnResult | undefined;
  /**
   * The old-style (non-rt) frame and its `sigreturn`, for targets whose kernel builds it for a
   * handler without SA_SIGINFO (i386, ppc32: setup_frame). Same contract as setupRtFrame /
   * rtSigreturn (the generic code calls `sigreturn` at HC_SYSRET of the `sigreturn` system call);
   * `stack` is absent from its result (the old frame has no uc_stack). Absent = always rt.
   */
  setupFrame?(engine: Engine, mem: GuestMemoryAccess, req: SignalFrameRequest): boolean;
  sigreturn?(engine: Engine, mem: GuestMemoryAccess): { mask: bigint } | undefined;
  /**
   * Make the interrupted system call run again (-ERESTARTSYS & co.): the engine holds the user
   * registers as at the call's entry, PC after the call instruction (`resumePc`). Set the PC
   * back onto the call instruction and anything else the target needs (ppc: r3 = orig_gpr3).
   * Absent: the call is not restarted, it fails with EINTR.
   */
  restartSyscall?(engine: Engine, resumePc: bigint, call: SyscallRequest): void;
}

export interface Arch {
  readonly target: Target;
  readonly family: 'x86' | 'ppc' | 'sparc';
  readonly wordSize: 4 | 8;
  readonly endian: 'little' | 'big';
  readonly ucArch: number;
  readonly ucMode: number;
  readonly layout: MemoryLayout;
  /** ELF e_machine this arch runs. */
  readonly elfMachine: number;
  readonly registers: RegisterFile;
  /** utsname.machine (what `uname -m` prints on this target). */
  readonly unameMachine: string;
  /**
   * A 64-bit file offset or length passed at argument `at` (pread64, pwrite64, truncate64,
   * ftruncate64): on 32-bit targets a register pair, in the target's order and alignment.
   * Absent: the argument is one 64-bit register.
   */
  fileOffsetArg?(args: readonly bigint[], at: number): bigint;
  /** poll(2)'s event bits where they differ from asm-generic/poll.h (sparc). */
  readonly pollBits?: import('../src/kernel/sys/poll.js').PollBits;
  /** The filesystem ABI: struct stat layouts and open(2) bits (arch/<family>/stat.ts, fcntl.ts). */
  readonly fsAbi: FsAbi;
  /** The signal ABI: numbers, sa_flags, struct layouts, the rt signal frame (arch/<family>/signal*.ts). */
  readonly signals: SignalAbi;

  /**
   * Where Unicorn really accesses memory for `addr`, when that differs from `addr` (else
   * undefined). Unicorn truncates addresses on some targets (ppc64 real mode drops the top 4
   * bits, sparc64 with the MMU off keeps 41, x86-64 with paging off keeps 52 since 2.1): such a
   * region must also be mapped at its alias from the same host memory, or the guest reads zeroes
   * (ppc64), faults (x86-64) or Unicorn aborts the process (sparc64). The engine applies the alias
   * to every mapping itself (arch/engine.ts); layouts keep user memory below the truncation so it
   * needs no alias. Absent = no truncation.
   */
  addressAlias?(addr: bigint): bigint | undefined;
  /**
   * Put the CPU in its user mode (true) or supervisor mode (false), so privileged instructions
   * fault by themselves: ppc MSR[PR] through the register API, x86 the CPL in QEMU's hflags
   * (arch/x86/cpu-state.ts); sparc64 only the trap level, for the MMU index (arch/sparc/cpu-state.ts:
   * PSTATE.PRIV stays clear). Called at every switch (system call entry, sysret, each run's start).
   * Absent: the CPU's mode never changes and only the memory boundary separates the modes.
   *
   * Returns true when the switch also switched QEMU's MMU index (x86: the CPL; ppc: MSR[PR];
   * sparc64: TL), so the CPU keeps TLB entries per mode and none filled in kernel mode is seen in
   * user mode: the return to user mode then needs no TLB flush (src/emu/boundary.ts). False when
   * the mode could not be set (x86 without its CPL field: user code at CPL 0; sparc64 without its
   * CPU state).
   */
  setCpuMode?(e: Engine, user: boolean): boolean;

  /** Bytes per instruction on a fixed-width ISA (the instruction counter's shortcut); absent = variable. */
  readonly fixedInsnBytes?: number;

  /**
   * The CPU state that Unicorn's uc_context_save leaves out, saved and put back by the arch itself
   * (sparc64: Unicorn 2.1.1 never sets its cpu_context_size, so a context holds none of its CPU).
   * Engine.reset needs it; `save` gives undefined when the state cannot be reached (yet).
   */
  readonly cpuOutsideContext?: CpuOutsideContext;

  /**
   * Where to start the next run, when a PC write alone cannot restore the CPU state (sparc64:
   * Unicorn has no NPC register, so a run that stopped inside a delay slot restarts at the delayed
   * branch). `replay` = instructions re-executed before reaching the PC again: the run's count must
   * grow by as much, or a one-instruction run would never get past them. Absent = getPc(), 0.
   */
  runStart?(engine: Engine): { pc: bigint; replay: number };
  /**
   * The scheduler hands the CPU back to a task (each quantum's start: after a switch, a timer
   * interrupt, a signal handler's entry): CPU state outside the register snapshot that Linux's
   * interrupt return resets (ppc: the lwarx reservation, arch/ppc/reservation.ts).
   */
  interruptReturn?(engine: Engine): void;

  /** Prepare a freshly opened engine (CPU model quirks, MSR bits, descriptor tables…). */
  setupEngine(engine: Engine, support: EngineSupport): void;
  /** Install the trap hooks that route syscalls, hypercalls, breakpoints and faults to `sink`. */
  installTrapHooks(engine: Engine, sink: TrapSink): void;

  // --- registers ----------------------------------------------------------------------------
  getPc(engine: Engine): bigint;
  setPc(engine: Engine, pc: bigint): void;
  getSp(engine: Engine): bigint;
  setSp(engine: Engine, sp: bigint): void;
  /** Full user-visible state for context switches and fork. */
  snapshot(engine: Engine): RegSnapshot;
  restore(engine: Engine, snap: RegSnapshot): void;
  /** Just the integer state a system call may change (cheap; for syscall entry/exit). */
  saveSyscallRegs(engine: Engine): RegSnapshot;
  restoreSyscallRegs(engine: Engine, snap: RegSnapshot): void;

  // --- process start ------------------------------------------------------------------------
  /** auxv contents this target's C library relies on. */
  auxv(): AuxvContext;
  /**
   * Registers at exec: PC = entry (ppc64 ELFv1: from the descriptor), SP = initial stack, and
   * whatever the target's ABI sets from the program (`elf`: ppc64's r2/r12 by ELFv1/ELFv2).
   */
  startRegisters(engine: Engine, start: { entry: bigint; sp: bigint; elf: ElfFile }): void;
  /** Bytes reserved below the argc word at exec (sparc64 needs a register save area + bias). */
  readonly stackBias: number;

  // --- system calls -------------------------------------------------------------------------
  /** Generic name of a target system-call number (e.g. "write"), or undefined. */
  syscallName(nr: number): string | undefined;
  syscallNumber(name: string): number | undefined;
  readSyscall(engine: Engine): SyscallRequest;
  /** Write a result in the target's convention; `value` < 0 is -errno (generic Linux numbering). */
  writeSyscallResult(engine: Engine, value: bigint): void;
  /** Set the thread pointer (TLS) for CLONE_SETTLS (x86-64 FS base, i386 a GDT TLS entry, ppc r2/r13, sparc %g7). */
  setThreadPointer(engine: Engine, tls: bigint, mem: GuestMemoryAccess): void;
  /**
   * CLONE_SETTLS when its value points at memory (i386's struct user_desc): read it at clone time,
   * as Linux's copy_thread does, and give back what loads it into the child (or -errno, which
   * clone returns). Absent: the value is the thread pointer itself (setThreadPointer).
   */
  cloneTls?(tls: bigint, mem: GuestMemoryAccess): ((engine: Engine) => void) | bigint;
  /**
   * System calls only this target has (arch_prctl, set_thread_area…): the result (or -errno), or
   * undefined when `name` is not an arch-specific call.
   */
  archSyscall(name: string, engine: Engine, args: bigint[], mem: GuestMemoryAccess): bigint | undefined;
  /** A function's entry points (arch/entry.ts: ppc64 ELFv2 has two, the probe goes to the local one). */
  functionEntry(sym: ElfSymbol): FunctionEntry;
  /** This target's errno numbers by name (its uapi asm/errno.h; sparc and powerpc differ). */
  readonly errno: ErrnoTable;
  /** Translate a generic Linux errno to this target's user ABI numbering: `errnoTranslator(errno)`. */
  userErrno(linuxErrno: number): number;
  /**
   * A getrlimit/prlimit64 resource number in this target's numbering, as the generic one
   * (sparc swaps RLIMIT_NOFILE and RLIMIT_NPROC); absent when the target uses asm-generic's.
   */
  rlimitResource?(resource: number): number;
  /** clone(): argument order differs between targets. */
  cloneArgs(args: bigint[]): { flags: bigint; stack: bigint; parentTid: bigint; childTid: bigint; tls: bigint };
  /**
   * The child of fork/clone sees this: return value 0, new stack if given. `parentTid` is the
   * caller's thread id (sparc's child gets it in %o0, with %o1 = 1).
   */
  setupCloneChild(engine: Engine, childStack: bigint, parentTid: number): void;

  // --- C ABI (hypercalls, kernel calls, fetch args) -----------------------------------------
  /** The i-th integer argument of the C function whose entry/current frame is live. */
  readCallArg(engine: Engine, mem: GuestMemoryAccess, i: number): bigint;
  /**
   * The i-th argument at the entry of a guest-*kernel* function, when the kernel's convention
   * differs from readCallArg's (i386: -mregparm=3, so %ax, %dx, %cx, then the stack).
   * regs_get_kernel_argument() for kprobe handlers and $argN. Absent = readCallArg.
   */
  readKernelCallArg?(engine: Engine, mem: GuestMemoryAccess, i: number): bigint;
  readReturnValue(engine: Engine): bigint;
  writeReturnValue(engine: Engine, value: bigint): void;
  /**
   * Enter a guest-kernel C function: stack at `stackTop` (already holds anything the host wrote
   * below it), arguments per the C ABI, return to `returnTo`; `kernel` is the guest kernel image,
   * for what the target's ABI takes from it (ppc64: the TOC pointer, `.TOC.`).
   */
  enterKernelFunction(
    engine: Engine,
    mem: GuestMemoryAccess,
    call: { pc: bigint; stackTop: bigint; args: bigint[]; returnTo: bigint; kernel: ElfFile },
  ): void;
}

/** What the arch layer may ask of the generic code during engine setup. */
export interface EngineSupport {
  /**
   * Map zero-filled kernel-owned memory (descriptor tables…) visible in this engine only;
   * `exec`: also executable (sparc64's stubs and trampolines).
   */
  mapPrivate(addr: bigint, size: number, exec?: boolean): void;
}

/** Guest memory access through the current engine (bounds and endianness handled). */
export interface GuestMemoryAccess {
  read(addr: bigint, len: number): Uint8Array;
  write(addr: bigint, bytes: Uint8Array): void;
  /**
   * Optional: write() at an address given as a Number (below 2^53), for a hit path that keeps a
   * 32-bit target's addresses as Numbers: no BigInt made when the page is in the host's TLB.
   */
  writeAt?(addr: number, bytes: Uint8Array): void;
  readWord(addr: bigint): bigint;
  writeWord(addr: bigint, value: bigint): void;
}
