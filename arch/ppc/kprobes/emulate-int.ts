/**
 * PowerPC: the integer instructions a function's entry is made of, carried out at a probe hit the
 * way Linux's emulate_step (arch/powerpc/lib/sstep.c, analyse_instr) does them, so such a probe
 * takes one trap instead of two (breakpoint, then the step's trap). Both probe kinds use it:
 * kprobe_handler → try_to_emulate, and arch_uprobe_skip_sstep.
 *
 *   addi rD,rA,SI (14)      rD = (rA|0) + SI
 *   addis rD,rA,SI (15)     rD = (rA|0) + (SI << 16)      (lis, the ELFv2 global entry's TOC setup)
 *   or rA,rS,rB (31/444)    rA = rS | rB, Rc = 0           (mr)
 *   mfspr rD,LR (31/339)    rD = LR                        (mflr)
 *   stw rS,D(rA) (36), stwu (37); std rS,DS(rA) and stdu (62/0, 62/1, ppc64 only)
 *
 * A store is written through ProbeCpu.mem, as the probed code would write it (big-endian): a
 * user access at a uprobe, a kernel one (the kernel stack) at a kprobe. When it would fault, or
 * cross a page (a partial store), the emulation declines and the instruction is stepped from its
 * slot, where it faults exactly as in place — Linux's emulate_step fails on a faulting store and
 * the probe single-steps the same way. Invalid forms (an update with rA = 0) and everything else
 * are stepped.
 */
import type { ProbeCpu } from '../../probes.js';
import { UniprobeError } from '../../../src/errors.js';
import { UC_PPC_REG as R } from '../ucregs.js';

export type IntOp =
  | { k: 'add'; rd: number; ra: number; imm: bigint }
  | { k: 'or'; ra: number; rs: number; rb: number }
  | { k: 'mflr'; rd: number }
  | { k: 'store'; rs: number; ra: number; d: bigint; size: 4 | 8; update: boolean };

const simm16 = (w: number): bigint => BigInt((w << 16) >> 16);

// The stored word goes through one scratch buffer (Mm.write copies it): a DataView over a fresh
// small Uint8Array costs ~0.9 µs in V8, more than the rest of the emulation (README, "System calls").
const scratch = new DataView(new ArrayBuffer(8));
const scratch8 = new Uint8Array(scratch.buffer);
const scratch4 = new Uint8Array(scratch.buffer, 0, 4);

/** The operation of `w` when it is one emulated here (see the module comment), else undefined. */
export function intOp(w: number, is64: boolean): IntOp | undefined {
  const op = w >>> 26;
  const rt = (w >>> 21) & 31;
  const ra = (w >>> 16) & 31;
  switch (op) {
    case 14:
      return { k: 'add', rd: rt, ra, imm: simm16(w) };
    case 15:
      return { k: 'add', rd: rt, ra, imm: simm16(w) << 16n };
    case 36:
    case 37:
      if (op === 37 && ra === 0) return undefined;
      return { k: 'store', rs: rt, ra, d: simm16(w), size: 4, update: op === 37 };
    case 62: {
      const xo = w & 3;
      if (!is64 || xo > 1 || (xo === 1 && ra === 0)) return undefined;
      return { k: 'store', rs: rt, ra, d: simm16(w & ~3), size: 8, update: xo === 1 };
    }
    case 31: {
      const xo = (w >>> 1) & 0x3ff;
      if ((w & 1) !== 0) return undefined; // Rc = 1 also sets CR0
      if (xo === 444) return { k: 'or', ra, rs: rt, rb: (w >>> 11) & 31 };
      const spr = ((w >>> 16) & 0x1f) | (((w >>> 11) & 0x1f) << 5);
      if (xo === 339 && spr === 8) return { k: 'mflr', rd: rt };
      return undefined;
    }
    default:
      return undefined;
  }
}

/** Carry out `op` (probed at `at`) with the PC moved past it; false (nothing changed) to step instead. */
export function applyIntOp(op: IntOp, cpu: ProbeCpu, at: bigint, bits: 32 | 64, pageSize: number): boolean {
  const e = cpu.engine;
  const next = BigInt.asUintN(bits, at + 4n);
  switch (op.k) {
    case 'add': {
      const base = op.ra === 0 ? 0n : e.regRead(R.R0 + op.ra);
      e.regWriteBatch([R.R0 + op.rd, R.PC], [BigInt.asUintN(bits, base + op.imm), next]);
      return true;
    }
    case 'or': {
      const [s, b] = e.regReadBatch([R.R0 + op.rs, R.R0 + op.rb]);
      e.regWriteBatch([R.R0 + op.ra, R.PC], [BigInt.asUintN(bits, s! | b!), next]);
      return true;
    }
    case 'mflr':
      e.regWriteBatch([R.R0 + op.rd, R.PC], [BigInt.asUintN(bits, e.regRead(R.LR)), next]);
      return true;
    case 'store': {
      const [s, a] = e.regReadBatch([R.R0 + op.rs, R.R0 + op.ra]);
      const ea = BigInt.asUintN(bits, (op.ra === 0 ? 0n : a!) + op.d);
      if (Number(ea % BigInt(pageSize)) + op.size > pageSize) return false;
      if (op.size === 8) scratch.setBigUint64(0, BigInt.asUintN(64, s!));
      else scratch.setUint32(0, Number(BigInt.asUintN(32, s!)));
      try {
        cpu.mem.write(ea, op.size === 8 ? scratch8 : scratch4);
      } catch (err) {
        // The step from the slot raises the fault where the task can get its signal.
        if (err instanceof UniprobeError && err.code === 'MM') return false;
        throw err;
      }
      if (op.update) e.regWriteBatch([R.R0 + op.ra, R.PC], [ea, next]);
      else e.regWrite(R.PC, next);
      return true;
    }
  }
}
