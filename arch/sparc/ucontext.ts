/**
 * Linux/sparc64's getcontext software trap (`ta 0x6e`, sparc64_get_context in
 * arch/sparc/kernel/signal64.c): glibc's __sigsetjmp (and so every static glibc program, through
 * __libc_start_call_main's setjmp) saves its registers with it. Layout of the user's
 * `struct ucontext` (uapi asm/uctx.h): uc_link, uc_flags, uc_sigmask (one word), then at 32 (the
 * mcontext is 16-aligned) mc_gregs[19] (tstate, pc, npc, y, %g1–%g7, %o0–%o7), mc_fp, mc_i7, and the 16-aligned FPU block
 * whose `mcfpu_enab` byte Linux always writes as 0 (it never saves FP state here).
 *
 * What differs from the kernel, because a trap hook cannot run the guest stubs that read them:
 * %ccr (in tstate) and %y are stored as 0. Nothing in glibc reads them back (setcontext restores
 * only what a function call preserves). The signal mask is the task's blocked set, one word in
 * sparc numbering (_NSIG_WORDS is 1 on sparc64), as Linux copies current->blocked.
 *
 * setcontext (`ta 0x6f`, setcontext.ts) reads the same layout back: `readContext` decodes it.
 */

/** Where the pieces sit in a sparc64 `struct ucontext`. */
export const UCONTEXT = {
  sigmask: 16,
  // uc_mcontext is 16-aligned (mcfpu_fregs holds 16-byte long doubles): after the one-word mask
  // at 16 it starts at 32. glibc's __longjmp stores its return value at 0x40 = MC_G1.
  gregs: 32, // 19 words
  fp: 32 + 19 * 8,
  i7: 32 + 20 * 8,
  fpregs: 208, // mc_fpregs (16-aligned): fregs 256, fsr, fprs, gsr, fq, qcnt, qentsz, enab
  fsr: 208 + 256,
  fprs: 208 + 264,
  gsr: 208 + 272,
  fpuEnab: 208 + 290,
} as const;

/** Bytes setcontext reads: everything up to and including mcfpu_enab. */
export const UCONTEXT_READ = UCONTEXT.fpuEnab + 1;

/** mc_gregs indexes (uapi asm/uctx.h). */
export const MC = { TSTATE: 0, PC: 1, NPC: 2, Y: 3, G1: 4, O0: 11 } as const;

/** A ucontext as sparc64_set_context reads it. */
export interface UserContext {
  sigmask: bigint;
  /** mc_gregs[19]: tstate, pc, npc, y, %g1–%g7, %o0–%o7. */
  gregs: bigint[];
  fp: bigint;
  i7: bigint;
  /** mcfpu_enab != 0: the FP block below is restored. */
  fpuEnab: boolean;
  /** mcfpu_fregs as 32 doublewords, mcfpu_fsr, mcfpu_fprs, mcfpu_gsr. */
  fregs: bigint[];
  fsr: bigint;
  fprs: bigint;
  gsr: bigint;
}

/** Decode the first UCONTEXT_READ bytes of a user's struct ucontext (big-endian). */
export function readContext(b: Uint8Array): UserContext {
  if (b.length < UCONTEXT_READ) throw new RangeError(`ucontext: ${b.length} bytes, ${UCONTEXT_READ} needed`);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const q = (off: number): bigint => v.getBigUint64(off, false);
  return {
    sigmask: q(UCONTEXT.sigmask),
    gregs: Array.from({ length: 19 }, (_, k) => q(UCONTEXT.gregs + 8 * k)),
    fp: q(UCONTEXT.fp),
    i7: q(UCONTEXT.i7),
    fpuEnab: b[UCONTEXT.fpuEnab] !== 0,
    fregs: Array.from({ length: 32 }, (_, k) => q(UCONTEXT.fpregs + 8 * k)),
    fsr: q(UCONTEXT.fsr),
    fprs: q(UCONTEXT.fprs),
    gsr: q(UCONTEXT.gsr),
  };
}

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
 * the PC the program continues at (the trap's next PC), whether the FPU is on and the blocked mask
 * (a user sigset_t word).
 */
export function getContextWrites(r: readonly bigint[], pc: bigint, fpuOn: boolean, sigmask = 0n): ContextWrite[] {
  const ucp = r[8]!; // %o0
  const tstate = (ASI_PNF << 24n) | ((PSTATE_IE | (fpuOn ? PSTATE_PEF : 0n)) << 8n);
  const gregs = [tstate, pc, BigInt.asUintN(64, pc + 4n), 0n, ...r.slice(1, 8), ...r.slice(8, 16)];
  return [
    { at: ucp + BigInt(UCONTEXT.sigmask), bytes: words([sigmask]) },
    { at: ucp + BigInt(UCONTEXT.gregs), bytes: words([...gregs, r[30]!, r[31]!]) },
    { at: ucp + BigInt(UCONTEXT.fpuEnab), bytes: new Uint8Array([0]) },
  ];
}
