/**
 * x86's signal ABI tables (arch/x86/include/uapi/asm/signal.h): the generic numbers and sa_flags,
 * SA_RESTORER (how glibc and musl give the return trampoline), struct sigaction per word size.
 */
import type { SigactionLayout } from '../types.js';
import { GENERIC_SA_FLAGS } from '../signal-generic.js';

export const X86_SA_FLAGS = GENERIC_SA_FLAGS;

/** struct sigaction as rt_sigaction sees it: handler, flags (unsigned long), restorer, mask. */
export const sigactionLayout = (w: 4 | 8): SigactionLayout => ({ size: 3 * w + 8, handler: 0, flags: w, flagsSize: w, restorer: 2 * w, mask: 3 * w });

export const X86_MINSIGSTKSZ = 2048;
