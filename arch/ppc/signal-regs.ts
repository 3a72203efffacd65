/**
 * The register image powerpc signal frames share (arch/powerpc/include/uapi/asm/ptrace.h, elf.h):
 * elf_gregset_t — 48 words indexed by PT_* (gpr0–31, nip, msr, orig_gpr3, ctr, link, xer, ccr,
 * mq/softe, trap, dar, dsisr, result; the rest pt_regs internals) — and elf_fpregset_t, 33
 * doublewords (fpr0–31, then the FPSCR in the low word of the last one). Words are 4 bytes on
 * ppc32 (mcontext.mc_gregs) and 8 on ppc64 (sigcontext.gp_regs); the FP image is the same on both.
 */
import type { Engine } from '../../src/emu/unicorn.js';
import { UC_PPC_REG as R } from './ucregs.js';
import { PPC_FPRS, PPC_GPRS } from './common.js';

export const PT = { NIP: 32, MSR: 33, ORIG_R3: 34, CTR: 35, LNK: 36, XER: 37, CCR: 38, SOFTE: 39, TRAP: 40, DAR: 41, DSISR: 42, RESULT: 43 } as const;
export const ELF_NGREG = 48;
export const ELF_NFPREG = 33;
export const FPREGS_BYTES = ELF_NFPREG * 8;

/** MSR bits (reg.h). */
export const MSR = { SF: 1n << 63n, VEC: 1n << 25n, EE: 1n << 15n, PR: 1n << 14n, FP: 1n << 13n, ME: 1n << 12n, IR: 1n << 5n, DR: 1n << 4n, RI: 1n << 1n, LE: 1n } as const;

/**
 * The MSR a Linux user task shows in its signal frame: MSR_USER (ME RI IR DR PR EE; SF on ppc64)
 * plus FP (the emulated CPU always has the FPU on) and the emulated LE bit. The engine's own MSR
 * is not that: it runs the guest in hypervisor real mode (HV set, PR/IR/DR clear, see ppc64.ts),
 * which a user program never sees on Linux. HV is left out as under a hypervisor (KVM, PowerVM).
 */
export function userMsr(engineMsr: bigint, is64: boolean): bigint {
  const base = MSR.ME | MSR.RI | MSR.IR | MSR.DR | MSR.PR | MSR.EE | MSR.FP;
  return (is64 ? base | MSR.SF : base) | (engineMsr & MSR.LE);
}

/** The user registers a frame saves, in this order. */
const SAVED = [...PPC_GPRS, R.PC, R.MSR, R.CTR, R.LR, R.XER, R.CR, ...PPC_FPRS, R.FPSCR];
const FPR_AT = 38;

export interface PpcUserRegs {
  gpr: bigint[];
  nip: bigint;
  msr: bigint;
  ctr: bigint;
  link: bigint;
  xer: bigint;
  ccr: bigint;
  fpr: bigint[];
  fpscr: bigint;
}

export function readUserRegs(e: Engine): PpcUserRegs {
  const v = e.regReadBatch(SAVED);
  return {
    gpr: v.slice(0, 32),
    nip: v[32]!,
    msr: v[33]!,
    ctr: v[34]!,
    link: v[35]!,
    xer: v[36]!,
    ccr: v[37]!,
    fpr: v.slice(FPR_AT, FPR_AT + 32),
    fpscr: v[FPR_AT + 32]!,
  };
}

/**
 * Write elf_gregset_t at `off` (word size `w`) as setup_sigcontext / save_general_regs do: the
 * registers, the user MSR, SOFTE = 1 on ppc64 ("user always sees interrupts enabled"), DAR = the
 * fault address of a synchronous fault. orig_gpr3, trap, dsisr and result describe how the kernel
 * was entered, which the emulated return-to-user path does not record: they are written as 0.
 */
export function putGregs(v: DataView, off: number, w: 4 | 8, r: PpcUserRegs, msr: bigint, faultAddr: bigint | undefined): void {
  const put = (i: number, x: bigint): void => {
    if (w === 8) v.setBigUint64(off + 8 * i, BigInt.asUintN(64, x));
    else v.setUint32(off + 4 * i, Number(BigInt.asUintN(32, x)));
  };
  for (let i = 0; i < ELF_NGREG; i++) put(i, 0n);
  r.gpr.forEach((x, i) => put(i, x));
  put(PT.NIP, r.nip);
  put(PT.MSR, msr);
  put(PT.CTR, r.ctr);
  put(PT.LNK, r.link);
  put(PT.XER, r.xer);
  put(PT.CCR, r.ccr);
  if (w === 8) put(PT.SOFTE, 1n);
  if (faultAddr !== undefined) put(PT.DAR, faultAddr);
}

/**
 * elf_fpregset_t at `off`: fpr0–31 as raw doublewords, the FPSCR in the low word of slot 32.
 * Limit (measured): Unicorn 2.1.1's ppc64 register API reads the FPSCR as 0 after any write, so
 * on ppc64 the FPSCR slot, the handler's FPSCR = 0 and its restore are only as good as that API;
 * ppc32's FPSCR goes through exactly.
 */
export function putFpregs(v: DataView, off: number, r: PpcUserRegs): void {
  r.fpr.forEach((x, i) => v.setBigUint64(off + 8 * i, x));
  v.setBigUint64(off + 256, BigInt.asUintN(32, r.fpscr));
}

/**
 * restore_user_regs / restore_sigcontext: every GPR, NIP, CTR, LR, XER, CCR and the FP registers
 * from the image; of the MSR only LE comes from the frame (the only bit Linux lets user space
 * change through sigreturn; FP/VEC/VSX are just reloaded lazily).
 */
export function restoreImage(e: Engine, v: DataView, goff: number, w: 4 | 8, foff: number): void {
  const get = (i: number): bigint => (w === 8 ? v.getBigUint64(goff + 8 * i) : BigInt(v.getUint32(goff + 4 * i)));
  const vals: bigint[] = [];
  for (let i = 0; i < 32; i++) vals.push(get(i));
  const msr = (e.regRead(R.MSR) & ~MSR.LE) | (get(PT.MSR) & MSR.LE);
  vals.push(get(PT.NIP), msr, get(PT.CTR), get(PT.LNK), get(PT.XER), get(PT.CCR) & 0xffffffffn);
  for (let i = 0; i < 32; i++) vals.push(v.getBigUint64(foff + 8 * i));
  vals.push(v.getBigUint64(foff + 256) & 0xffffffffn);
  e.regWriteBatch(SAVED, vals);
}

/** Read `len` bytes at `addr` to patch (Linux writes fields, not whole frames); zeroes if unreadable. */
export function frameBytes(mem: { read(a: bigint, n: number): Uint8Array }, addr: bigint, len: number): Uint8Array {
  try {
    return Uint8Array.from(mem.read(addr, len));
  } catch {
    return new Uint8Array(len);
  }
}
