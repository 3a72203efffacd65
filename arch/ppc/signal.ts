/**
 * powerpc's signal ABI tables (arch/powerpc/include/uapi/asm/signal.h): generic numbers and
 * sa_flags, struct sigaction {handler, flags (unsigned long), restorer, mask}, MINSIGSTKSZ 2048
 * (ppc32) / 8192 (ppc64). The frames: signal-frame-ppc32.ts, signal-frame-ppc64.ts.
 */
import type { SignalAbi } from '../types.js';
import { GENERIC_SA_FLAGS } from '../signal-generic.js';
import { restartSyscallPpc, rtSigreturn32, setupRtFrame32, setupSigFrame32, sigreturn32 } from './signal-frame-ppc32.js';
import { rtSigreturn64, setupRtFrame64 } from './signal-frame-ppc64.js';

const PPC_SA_FLAGS = GENERIC_SA_FLAGS;

export const PPC32_SIGNALS: SignalAbi = {
  saFlags: PPC_SA_FLAGS,
  sigaction: { size: 20, handler: 0, flags: 4, flagsSize: 4, restorer: 8, mask: 12 },
  minSigStkSz: 2048,
  setupRtFrame: setupRtFrame32,
  rtSigreturn: rtSigreturn32,
  // Without SA_SIGINFO ppc32 builds the older sigframe and returns through sigreturn (119).
  setupFrame: setupSigFrame32,
  sigreturn: sigreturn32,
  restartSyscall: restartSyscallPpc,
};

export const PPC64_SIGNALS: SignalAbi = {
  saFlags: PPC_SA_FLAGS,
  sigaction: { size: 32, handler: 0, flags: 8, flagsSize: 8, restorer: 16, mask: 24 },
  minSigStkSz: 8192,
  setupRtFrame: setupRtFrame64,
  rtSigreturn: rtSigreturn64,
  restartSyscall: restartSyscallPpc,
};
