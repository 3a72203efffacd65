/**
 * The branch part of Linux's emulate_step (lib/sstep.c analyse_instr, facts from the Power ISA):
 * PowerPC branches are never run from the slot, where LR and PC-relative targets would be those
 * of the slot. Each function gets the registers in, returns the registers out; `applyBranch`
 * does the engine I/O in two batched calls.
 *
 * - `b`/`ba`/`bl`/`bla`: target = LI (AA) or addr + LI; LK: LR = addr + 4.
 * - `bc*`: unless BO says "no CTR", CTR is decremented first (taken or not) and tested against
 *   zero (BO[3] picks "branch if zero"); unless BO says "ignore CR", CR bit BI must equal BO[1].
 *   Target BD (AA) or addr + BD; LK sets LR = addr + 4 whether or not the branch is taken.
 * - `bclr*`: same tests, target = old LR & ~3 (read before LK rewrites LR).
 * - `bcctr*`: same CR test, target = CTR & ~3; the CTR-decrementing forms are invalid (the CPU
 *   raises an illegal-instruction exception), so prepare refuses them.
 * Addresses wrap at the machine's word size (ppc32: 32 bits; the ppc64 kernel runs with MSR[SF]).
 */
import type { HitRegisters, ProbeCpu } from '../../probes.js';
import { UC_PPC_REG as R } from '../ucregs.js';
import { BO, aaBit, addpcisImm, bdDisp, bi, bo, branchClass, lkBit, liDisp } from './tables.js';

export interface BranchRegs {
  pc: bigint;
  lr: bigint;
  ctr: bigint;
  cr: bigint;
}

/** Is CR bit `n` (0 = the most significant bit of the 32-bit CR) set? */
const crBit = (cr: bigint, n: number): number => Number((cr >> BigInt(31 - n)) & 1n);

/** The state after the branch `w` at `addr`; `bits` = 32 or 64. */
export function branchStep(w: number, addr: bigint, r: BranchRegs, bits: 32 | 64): BranchRegs {
  const wrap = (v: bigint): bigint => BigInt.asUintN(bits, v);
  const next = wrap(addr + 4n);
  const cls = branchClass(w);
  if (cls === undefined) throw new Error(`not a branch: 0x${w.toString(16)}`);
  let { lr, ctr } = r;
  let taken = true;
  let target: bigint;
  if (cls === 'b') {
    target = wrap(aaBit(w) ? liDisp(w) : addr + liDisp(w));
  } else {
    const o = bo(w);
    if ((o & BO.NO_CTR) === 0) {
      ctr = wrap(ctr - 1n);
      const isZero = ctr === 0n;
      if (isZero !== ((o & BO.CTR_ZERO) !== 0)) taken = false;
    }
    if ((o & BO.IGNORE_CR) === 0 && crBit(r.cr, bi(w)) !== ((o & BO.CR_VALUE) !== 0 ? 1 : 0)) taken = false;
    if (cls === 'bc') target = wrap(aaBit(w) ? bdDisp(w) : addr + bdDisp(w));
    else if (cls === 'bclr') target = r.lr & ~3n;
    else target = r.ctr & ~3n;
  }
  if (lkBit(w)) lr = next;
  return { pc: taken ? target : next, lr, ctr, cr: r.cr };
}

const BRANCH_REGS = [R.PC, R.LR, R.CTR, R.CR];

/**
 * The hit registers (arch/probes.ts HitRegisters): PC, the volatile r0–r12 (stack pointer, TOC,
 * arguments and return value among them), LR and CTR at the word size, and CR (32 bits in Unicorn;
 * its eight fields are not in the set). The non-volatile r13–r31 are read where asked for, one
 * call each: a batch costs by the register and a hit rarely needs them. Not XER (Unicorn keeps
 * SO/OV/CA apart and normalises them) nor MSR.
 */
export function ppcHitRegisters(bits: 32 | 64): HitRegisters {
  const word = [R.PC, ...Array.from({ length: 13 }, (_, k) => R.R0 + k), R.LR, R.CTR].map((id) => ({ id, bits }));
  return [...word, { id: R.CR, bits: 32 }];
}

/** Emulate the branch `w` (probed at `addr`) on the CPU, PC included. */
export function applyBranch(cpu: ProbeCpu, w: number, addr: bigint, bits: 32 | 64): void {
  const [pc, lr, ctr, cr] = cpu.engine.regReadBatch(BRANCH_REGS);
  const out = branchStep(w, addr, { pc: pc!, lr: lr!, ctr: ctr!, cr: cr! }, bits);
  cpu.engine.regWriteBatch([R.PC, R.LR, R.CTR], [out.pc, out.lr, out.ctr]);
}

/**
 * The branch `w` probed at `addr` as an emulate function. An unconditional `b`/`bl` reads nothing
 * and has its target (and link) worked out here, once: the hit only writes them (the common
 * emulated kprobe, a call, then allocates nothing).
 */
export function branchEmulator(w: number, addr: bigint, bits: 32 | 64): (cpu: ProbeCpu) => void {
  if (branchClass(w) !== 'b') return (cpu) => applyBranch(cpu, w, addr, bits);
  const { pc, lr } = branchStep(w, addr, { pc: addr, lr: 0n, ctr: 0n, cr: 0n }, bits);
  if (!lkBit(w)) return (cpu) => cpu.engine.regWrite(R.PC, pc);
  return (cpu) => {
    cpu.engine.regWrite(R.LR, lr);
    cpu.engine.regWrite(R.PC, pc);
  };
}

/** `addpcis rD, D`: rD = addr + 4 + (D << 16), like a slot could never compute. */
export function applyAddpcis(cpu: ProbeCpu, w: number, addr: bigint, bits: 32 | 64): void {
  const rd = (w >>> 21) & 0x1f;
  cpu.engine.regWriteBatch([R.R0 + rd, R.PC], [BigInt.asUintN(bits, addr + 4n + addpcisImm(w)), BigInt.asUintN(bits, addr + 4n)]);
}
