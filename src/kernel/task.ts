/**
 * Processes (thread groups) and tasks (threads), with the per-task state the syscall path keeps.
 */
import type { RegSnapshot } from '../../arch/types.js';
import type { Engine } from '../emu/unicorn.js';
import type { Mm } from '../mm/mm.js';
import type { FileDescription } from '../vfs/file.js';
import type { FsState } from '../vfs/vfs.js';
import type { Pipe } from '../vfs/pipe.js';
import { newContext, type ExecContext } from '../sync/context.js';
import { DEFAULT_NOFILE, FdTable } from './fdtable.js';
import { ProcessSignals, TaskSignals } from './signal/state.js';

export type TaskState = 'runnable' | 'blocked' | 'dead';

/**
 * An open file description (struct file), shared by every descriptor dup'ed or inherited from
 * it. `refs` counts those descriptors (FdTable keeps it); when it drops to zero the description
 * is released (a pipe end closes). `status` holds the flags F_GETFL reports, in the target's bits.
 */
export type OpenFile = (
  | { kind: 'stdio'; hostFd: 0 | 1 | 2 }
  | { kind: 'vfs'; file: FileDescription }
  | { kind: 'pipe'; pipe: Pipe; end: 'read' | 'write' }
) & { refs?: number; status?: number; nonblock?: boolean };

/** A clone child's registers, applied when the task is first loaded into its engine. */
export interface CloneStart {
  full: RegSnapshot;
  user: RegSnapshot;
  resumePc: bigint;
  stack: bigint;
  /** CLONE_SETTLS: loads the child's thread pointer (its value was read at clone time). */
  setTls?: (engine: Engine) => void;
  /** The thread that called clone (sparc passes its id to the child). */
  parentTid: number;
}

export class Task {
  readonly tid: number;
  readonly process: Process;
  state: TaskState = 'runnable';
  /** Registers while the task is not loaded in its mm's engine. */
  regs: RegSnapshot | undefined;
  cloneStart: CloneStart | undefined;
  /** Kernel stack (index in the arena and its top address). */
  kstackIndex = -1;
  kstackTop = 0n;
  /** Between a system call's entry into the guest kernel and HC_SYSRET. */
  inKernel = false;
  /** User registers saved at system-call entry, and where user mode resumes. */
  userRegs: RegSnapshot | undefined;
  userResumePc = 0n;
  /** The system call being served (host-side copy of the frame, names normalised). */
  syscall: { name: string; nr: number; args: bigint[] } | undefined;
  /** set_tid_address / CLONE_CHILD_CLEARTID. */
  clearChildTid = 0n;
  /** Blocked in wait4 until a child changes state. */
  waitingForChild = false;
  /**
   * A CLONE_VFORK parent between clone and its child's exec or exit (Linux's vfork_done): it
   * sleeps on its way back to user mode, so the child may use its memory and stack alone.
   */
  vforkWaiting = false;
  /** Quanta this task has run and instructions executed in full quanta. */
  quanta = 0;
  insns = 0;
  /** `--strace`: the line of the system call in progress, printed with its result at sysret. */
  straceCall: string | undefined;
  lastCpu = -1;
  /**
   * The kernel context of this task's traps (probe hits run here, synchronously inside a guest
   * run, preemption off). While it is atomic — between a probe trap and the end of its
   * single-step — the task is pinned to `pinnedCpu`: the scheduler runs nothing else there and
   * resumes it nowhere else, as Linux cannot preempt a CPU in that window.
   */
  readonly kctx: ExecContext;
  pinnedCpu: number | undefined;
  /**
   * The task's process context inside a system call (it may sleep): the mapping system calls
   * take mmap_lock here, so lockdep sees the mmap path's order (mmap_lock → uprobes_mmap_mutex…).
   */
  readonly sysctx: ExecContext;
  /**
   * A mapping system call whose locks were busy (a kernel thread held mmap_lock): the task sleeps
   * (state 'blocked') and retries before its next run, as down_write would wake it.
   */
  pendingMapping: { name: string; args: bigint[] } | undefined;
  /** A system call sleeping on a wait queue (a pipe): retried when woken (SyscallDirective 'wait'). */
  pendingCall: { name: string; args: bigint[] } | undefined;
  /** A futex wait in progress (its outcome is read when the call runs again). */
  futexWaiter: import('./futex.js').FutexWaiter | undefined;
  /** poll/select's deadline while it sleeps (-1: none), kept across its retries. */
  pollDeadline: bigint | undefined;
  /** nanosleep's deadline on the guest clock, while it sleeps. */
  sleepUntil: bigint | undefined;
  /** Bytes a pipe write already moved before it had to sleep (pipe_write keeps them across waits). */
  ioProgress: number | undefined;
  /** Per-task uprobes state (Linux's task->utask), owned by src/uprobes. */
  utask: unknown;
  /** Blocked mask, thread-directed pending signals, sigaltstack (src/kernel/signal). */
  readonly signal = new TaskSignals();
  /** The user stack pointer at system-call entry (sigaltstack's on_sig_stack test). */
  userSp = 0n;

