/**
 * sparc64's signal ABI tables (arch/sparc/include/uapi/asm/signal.h): its own signal numbers
 * (SIGEMT 7, SIGBUS 10, SIGCHLD 20, SIGUSR1 30…), sa_flags (_SV_* bits, SA_SIGINFO 0x200),
 * SIG_BLOCK/UNBLOCK/SETMASK = 1/2/4, struct __new_sigaction {handler, flags, restorer, mask},
 * rt_sigaction's extra restorer argument, MINSIGSTKSZ 4096. The frame: signal-frame.ts.
 */
import type { SignalAbi } from '../types.js';
import { restartSyscall, rtSigreturn, setupRtFrame } from './signal-frame.js';

export const SPARC64_SIGNALS: SignalAbi = {
  numbers: {
    SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGTRAP: 5, SIGABRT: 6, SIGEMT: 7, SIGFPE: 8,
    SIGKILL: 9, SIGBUS: 10, SIGSEGV: 11, SIGSYS: 12, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15,
    SIGURG: 16, SIGSTOP: 17, SIGTSTP: 18, SIGCONT: 19, SIGCHLD: 20, SIGTTIN: 21, SIGTTOU: 22,
    SIGIO: 23, SIGXCPU: 24, SIGXFSZ: 25, SIGVTALRM: 26, SIGPROF: 27, SIGWINCH: 28, SIGPWR: 29,
    SIGUSR1: 30, SIGUSR2: 31,
  },
  saFlags: { ONSTACK: 0x1, RESTART: 0x2, RESETHAND: 0x4, NOCLDSTOP: 0x8, NODEFER: 0x20, NOCLDWAIT: 0x100, SIGINFO: 0x200, RESTORER: 0 },
  sigaction: { size: 32, handler: 0, flags: 8, flagsSize: 8, restorer: 16, mask: 24 },
  minSigStkSz: 4096,
  sigprocmaskHow: { BLOCK: 1, UNBLOCK: 2, SETMASK: 4 },
  // sys_sparc64_rt_sigaction(sig, act, oact, restorer, sigsetsize)
  rtSigactionArgs: (a) => ({ restorer: a[3]!, sigsetsize: a[4]! }),
  setupRtFrame,
  rtSigreturn,
  restartSyscall,
};
