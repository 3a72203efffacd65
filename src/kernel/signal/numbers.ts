/**
 * Signal numbers, default actions and the constants of the signal ABI that every target shares,
 * in the generic numbering (include/uapi/asm-generic/signal.h; x86 and powerpc use it as is).
 * The generic kernel only ever handles these numbers; `numbering.ts` maps a target's own.
 */
import type { SignalName } from '../../../arch/types.js';

export const NSIG = 64;

/** Generic numbers by name (SIGEMT exists only on sparc/mips: no generic number, see GENERIC_EXTRA). */
export const GSIG: Readonly<Record<Exclude<SignalName, 'SIGEMT'>, number>> = {
  SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGTRAP: 5, SIGABRT: 6, SIGBUS: 7, SIGFPE: 8,
  SIGKILL: 9, SIGUSR1: 10, SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15,
  SIGSTKFLT: 16, SIGCHLD: 17, SIGCONT: 18, SIGSTOP: 19, SIGTSTP: 20, SIGTTIN: 21, SIGTTOU: 22,
  SIGURG: 23, SIGXCPU: 24, SIGXFSZ: 25, SIGVTALRM: 26, SIGPROF: 27, SIGWINCH: 28, SIGIO: 29,
  SIGPWR: 30, SIGSYS: 31,
};

/** The first real-time signal (SIGRTMIN as the kernel numbers it; libcs reserve the first few). */
export const SIGRTMIN = 32;

const NAME_OF = new Map<number, string>(Object.entries(GSIG).map(([n, v]) => [v, n]));
export const genericSignalName = (sig: number): string => NAME_OF.get(sig) ?? (sig >= SIGRTMIN && sig <= NSIG ? `SIGRT${sig - SIGRTMIN}` : `signal ${sig}`);

export const sigbit = (sig: number): bigint => 1n << BigInt(sig - 1);

const set = (...sigs: number[]): bigint => sigs.reduce((m, s) => m | sigbit(s), 0n);

/** SIGKILL and SIGSTOP can be neither caught, blocked nor ignored. */
export const UNBLOCKABLE = set(GSIG.SIGKILL, GSIG.SIGSTOP);

/** Default action "ignore" (SIG_KERNEL_IGNORE_MASK). */
export const DEFAULT_IGNORE = set(GSIG.SIGCONT, GSIG.SIGCHLD, GSIG.SIGWINCH, GSIG.SIGURG);
/** Default action "stop" (SIG_KERNEL_STOP_MASK). */
export const DEFAULT_STOP = set(GSIG.SIGSTOP, GSIG.SIGTSTP, GSIG.SIGTTIN, GSIG.SIGTTOU);
/** Default action "core" (SIG_KERNEL_COREDUMP_MASK); every other signal terminates. */
export const DEFAULT_COREDUMP = set(
  GSIG.SIGQUIT, GSIG.SIGILL, GSIG.SIGTRAP, GSIG.SIGABRT, GSIG.SIGFPE, GSIG.SIGSEGV, GSIG.SIGBUS,
  GSIG.SIGSYS, GSIG.SIGXCPU, GSIG.SIGXFSZ,
);
/** Signals a fault raises: dequeued first (SYNCHRONOUS_MASK). */
export const SYNCHRONOUS = set(GSIG.SIGSEGV, GSIG.SIGBUS, GSIG.SIGILL, GSIG.SIGTRAP, GSIG.SIGFPE, GSIG.SIGSYS);

export const SIG_DFL = 0n;
export const SIG_IGN = 1n;

/** sa_flags as the generic kernel keeps them (x86's bits); numbering.ts converts a target's. */
export const SA = {
  NOCLDSTOP: 0x1,
  NOCLDWAIT: 0x2,
  SIGINFO: 0x4,
  RESTORER: 0x04000000,
  ONSTACK: 0x08000000,
  RESTART: 0x10000000,
  NODEFER: 0x40000000,
  RESETHAND: 0x80000000,
} as const;

/** si_code values (include/uapi/asm-generic/siginfo.h). */
export const SI = {
  USER: 0,
  KERNEL: 0x80,
  QUEUE: -1,
  TKILL: -6,
  SEGV_MAPERR: 1,
  SEGV_ACCERR: 2,
  BUS_ADRALN: 1,
  ILL_ILLOPN: 2,
  ILL_ILLOPC: 1,
  TRAP_BRKPT: 1,
  FPE_INTDIV: 1,
  CLD_EXITED: 1,
  CLD_KILLED: 2,
  CLD_DUMPED: 3,
  CLD_STOPPED: 5,
  CLD_CONTINUED: 6,
} as const;

/** sigaltstack's ss_flags. */
export const SS_ONSTACK = 1;
export const SS_DISABLE = 2;
export const SS_AUTODISARM = 1 << 31;

/**
 * The kernel-internal "restart" results a sleeping call returns when a signal interrupts it
 * (include/linux/errno.h). User space never sees them: the return path turns them into EINTR or
 * runs the call again.
 */
export const ERESTARTSYS = 512;
export const ERESTARTNOINTR = 513;
export const ERESTARTNOHAND = 514;
export const ERESTART_RESTARTBLOCK = 516;
const RESTART_CODES: readonly bigint[] = [ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK].map((c) => -BigInt(c));
/** Asked at every system call's return: compared with constants, no BigInt made per call. */
export const isRestartCode = (v: bigint): boolean =>
  v === RESTART_CODES[0] || v === RESTART_CODES[1] || v === RESTART_CODES[2] || v === RESTART_CODES[3];
