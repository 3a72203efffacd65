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
import { intEmulator32 } from './emulate-int32.js';

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

/** An emulation: carry the instruction probed at `at` out, PC included; false (nothing changed) to step it instead. */
export type IntEmulator = (cpu: ProbeCpu, at: bigint) => boolean;

/**
 * `op` as an emulation, with what does not change between hits worked out once: the register
 * ids, the lists written back (reused: an emulation runs inside one trap hook, never nested), the
 * PC after it (for the last `at`: a kprobe has one, a uprobe one per mapping of its file).
 * Registers are read one by one (no list made; a register outside the trap cache costs its one
 * call either way) and written as one batch with the PC.
 */
export function intEmulator(op: IntOp, bits: 32 | 64, pageSize: number): IntEmulator {
  if (bits === 32) return intEmulator32(op, pageSize); // every value a Number (emulate-int32.ts)
  let lastAt = -1n;
  let next = 0n;
  const nextOf = (at: bigint): bigint => (at === lastAt ? next : ((lastAt = at), (next = BigInt.asUintN(bits, at + 4n))));
  const pc = [R.PC];
  const pcVal = [0n];
  /** The three register-to-register forms: rD = value(engine), then the PC, in one batch. */
  const setReg = (rd: number, value: (e: ProbeCpu['engine']) => bigint): IntEmulator => {
    const ids = [R.R0 + rd, R.PC];
    const vals = [0n, 0n];
    return (cpu, at) => {
      vals[0] = value(cpu.engine);
      vals[1] = nextOf(at);
      cpu.engine.regWriteBatch(ids, vals);
      return true;
    };
  };
  /**
   * rD = rS (mflr, mr), then the PC: a register copy, which makes no BigInt when both are in the
   * trap cache (a 64-bit value would otherwise be made twice, read and wrapped, at every hit).
   */
  const copyReg = (rd: number, src: number): IntEmulator => {
    const dst = R.R0 + rd;
    return (cpu, at) => {
      const e = cpu.engine;
      e.regCopy(dst, src);
      e.regWrite(R.PC, nextOf(at));
      return true;
    };
  };
  switch (op.k) {
    case 'add': {
      const src = R.R0 + op.ra;
      const imm = op.imm;
      return setReg(op.rd, (e) => BigInt.asUintN(bits, (op.ra === 0 ? 0n : e.regRead(src)) + imm));
    }
    case 'or': {
      const rs = R.R0 + op.rs;
      const rb = R.R0 + op.rb;
      // mr rA,rS is or rA,rS,rS: a copy.
      return rb === rs ? copyReg(op.ra, rs) : setReg(op.ra, (e) => e.regRead(rs) | e.regRead(rb));
    }
    case 'mflr':
      return copyReg(op.rd, R.LR);
    case 'store': {
      const rs = R.R0 + op.rs;
      const ra = R.R0 + op.ra;
      const d = op.d;
      const size = op.size;
      const data = size === 8 ? scratch8 : scratch4;
      const pageMask = BigInt(pageSize - 1);
      const ids = [ra, R.PC];
      const vals = [0n, 0n];
      return (cpu, at) => {
        const e = cpu.engine;
        const v = e.regRead(rs);
        const ea = BigInt.asUintN(bits, (op.ra === 0 ? 0n : e.regRead(ra)) + d);
        if (Number(ea & pageMask) + size > pageSize) return false;
        if (size === 8) scratch.setBigUint64(0, v);
        else scratch.setUint32(0, Number(v & 0xffffffffn));
        try {
          cpu.mem.write(ea, data);
        } catch (err) {
          // The step from the slot raises the fault where the task can get its signal.
          if (err instanceof UniprobeError && err.code === 'MM') return false;
          throw err;
        }
        if (op.update) {
          vals[0] = ea;
          vals[1] = nextOf(at);
          e.regWriteBatch(ids, vals);
        } else {
          pcVal[0] = nextOf(at);
          e.regWriteBatch(pc, pcVal);
        }
        return true;
      };
    }
  }
}
