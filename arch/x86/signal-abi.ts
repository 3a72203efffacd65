/**
 * x86's signal ABI tables (arch/x86/include/uapi/asm/signal.h): the generic numbers and sa_flags,
 * SA_RESTORER (how glibc and musl give the return trampoline), struct sigaction per word size.
 */
import type { SaFlagBits, SigactionLayout } from '../types.js';

export const X86_SA_FLAGS: SaFlagBits = {
  NOCLDSTOP: 0x1,
  NOCLDWAIT: 0x2,
  SIGINFO: 0x4,
  RESTORER: 0x04000000,
  ONSTACK: 0x08000000,
  RESTART: 0x10000000,
  NODEFER: 0x40000000,
  RESETHAND: 0x80000000,
};

/** struct sigaction as rt_sigaction sees it: handler, flags (unsigned long), restorer, mask. */
export const sigactionLayout = (w: 4 | 8): SigactionLayout => ({ size: 3 * w + 8, handler: 0, flags: w, flagsSize: w, restorer: 2 * w, mask: 3 * w });

export const X86_MINSIGSTKSZ = 2048;