  constructor(tid: number, process: Process) {
    this.tid = tid;
    this.process = process;
    const ctx = newContext('', false);
    // comm can change after the task is created (exec, fork): name the context when asked.
    Object.defineProperty(ctx, 'name', { get: () => `${process.comm}[${tid}]` });
    this.kctx = ctx;
    const sys = newContext('', true);
    Object.defineProperty(sys, 'name', { get: () => `${process.comm}[${tid}] (syscall)` });
    this.sysctx = sys;
  }

  get mm(): Mm {
    return this.process.mm;
  }
}

export class Process {
  readonly pid: number;
  parent: Process | undefined;
  readonly children = new Set<Process>();
  mm: Mm;
  readonly tasks: Task[] = [];
  readonly fds: FdTable;
  /** comm: the executable's basename, at most 15 characters (TASK_COMM_LEN − 1). */
  comm: string;
  exePath: string;
  /** Process group and session (setpgid, setsid); a new process takes its parent's. */
  pgid: number;
  sid: number;
  /** cwd and umask (fs_struct); set by the machine when the process is created. */
  fs!: FsState;
  /** The program's file, what /proc/PID/exe leads to (even outside the guest's root). */
  exeNode: import('../vfs/node.js').VNode | undefined;
  /** The arguments and environment it was started with (/proc/PID/cmdline, environ). */
  argv: string[] = [];
  envp: string[] = [];
  /** The CLONE_VFORK parent this process releases when it execs or exits (mm_release). */
  vforkParent: Task | undefined;
  /** Set once the whole thread group has exited. */
  zombie = false;
  exitCode = 0;
  termSignal = 0;
  /** Reaped by wait4 (or auto-reaped). */
  reaped = false;
  /** Signal actions, group-wide pending signals, exit signal (src/kernel/signal). */
  readonly signal = new ProcessSignals();

  /** `nofile`: RLIMIT_NOFILE for its descriptor table. */
  constructor(pid: number, mm: Mm, exePath: string, nofile = DEFAULT_NOFILE) {
    this.pid = pid;
    this.pgid = pid;
    this.sid = pid;
    this.fds = new FdTable(nofile);
    this.mm = mm;
    this.exePath = exePath;
    this.comm = (exePath.split('/').pop() ?? exePath).slice(0, 15);
  }

  /** wait4's status word: exit code in bits 8–15, or the terminating signal in bits 0–6. */
  get waitStatus(): number {
    return this.termSignal ? this.termSignal & 0x7f : (this.exitCode & 0xff) << 8;
  }

  /** A shell's view of how the process ended: the code, or 128 + signal. */
  get shellStatus(): number {
    return this.termSignal ? 128 + this.termSignal : this.exitCode & 0xff;
  }

  get alive(): boolean {
    return this.tasks.some((t) => t.state !== 'dead');
  }
}
