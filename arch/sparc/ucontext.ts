/**
 * Linux/sparc64's getcontext software trap (`ta 0x6e`, sparc64_get_context in
 * arch/sparc/kernel/signal64.c): glibc's __sigsetjmp (and so every static glibc program, through
 * __libc_start_call_main's setjmp) saves its registers with it. Layout of the user's
 * `struct ucontext` (uapi asm/uctx.h): uc_link, uc_flags, uc_sigmask (one word), then
 * mc_gregs[19] (tstate, pc, npc, y, %g1–%g7, %o0–%o7), mc_fp, mc_i7, and the 16-aligned FPU block
 * whose `mcfpu_enab` byte Linux always writes as 0 (it never saves FP state here).
 *
 * What differs from the kernel, because a trap hook cannot run the guest stubs that read them:
 * %ccr (in tstate) and %y are stored as 0. Nothing in glibc reads them back (setcontext restores
 * only what a function call preserves). The signal mask is 0: the engine does not model masks
 * (rt_sigprocmask succeeds without effect).
 */

/** Where the pieces sit in a sparc64 `struct ucontext`. */
export const UCONTEXT = {
  sigmask: 16,
  gregs: 24, // 19 words
  fp: 24 + 19 * 8,
  i7: 24 + 20 * 8,
  fpuEnab: 192 + 290, // mc_fpregs (16-aligned at 192): fregs 256, fsr, fprs, gsr, fq, qcnt, qentsz, enab
} as const;

/** PSTATE bits a user's saved TSTATE shows (Linux: PEF when the FPU was in use, IE always). */
const PSTATE_IE = 0x2n;
const PSTATE_PEF = 0x10n;
const ASI_PNF = 0x82n;

export interface ContextWrite {
  at: bigint;
  bytes: Uint8Array;
}

function words(vs: bigint[]): Uint8Array {
  const b = new Uint8Array(8 * vs.length);
  const v = new DataView(b.buffer);
  vs.forEach((x, k) => v.setBigUint64(8 * k, BigInt.asUintN(64, x), false));
  return b;
}

/**
 * The stores sparc64_get_context makes, for user registers `r` (r0..r31 of the trapping window),
 * the PC the program continues at (the trap's next PC) and whether the FPU is on.
 */
export function getContextWrites(r: readonly bigint[], pc: bigint, fpuOn: boolean): ContextWrite[] {
  const ucp = r[8]!; // %o0
  const tstate = (ASI_PNF << 24n) | ((PSTATE_IE | (fpuOn ? PSTATE_PEF : 0n)) << 8n);
  const gregs = [tstate, pc, BigInt.asUintN(64, pc + 4n), 0n, ...r.slice(1, 8), ...r.slice(8, 16)];
  return [
    { at: ucp + BigInt(UCONTEXT.sigmask), bytes: words([0n]) },
    { at: ucp + BigInt(UCONTEXT.gregs), bytes: words([...gregs, r[30]!, r[31]!]) },
    { at: ucp + BigInt(UCONTEXT.fpuEnab), bytes: new Uint8Array([0]) },
  ];
}
