/**
 * sa_flags bits of asm-generic/signal-defs.h, which x86 and powerpc use unchanged (sparc has its
 * own: arch/sparc/signal.ts).
 */
import type { SaFlagBits } from './types.js';

export const GENERIC_SA_FLAGS: SaFlagBits = {
  NOCLDSTOP: 0x1,
  NOCLDWAIT: 0x2,
  SIGINFO: 0x4,
  RESTORER: 0x04000000,
  ONSTACK: 0x08000000,
  RESTART: 0x10000000,
  NODEFER: 0x40000000,
  RESETHAND: 0x80000000,
};
