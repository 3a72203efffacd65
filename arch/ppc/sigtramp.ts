/**
 * The signal return trampolines, in an engine-private page: the role Linux's vdso plays
 * (__kernel_sigtramp32 / __kernel_sigtramp_rt32, __kernel_start_sigtramp_rt64).
 *
 * Why not the frame's own trampoline: without a vdso Linux writes `li r0,__NR_rt_sigreturn; sc`
 * into the frame (mc_pad on ppc32, tramp[] on ppc64) and returns through the stack. The emulated
 * stack is not executable (PT_GNU_STACK, as on any current distribution), so that path faults at
 * the first instruction, as it would on a no-exec stack under Linux — which is why Linux has given
 * every powerpc process a vdso since 2.6.15 and takes the vdso path. The page here holds the
 * vdso's code; signal frames are then built as Linux builds them with a vdso (the frame's
 * trampoline words are not written). Like sparc64's stub area, the page lies above TASK_SIZE,
 * clear of every user mapping and of the guest kernel's regions and their aliases; it is not a
 * VMA (no /proc/PID/maps line: qemu-user's sigtramp page is not one either) and every engine
 * gets it in setupEngine, so fork children have it too.
 */
import type { Engine } from '../../src/emu/unicorn.js';
import type { EngineSupport } from '../types.js';

export const SIGTRAMP_PPC32 = 0xe000_0000n;
export const SIGTRAMP_PPC64 = 0x1800_0000_0000n;
const PAGE = 0x1000;

const LI_R0 = 0x38000000;
const SC = 0x44000002;
const BCTRL = 0x4e800421;
const ADDI_R1_R1 = 0x38210000;
export const NR_SIGRETURN = 119;
export const NR_RT_SIGRETURN = 172;
/** __SIGNAL_FRAMESIZE: the dummy caller frame below a signal frame (ptrace.h). */
export const SIGNAL_FRAMESIZE32 = 64n;
export const SIGNAL_FRAMESIZE64 = 128n;

/** Offsets in the page: ppc32 rt, ppc32 non-rt; ppc64 rt (bctrl first: NIP starts there). */
export const TRAMP_RT32 = 0n;
export const TRAMP_SIG32 = 8n;
export const TRAMP_RT64 = 0n;

function be(words: number[]): Uint8Array {
  const b = new Uint8Array(words.length * 4);
  const v = new DataView(b.buffer);
  words.forEach((w, i) => v.setUint32(4 * i, w >>> 0));
  return b;
}

export function installSigtramp(e: Engine, support: EngineSupport, is64: boolean): void {
  const at = is64 ? SIGTRAMP_PPC64 : SIGTRAMP_PPC32;
  support.mapPrivate(at, PAGE, true);
  const code = is64
    ? [BCTRL, ADDI_R1_R1 | Number(SIGNAL_FRAMESIZE64), LI_R0 | NR_RT_SIGRETURN, SC]
    : [LI_R0 | NR_RT_SIGRETURN, SC, LI_R0 | NR_SIGRETURN, SC];
  e.memWrite(at, be(code));
}
